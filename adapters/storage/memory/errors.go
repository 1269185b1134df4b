package memory

import "errors"

// Errors returned by the memory store in addition to the raft package's
// ErrCompacted, ErrUnavailable and ErrNoSnapshot. Every error the store
// returns wraps one of these or one of raft's, so callers can test them with
// errors.Is.
var (
	// ErrClosed is returned by every method of a Storage handle after its
	// Close, and by Commit on a SnapshotWriter whose handle was closed.
	ErrClosed = errors.New("memory: storage closed")

	// ErrStaleSnapshot is returned by SnapshotWriter.Commit when the snapshot
	// covers fewer entries (has a lower index) than the latest committed one.
	// The store is left unchanged.
	ErrStaleSnapshot = errors.New("memory: stale snapshot")

	// ErrGap is returned by Save when the first entry's index is beyond
	// LastIndex+1, which would leave a hole in the log. The error also wraps
	// raft.ErrUnavailable. The store is left unchanged.
	ErrGap = errors.New("memory: entries would leave a gap in the log")

	// ErrOutOfRange is returned by Save when the first entry's index is below
	// FirstIndex, i.e. inside the compacted prefix of the log. The error also
	// wraps raft.ErrCompacted. The store is left unchanged.
	ErrOutOfRange = errors.New("memory: entries start before the first index")

	// ErrInvalidArgument is returned for malformed requests: a Save batch
	// whose indexes are not contiguous and ascending or whose terms decrease,
	// an Entries call with lo > hi, or a snapshot at index 0.
	ErrInvalidArgument = errors.New("memory: invalid argument")

	// ErrSnapshotFinished is returned by Write and Commit on a
	// SnapshotWriter that was already committed or aborted.
	ErrSnapshotFinished = errors.New("memory: snapshot writer already finished")
)
