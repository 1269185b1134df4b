package storeutil

import (
	"context"
	"errors"
	"testing"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

func TestCheck(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := Check(ctx, false, "x", "save"); err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, true, "x", "save"); !errors.Is(err, raft.ErrClosed) || !errors.Is(err, raft.ErrPermanent) || err.Error() != "x: save: raft: storage closed: raft: permanent storage failure" {
		t.Fatalf("closed: %v", err)
	}
	cancel()
	if err := Check(ctx, false, "x", "save"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestWriterState(t *testing.T) {
	var w WriterState
	if err := w.Usable("x", "snapshot write", false); err != nil {
		t.Fatal(err)
	}
	if err := w.Usable("x", "snapshot write", true); !errors.Is(err, raft.ErrClosed) {
		t.Fatalf("closed store: %v", err)
	}
	boom := errors.New("boom")
	w.Fail(boom)
	w.Fail(errors.New("later"))
	if err := w.Usable("x", "snapshot write", false); !errors.Is(err, boom) {
		t.Fatalf("after a failed write: %v", err)
	}
	if w.Finish() || !w.Finished() || !w.Finish() {
		t.Fatal("Finish reports the wrong earlier state")
	}
	if err := w.Usable("x", "snapshot commit", false); !errors.Is(err, raft.ErrSnapshotFinished) {
		t.Fatalf("finished: %v", err)
	}
}

func TestValidateBatch(t *testing.T) {
	ok := []raftdata.Entry{{Index: 4, Term: 1}, {Index: 5, Term: 2}}
	if err := ValidateBatch(ok); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]raftdata.Entry{
		{{Index: 4, Term: 1}, {Index: 6, Term: 1}},
		{{Index: 4, Term: 2}, {Index: 5, Term: 1}},
	} {
		if err := ValidateBatch(bad); !errors.Is(err, raft.ErrInvalidArgument) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
