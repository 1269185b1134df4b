package memory_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

var ctx = context.Background()

// ents returns entries lo..hi inclusive with the given term and a payload
// naming the index and term.
func ents(lo, hi, term uint64) []raftdata.Entry {
	var out []raftdata.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, raftdata.Entry{Index: i, Term: term, Data: fmt.Appendf(nil, "%d@%d", i, term)})
	}
	return out
}

func mustSave(t *testing.T, s *memory.Storage, hs *raftdata.HardState, es []raftdata.Entry) {
	t.Helper()
	if err := s.Save(ctx, hs, es); err != nil {
		t.Fatalf("Save(%v, %d entries): %v", hs, len(es), err)
	}
}

func mustCommitSnapshot(t *testing.T, s *memory.Storage, meta raftdata.SnapshotMeta, data string) {
	t.Helper()
	w, err := s.CreateSnapshot(ctx, meta)
	if err != nil {
		t.Fatalf("CreateSnapshot(%d): %v", meta.Index, err)
	}
	if _, err := w.Write([]byte(data)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("Commit snapshot %d: %v", meta.Index, err)
	}
}

func state(t *testing.T, s *memory.Storage) raft.State {
	t.Helper()
	st, err := s.InitialState(ctx)
	if err != nil {
		t.Fatalf("InitialState: %v", err)
	}
	return st
}

func checkBounds(t *testing.T, s *memory.Storage, first, last uint64) {
	t.Helper()
	st := state(t, s)
	if st.FirstIndex != first || st.LastIndex != last {
		t.Fatalf("bounds = [%d, %d], want [%d, %d]", st.FirstIndex, st.LastIndex, first, last)
	}
}

func checkTerm(t *testing.T, s *memory.Storage, index, want uint64) {
	t.Helper()
	got, err := s.Term(ctx, index)
	if err != nil || got != want {
		t.Fatalf("Term(%d) = %d, %v; want %d, nil", index, got, err, want)
	}
}

func checkTermErr(t *testing.T, s *memory.Storage, index uint64, want error) {
	t.Helper()
	if _, err := s.Term(ctx, index); !errors.Is(err, want) {
		t.Fatalf("Term(%d) error = %v, want %v", index, err, want)
	}
}

func TestNewIsEmpty(t *testing.T) {
	s := memory.New()
	st := state(t, s)
	if !reflect.DeepEqual(st, raft.State{FirstIndex: 1, LastIndex: 0}) {
		t.Fatalf("InitialState = %+v, want empty with FirstIndex 1, LastIndex 0", st)
	}
	checkTerm(t, s, 0, 0)
	checkTermErr(t, s, 1, raft.ErrUnavailable)
	if es, err := s.Entries(ctx, 1, 1, 0); err != nil || len(es) != 0 {
		t.Fatalf("Entries(1, 1) = %v, %v; want empty", es, err)
	}
	if _, err := s.Entries(ctx, 1, 2, 0); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Entries(1, 2) error = %v, want ErrUnavailable", err)
	}
	if _, _, err := s.OpenSnapshot(ctx); !errors.Is(err, raft.ErrNoSnapshot) {
		t.Fatalf("OpenSnapshot error = %v, want ErrNoSnapshot", err)
	}
	if err := s.Compact(ctx, 0); err != nil {
		t.Fatalf("Compact(0) = %v, want no-op", err)
	}
	if es := s.AllEntries(); es != nil {
		t.Fatalf("AllEntries = %v, want nil", es)
	}
	if hs := s.HardState(); !hs.IsZero() {
		t.Fatalf("HardState = %+v, want zero", hs)
	}
}

