package storagetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// crashWriter is the child process of RunCrash: it writes to the store
// until it is killed, printing each write before making it and an
// acknowledgement after.
type crashWriter struct {
	t   *testing.T
	ctx context.Context
	s   raft.Storage
	rng *rand.Rand

	first, last, snap uint64
	hs                raftdata.HardState // as stored
	commit            uint64             // ≥ hs.Commit and the snapshot index, ≤ last
	term              uint64             // term of new entries
	vote              raftdata.NodeID
	buf               []raftdata.Entry
}

// runCrashChild is RunCrash in the child process. It does not return.
func runCrashChild(t *testing.T, open OpenFunc, dir string) {
	t.Helper()
	args := strings.SplitN(os.Getenv(crashArgsEnv), " ", 3)
	if len(args) != 3 {
		t.Fatalf("storagetest.RunCrash: child: malformed %s=%q", crashArgsEnv, os.Getenv(crashArgsEnv))
	}
	seed, err1 := strconv.ParseUint(args[0], 10, 64)
	deadline, err2 := strconv.ParseInt(args[1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("storagetest.RunCrash: child: malformed %s=%q", crashArgsEnv, os.Getenv(crashArgsEnv))
	}
	if args[2] != t.Name() {
		t.Fatalf("storagetest.RunCrash: the child process was started for %s but RunCrash was called by %s: "+
			"a test must call RunCrash unconditionally and first", args[2], t.Name())
	}
	ctx := context.Background()
	s, err := open(dir)
	if err != nil {
		t.Fatalf("storagetest.RunCrash: child: OpenFunc(%s): %v", dir, err)
	}
	if s == nil {
		t.Fatal("storagetest.RunCrash: child: OpenFunc returned a nil store")
	}
	st, err := s.InitialState(ctx)
	if err != nil {
		t.Fatalf("storagetest.RunCrash: child: %s: %v", cInitialState, err)
	}
	crashPrintf("start %d %d %d %d %d %d %d", st.FirstIndex, st.LastIndex, st.Snapshot.Index, st.Snapshot.Term,
		st.HardState.Term, st.HardState.Vote, st.HardState.Commit)
	w := &crashWriter{
		t: t, ctx: ctx, s: s, rng: rand.New(rand.NewPCG(seed, 0xc41d)),
		first: st.FirstIndex, last: st.LastIndex, snap: st.Snapshot.Index,
		hs: st.HardState, vote: st.HardState.Vote,
		commit: min(max(st.HardState.Commit, st.Snapshot.Index), st.LastIndex),
		term:   max(st.HardState.Term, st.Snapshot.Term, 1),
	}
	if w.last >= w.first {
		lt, err := s.Term(ctx, w.last)
		if err != nil {
			t.Fatalf("storagetest.RunCrash: child: Term(%d): %v", w.last, err)
		}
		w.term = max(w.term, lt)
	}
	for time.Now().UnixNano() < deadline {
		w.step()
	}
	t.Fatal("storagetest.RunCrash: child: the parent did not kill this process in time")
}

// crashPrintf prints one protocol line in one write, so that a kill never
// leaves half a line.
func crashPrintf(format string, args ...any) {
	line := fmt.Appendf([]byte(crashLinePrefix), format, args...)
	line = append(line, '\n')
	if _, err := os.Stdout.Write(line); err != nil {
		os.Exit(3) // the parent is gone
	}
}

// step makes one random write.
func (w *crashWriter) step() {
	r := w.rng.IntN(100)
	switch {
	case r < 3 && w.commit > w.snap && w.commit >= w.first:
		// A snapshot at a committed index in the log, then maybe compaction.
		lo := max(w.snap+1, w.first)
		idx := lo + w.rng.Uint64N(w.commit-lo+1)
		term, err := w.s.Term(w.ctx, idx)
		if err != nil {
			w.t.Fatalf("storagetest.RunCrash: child: Term(%d) in [%d, %d]: %v", idx, w.first, w.last, err)
		}
		w.snapshot(idx, term, false)
		if w.rng.IntN(4) != 0 {
			w.compact(idx - min(idx, w.rng.Uint64N(100)))
		}
	case r == 3:
		// A snapshot beyond LastIndex, as a follower installs: the log is
		// discarded.
		idx := w.last + 1 + w.rng.Uint64N(50)
		w.snapshot(idx, w.term, true)
	case r < 10:
		// A new term replaces an uncommitted suffix (or appends).
		w.term++
		w.vote = raftdata.NodeID(1 + w.rng.Uint64N(5))
		lo := w.commit + 1 + w.rng.Uint64N(w.last-w.commit+1)
		w.save(true, lo, lo+1+w.rng.Uint64N(64))
	case r < 16:
		// The hard state alone.
		w.commit += w.rng.Uint64N(w.last - w.commit + 1)
		w.save(true, 0, 0)
	case r < 22:
		// Entries alone.
		w.save(false, w.last+1, w.last+2+w.rng.Uint64N(64))
	default:
		hi := w.last + 2 + w.rng.Uint64N(64)
		w.commit += w.rng.Uint64N(hi - w.commit)
		w.save(true, w.last+1, hi)
	}
}

// save saves entries [lo, hi) of the current term, with the hard state if
// withHS.
func (w *crashWriter) save(withHS bool, lo, hi uint64) {
	var hs *raftdata.HardState
	if withHS {
		hs = &raftdata.HardState{Term: w.term, Vote: w.vote, Commit: w.commit}
	}
	w.buf = w.buf[:0]
	for i := lo; i < hi; i++ {
		w.buf = append(w.buf, crashEntry(i, w.term))
	}
	op := crashOp{kind: "save", lo: lo, hi: hi, term: w.term, hs: hs}
	crashPrintf("%s", op)
	if err := w.s.Save(w.ctx, hs, w.buf); err != nil {
		w.t.Fatalf("storagetest.RunCrash: child: %s: %s: %v", cSave, op.describe(), err)
	}
	if hs != nil {
		w.hs = *hs
	}
	if lo < hi {
		w.last = hi - 1
	}
	w.ack()
}

func (w *crashWriter) ack() {
	crashPrintf("ack %d %d %d %d", w.last, w.hs.Term, w.hs.Vote, w.hs.Commit)
}

// snapshot writes and commits the snapshot at idx of term term; discards
// tells that the log does not hold that entry, so Commit discards it.
func (w *crashWriter) snapshot(idx, term uint64, discards bool) {
	op := crashOp{kind: "snap", lo: idx, term: term}
	crashPrintf("%s", op)
	sw, err := w.s.CreateSnapshot(w.ctx, crashSnapMeta(idx, term))
	if err != nil {
		w.t.Fatalf("storagetest.RunCrash: child: %s: %s: %v", cCreate, op.describe(), err)
	}
	if err := writeInPieces(sw, crashSnapData(idx, term)); err != nil {
		_ = sw.Abort()
		w.t.Fatalf("storagetest.RunCrash: child: %s: %s: %v", cWrite, op.describe(), err)
	}
	if err := sw.Commit(w.ctx); err != nil {
		w.t.Fatalf("storagetest.RunCrash: child: %s: %s: %v", cCommit, op.describe(), err)
	}
	w.snap = idx
	if discards {
		w.first, w.last, w.commit = idx+1, idx, idx
	}
	w.ack()
}

// compact compacts up to upTo, at most the snapshot index.
func (w *crashWriter) compact(upTo uint64) {
	op := crashOp{kind: "compact", lo: upTo}
	crashPrintf("%s", op)
	if err := w.s.Compact(w.ctx, upTo); err != nil {
		w.t.Fatalf("storagetest.RunCrash: child: %s: %s: %v", cCompact, op.describe(), err)
	}
	w.first = max(w.first, upTo+1)
	w.ack()
}
