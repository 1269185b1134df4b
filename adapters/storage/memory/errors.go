package memory

import "errors"

// Errors returned by the memory store in addition to the raft package's
// storage errors (ErrCompacted, ErrUnavailable, ErrNoSnapshot, ErrCorrupt,
// ErrClosed, ErrInvalidArgument, ErrStaleSnapshot, ErrSnapshotFinished). Every error the store
// returns wraps one of these or one of raft's, so callers can test them with
// errors.Is.
var (
	// ErrGap is returned by Save when the first entry's index is beyond
	// LastIndex+1, which would leave a hole in the log. The error also wraps
	// raft.ErrUnavailable. The store is left unchanged.
	ErrGap = errors.New("memory: entries would leave a gap in the log")

	// ErrOutOfRange is returned by Save when the first entry's index is below
	// FirstIndex, i.e. inside the compacted prefix of the log. The error also
	// wraps raft.ErrCompacted. The store is left unchanged.
	ErrOutOfRange = errors.New("memory: entries start before the first index")
)
