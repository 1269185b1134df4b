package memory_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// termOf and dataOf define the log the concurrency test writes, so readers
// can check every entry they see.
func termOf(i uint64) uint64 { return i/16 + 1 }
func dataOf(i uint64) []byte { return strconv.AppendUint(nil, i, 10) }

func checkEntry(e raftdata.Entry, index uint64) error {
	if e.Index != index || e.Term != termOf(index) || string(e.Data) != string(dataOf(index)) {
		return fmt.Errorf("entry %+v, want index %d term %d data %q", e, index, termOf(index), dataOf(index))
	}
	return nil
}

// TestConcurrentReadersOneWriter runs readers against one writer that
// appends, rewrites suffixes, snapshots and compacts. Run it with -race.
func TestConcurrentReadersOneWriter(t *testing.T) {
	s := memory.New()
	const lastIndex = 3000
	var done atomic.Bool
	var wg sync.WaitGroup

	wg.Add(1)
	go func() { // the single writer
		defer wg.Done()
		defer done.Store(true)
		rng := rand.New(rand.NewSource(1))
		next, first, snap := uint64(1), uint64(1), uint64(0)
		for next <= lastIndex {
			lo := next
			if rng.Intn(4) == 0 {
				// Rewrite part of the suffix, identically.
				lo = max(first, next-min(next-1, uint64(rng.Intn(8))))
			}
			var batch []raftdata.Entry
			for i := lo; i < next+uint64(rng.Intn(32)+1); i++ {
				batch = append(batch, raftdata.Entry{Index: i, Term: termOf(i), Data: dataOf(i)})
			}
			next = batch[len(batch)-1].Index + 1
			hs := raftdata.HardState{Term: termOf(next - 1), Commit: next - 1}
			if err := s.Save(ctx, &hs, batch); err != nil {
				t.Errorf("Save: %v", err)
				return
			}
			if rng.Intn(8) == 0 && next > 40 {
				at := max(snap, next-1-uint64(rng.Intn(20)))
				w, err := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: at, Term: termOf(at)})
				if err == nil {
					_, err = w.Write(dataOf(at))
				}
				if err == nil {
					err = w.Commit(ctx)
				}
				upTo := at - uint64(rng.Intn(10))
				if err == nil {
					err = s.Compact(ctx, upTo)
				}
				if err != nil {
					t.Errorf("snapshot at %d: %v", at, err)
					return
				}
				snap, first = at, max(first, upTo+1)
			}
		}
	}()

	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			if err := reader(s, seed, &done); err != nil {
				t.Error(err)
			}
		}(int64(r))
	}
	wg.Wait()

	if got := state(t, s); got.LastIndex < lastIndex || got.FirstIndex > got.LastIndex {
		t.Fatalf("final state %+v", got)
	}
}

// reader checks what it reads until done is set, and that results it kept
// are never changed by the writer.
func reader(s *memory.Storage, seed int64, done *atomic.Bool) error {
	rng := rand.New(rand.NewSource(seed))
	var kept []raftdata.Entry
	var keptFirst uint64
	for !done.Load() {
		st, err := s.InitialState(ctx)
		if err != nil {
			return err
		}
		first, last := st.FirstIndex, st.LastIndex
		es, err := s.Entries(ctx, first, last+1, rng.Intn(2000))
		switch {
		case errors.Is(err, raft.ErrCompacted): // compacted meanwhile
		case err != nil:
			return fmt.Errorf("Entries(%d, %d): %w", first, last+1, err)
		case last >= first && len(es) == 0:
			return fmt.Errorf("Entries(%d, %d) returned nothing", first, last+1)
		default:
			for i, e := range es {
				if err := checkEntry(e, first+uint64(i)); err != nil {
					return err
				}
			}
			if len(es) > 0 {
				kept, keptFirst = es, first
			}
		}
		if last > 0 {
			i := first - 1 + uint64(rng.Int63n(int64(last-first+2)))
			term, err := s.Term(ctx, i)
			if err == nil && i > 0 && term != termOf(i) {
				return fmt.Errorf("Term(%d) = %d, want %d", i, term, termOf(i))
			}
			if err != nil && !errors.Is(err, raft.ErrCompacted) {
				return fmt.Errorf("Term(%d): %w", i, err)
			}
		}
		if meta, rc, err := s.OpenSnapshot(ctx); err == nil {
			b, _ := io.ReadAll(rc)
			if string(b) != string(dataOf(meta.Index)) || meta.Term != termOf(meta.Index) {
				return fmt.Errorf("snapshot %+v holds %q", meta, b)
			}
		} else if !errors.Is(err, raft.ErrNoSnapshot) {
			return err
		}
		for i, e := range kept {
			if err := checkEntry(e, keptFirst+uint64(i)); err != nil {
				return fmt.Errorf("kept result changed: %w", err)
			}
		}
	}
	return nil
}

// TestSaveSteadyStateAllocs checks that Save allocates only to grow the log.
func TestSaveSteadyStateAllocs(t *testing.T) {
	const runs, n = 200, 64
	s := memory.New()
	data := make([]byte, 128)
	batch := make([]raftdata.Entry, n)
	hs := raftdata.HardState{Term: 1}
	next := uint64(1)
	allocs := testing.AllocsPerRun(runs, func() {
		for j := range batch {
			batch[j] = raftdata.Entry{Index: next + uint64(j), Term: 1, Data: data}
		}
		hs.Commit = next
		if err := s.Save(ctx, &hs, batch); err != nil {
			t.Fatal(err)
		}
		next += n
	})
	if allocs >= 1 {
		t.Fatalf("Save allocated %.1f times per call, want amortized growth only", allocs)
	}
}

// BenchmarkSave measures Save with batches of 128-byte entries, taking a
// snapshot and compacting every 64Ki entries (outside the timer) to keep
// memory bounded.
func BenchmarkSave(b *testing.B) {
	for _, n := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchmarkSave(b, n) })
	}
}

func benchmarkSave(b *testing.B, n int) {
	const compactEvery = 1 << 16
	s := memory.New()
	data := make([]byte, 128)
	batch := make([]raftdata.Entry, n)
	for j := range batch {
		batch[j] = raftdata.Entry{Term: 1, Data: data}
	}
	hs := raftdata.HardState{Term: 1}
	next, first := uint64(1), uint64(1)
	b.SetBytes(int64(n * len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range batch {
			batch[j].Index = next + uint64(j)
		}
		next += uint64(n)
		hs.Commit = next - 1
		if err := s.Save(ctx, &hs, batch); err != nil {
			b.Fatal(err)
		}
		if next-first >= compactEvery {
			b.StopTimer()
			w, err := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: next - 1, Term: 1})
			if err == nil {
				err = w.Commit(ctx)
			}
			if err == nil {
				err = s.Compact(ctx, next-1)
			}
			if err != nil {
				b.Fatal(err)
			}
			first = next
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
}
