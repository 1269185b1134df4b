package postgres

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raft"
)

// Errors returned by the PostgreSQL store in addition to the raft package's
// ErrCompacted, ErrUnavailable, ErrNoSnapshot and ErrCorrupt. Every error the
// store returns wraps one of these, one of raft's, or the error pgx returned
// (a lost connection, a server error), so callers can test them with
// errors.Is.
var (
	// ErrUnsafeDurability is returned by Open when a server setting lets
	// PostgreSQL acknowledge a commit that a crash can still undo: fsync,
	// full_page_writes or synchronous_commit is off. Set
	// Options.AllowUnsafeDurability to open anyway.
	ErrUnsafeDurability = errors.New("postgres: the server's settings can lose acknowledged writes")

	// ErrFenced is returned by every change after another Storage opened the
	// same group and node in the same schema: the newer store owns the log,
	// and this one may no longer write to it. It means two processes were
	// configured as the same node; reopen only after finding out why.
	ErrFenced = errors.New("postgres: another store opened this node's log")

	// ErrClosed is returned by every method of a Storage after Close, and by
	// a SnapshotWriter or snapshot reader whose store was closed.
	ErrClosed = errors.New("postgres: storage closed")

	// ErrInvalidArgument is returned for malformed requests: a Save batch
	// whose indexes are not contiguous and ascending or whose terms
	// decrease, a Save that would leave a gap, an Entries call with lo > hi,
	// a snapshot at index 0, or bad Options.
	ErrInvalidArgument = errors.New("postgres: invalid argument")

	// ErrStaleSnapshot is returned by SnapshotWriter.Commit when the snapshot
	// has a lower index than the latest committed one. The store is left
	// unchanged.
	ErrStaleSnapshot = errors.New("postgres: stale snapshot")

	// ErrSnapshotFinished is returned by Write and Commit on a
	// SnapshotWriter that was already committed or aborted.
	ErrSnapshotFinished = errors.New("postgres: snapshot writer already finished")

	// ErrSchemaVersion is returned by Open when the schema was migrated by
	// a newer version of this package than the running one.
	ErrSchemaVersion = errors.New("postgres: schema version is newer than this package")
)

// fenceCode is the SQLSTATE the fence function raises (class RK is not used
// by PostgreSQL).
const fenceCode = "RK001"

func corruptf(format string, args ...any) error {
	return fmt.Errorf("postgres: %w: %s", raft.ErrCorrupt, fmt.Sprintf(format, args...))
}
