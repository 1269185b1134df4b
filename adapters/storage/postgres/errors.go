package postgres

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raft"
)

// Errors returned by the PostgreSQL store in addition to the raft package's
// storage errors (ErrCompacted, ErrUnavailable, ErrNoSnapshot, ErrCorrupt,
// ErrClosed, ErrInvalidArgument, ErrStaleSnapshot, ErrSnapshotFinished). Every error the
// store returns wraps one of these, one of raft's, or the error pgx returned
// (a lost connection, a server error), so callers can test them with
// errors.Is.
var (
	// ErrUnsafeDurability is returned by Open when a server setting lets
	// PostgreSQL acknowledge a commit that a crash can still undo: fsync,
	// full_page_writes or synchronous_commit is off. Set
	// Config.AllowUnsafeDurability to open anyway.
	ErrUnsafeDurability = errors.New("postgres: the server's settings can lose acknowledged writes")

	// ErrFenced is returned by every change after another Storage opened the
	// same group and node in the same schema: the newer store owns the log,
	// and this one may no longer write to it. It means two processes were
	// configured as the same node; reopen only after finding out why.
	//
	// It wraps raft.ErrPermanent: a node stops rather than retry.
	ErrFenced = fmt.Errorf("postgres: another store opened this node's log: %w", raft.ErrPermanent)

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