func TestSaveAppendsAndStoresHardState(t *testing.T) {
	s := memory.New()
	hs := raftdata.HardState{Term: 2, Vote: 3, Commit: 1}
	mustSave(t, s, &hs, ents(1, 3, 1))
	mustSave(t, s, nil, ents(4, 5, 2)) // nil hard state leaves it alone
	if got := s.HardState(); got != hs {
		t.Fatalf("HardState = %+v, want %+v", got, hs)
	}
	checkBounds(t, s, 1, 5)
	want := append(ents(1, 3, 1), ents(4, 5, 2)...)
	if got := s.AllEntries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("AllEntries = %v, want %v", got, want)
	}
	hs2 := raftdata.HardState{Term: 3, Commit: 5}
	mustSave(t, s, &hs2, nil) // hard state only
	if st := state(t, s); st.HardState != hs2 || st.LastIndex != 5 {
		t.Fatalf("InitialState = %+v, want hard state %+v and LastIndex 5", st, hs2)
	}
}

func TestSaveReplacesSuffix(t *testing.T) {
	s := memory.New()
	mustSave(t, s, nil, ents(1, 10, 1))
	mustSave(t, s, nil, ents(5, 6, 2)) // shorter than what it replaces
	checkBounds(t, s, 1, 6)
	checkTerm(t, s, 4, 1)
	checkTerm(t, s, 5, 2)
	checkTerm(t, s, 6, 2)
	checkTermErr(t, s, 7, raft.ErrUnavailable)
	if _, err := s.Entries(ctx, 5, 8, 0); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Entries past new end: error = %v, want ErrUnavailable", err)
	}
	want := append(ents(1, 4, 1), ents(5, 6, 2)...)
	if got := s.AllEntries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("AllEntries = %v, want %v", got, want)
	}

	mustSave(t, s, nil, ents(7, 8, 2)) // plain append at LastIndex+1
	mustSave(t, s, nil, ents(1, 2, 3)) // replace from the very first index
	checkBounds(t, s, 1, 2)
	if got, want := s.AllEntries(), ents(1, 2, 3); !reflect.DeepEqual(got, want) {
		t.Fatalf("AllEntries = %v, want %v", got, want)
	}
}

func TestSaveDoesNotRetainEntriesSlice(t *testing.T) {
	s := memory.New()
	batch := ents(1, 3, 1)
	mustSave(t, s, nil, batch)
	batch[0].Term, batch[1].Index, batch[2].Data = 9, 9, nil
	if got, want := s.AllEntries(), ents(1, 3, 1); !reflect.DeepEqual(got, want) {
		t.Fatalf("store changed with the caller's slice: %v, want %v", got, want)
	}
}

func TestSaveErrorsChangeNothing(t *testing.T) {
	bad := raftdata.HardState{Term: 99, Vote: 9, Commit: 9}
	tests := []struct {
		name  string
		batch []raftdata.Entry
		want  []error
	}{
		{"gap", ents(12, 13, 2), []error{memory.ErrGap, raft.ErrUnavailable}},
		{"below first index", ents(5, 6, 2), []error{memory.ErrOutOfRange, raft.ErrCompacted}},
		{"index zero", ents(0, 1, 2), []error{memory.ErrOutOfRange, raft.ErrCompacted}},
		{"not contiguous", []raftdata.Entry{{Index: 8, Term: 2}, {Index: 10, Term: 2}}, []error{raft.ErrInvalidArgument}},
		{"descending", []raftdata.Entry{{Index: 9, Term: 2}, {Index: 8, Term: 2}}, []error{raft.ErrInvalidArgument}},
		{"duplicate index", []raftdata.Entry{{Index: 9, Term: 2}, {Index: 9, Term: 2}}, []error{raft.ErrInvalidArgument}},
		{"decreasing term", []raftdata.Entry{{Index: 9, Term: 3}, {Index: 10, Term: 2}}, []error{raft.ErrInvalidArgument}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memory.New()
			hs := raftdata.HardState{Term: 1, Vote: 1, Commit: 6}
			mustSave(t, s, &hs, ents(1, 10, 1))
			mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 6, Term: 1}, "snap")
			if err := s.Compact(ctx, 6); err != nil {
				t.Fatal(err)
			}
			before := s.AllEntries()

			err := s.Save(ctx, &bad, tt.batch)
			for _, target := range tt.want {
				if !errors.Is(err, target) {
					t.Errorf("Save error = %v, want it to wrap %v", err, target)
				}
			}
			if got := s.HardState(); got != hs {
				t.Errorf("hard state changed by a failed Save: %+v", got)
			}
			if got := s.AllEntries(); !reflect.DeepEqual(got, before) {
				t.Errorf("log changed by a failed Save: %v", got)
			}
			checkBounds(t, s, 7, 10)
		})
	}
}

