package memory_test

import (
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// checkSnapshot opens the latest snapshot and checks its index and bytes.
func checkSnapshot(t *testing.T, s *memory.Storage, index uint64, data string) raftdata.SnapshotMeta {
	t.Helper()
	meta, rc, err := s.OpenSnapshot(ctx)
	if err != nil {
		t.Fatalf("OpenSnapshot: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading snapshot: %v", err)
	}
	if meta.Index != index || string(b) != data {
		t.Fatalf("snapshot = index %d %q, want index %d %q", meta.Index, b, index, data)
	}
	return meta
}

func TestSnapshotCommitKeepsMatchingLog(t *testing.T) {
	s := memory.New()
	hs := raftdata.HardState{Term: 2, Vote: 1, Commit: 8}
	mustSave(t, s, &hs, append(ents(1, 5, 1), ents(6, 10, 2)...))
	members := raftdata.Membership{
		Voters:    []raftdata.Member{{ID: 1, Addr: "a"}, {ID: 2, Addr: "b"}},
		NonVoters: []raftdata.Member{{ID: 3, Addr: "c"}},
	}
	meta := raftdata.SnapshotMeta{Index: 7, Term: 2, Membership: members.Clone()}
	w, err := s.CreateSnapshot(ctx, meta)
	if err != nil {
		t.Fatal(err)
	}
	meta.Membership.Voters[0].Addr = "changed by caller" // CreateSnapshot copied meta
	for _, part := range []string{"state", "@", "7"} {
		if _, err := w.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.OpenSnapshot(ctx); !errors.Is(err, raft.ErrNoSnapshot) {
		t.Fatalf("snapshot visible before Commit: %v", err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	checkBounds(t, s, 1, 10) // entry 7 has term 2: the log is kept
	got := checkSnapshot(t, s, 7, "state@7")
	want := raftdata.SnapshotMeta{Index: 7, Term: 2, Membership: members}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot meta = %+v, want %+v", got, want)
	}
	got.Membership.Voters[0].ID = 99 // the returned meta is a deep copy
	if again := checkSnapshot(t, s, 7, "state@7"); !reflect.DeepEqual(again, want) {
		t.Fatalf("snapshot meta changed through a returned copy: %+v", again)
	}
	if st := state(t, s); !reflect.DeepEqual(st.Snapshot, want) || st.HardState != hs {
		t.Fatalf("InitialState = %+v, want snapshot %+v and hard state %+v", st, want, hs)
	}
}

func TestSnapshotCommitDiscardsLog(t *testing.T) {
	tests := []struct {
		name string
		meta raftdata.SnapshotMeta
	}{
		{"term mismatch", raftdata.SnapshotMeta{Index: 7, Term: 3}},
		{"beyond the log", raftdata.SnapshotMeta{Index: 20, Term: 3}},
		{"at the last index, wrong term", raftdata.SnapshotMeta{Index: 10, Term: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memory.New()
			hs := raftdata.HardState{Term: 3, Commit: 4}
			mustSave(t, s, &hs, append(ents(1, 5, 1), ents(6, 10, 2)...))
			mustCommitSnapshot(t, s, tt.meta, "x")

			i := tt.meta.Index
			checkBounds(t, s, i+1, i)
			checkTerm(t, s, i, tt.meta.Term)
			checkTermErr(t, s, i-1, raft.ErrCompacted)
			checkTermErr(t, s, i+1, raft.ErrUnavailable)
			if got := s.HardState(); got != hs {
				t.Fatalf("hard state changed by snapshot: %+v", got)
			}
			if es := s.AllEntries(); es != nil {
				t.Fatalf("AllEntries = %v, want nil", es)
			}
			if err := s.Save(ctx, nil, ents(i, i, 3)); !errors.Is(err, memory.ErrOutOfRange) {
				t.Fatalf("Save at the snapshot index: %v, want ErrOutOfRange", err)
			}
			mustSave(t, s, nil, ents(i+1, i+2, 3))
			checkBounds(t, s, i+1, i+2)
		})
	}
}

func TestSnapshotStale(t *testing.T) {
	s := memory.New()
	mustSave(t, s, nil, ents(1, 10, 1))
	older, err := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: 5, Term: 1})
	if err != nil {
		t.Fatal(err)
	}
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 8, Term: 1}, "eight")
	if err := s.Compact(ctx, 6); err != nil {
		t.Fatal(err)
	}
	before := state(t, s)

	if _, err := older.Write([]byte("five")); err != nil {
		t.Fatal(err)
	}
	if err := older.Commit(ctx); !errors.Is(err, raft.ErrStaleSnapshot) {
		t.Fatalf("Commit of an older snapshot: %v, want raft.ErrStaleSnapshot", err)
	}
	if got := state(t, s); !reflect.DeepEqual(got, before) {
		t.Fatalf("stale Commit changed the store: %+v, want %+v", got, before)
	}
	checkSnapshot(t, s, 8, "eight")
	if err := older.Commit(ctx); !errors.Is(err, raft.ErrSnapshotFinished) {
		t.Fatalf("second Commit after a failed one: %v, want raft.ErrSnapshotFinished", err)
	}

	// A snapshot at the same index replaces the latest one.
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 8, Term: 1}, "eight again")
	checkSnapshot(t, s, 8, "eight again")
	checkBounds(t, s, 7, 10)
}

