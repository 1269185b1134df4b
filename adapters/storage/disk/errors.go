package disk

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raft"
)

// Errors returned by the disk store in addition to the raft package's
// ErrCompacted, ErrUnavailable, ErrNoSnapshot and ErrCorrupt. Every error the
// store returns wraps one of these, one of raft's, or the underlying
// operating-system error, so callers can test them with errors.Is.
var (
	// ErrLocked is returned by Open when another Storage, in this process or
	// another one, holds the directory.
	ErrLocked = errors.New("disk: directory locked by another store")

	// ErrClosed is returned by every method of a Storage after Close, and by
	// Write and Commit on a SnapshotWriter whose store was closed.
	ErrClosed = errors.New("disk: storage closed")

	// ErrStaleSnapshot is returned by SnapshotWriter.Commit when the snapshot
	// has a lower index than the latest committed one. The store is left
	// unchanged.
	ErrStaleSnapshot = errors.New("disk: stale snapshot")

	// ErrInvalidArgument is returned for malformed requests: a Save batch
	// whose indexes are not contiguous and ascending or whose terms
	// decrease, an Entries call with lo > hi, or a snapshot at index 0.
	ErrInvalidArgument = errors.New("disk: invalid argument")

	// ErrSnapshotFinished is returned by Write and Commit on a
	// SnapshotWriter that was already committed or aborted.
	ErrSnapshotFinished = errors.New("disk: snapshot writer already finished")

	// ErrFailed is returned by every write after a write or fsync failed.
	// After such a failure the state of the files is unknown (an fsync
	// error may have dropped dirty pages), so the store refuses further
	// writes; reopening it recovers what is durable.
	ErrFailed = errors.New("disk: storage failed by an earlier write error")
)

// corruptf returns an error wrapping raft.ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("disk: %w: %s", raft.ErrCorrupt, fmt.Sprintf(format, args...))
}