func TestEntriesReturnsPrivateCopy(t *testing.T) {
	s := memory.New()
	mustSave(t, s, nil, ents(1, 5, 1))
	got, err := s.Entries(ctx, 2, 6, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := ents(2, 5, 1); !reflect.DeepEqual(got, want) {
		t.Fatalf("Entries(2, 6) = %v, want %v", got, want)
	}
	// Later writes must not show through the returned slice...
	mustSave(t, s, nil, ents(3, 4, 2))
	mustSave(t, s, nil, ents(5, 7, 3))
	if want := ents(2, 5, 1); !reflect.DeepEqual(got, want) {
		t.Fatalf("returned slice modified by a later Save: %v", got)
	}
	// ...and changes to the returned slice must not reach the store.
	got[0].Term = 42
	got[1] = raftdata.Entry{Index: 77}
	checkTerm(t, s, 2, 1)
	checkTerm(t, s, 3, 2)
}

func TestEntriesErrors(t *testing.T) {
	s := memory.New()
	mustSave(t, s, nil, ents(1, 10, 1))
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 4, Term: 1}, "")
	if err := s.Compact(ctx, 4); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lo, hi uint64
		want   error
		msg    []string
	}{
		{4, 6, raft.ErrCompacted, []string{"4", "6", "first index is 5"}},
		{0, 0, raft.ErrCompacted, nil},
		{5, 12, raft.ErrUnavailable, []string{"5", "12", "last index is 10"}},
		{11, 12, raft.ErrUnavailable, nil},
		{7, 6, raft.ErrInvalidArgument, nil},
	}
	for _, tt := range tests {
		es, err := s.Entries(ctx, tt.lo, tt.hi, 0)
		if !errors.Is(err, tt.want) || es != nil {
			t.Errorf("Entries(%d, %d) = %v, %v; want error wrapping %v", tt.lo, tt.hi, es, err, tt.want)
			continue
		}
		for _, m := range tt.msg {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("Entries(%d, %d) error %q does not mention %q", tt.lo, tt.hi, err, m)
			}
		}
	}
	for _, lohi := range [][2]uint64{{5, 5}, {11, 11}, {8, 8}} {
		if es, err := s.Entries(ctx, lohi[0], lohi[1], 0); err != nil || len(es) != 0 {
			t.Errorf("Entries(%d, %d) = %v, %v; want empty", lohi[0], lohi[1], es, err)
		}
	}
	if es, err := s.Entries(ctx, 5, 11, 0); err != nil || !reflect.DeepEqual(es, ents(5, 10, 1)) {
		t.Errorf("Entries(5, 11) = %v, %v; want the whole log", es, err)
	}
}