func TestSnapshotRecommitAfterCompactionKeepsLog(t *testing.T) {
	s := memory.New()
	mustSave(t, s, nil, ents(1, 10, 1))
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 5, Term: 1}, "a")
	if err := s.Compact(ctx, 5); err != nil {
		t.Fatal(err)
	}
	// Entry 5 is gone from the log, but the log still follows it.
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 5, Term: 1}, "b")
	checkBounds(t, s, 6, 10)
	checkSnapshot(t, s, 5, "b")
	// A different term at that index means the log does not follow it.
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 5, Term: 2}, "c")
	checkBounds(t, s, 6, 5)
	checkTerm(t, s, 5, 2)
}

func TestSnapshotWriterLifecycle(t *testing.T) {
	s := memory.New()
	mustSave(t, s, nil, ents(1, 3, 1))

	w, err := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: 2, Term: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("aborted")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort #%d: %v", i+1, err)
		}
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, raft.ErrSnapshotFinished) {
		t.Fatalf("Write after Abort: %v, want raft.ErrSnapshotFinished", err)
	}
	if err := w.Commit(ctx); !errors.Is(err, raft.ErrSnapshotFinished) {
		t.Fatalf("Commit after Abort: %v, want raft.ErrSnapshotFinished", err)
	}
	if _, _, err := s.OpenSnapshot(ctx); !errors.Is(err, raft.ErrNoSnapshot) {
		t.Fatalf("aborted snapshot is visible: %v", err)
	}

	w, err = s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: 2, Term: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil { // an empty snapshot is fine
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, raft.ErrSnapshotFinished) {
		t.Fatalf("Write after Commit: %v, want raft.ErrSnapshotFinished", err)
	}
	if err := w.Commit(ctx); !errors.Is(err, raft.ErrSnapshotFinished) {
		t.Fatalf("second Commit: %v, want raft.ErrSnapshotFinished", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v, want nil", err)
	}
	checkSnapshot(t, s, 2, "")

	if _, err := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{}); !errors.Is(err, raft.ErrInvalidArgument) {
		t.Fatalf("CreateSnapshot at index 0: %v, want raft.ErrInvalidArgument", err)
	}
}

func TestSnapshotReaderOutlivesNewerSnapshot(t *testing.T) {
	s := memory.New()
	mustSave(t, s, nil, ents(1, 10, 1))
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 3, Term: 1}, "old snapshot bytes")
	_, rc, err := s.OpenSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 9, Term: 1}, "new snapshot bytes")
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(head) + string(rest); got != "old snapshot bytes" {
		t.Fatalf("old reader returned %q", got)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, s, 9, "new snapshot bytes")
}
