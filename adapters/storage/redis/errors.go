package redis

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raft"
)

// Errors returned by the Redis store in addition to the raft package's
// ErrCompacted, ErrUnavailable, ErrNoSnapshot and ErrCorrupt. Every error the
// store returns wraps one of these, one of raft's, or the error go-redis
// returned (a lost connection, a server error), so callers can test them
// with errors.Is.
var (
	// ErrUnsafeDurability is returned by Open when the server can lose a
	// write it acknowledged: appendonly is not yes, appendfsync is not
	// always, or maxmemory-policy may evict keys; or when the settings
	// cannot be read (CONFIG disabled). Set Options.AllowUnsafeDurability
	// to open anyway.
	ErrUnsafeDurability = errors.New("redis: the server's settings can lose acknowledged writes")

	// ErrFenced is returned by every change after another Storage opened the
	// same group and node under the same prefix: the newer store owns the
	// keys, and this one may no longer write to them.
	ErrFenced = errors.New("redis: another store opened this node's log")

	// ErrClosed is returned by every method of a Storage after Close, and by
	// a SnapshotWriter or snapshot reader whose store was closed.
	ErrClosed = errors.New("redis: storage closed")

	// ErrInvalidArgument is returned for malformed requests: a Save batch
	// whose indexes are not contiguous and ascending or whose terms
	// decrease, a Save that would leave a gap, an Entries call with lo > hi,
	// a snapshot at index 0, or bad Options.
	ErrInvalidArgument = errors.New("redis: invalid argument")

	// ErrStaleSnapshot is returned by SnapshotWriter.Commit when the snapshot
	// has a lower index than the latest committed one. The store is left
	// unchanged.
	ErrStaleSnapshot = errors.New("redis: stale snapshot")

	// ErrSnapshotFinished is returned by Write and Commit on a
	// SnapshotWriter that was already committed or aborted.
	ErrSnapshotFinished = errors.New("redis: snapshot writer already finished")

	// ErrSnapshotGone is returned by a snapshot reader whose snapshot was
	// replaced by a newer one longer than Options.OldSnapshotTTL ago, so
	// that its chunks expired while it was being read.
	ErrSnapshotGone = errors.New("redis: replaced snapshot expired while being read")

	// ErrLayoutVersion is returned by Open when the node's keys were written
	// by a newer version of this package than the running one.
	ErrLayoutVersion = errors.New("redis: key layout version is newer than this package")
)

func corruptf(format string, args ...any) error {
	return fmt.Errorf("redis: %w: %s", raft.ErrCorrupt, fmt.Sprintf(format, args...))
}
