package storagetest

import (
	"math"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// checkNewStore: a new store holds nothing.
func checkNewStore(h *harness) {
	const c = "InitialState: a new store must be empty"
	h.checkState(c, h.initial) // zero hard state, no snapshot, bounds [1, 0]
	const cs = "OpenSnapshot: a store without a snapshot must fail with ErrNoSnapshot"
	h.checkSnapshot(cs)
	h.wantTerm(cTerm0, 0, 0)
	h.wantTermErr(cTermAfter, 1, raft.ErrUnavailable)
	h.wantEntries("Entries: lo == hi must return no entries", 1, 1, nil)
	h.wantEntriesErr("Entries: hi > LastIndex+1 must fail with ErrUnavailable", 1, 2, raft.ErrUnavailable)
	h.verify(c)
}

// checkHardStateRoundTrip: term, vote and commit are saved together, with
// and without entries.
func checkHardStateRoundTrip(h *harness) {
	const c = "Save: the hard state (term, vote and commit) must round-trip"
	h.save(&raftdata.HardState{Term: 3, Vote: 2}, nil)
	h.reopenAndCheck(c + " when saved without entries")

	h.save(&raftdata.HardState{Term: 5, Vote: 1, Commit: 2}, mkEntries(1, 4, 5))
	h.reopenAndCheck(c + " when saved with entries")

	// Every field changes, including back to zero.
	h.save(&raftdata.HardState{Term: 6, Vote: 0, Commit: 3}, nil)
	h.reopenAndCheck(c + " when a field returns to zero")
	h.save(&raftdata.HardState{Term: 1 << 62, Vote: 1 << 61, Commit: 3}, nil)
	h.reopenAndCheck(c + " with large values")
}

// checkHardStateNil: Save with a nil hard state leaves it unchanged.
func checkHardStateNil(h *harness) {
	const c = "Save: entries with a nil hard state must leave the hard state unchanged"
	h.save(&raftdata.HardState{Term: 4, Vote: 3, Commit: 1}, mkEntries(1, 3, 4))
	h.save(nil, mkEntries(3, 6, 4))
	h.reopenAndCheck(c)
	h.save(nil, mkEntries(5, 7, 5)) // replacing a suffix
	h.reopenAndCheck(c + " (after a suffix replacement)")
}

// variedEntries returns entries 1..12 of every type, with empty, small,
// large and binary payloads and changing terms.
func variedEntries() []raftdata.Entry {
	big := payload(1, 64<<10)
	return []raftdata.Entry{
		{Index: 1, Term: 1, Type: raftdata.EntryNoop},
		{Index: 2, Term: 1, Type: raftdata.EntryConfig, Data: raftdata.EncodeMembership(fullMembership())},
		{Index: 3, Term: 1, Type: raftdata.EntryNormal, Data: []byte("x")},
		{Index: 4, Term: 1, Type: raftdata.EntryNormal, Data: []byte{}},
		{Index: 5, Term: 2, Type: raftdata.EntryNoop},
		{Index: 6, Term: 2, Type: raftdata.EntryNormal, Data: []byte{0, 0, 0, 0xff, 0, '\n', 0}},
		{Index: 7, Term: 2, Type: raftdata.EntryNormal, Data: big},
		{Index: 8, Term: 4, Type: raftdata.EntryNoop},
		{Index: 9, Term: 4, Type: raftdata.EntryNormal, Data: payload(2, 1000)},
		{Index: 10, Term: 4, Type: raftdata.EntryNormal, Data: []byte("ten")},
		{Index: 11, Term: 1 << 40, Type: raftdata.EntryNoop},
		{Index: 12, Term: 1 << 40, Type: raftdata.EntryNormal, Data: payload(3, 17)},
	}
}

// checkEntriesRanges: every range [lo, hi) reads back exactly, including
// data bytes, types and terms.
func checkEntriesRanges(h *harness) {
	const c = "Entries: must return the entries saved in [lo, hi), with their terms, types and data"
	es := variedEntries()
	h.save(nil, es[:5])
	h.save(nil, es[5:])
	for lo := uint64(1); lo <= 13; lo++ {
		for hi := lo; hi <= 13; hi++ {
			h.wantEntries(c, lo, hi, es[lo-1:hi-1])
		}
	}
	h.verify(c)
}

// checkEntriesMaxBytes: maxBytes limits the total Entry.Size and always lets
// one entry through.
func checkEntriesMaxBytes(h *harness) {
	const c = "Entries: maxBytes must stop before the total Entry.Size exceeds it, returning at least one entry"
	var es []raftdata.Entry
	for i, n := range []int{10, 0, 100, 50, 1000, 5, 5, 5, 300, 20} {
		es = append(es, raftdata.Entry{Index: uint64(i + 1), Term: 1, Data: payload(uint64(i), n)})
	}
	h.save(nil, es)
	size := func(es []raftdata.Entry) int {
		n := 0
		for i := range es {
			n += es[i].Size()
		}
		return n
	}
	for _, lo := range []uint64{1, 2, 3, 5, 9, 10} {
		for _, hi := range []uint64{lo + 1, lo + 2, 11} {
			if hi > 11 {
				continue
			}
			rng := es[lo-1 : hi-1]
			limits := []int{0, -1, 1, math.MaxInt, size(rng), size(rng) - 1, size(rng) + 1}
			for k := 1; k <= len(rng); k++ {
				s := size(rng[:k])
				limits = append(limits, s-1, s, s+1)
			}
			for _, max := range limits {
				want := rng
				if max > 0 {
					want = rng[:1]
					for k := 2; k <= len(rng) && size(rng[:k]) <= max; k++ {
						want = rng[:k]
					}
				}
				got := h.entries(c, lo, hi, max)
				if d := diffEntries(got, want); d != "" {
					h.fatalf(c, "Entries(%d, %d, %d): %s", lo, hi, max, d)
				}
			}
		}
	}
}

// checkEntriesEmpty: lo == hi returns no entries and no error anywhere in
// [FirstIndex, LastIndex+1].
func checkEntriesEmpty(h *harness) {
	const c = "Entries: lo == hi must return no entries"
	h.wantEntries(c+" on a new store", 1, 1, nil)
	h.save(nil, mkEntries(1, 6, 1))
	for i := uint64(1); i <= 6; i++ {
		h.wantEntries(c, i, i, nil)
		for _, max := range []int{1, 100} {
			if es := h.entries(c, i, i, max); len(es) != 0 {
				h.fatalf(c, "Entries(%d, %d, %d) returned %d entries", i, i, max, len(es))
			}
		}
	}
	h.snapshot(raftdata.SnapshotMeta{Index: 3, Term: 1}, []byte("3"))
	h.compact(3)
	for i := uint64(4); i <= 6; i++ {
		h.wantEntries(c+" after compaction", i, i, nil)
	}
}

// checkEntriesCompacted: reads before FirstIndex fail with ErrCompacted.
func checkEntriesCompacted(h *harness) {
	const c = "Entries: lo < FirstIndex must fail with ErrCompacted"
	const ct = cTermCompacted
	h.save(nil, mkEntries(1, 11, 1))
	h.snapshot(raftdata.SnapshotMeta{Index: 6, Term: 1}, []byte("6"))
	h.compact(6)
	for _, lo := range []uint64{1, 5, 6} {
		for _, hi := range []uint64{lo + 1, 7, 8, 11} {
			h.wantEntriesErr(c, lo, hi, raft.ErrCompacted)
		}
		if lo != 6 {
			h.wantTermErr(ct, lo, raft.ErrCompacted)
		}
	}
	h.wantTermErr(ct, 0, raft.ErrCompacted)
	h.verify(c)
}

// checkEntriesUnavailable: reads after LastIndex fail with ErrUnavailable.
func checkEntriesUnavailable(h *harness) {
	const c = "Entries: hi > LastIndex+1 must fail with ErrUnavailable"
	const ct = cTermAfter
	probe := func(last uint64) {
		h.t.Helper()
		for _, r := range [][2]uint64{{last + 1, last + 2}, {last + 1, last + 5}, {last + 3, last + 4}, {last + 1, 1 << 40}} {
			h.wantEntriesErr(c, r[0], r[1], raft.ErrUnavailable)
		}
		h.wantTermErr(ct, last+1, raft.ErrUnavailable)
		h.wantTermErr(ct, last+100, raft.ErrUnavailable)
		h.wantTermErr(ct, 1<<40, raft.ErrUnavailable)
	}
	probe(0)
	h.save(nil, mkEntries(1, 6, 1))
	probe(5)
	for _, lo := range []uint64{1, 3, 5} {
		h.wantEntriesErr(c, lo, 7, raft.ErrUnavailable)
	}
	h.snapshot(raftdata.SnapshotMeta{Index: 20, Term: 2}, []byte("20")) // discards the log
	probe(20)
}

// checkEntriesResultNotModified: a slice Entries returned is not changed by
// later reads, Saves over its range, appends or compaction.
func checkEntriesResultNotModified(h *harness) {
	const c = "Entries: the returned slice must not be modified by the store afterwards"
	h.save(nil, mkEntries(1, 11, 1))
	var kept, want [][]raftdata.Entry
	read := func(lo, hi uint64) {
		h.t.Helper()
		es := h.entries(c, lo, hi, 0)
		if d := diffEntries(es, h.m.ents[lo-h.m.first:hi-h.m.first]); d != "" {
			h.fatalf(c, "Entries(%d, %d, 0): %s", lo, hi, d)
		}
		kept, want = append(kept, es), append(want, cloneEntries(es))
	}
	unchanged := func(after string) {
		h.t.Helper()
		for i := range kept {
			if d := diffEntries(kept[i], want[i]); d != "" {
				h.fatalf(c, "a result read earlier changed after %s: %s", after, d)
			}
		}
	}
	read(1, 11)
	read(3, 6)
	unchanged("another Entries call")
	read(1, 5) // room to grow: an append must not reach it
	unchanged("another Entries call")

	h.save(nil, mkEntries(5, 20, 2)) // overwrite [5, 11) and extend
	unchanged("a Save over its range")
	h.verify(c)
	unchanged("more reads")
	h.save(nil, mkEntries(20, 30, 2))
	unchanged("an append")
	h.snapshot(raftdata.SnapshotMeta{Index: 12, Term: 2}, []byte("12"))
	h.compact(12)
	unchanged("a snapshot and Compact")
	h.verify(c)
	unchanged("more reads")
}

// checkSaveReplacesSuffix: a batch starting inside the log replaces
// everything from its first index, even when it is shorter.
func checkSaveReplacesSuffix(h *harness) {
	const c = "Save: a conflicting suffix must be replaced"
	hs := raftdata.HardState{Term: 1, Vote: 1, Commit: 3}
	h.save(&hs, mkEntries(1, 11, 1))
	h.save(nil, mkEntries(6, 8, 2)) // shorter: 8..10 must go
	h.verify(c + ", even by a shorter batch")
	h.save(nil, mkEntries(8, 9, 2)) // a new 8, not the old one
	h.verify(c + ", and appending after a shorter batch must not bring old entries back")
	h.save(nil, mkEntries(3, 15, 3)) // longer than what it replaces
	h.verify(c + " by a longer batch")
	h.save(nil, mkEntries(14, 15, 4)) // only the last entry
	h.verify(c + " at LastIndex")
	h.save(nil, mkEntries(1, 3, 5)) // the whole log
	h.verify(c + " from FirstIndex")
	h.snapshot(raftdata.SnapshotMeta{Index: 1, Term: 5}, []byte("1"))
	h.compact(1)
	h.save(nil, mkEntries(2, 4, 6)) // at the new FirstIndex
	h.verify(c + " from FirstIndex after compaction")
	h.reopenAndCheck(c + ", and replaced entries must stay gone after Reopen")
}

// checkSaveExtends: a batch at LastIndex+1 extends the log.
func checkSaveExtends(h *harness) {
	const c = "Save: a batch at LastIndex+1 must extend the log"
	next := uint64(1)
	for i, n := range []uint64{1, 4, 1, 64, 300, 2} {
		h.save(&raftdata.HardState{Term: uint64(i + 1), Commit: next - 1}, mkEntries(next, next+n, uint64(i+1)))
		next += n
		h.verify(c)
	}
}

// checkSaveDoesNotRetain: the caller may reuse the entries slice as soon as
// Save returns.
func checkSaveDoesNotRetain(h *harness) {
	const c = "Save: must not retain the entries slice"
	batch := make([]raftdata.Entry, 0, 16)
	for round, lo := range []uint64{1, 9, 5} {
		batch = append(batch[:0], mkEntries(lo, lo+8, uint64(round+1))...)
		h.save(nil, batch)
		for i := range batch { // reuse the slice, as the runtime does
			batch[i] = raftdata.Entry{Index: 1000 + uint64(i), Term: 99, Type: raftdata.EntryConfig, Data: []byte("overwritten by the caller")}
		}
		h.verify(c)
	}
}

// checkTermBoundaries: Term answers at both ends of the log and at the
// snapshot index, and fails just outside them.
func checkTermBoundaries(h *harness) {
	const c = "Term: must return the term of each stored entry"
	const c0, cs, cc, cu = cTerm0, cTermSnap, cTermCompacted, cTermAfter
	h.wantTerm(c0, 0, 0)
	h.wantTermErr(cu, 1, raft.ErrUnavailable)

	h.save(nil, join(mkEntries(1, 6, 1), mkEntries(6, 11, 2)))
	h.wantTerm(c0, 0, 0)
	for i, want := range map[uint64]uint64{1: 1, 5: 1, 6: 2, 10: 2} {
		h.wantTerm(c, i, want)
	}
	h.wantTermErr(cu, 11, raft.ErrUnavailable)
	h.wantTermErr(cu, 1000, raft.ErrUnavailable)

	h.snapshot(raftdata.SnapshotMeta{Index: 7, Term: 2}, []byte("7"))
	h.wantTerm(c+" (with a snapshot inside the log)", 7, 2)
	h.compact(7)
	h.wantTerm(cs, 7, 2)
	h.wantTerm(c+" (FirstIndex after compaction)", 8, 2)
	h.wantTerm(c+" (LastIndex after compaction)", 10, 2)
	for _, i := range []uint64{0, 1, 6} {
		h.wantTermErr(cc, i, raft.ErrCompacted)
	}
	h.wantTermErr(cu, 11, raft.ErrUnavailable)
	h.verify(c)

	// Compacting below a newer snapshot: the snapshot index is in the log.
	h.snapshot(raftdata.SnapshotMeta{Index: 9, Term: 2}, []byte("9"))
	h.compact(8)
	h.wantTerm(c, 9, 2)
	h.wantTermErr(cc, 8, raft.ErrCompacted)
	h.verify(c)

	// A snapshot that discards the log: only its index answers.
	h.snapshot(raftdata.SnapshotMeta{Index: 30, Term: 7}, []byte("30"))
	h.wantTerm(cs+" (after the log was discarded)", 30, 7)
	h.wantTermErr(cc, 29, raft.ErrCompacted)
	h.wantTermErr(cu, 31, raft.ErrUnavailable)
	h.verify(c)
}
