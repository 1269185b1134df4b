package storagetest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// Run runs every contract check of raft.Storage and raft.SnapshotWriter as a
// subtest of t, each on a fresh store from f. See the package documentation
// for how the suite uses a store.
func Run(t *testing.T, f Factory) {
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			c.run(newHarness(t, f))
		})
	}
}

// check is one contract check, run as the subtest name.
type check struct {
	name string
	run  func(h *harness)
}

// checks lists every contract check in the order Run runs them.
var checks = []check{
	{"InitialState/NewStore", checkNewStore},
	{"HardState/RoundTrip", checkHardStateRoundTrip},
	{"HardState/NilLeavesUnchanged", checkHardStateNil},
	{"Entries/Ranges", checkEntriesRanges},
	{"Entries/MaxBytes", checkEntriesMaxBytes},
	{"Entries/Empty", checkEntriesEmpty},
	{"Entries/Compacted", checkEntriesCompacted},
	{"Entries/Unavailable", checkEntriesUnavailable},
	{"Entries/ResultNotModified", checkEntriesResultNotModified},
	{"Save/ReplacesConflictingSuffix", checkSaveReplacesSuffix},
	{"Save/Extends", checkSaveExtends},
	{"Save/DoesNotRetainSlice", checkSaveDoesNotRetain},
	{"Term/Boundaries", checkTermBoundaries},
	{"Snapshot/RoundTrip", checkSnapshotRoundTrip},
	{"Snapshot/Abort", checkSnapshotAbort},
	{"Snapshot/CommitKeepsMatchingLog", checkCommitKeepsLog},
	{"Snapshot/CommitDiscardsLog/TermMismatch", checkCommitDiscards(raftdata.SnapshotMeta{Index: 7, Term: 3}, true)},
	{"Snapshot/CommitDiscardsLog/LastIndexTermMismatch", checkCommitDiscards(raftdata.SnapshotMeta{Index: 10, Term: 3}, true)},
	{"Snapshot/CommitDiscardsLog/BeyondLastIndex", checkCommitDiscards(raftdata.SnapshotMeta{Index: 20, Term: 3}, true)},
	{"Snapshot/CommitDiscardsLog/EmptyStore", checkCommitDiscards(raftdata.SnapshotMeta{Index: 5, Term: 2}, false)},
	{"Snapshot/ReaderOutlivesNewerSnapshot", checkReaderOutlivesNewer},
	{"Compact/DropsPrefix", checkCompactDropsPrefix},
	{"Compact/BeyondSnapshotIndex", checkCompactBeyondSnapshot},
	{"Compact/BelowFirstIndex", checkCompactBelowFirst},
	{"Reopen/NewStore", checkReopenNewStore},
	{"Reopen/Everything", checkReopenEverything},
	{"Reopen/DiscardedLog", checkReopenDiscardedLog},
	{"Membership/ConfigEntries", checkConfigEntries},
	{"Concurrency/OneWriterManyReaders", checkConcurrency},
}

// mkEntries returns normal entries with indexes in [lo, hi) and the given
// term, each with a payload naming its index and term.
func mkEntries(lo, hi, term uint64) []raftdata.Entry {
	var out []raftdata.Entry
	for i := lo; i < hi; i++ {
		out = append(out, raftdata.Entry{Index: i, Term: term, Data: fmt.Appendf(nil, "entry %d of term %d", i, term)})
	}
	return out
}

// join concatenates batches.
func join(batches ...[]raftdata.Entry) []raftdata.Entry {
	var out []raftdata.Entry
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}

// payload returns n pseudo-random bytes determined by seed.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, (n+7)&^7)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// fullMembership is a joint configuration with non-voters and removed nodes,
// so that every field of a Membership is exercised.
func fullMembership() raftdata.Membership {
	return raftdata.Membership{
		Voters:         []raftdata.Member{{ID: 1, Addr: "10.0.0.1:7000"}, {ID: 2, Addr: "node-2.example:7000"}, {ID: 4, Addr: "[::1]:7004"}},
		OutgoingVoters: []raftdata.Member{{ID: 1, Addr: "10.0.0.1:7000"}, {ID: 2, Addr: "node-2.example:7000"}, {ID: 3, Addr: "nœud-3:7003"}},
		NonVoters:      []raftdata.Member{{ID: 5, Addr: ""}, {ID: 1 << 40, Addr: "learner"}},
		Removed:        []raftdata.Member{{ID: 6, Addr: "six"}, {ID: 9}, {ID: 1 << 50, Addr: "big"}},
	}
}