func TestEntriesMaxBytes(t *testing.T) {
	s := memory.New()
	var batch []raftdata.Entry
	for i := uint64(1); i <= 5; i++ {
		batch = append(batch, raftdata.Entry{Index: i, Term: 1, Data: make([]byte, 100)})
	}
	mustSave(t, s, nil, batch)
	size := batch[0].Size()
	tests := []struct {
		maxBytes, want int
	}{
		{0, 5}, {-1, 5}, {1, 1}, {size - 1, 1}, {size, 1}, {2*size - 1, 1},
		{2 * size, 2}, {3*size + 1, 3}, {5 * size, 5}, {1 << 30, 5},
	}
	for _, tt := range tests {
		es, err := s.Entries(ctx, 1, 6, tt.maxBytes)
		if err != nil || len(es) != tt.want {
			t.Errorf("Entries(1, 6, %d) = %d entries, %v; want %d", tt.maxBytes, len(es), err, tt.want)
			continue
		}
		for i, e := range es {
			if e.Index != uint64(i+1) {
				t.Errorf("Entries(1, 6, %d)[%d].Index = %d", tt.maxBytes, i, e.Index)
			}
		}
	}
	if es, err := s.Entries(ctx, 3, 5, size); err != nil || len(es) != 1 || es[0].Index != 3 {
		t.Errorf("Entries(3, 5, %d) = %v, %v; want entry 3 alone", size, es, err)
	}
}

func TestTermBoundaries(t *testing.T) {
	s := memory.New()
	mustSave(t, s, nil, append(ents(1, 3, 1), ents(4, 8, 2)...))
	checkTerm(t, s, 0, 0) // nothing compacted yet
	checkTerm(t, s, 1, 1)
	checkTerm(t, s, 4, 2)
	checkTerm(t, s, 8, 2)
	checkTermErr(t, s, 9, raft.ErrUnavailable)

	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 5, Term: 2}, "")
	checkTerm(t, s, 0, 0) // a snapshot alone compacts nothing
	if err := s.Compact(ctx, 3); err != nil {
		t.Fatal(err)
	}
	checkTermErr(t, s, 0, raft.ErrCompacted)
	checkTermErr(t, s, 3, raft.ErrCompacted)
	checkTerm(t, s, 4, 2) // the new first index
	checkTerm(t, s, 5, 2) // the snapshot index, still in the log

	if err := s.Compact(ctx, 5); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 6, 8)
	checkTermErr(t, s, 4, raft.ErrCompacted)
	checkTerm(t, s, 5, 2) // compacted, answered from the snapshot
	checkTerm(t, s, 6, 2)
	checkTerm(t, s, 8, 2)
	checkTermErr(t, s, 9, raft.ErrUnavailable)
	if _, err := s.Term(ctx, 4); err == nil || !strings.Contains(err.Error(), "first index is 6") {
		t.Errorf("Term(4) error %v does not name the first index", err)
	}
}

func TestCompact(t *testing.T) {
	s := memory.New()
	mustSave(t, s, nil, ents(1, 10, 1))
	if err := s.Compact(ctx, 1); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Compact without a snapshot: error = %v, want ErrUnavailable", err)
	}
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 7, Term: 1}, "")
	if err := s.Compact(ctx, 8); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Compact past the snapshot: error = %v, want ErrUnavailable", err)
	}
	checkBounds(t, s, 1, 10)

	if err := s.Compact(ctx, 4); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 5, 10)
	for _, upTo := range []uint64{0, 2, 4} { // at or below FirstIndex-1: no-op
		if err := s.Compact(ctx, upTo); err != nil {
			t.Fatalf("Compact(%d) = %v, want no-op", upTo, err)
		}
	}
	checkBounds(t, s, 5, 10)
	if got, want := s.AllEntries(), ents(5, 10, 1); !reflect.DeepEqual(got, want) {
		t.Fatalf("AllEntries = %v, want %v", got, want)
	}

	mustSave(t, s, nil, ents(11, 12, 2)) // appends still work after compaction
	if err := s.Compact(ctx, 7); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 8, 12)
	if got, want := s.AllEntries(), append(ents(8, 10, 1), ents(11, 12, 2)...); !reflect.DeepEqual(got, want) {
		t.Fatalf("AllEntries = %v, want %v", got, want)
	}

	// Compacting the whole log leaves it empty at the snapshot.
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{Index: 12, Term: 2}, "")
	if err := s.Compact(ctx, 12); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 13, 12)
	checkTerm(t, s, 12, 2)
	if es := s.AllEntries(); es != nil {
		t.Fatalf("AllEntries = %v, want nil", es)
	}
	mustSave(t, s, nil, ents(13, 13, 3))
	checkBounds(t, s, 13, 13)
}

