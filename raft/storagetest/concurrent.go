package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// The log the concurrency check writes is a function of the index, so that
// readers can check every entry and snapshot they see.
func termOf(i uint64) uint64 { return i/50 + 1 }

func dataOf(i uint64) []byte {
	return fmt.Appendf(nil, "entry %d %s", i, bytes.Repeat([]byte{'.'}, int(i%200)))
}

func snapDataOf(i uint64) []byte { return payload(i, 4096+int(i%1000)) }

func entryOf(i uint64) raftdata.Entry {
	return raftdata.Entry{Index: i, Term: termOf(i), Type: raftdata.EntryNormal, Data: dataOf(i)}
}

// checkConcurrency uses the store as the runtime does: one goroutine orders
// every change (Save, Commit, Compact), another writes snapshots' bytes, and
// several read Entries, Term and OpenSnapshot all the while. Readers check
// everything they see, and that results they keep are never changed. Run it
// with -race.
func checkConcurrency(h *harness) {
	const c = "Storage: reads concurrent with the writer must see a consistent log"
	const lastIndex = 3000 // entries the writer appends, at least
	const minSnaps = 2     // snapshots committed, at least (it appends more until then)
	const snapEvery = 100  // entries between snapshots

	var readers, snapshotter sync.WaitGroup
	st := &sharedState{members: fullMembership()}
	st.first.Store(1)
	s, ctx, t := h.s, h.ctx, h.t
	report := func(format string, args ...any) { t.Errorf("%s: %s", c, fmt.Sprintf(format, args...)) }

	type pendingSnap struct {
		w    raft.SnapshotWriter
		meta raftdata.SnapshotMeta
	}
	pending := make(chan pendingSnap, 1) // written snapshots, for the writer to commit
	ready := make(chan uint64, 1)        // LastIndex, for the snapshotter
	stop := make(chan struct{})

	// The snapshotter: CreateSnapshot, Write and Abort run concurrently
	// with Save, Commit and Compact.
	snapshotter.Add(1)
	go func() {
		defer snapshotter.Done()
		rng := rand.New(rand.NewPCG(2, 2))
		var prev uint64
		for {
			var l uint64
			select {
			case <-stop:
				return
			case l = <-ready:
			}
			idx := l - min(l-1, rng.Uint64N(10))
			if idx <= prev {
				continue
			}
			meta := raftdata.SnapshotMeta{Index: idx, Term: termOf(idx), Membership: st.members.Clone()}
			w, err := s.CreateSnapshot(ctx, meta)
			if err != nil {
				report("CreateSnapshot(%d): %v", idx, err)
				return
			}
			if err := writeInPieces(w, snapDataOf(idx)); err != nil {
				report("writing the snapshot at %d: %v", idx, err)
				_ = w.Abort()
				return
			}
			if rng.IntN(4) == 0 {
				if err := w.Abort(); err != nil {
					report("Abort of the snapshot at %d: %v", idx, err)
					return
				}
				continue
			}
			prev = idx
			select {
			case pending <- pendingSnap{w, meta}:
			case <-stop:
				_ = w.Abort()
				return
			}
		}
	}()

	for r := range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			if err := concurrentReader(ctx, s, st, uint64(r)); err != nil {
				report("reader %d: %v", r, err)
			}
		}()
	}

	// The writer (this goroutine): it must not stop the test while the
	// others run, so it reports errors and breaks out.
	rng := rand.New(rand.NewPCG(1, 1))
	next, sent := uint64(1), uint64(0)
writer:
	for next <= lastIndex || (st.snapshots.Load() < minSnaps && next <= 100*lastIndex && !t.Failed()) {
		lo := next
		if rng.IntN(4) == 0 { // rewrite part of the suffix, identically
			lo = max(h.m.first, next-min(next-1, rng.Uint64N(8)))
		}
		hi := next + 1 + rng.Uint64N(32)
		batch := make([]raftdata.Entry, 0, hi-lo)
		for i := lo; i < hi; i++ {
			batch = append(batch, entryOf(i))
		}
		hs := raftdata.HardState{Term: termOf(hi - 1), Vote: 1, Commit: lo - 1}
		h.m.save(&hs, batch)
		if err := s.Save(ctx, &hs, batch); err != nil {
			report("Save(entries [%d, %d)): %v", lo, hi, err)
			break writer
		}
		next = hi
		st.last.Store(hi - 1)
		if hi-1 >= sent+snapEvery {
			select {
			case ready <- hi - 1:
				sent = hi - 1
			default:
			}
		}
		select {
		case p := <-pending:
			if err := p.w.Commit(ctx); err != nil {
				report("Commit of the snapshot at %d: %v", p.meta.Index, err)
				break writer
			}
			h.m.commitSnapshot(p.meta, snapDataOf(p.meta.Index))
			st.snapshots.Add(1)
			upTo := p.meta.Index - min(p.meta.Index, rng.Uint64N(6))
			if err := s.Compact(ctx, upTo); err != nil {
				report("Compact(%d) with the snapshot at %d: %v", upTo, p.meta.Index, err)
				break writer
			}
			h.m.compact(upTo)
			st.first.Store(h.m.first)
		default:
		}
	}
	close(stop)
	snapshotter.Wait()
	select {
	case p := <-pending:
		_ = p.w.Abort()
	default:
	}
	st.done.Store(true)
	readers.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d entries, %d snapshots committed, %d reader rounds", next-1, st.snapshots.Load(), st.reads.Load())
	if st.snapshots.Load() < minSnaps {
		h.fatalf(c, "the run committed %d snapshots; the check did not exercise snapshots", st.snapshots.Load())
	}
	h.verify(c + " (after the run)")
	h.checkSnapshot(c + " (after the run)")
	h.reopenAndCheck(c + " (after the run and Reopen)")
}

