package memory_test

import (
	"context"
	"fmt"
	"io"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Example shows the life of a store: saving entries and hard state,
// replacing a conflicting suffix, taking a snapshot, compacting, and a
// simulated restart.
func Example() {
	ctx := context.Background()
	s := memory.New()

	hs := raftdata.HardState{Term: 1, Vote: 1, Commit: 3}
	_ = s.Save(ctx, &hs, []raftdata.Entry{
		{Index: 1, Term: 1, Data: []byte("a")},
		{Index: 2, Term: 1, Data: []byte("b")},
		{Index: 3, Term: 1, Data: []byte("c")},
		{Index: 4, Term: 1, Data: []byte("d")},
	})
	// A new leader's entry replaces the uncommitted suffix from index 4.
	_ = s.Save(ctx, nil, []raftdata.Entry{{Index: 4, Term: 2, Data: []byte("D")}})

	// Snapshot the state machine at index 3, then drop the log up to it.
	w, _ := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: 3, Term: 1})
	_, _ = w.Write([]byte("a,b,c"))
	_ = w.Commit(ctx)
	_ = s.Compact(ctx, 3)

	_, err := s.Entries(ctx, 1, 4, 0)
	fmt.Println("compacted:", err)
	ents, _ := s.Entries(ctx, 4, 5, 0)
	fmt.Printf("entry 4: term %d %q\n", ents[0].Term, ents[0].Data)
	term, _ := s.Term(ctx, 3)
	fmt.Println("term of snapshot index 3:", term)

	// Simulate a restart: close the handle and reopen the same data.
	_ = s.Close()
	s = s.Reopen()
	st, _ := s.InitialState(ctx)
	fmt.Printf("restart: first %d, last %d, commit %d\n", st.FirstIndex, st.LastIndex, st.HardState.Commit)
	meta, rc, _ := s.OpenSnapshot(ctx)
	b, _ := io.ReadAll(rc)
	_ = rc.Close()
	fmt.Printf("snapshot %d: %s\n", meta.Index, b)

	// Output:
	// compacted: memory: entries [1, 4): raft: index compacted (first index is 4)
	// entry 4: term 2 "D"
	// term of snapshot index 3: 1
	// restart: first 4, last 4, commit 3
	// snapshot 3: a,b,c
}