func TestContextCanceled(t *testing.T) {
	s := memory.New()
	c, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Save(c, &raftdata.HardState{Term: 1}, ents(1, 1, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Save with a canceled context: %v", err)
	}
	if _, err := s.Entries(c, 1, 1, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Entries with a canceled context: %v", err)
	}
	checkBounds(t, s, 1, 0)
	if !s.HardState().IsZero() {
		t.Fatal("Save with a canceled context changed the hard state")
	}
}

func TestClosed(t *testing.T) {
	s := memory.New()
	hs := raftdata.HardState{Term: 1, Commit: 2}
	mustSave(t, s, &hs, ents(1, 3, 1))
	pending, err := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: 2, Term: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // Close is idempotent
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	calls := map[string]error{}
	_, calls["InitialState"] = s.InitialState(ctx)
	calls["Save"] = s.Save(ctx, nil, ents(4, 4, 1))
	_, calls["Entries"] = s.Entries(ctx, 1, 2, 0)
	_, calls["Term"] = s.Term(ctx, 1)
	calls["Compact"] = s.Compact(ctx, 0)
	_, calls["CreateSnapshot"] = s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: 1, Term: 1})
	_, _, calls["OpenSnapshot"] = s.OpenSnapshot(ctx)
	calls["pending Commit"] = pending.Commit(ctx)
	for name, err := range calls {
		if !errors.Is(err, raft.ErrClosed) {
			t.Errorf("%s after Close: error = %v, want raft.ErrClosed", name, err)
		}
	}
	// The inspection helpers still work, and nothing was written.
	if got := s.HardState(); got != hs {
		t.Errorf("HardState after Close = %+v, want %+v", got, hs)
	}
	if got := s.AllEntries(); len(got) != 3 {
		t.Errorf("AllEntries after Close = %v, want 3 entries", got)
	}
}

func TestReopenPreservesData(t *testing.T) {
	s := memory.New()
	hs := raftdata.HardState{Term: 2, Vote: 1, Commit: 5}
	mustSave(t, s, &hs, append(ents(1, 4, 1), ents(5, 8, 2)...))
	mustCommitSnapshot(t, s, raftdata.SnapshotMeta{
		Index: 5, Term: 2,
		Membership: raftdata.Membership{Voters: []raftdata.Member{{ID: 1, Addr: "a"}}},
	}, "state@5")
	if err := s.Compact(ctx, 3); err != nil {
		t.Fatal(err)
	}
	lost, err := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: 8, Term: 2})
	if err != nil {
		t.Fatal(err)
	}
	before := state(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	r := s.Reopen()
	if got := state(t, r); !reflect.DeepEqual(got, before) {
		t.Fatalf("InitialState after Reopen = %+v, want %+v", got, before)
	}
	if got, want := r.AllEntries(), append(ents(4, 4, 1), ents(5, 8, 2)...); !reflect.DeepEqual(got, want) {
		t.Fatalf("AllEntries after Reopen = %v, want %v", got, want)
	}
	checkSnapshot(t, r, 5, "state@5")
	// A snapshot in progress at the "crash" is lost.
	if err := lost.Commit(ctx); !errors.Is(err, raft.ErrClosed) {
		t.Fatalf("Commit of a snapshot begun before the restart: %v, want raft.ErrClosed", err)
	}
	checkSnapshot(t, r, 5, "state@5")

	// The new handle writes to the shared data; the old one stays closed.
	mustSave(t, r, nil, ents(9, 9, 3))
	if _, err := s.Term(ctx, 9); !errors.Is(err, raft.ErrClosed) {
		t.Fatalf("old handle after Reopen: %v, want raft.ErrClosed", err)
	}
	if r2 := r.Reopen(); state(t, r2).LastIndex != 9 {
		t.Fatalf("second Reopen does not see entry 9")
	}
}
