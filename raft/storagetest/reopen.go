package storagetest

import (
	"bytes"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// checkReopenNewStore: a store reopened before any write is still empty.
func checkReopenNewStore(h *harness) {
	const c = "Reopen: a new store must still be empty after Reopen"
	h.reopenAndCheck(c)
	h.reopenAndCheck(c + " (twice)")
}

// checkReopenEverything: hard state, entries (after a suffix replacement),
// snapshot with its metadata and bytes, and compaction bounds survive
// Reopen, and the reopened store keeps working.
func checkReopenEverything(h *harness) {
	const c = "Reopen: the hard state, log, snapshot and compaction bounds must survive"
	h.save(&raftdata.HardState{Term: 4, Vote: 3, Commit: 12}, join(variedEntries()[:10], mkEntries(11, 31, 4)))
	h.save(&raftdata.HardState{Term: 5, Vote: 1, Commit: 15}, mkEntries(20, 25, 5)) // LastIndex 24
	meta := raftdata.SnapshotMeta{Index: 15, Term: 4, Membership: fullMembership()}
	h.snapshot(meta, payload(15, 2<<20+3))
	h.compact(12)
	h.save(nil, mkEntries(25, 28, 5))
	h.reopenAndCheck(c)

	const ck = "Reopen: the store must keep working after Reopen"
	h.save(&raftdata.HardState{Term: 6, Vote: 2, Commit: 20}, mkEntries(27, 31, 6))
	h.verify(ck)
	h.snapshot(raftdata.SnapshotMeta{Index: 22, Term: 5}, []byte("twenty-two"))
	h.compact(18)
	h.verify(ck)
	h.reopenAndCheck(c + " a second Reopen")
}

// checkReopenDiscardedLog: the bounds a snapshot left by discarding the log
// survive Reopen.
func checkReopenDiscardedLog(h *harness) {
	const c = "Reopen: the bounds left by a snapshot that discarded the log must survive"
	h.save(&raftdata.HardState{Term: 2, Vote: 2, Commit: 3}, mkEntries(1, 6, 2))
	h.snapshot(raftdata.SnapshotMeta{Index: 50, Term: 4, Membership: fullMembership()}, payload(50, 4096))
	h.reopenAndCheck(c)
	h.save(nil, mkEntries(51, 53, 5))
	h.reopenAndCheck(c + " (and the entries saved after it)")
}

// checkConfigEntries: membership lives in EntryConfig entries and snapshot
// metadata; both come back byte for byte, before and after Reopen.
func checkConfigEntries(h *harness) {
	const c = "Save: EntryConfig entries must round-trip byte for byte, so that the membership persists"
	ms := []raftdata.Membership{
		{Voters: []raftdata.Member{{ID: 1, Addr: "a:1"}}},
		{Voters: []raftdata.Member{{ID: 1, Addr: "a:1"}, {ID: 2, Addr: "b:2"}, {ID: 3, Addr: "c:3"}}},
		{ // joint
			Voters:         []raftdata.Member{{ID: 1, Addr: "a:1"}, {ID: 2, Addr: "b:2"}, {ID: 4, Addr: "d:4"}},
			OutgoingVoters: []raftdata.Member{{ID: 1, Addr: "a:1"}, {ID: 2, Addr: "b:2"}, {ID: 3, Addr: "c:3"}},
			NonVoters:      []raftdata.Member{{ID: 5, Addr: "e:5"}},
		},
		{
			Voters:    []raftdata.Member{{ID: 1, Addr: "a:1"}, {ID: 2, Addr: "b:2"}, {ID: 4, Addr: "d:4"}},
			NonVoters: []raftdata.Member{{ID: 5, Addr: string(bytes.Repeat([]byte("long-address."), 300))}},
			Removed:   []raftdata.Member{{ID: 3, Addr: "three"}},
		},
		fullMembership(),
	}
	var es []raftdata.Entry
	for i, m := range ms {
		es = append(es,
			raftdata.Entry{Index: uint64(2*i + 1), Term: uint64(i + 1), Type: raftdata.EntryConfig, Data: raftdata.EncodeMembership(m)},
			raftdata.Entry{Index: uint64(2*i + 2), Term: uint64(i + 1), Type: raftdata.EntryNormal, Data: []byte("cmd")})
	}
	h.save(&raftdata.HardState{Term: 5, Vote: 1, Commit: 6}, es)
	check := func(contract string) {
		h.t.Helper()
		got := h.entries(contract, 1, uint64(len(es))+1, 0)
		if d := diffEntries(got, es); d != "" {
			h.fatalf(contract, "%s", d)
		}
		for i, m := range ms {
			e := got[2*i]
			back, err := raftdata.DecodeMembership(e.Data)
			if err != nil || !back.Equal(&m) {
				h.fatalf(contract, "entry %d decodes to %+v, %v; want %+v", e.Index, back, err, m)
			}
		}
	}
	check(c)
	h.reopenAndCheck(c + " (after Reopen)")
	check(c + " (after Reopen)")

	const cs = "OpenSnapshot: the snapshot's membership must persist"
	meta := raftdata.SnapshotMeta{Index: 7, Term: 4, Membership: ms[3]}
	h.snapshot(meta, []byte("state at 7"))
	h.compact(7)
	h.wantSnapshot(cs, meta, []byte("state at 7"))
	h.reopenAndCheck(cs + " (after Reopen)")
}
