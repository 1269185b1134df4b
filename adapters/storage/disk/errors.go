package disk

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raft"
)

// Errors returned by the disk store in addition to the raft package's
// storage errors (ErrCompacted, ErrUnavailable, ErrNoSnapshot, ErrCorrupt,
// ErrClosed, ErrInvalidArgument, ErrStaleSnapshot, ErrSnapshotFinished). Every error the
// store returns wraps one of these, one of raft's, or the underlying
// operating-system error, so callers can test them with errors.Is.
var (
	// ErrLocked is returned by Open when another Storage, in this process or
	// another one, holds the directory.
	ErrLocked = errors.New("disk: directory locked by another store")

	// ErrFailed is returned by every write after a write or fsync failed.
	// After such a failure the state of the files is unknown (an fsync
	// error may have dropped dirty pages), so the store refuses further
	// writes; reopening it recovers what is durable.
	// It wraps raft.ErrPermanent: a node stops rather than retry.
	ErrFailed = fmt.Errorf("disk: storage failed by an earlier write error: %w", raft.ErrPermanent)
)

// errLockHeld is lockFile's answer when another store holds the lock.
var errLockHeld = errors.New("disk: lock held")

// corruptf returns an error wrapping raft.ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("disk: %w: %s", raft.ErrCorrupt, fmt.Sprintf(format, args...))
}
