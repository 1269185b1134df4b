package storagetest

import (
	"fmt"
	"testing"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// benchEntryBytes is the payload size of every entry Bench saves.
const benchEntryBytes = 128

// benchCompactEvery is how many entries Bench saves between snapshots and
// compactions, which it does outside the timer to keep the log bounded.
const benchCompactEvery = 1 << 16

// Bench measures Save as the runtime calls it: a hard state and a batch of
// new entries at LastIndex+1. It runs one sub-benchmark per batch size (1,
// 16, 64 and 256 entries of 128 bytes), each on a new store from f, and
// reports throughput in entries/s besides the usual figures. Every
// benchCompactEvery entries it takes a snapshot and compacts the log with
// the timer stopped.
func Bench(b *testing.B, f Factory) {
	for _, n := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchSave(b, f, n) })
	}
}

func benchSave(b *testing.B, f Factory, n int) {
	ctx := b.Context()
	s := f.New(b)
	if s == nil {
		b.Fatal("Factory.New: must return a store: got nil")
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Errorf("%s: %v", cClose, err)
		}
	})
	if _, err := s.InitialState(ctx); err != nil {
		b.Fatalf("%s: %v", cInitialState, err)
	}
	data := payload(1, benchEntryBytes)
	batch := make([]raftdata.Entry, n)
	hs := raftdata.HardState{Term: 1, Vote: 1}
	next, first := uint64(1), uint64(1)

	b.SetBytes(int64(n * benchEntryBytes))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for j := range batch {
			batch[j] = raftdata.Entry{Index: next + uint64(j), Term: 1, Data: data}
		}
		hs.Commit = next - 1
		if err := s.Save(ctx, &hs, batch); err != nil {
			b.Fatalf("%s: Save(entries [%d, %d)): %v", cSave, next, next+uint64(n), err)
		}
		next += uint64(n)
		if next-first >= benchCompactEvery {
			b.StopTimer()
			w, err := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: next - 1, Term: 1})
			if err == nil {
				err = w.Commit(ctx)
			}
			if err == nil {
				err = s.Compact(ctx, next-1)
			}
			if err != nil {
				b.Fatalf("snapshot and compaction at %d: %v", next-1, err)
			}
			first = next
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
}