// sharedState is what the concurrency check's writer publishes to readers.
type sharedState struct {
	first, last atomic.Uint64 // bounds as of the writer's last change
	done        atomic.Bool   // the writer has finished
	members     raftdata.Membership
	reads       atomic.Int64 // reader rounds, for the log
	snapshots   atomic.Int64 // snapshots committed
}

// concurrentReader reads until the writer is done and returns the first
// inconsistency it sees.
func concurrentReader(ctx context.Context, s raft.Storage, st *sharedState, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 3))
	var kept []raftdata.Entry
	var keptLo uint64
	checkRun := func(es []raftdata.Entry, lo uint64) error {
		for i, e := range es {
			if want := entryOf(lo + uint64(i)); diffEntries([]raftdata.Entry{e}, []raftdata.Entry{want}) != "" {
				return fmt.Errorf("entry #%d from index %d is %s, want %s", i, lo, fmtEntry(e), fmtEntry(want))
			}
		}
		return nil
	}
	for !st.done.Load() {
		f, l := st.first.Load(), st.last.Load()

		lo := f + rng.Uint64N(l+2-f) // in [f, l+1]
		hi := lo + rng.Uint64N(l+2-lo)
		maxBytes := []int{0, 1, 300, 4000}[rng.IntN(4)]
		es, err := s.Entries(ctx, lo, hi, maxBytes)
		switch {
		case errors.Is(err, raft.ErrCompacted): // compacted meanwhile
		case err != nil:
			return fmt.Errorf("Entries(%d, %d, %d) with published bounds [%d, %d]: %w", lo, hi, maxBytes, f, l, err)
		case uint64(len(es)) > hi-lo || (lo < hi && len(es) == 0):
			return fmt.Errorf("Entries(%d, %d, %d) returned %d entries", lo, hi, maxBytes, len(es))
		default:
			if err := checkRun(es, lo); err != nil {
				return fmt.Errorf("Entries(%d, %d, %d): %w", lo, hi, maxBytes, err)
			}
			if len(es) > 0 {
				kept, keptLo = es, lo
			}
		}

		i := f - 1 + rng.Uint64N(l-f+2) // in [f-1, l]
		term, err := s.Term(ctx, i)
		switch {
		case errors.Is(err, raft.ErrCompacted):
		case err != nil:
			return fmt.Errorf("Term(%d) with published bounds [%d, %d]: %w", i, f, l, err)
		case i == 0 && term != 0, i > 0 && term != termOf(i):
			return fmt.Errorf("Term(%d) = %d, want %d", i, term, termOf(i))
		}

		had := st.snapshots.Load() > 0
		meta, rc, err := s.OpenSnapshot(ctx)
		switch {
		case errors.Is(err, raft.ErrNoSnapshot) && !had:
		case err != nil:
			return fmt.Errorf("OpenSnapshot: %w", err)
		default:
			b, err := io.ReadAll(rc)
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("reading the snapshot at %d: %w", meta.Index, err)
			}
			want := raftdata.SnapshotMeta{Index: meta.Index, Term: termOf(meta.Index), Membership: st.members}
			if !metaEqual(meta, want) {
				return fmt.Errorf("OpenSnapshot meta = %+v, want %+v", meta, want)
			}
			if d := diffBytes(b, snapDataOf(meta.Index)); d != "" {
				return fmt.Errorf("snapshot at %d: %s", meta.Index, d)
			}
		}

		if len(kept) > 0 {
			if err := checkRun(kept, keptLo); err != nil {
				return fmt.Errorf("a result kept by the reader changed: %w", err)
			}
		}
		st.reads.Add(1)
	}
	return nil
}
