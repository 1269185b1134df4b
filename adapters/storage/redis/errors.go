package redis

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raft"
)

// Errors returned by the Redis store in addition to the raft package's
// storage errors (ErrCompacted, ErrUnavailable, ErrNoSnapshot, ErrCorrupt,
// ErrClosed, ErrInvalidArgument, ErrStaleSnapshot, ErrSnapshotFinished). Every error the
// store returns wraps one of these, one of raft's, or the error go-redis
// returned (a lost connection, a server error), so callers can test them
// with errors.Is.
var (
	// ErrUnsafeDurability is returned by Open when the server can lose a
	// write it acknowledged: appendonly is not yes, appendfsync is not
	// always, or maxmemory-policy may evict keys; or when the settings
	// cannot be read (CONFIG disabled). Set Config.AllowUnsafeDurability
	// to open anyway.
	ErrUnsafeDurability = errors.New("redis: the server's settings can lose acknowledged writes")

	// ErrFenced is returned by every change after another Storage opened the
	// same group and node under the same prefix: the newer store owns the
	// keys, and this one may no longer write to them.
	//
	// It wraps raft.ErrPermanent: a node stops rather than retry.
	ErrFenced = fmt.Errorf("redis: another store opened this node's log: %w", raft.ErrPermanent)

	// ErrSnapshotGone is returned by a snapshot reader whose snapshot was
	// replaced by a newer one longer than Config.OldSnapshotTTL ago, so
	// that its chunks expired while it was being read.
	ErrSnapshotGone = errors.New("redis: replaced snapshot expired while being read")

	// ErrLayoutVersion is returned by Open when the node's keys were written
	// by a newer version of this package than the running one.
	ErrLayoutVersion = errors.New("redis: key layout version is newer than this package")
)

func corruptf(format string, args ...any) error {
	return fmt.Errorf("redis: %w: %s", raft.ErrCorrupt, fmt.Sprintf(format, args...))
}
