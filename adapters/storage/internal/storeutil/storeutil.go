// Package storeutil holds the checks that every storage adapter of raftkit
// applies the same way: the guard at the top of each method, the state of a
// snapshot writer, and the validation of a Save batch.
package storeutil

import (
	"context"
	"fmt"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Check is the guard a Storage method starts with: an error wrapping
// raft.ErrClosed once the store is closed, or ctx's error once ctx ended.
// pkg and op name the adapter and the operation in the message ("disk",
// "save").
func Check(ctx context.Context, closed bool, pkg, op string) error {
	if closed {
		return fmt.Errorf("%s: %s: %w", pkg, op, raft.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s: %w", pkg, op, err)
	}
	return nil
}

// WriterState is the life of a snapshot writer: usable until it is
// committed or aborted (finished), or until a write failed. The owner
// guards it with its own mutex.
type WriterState struct {
	done bool
	err  error
}

// Usable returns the error Write or Commit must fail with, or nil: one
// wrapping raft.ErrSnapshotFinished after Commit or Abort, raft.ErrClosed
// once the store is closed, or the error of an earlier failed write.
func (w *WriterState) Usable(pkg, op string, closed bool) error {
	switch {
	case w.done:
		return fmt.Errorf("%s: %s: %w", pkg, op, raft.ErrSnapshotFinished)
	case closed:
		return fmt.Errorf("%s: %s: %w", pkg, op, raft.ErrClosed)
	case w.err != nil:
		return fmt.Errorf("%s: %s: an earlier write failed: %w", pkg, op, w.err)
	}
	return nil
}

// Finish marks the writer committed or aborted. It reports whether it was
// already finished.
func (w *WriterState) Finish() (already bool) {
	already = w.done
	w.done = true
	return already
}

// Finished reports whether the writer was committed or aborted.
func (w *WriterState) Finished() bool { return w.done }

// Fail records a failed write: the writer refuses every later Write and
// Commit with it.
func (w *WriterState) Fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// ValidateBatch checks that entries are contiguous, ascending and never
// go back in term, as raft.Storage.Save requires. Errors wrap
// raft.ErrInvalidArgument.
func ValidateBatch(entries []raftdata.Entry) error {
	for i := 1; i < len(entries); i++ {
		prev, e := &entries[i-1], &entries[i]
		if e.Index != prev.Index+1 {
			return fmt.Errorf("%w: save: entry index %d follows index %d", raft.ErrInvalidArgument, e.Index, prev.Index)
		}
		if e.Term < prev.Term {
			return fmt.Errorf("%w: save: entry %d has term %d, below term %d of entry %d",
				raft.ErrInvalidArgument, e.Index, e.Term, prev.Term, prev.Index)
		}
	}
	return nil
}
