package storagetest

import (
	"errors"
	"io"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// tenEntries saves entries 1..5 of term 1 and 6..10 of term 2 with a hard
// state, the starting point of most snapshot checks.
func tenEntries(h *harness) {
	h.t.Helper()
	h.save(&raftdata.HardState{Term: 3, Vote: 2, Commit: 4}, join(mkEntries(1, 6, 1), mkEntries(6, 11, 2)))
}

// checkSnapshotRoundTrip: a snapshot streamed in many writes reads back with
// the same metadata and bytes, and is invisible until Commit.
func checkSnapshotRoundTrip(h *harness) {
	const c = "OpenSnapshot: must return the committed snapshot's meta and bytes"
	tenEntries(h)
	meta := raftdata.SnapshotMeta{Index: 8, Term: 2, Membership: fullMembership()}
	data := payload(8, 3<<20+17) // several megabytes, in many writes
	w := h.createSnapshot(meta, data)
	h.checkSnapshot("CreateSnapshot: nothing must be visible before Commit")
	h.verify("CreateSnapshot: nothing must be visible before Commit")
	h.commit(w, meta, data)
	h.wantSnapshot(c, meta, data)
	h.wantSnapshot(c+" to every reader", meta, data)
	h.verify("SnapshotWriter.Commit: must keep a log that holds (meta.Index, meta.Term)")

	// A second snapshot, empty and with an empty membership, replaces it.
	meta2 := raftdata.SnapshotMeta{Index: 10, Term: 2}
	h.snapshot(meta2, nil)
	h.wantSnapshot(c+" (an empty snapshot replacing a larger one)", meta2, nil)
}

// checkSnapshotAbort: Abort discards everything written, and is a no-op
// after Commit.
func checkSnapshotAbort(h *harness) {
	const c = "SnapshotWriter.Abort: must discard the snapshot"
	tenEntries(h)
	w := h.createSnapshot(raftdata.SnapshotMeta{Index: 12, Term: 3}, payload(1, 100<<10))
	if err := w.Abort(); err != nil {
		h.fatalf(c, "Abort: %v", err)
	}
	h.checkSnapshot(c + " (no snapshot may appear)")
	h.verify(c + " (the log must be untouched)")

	meta := raftdata.SnapshotMeta{Index: 5, Term: 1, Membership: fullMembership()}
	h.snapshot(meta, []byte("the snapshot at 5"))
	w = h.createSnapshot(raftdata.SnapshotMeta{Index: 9, Term: 7}, []byte("aborted"))
	if err := w.Abort(); err != nil {
		h.fatalf(c, "Abort: %v", err)
	}
	h.checkSnapshot(c + " (the previous snapshot must remain)")
	h.verify(c + " (the log must be untouched)")

	const ca = "SnapshotWriter.Abort: after Commit must be a no-op"
	meta = raftdata.SnapshotMeta{Index: 6, Term: 2}
	data := []byte("the snapshot at 6")
	w = h.createSnapshot(meta, data)
	h.commit(w, meta, data)
	if err := w.Abort(); err != nil {
		h.fatalf(ca, "Abort after Commit: %v", err)
	}
	h.checkSnapshot(ca)
	h.verify(ca)
	h.reopenAndCheck(ca + " (after Reopen)")
}

// checkCommitKeepsLog: committing a snapshot the log agrees with keeps the
// log and the hard state.
func checkCommitKeepsLog(h *harness) {
	const c = "SnapshotWriter.Commit: must keep a log that holds (meta.Index, meta.Term)"
	tenEntries(h)
	for _, meta := range []raftdata.SnapshotMeta{{Index: 1, Term: 1}, {Index: 5, Term: 1}, {Index: 6, Term: 2}, {Index: 10, Term: 2}} {
		h.snapshot(meta, payload(meta.Index, 100))
		h.verify(c)
		h.checkSnapshot(c)
	}
	h.reopenAndCheck(c + ", and leave the hard state untouched")
}

// checkCommitDiscards returns a check that commits meta, which the log does
// not hold, and expects the whole log discarded. With prefill the log first
// holds entries 1..10.
func checkCommitDiscards(meta raftdata.SnapshotMeta, prefill bool) func(*harness) {
	return func(h *harness) {
		const c = "SnapshotWriter.Commit: a log that does not hold (meta.Index, meta.Term) must be discarded, leaving FirstIndex = LastIndex+1 = meta.Index+1"
		if prefill {
			tenEntries(h)
		} else {
			h.save(&raftdata.HardState{Term: 1, Vote: 1}, nil)
		}
		h.snapshot(meta, payload(meta.Index, 1000))
		if h.m.first != meta.Index+1 || len(h.m.ents) != 0 {
			panic("storagetest: the model kept the log") // a bug in the suite
		}
		h.verify(c)
		h.wantTerm(c+" (Term must answer for the snapshot index)", meta.Index, meta.Term)
		h.wantEntries(c, meta.Index+1, meta.Index+1, nil)
		h.checkSnapshot(c)
		h.reopenAndCheck(c + ", and the hard state must be untouched")

		const ce = "Save: a batch at LastIndex+1 must extend the log after a snapshot discarded it"
		h.save(nil, mkEntries(meta.Index+1, meta.Index+4, meta.Term+1))
		h.verify(ce)
		h.reopenAndCheck(ce)
	}
}

// checkReaderOutlivesNewer: a snapshot reader keeps returning the old bytes
// after a newer snapshot commits and the log is compacted.
func checkReaderOutlivesNewer(h *harness) {
	const c = "OpenSnapshot: a reader must keep reading its snapshot after a newer one commits"
	tenEntries(h)
	oldMeta := raftdata.SnapshotMeta{Index: 4, Term: 1}
	old := payload(4, 1<<20+5)
	h.snapshot(oldMeta, old)
	_, rc, err := h.s.OpenSnapshot(h.ctx)
	if err != nil {
		h.fatalf(cOpen, "%v", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = rc.Close()
		}
	}()
	head := make([]byte, 1000)
	if _, err := io.ReadFull(rc, head); err != nil {
		h.fatalf(c, "reading the first bytes: %v", err)
	}

	newMeta := raftdata.SnapshotMeta{Index: 9, Term: 2, Membership: fullMembership()}
	h.snapshot(newMeta, payload(9, 1<<20+9))
	h.compact(9)
	h.save(nil, mkEntries(11, 13, 3))
	rest, err := io.ReadAll(rc)
	if err != nil {
		h.fatalf(c, "reading the rest: %v", err)
	}
	closed = true
	if err := rc.Close(); err != nil {
		h.fatalf(c, "Close: %v", err)
	}
	if d := diffBytes(append(head, rest...), old); d != "" {
		h.fatalf(c, "the old reader: %s", d)
	}
	h.checkSnapshot(cOpen)

	// The same for a reader that has read nothing yet.
	_, rc2, err := h.s.OpenSnapshot(h.ctx)
	if err != nil {
		h.fatalf(cOpen, "%v", err)
	}
	defer rc2.Close()
	h.snapshot(raftdata.SnapshotMeta{Index: 12, Term: 3}, []byte("twelve"))
	b, err := io.ReadAll(rc2)
	if err != nil {
		h.fatalf(c, "reading: %v", err)
	}
	if d := diffBytes(b, payload(9, 1<<20+9)); d != "" {
		h.fatalf(c, "a reader opened before reading started: %s", d)
	}
	h.checkSnapshot(cOpen)
}

// checkCompactDropsPrefix: Compact(upTo) leaves FirstIndex = upTo+1 and Term
// still answers for the snapshot index.
func checkCompactDropsPrefix(h *harness) {
	const c = "Compact: must discard the entries up to upTo, leaving FirstIndex = upTo+1"
	tenEntries(h)
	h.snapshot(raftdata.SnapshotMeta{Index: 7, Term: 2}, []byte("7"))
	h.compact(5)
	h.verify(c)
	h.compact(7)
	h.verify(c + " (up to the snapshot index)")
	h.wantTerm(cTermSnap, 7, 2)
	h.reopenAndCheck(c + " (after Reopen)")
}

// checkCompactBeyondSnapshot: Compact past the snapshot index fails with
// ErrUnavailable and changes nothing.
func checkCompactBeyondSnapshot(h *harness) {
	const c = "Compact: upTo beyond the snapshot index must fail with ErrUnavailable"
	wantErr := func(upTo uint64) {
		h.t.Helper()
		if err := h.s.Compact(h.ctx, upTo); !errors.Is(err, raft.ErrUnavailable) {
			h.fatalf(c, "Compact(%d) with the snapshot at %d: error %v, want an error wrapping %q",
				upTo, h.m.snap.Index, err, raft.ErrUnavailable)
		}
		h.verify(c + " and change nothing")
	}
	wantErr(1) // no snapshot: its index is 0
	tenEntries(h)
	wantErr(1)
	wantErr(10)
	h.snapshot(raftdata.SnapshotMeta{Index: 5, Term: 1}, []byte("5"))
	wantErr(6)
	wantErr(10)
	wantErr(11)
	h.compact(5)
	wantErr(6)
}

// checkCompactBelowFirst: Compact at or below FirstIndex-1 is a no-op.
func checkCompactBelowFirst(h *harness) {
	const c = "Compact: upTo below FirstIndex must be a no-op"
	noop := func(upTo uint64) {
		h.t.Helper()
		if err := h.s.Compact(h.ctx, upTo); err != nil {
			h.fatalf(c, "Compact(%d) with FirstIndex %d: %v", upTo, h.m.first, err)
		}
		h.verify(c)
	}
	noop(0) // a new store
	tenEntries(h)
	noop(0)
	h.snapshot(raftdata.SnapshotMeta{Index: 7, Term: 2}, []byte("7"))
	noop(0)
	h.compact(5)
	noop(3)
	noop(5)
	noop(0)
	h.snapshot(raftdata.SnapshotMeta{Index: 20, Term: 3}, []byte("20")) // discards the log
	noop(20)
	noop(15)
	h.reopenAndCheck(c + " (after Reopen)")
}
