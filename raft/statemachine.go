package raft

import (
	"io"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// StateMachine is the user's replicated application.
//
// The runtime calls every method from one goroutine (the apply goroutine), so
// an implementation needs no locking against itself; it needs locking only
// against readers of its own (for example an HTTP handler answering gets).
type StateMachine interface {
	// Apply applies committed commands, in strictly increasing index order,
	// each exactly once during the life of the process (after a restart
	// commands after the restored snapshot are applied again to a freshly
	// restored machine). Only EntryNormal entries are passed. results has
	// the same length as entries; Apply sets results[i] to the outcome of
	// entries[i], which Node.Propose returns to the proposer. Per-command
	// failures (a failed compare-and-set) belong in results; a non-nil error
	// means the machine cannot go on, and the node stops with it.
	Apply(entries []raftdata.Entry, results []any) error

	// Snapshot captures a point-in-time view of the state. No Apply runs
	// while it does, so it must return as soon as the view is captured
	// (a copy-on-write reference, a database snapshot handle); the returned
	// Snapshot writes the bytes out while Apply goes on.
	Snapshot() (Snapshot, error)

	// Restore replaces the whole state with a snapshot's bytes, as written
	// by Snapshot.WriteTo.
	Restore(r io.Reader) error
}

// Snapshot is a point-in-time view of a StateMachine being written out.
type Snapshot interface {
	// WriteTo writes the captured state to w. It runs concurrently with
	// further Apply calls.
	WriteTo(w io.Writer) (int64, error)

	// Release frees the view. It is called exactly once, after WriteTo or
	// instead of it.
	Release()
}
