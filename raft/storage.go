package raft

import (
	"context"
	"io"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// State is what a Storage holds when a node starts.
type State struct {
	// HardState is the last hard state saved, zero for a new store.
	HardState raftdata.HardState
	// Snapshot describes the latest snapshot; Index is 0 when there is none.
	Snapshot raftdata.SnapshotMeta
	// FirstIndex is the index of the first entry in the log: 1 for a new
	// store, upTo+1 after Compact(upTo). Compaction keeps trailing entries
	// behind the snapshot (Config.SnapshotTrailingEntries), so it may be at
	// or below Snapshot.Index; after a Commit that discarded the log it is
	// Snapshot.Index+1.
	FirstIndex uint64
	// LastIndex is the index of the last entry in the log, or Snapshot.Index
	// (0 for a new store) when the log holds no entries.
	LastIndex uint64
}

// Storage persists one node's Raft log, hard state and latest snapshot.
//
// The runtime calls Storage from more than one goroutine. Save, Compact and
// SnapshotWriter.Commit are never called concurrently with one another (one
// goroutine orders every change to the log). Writing a snapshot's bytes
// (CreateSnapshot, SnapshotWriter.Write, Abort) may run concurrently with
// them, and reads (Entries, Term, OpenSnapshot) may run concurrently with
// everything, including each other. Every method that returns a nil error promises the effect is
// durable: it survives a crash of the process and of the machine.
//
// Membership is not stored separately: it lives in EntryConfig entries and in
// snapshot metadata, so a Storage that keeps the log and the snapshot keeps it.
//
// Errors: the read methods return errors wrapping ErrCompacted for indexes
// before FirstIndex and ErrUnavailable for indexes after LastIndex. Use the
// storagetest package to check an implementation against every rule written
// here.
//
// Failures. A method that returns an error has not done its work (a write
// that may have happened anyway is retried whole, which Save's replace
// rule makes safe). The node's policy:
//
//   - Transient errors (a lost connection, a server restarting, a timeout)
//     are retried with backoff, 10 ms doubling to 1 s. Each Save attempt
//     gets a context with a deadline; a store should honour it.
//   - Permanent errors, those wrapping ErrPermanent (a disk that failed a
//     write and refuses further ones, a store fenced off by another owner,
//     a closed store) or ErrCorrupt, stop the node at once: Node.Err returns
//     the error, Done is closed, the error is logged at error level and
//     counted in Metrics.StorageErrors. A store must mark an error
//     permanent when retrying cannot succeed (after a failed fsync, the
//     data it was to sync may be gone: PostgreSQL's "fsyncgate").
//   - A write that keeps failing, or does not return, for
//     Config.StorageTimeout stops the node with ErrStorageStalled
//     (Metrics.StorageStall shows the time so far).
//   - A leader whose write has failed or stalled for an election timeout
//     hands leadership over: it tells the follower holding the most of its
//     log to campaign at once and steps down, so that the cluster keeps
//     committing without waiting for an election timeout; it stops
//     leading before stopping for any of the reasons above, too.
//
// Nothing acknowledged is lost by stopping: an entry is acknowledged only
// once a majority holds it durably. Restart a stopped node once its storage
// is repaired; it catches up from the leader.
type Storage interface {
	// InitialState returns what the store holds. It is called once, before
	// any other method.
	InitialState(ctx context.Context) (State, error)

	// Save durably writes entries and, when hs is non-nil, the hard state,
	// as one atomic unit: after a crash either all of it is there or none of
	// it is, and a hard state is never seen half written.
	//
	// Entries are contiguous and ascending. The first one's index is at most
	// LastIndex+1; if it is at or below LastIndex, every stored entry from
	// that index onward is replaced (the conflicting suffix is deleted even
	// where the new batch is shorter). Save never leaves a gap in the log.
	// entries may be empty when only the hard state changes. Save must not
	// retain the entries slice after returning; it may retain Data.
	Save(ctx context.Context, hs *raftdata.HardState, entries []raftdata.Entry) error

	// Entries returns the entries with indexes in [lo, hi), in order. When
	// maxBytes > 0 it stops before the total Entry.Size would exceed
	// maxBytes, but always returns at least one entry when lo < hi. It
	// returns an error wrapping ErrCompacted when lo < FirstIndex and one
	// wrapping ErrUnavailable when hi > LastIndex+1. The caller may keep the
	// returned slice; the store must not modify it afterwards.
	Entries(ctx context.Context, lo, hi uint64, maxBytes int) ([]raftdata.Entry, error)

	// Term returns the term of the entry at index. It answers for
	// Snapshot.Index too (with Snapshot.Term), even when that entry was
	// compacted away. Errors are as for Entries.
	Term(ctx context.Context, index uint64) (uint64, error)

	// Compact discards the entries with index ≤ upTo. upTo must not exceed
	// the latest snapshot's index (or an error wrapping ErrUnavailable is
	// returned); compacting at or below FirstIndex-1 is a no-op.
	Compact(ctx context.Context, upTo uint64) error

	// CreateSnapshot starts writing a snapshot described by meta. Bytes
	// written to the returned SnapshotWriter are the state machine's
	// serialized state. Nothing becomes visible until Commit returns.
	CreateSnapshot(ctx context.Context, meta raftdata.SnapshotMeta) (SnapshotWriter, error)

	// OpenSnapshot opens the latest committed snapshot for reading. It
	// returns an error wrapping ErrNoSnapshot when there is none. The reader
	// stays valid even if a newer snapshot is committed meanwhile.
	OpenSnapshot(ctx context.Context) (raftdata.SnapshotMeta, io.ReadCloser, error)

	// Close releases the store's resources. The store's data stays behind
	// for a later open. No method is called after Close, and none is in
	// progress, except when the node stopped because a call stalled
	// (ErrStorageStalled): that call may still be running, and Close should
	// make it return.
	Close() error
}

// InlineSaver is an optional interface for a Storage whose Save finishes
// without waiting on a disk, a server, or a lock held across either: in
// practice a store that keeps the log in memory, such as the memory
// adapter. When SaveInline reports true, the node calls Save on its main
// loop whenever no earlier write is queued or in progress, instead of
// handing the write to its storage goroutine and waiting to hear back. That
// saves two goroutine hand-offs per write, a few microseconds of every
// commit's latency. The calls keep every rule of Storage: one at a time, in
// order, never concurrently with Compact or a snapshot's Commit.
//
// A Storage whose Save can block must not report true: while Save runs the
// node neither ticks, sends, nor receives. A wrapper around another Storage
// (metrics, tracing) should forward the wrapped store's answer.
type InlineSaver interface {
	// SaveInline reports whether Save may run on the node's main loop. It
	// is asked once, when the node starts.
	SaveInline() bool
}

// SnapshotWriter receives a snapshot's bytes. It never needs to hold the
// whole snapshot in memory.
type SnapshotWriter interface {
	io.Writer

	// Commit durably stores the snapshot and makes it the latest one. If the
	// log holds the entry at meta.Index with term meta.Term, the log is kept
	// (compaction is a separate step); otherwise the whole log is discarded,
	// leaving FirstIndex = LastIndex+1 = meta.Index+1 (Raft paper §7). The
	// hard state is untouched. The node never commits a snapshot at or
	// below the latest one (it drops its own snapshot when a newer one from
	// the leader was installed while it was written); a store may still
	// refuse such a Commit with an error, as the shipped adapters do.
	Commit(ctx context.Context) error

	// Abort discards everything written. It is safe after Commit (a no-op),
	// and after a Commit that failed: the runtime calls it then to release
	// the bytes. It never removes a snapshot that did become the latest (a
	// Commit whose success was lost with its connection).
	Abort() error
}
