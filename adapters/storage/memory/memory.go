// Package memory is an in-memory implementation of raft.Storage.
//
// It is meant for tests, examples and demos: everything lives in the
// process's memory and is lost when the process exits. Within a process it
// keeps every promise of the raft.Storage contract, and Reopen lets a test
// model a node restart that finds its "durable" data intact.
//
// The log is kept in one slice offset by the first index, so Save appends in
// amortized constant time per entry and Entries, Term and InitialState are
// constant time plus the size of their result. A sync.RWMutex lets any number
// of reads run concurrently with each other and with the one writer the
// contract allows.
package memory

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/raftkit/raftkit/adapters/storage/internal/storeutil"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Storage is an in-memory raft.Storage. Create one with New; the zero value
// is not usable. All methods are safe for concurrent use.
//
// A Storage value is a handle onto data that outlives it: Close closes the
// handle but keeps the data, and Reopen returns a fresh handle onto the same
// data, as reopening a durable store after a restart would.
type Storage struct {
	d      *data
	closed atomic.Bool
}

// data is the state shared by every handle of one store.
type data struct {
	mu sync.RWMutex

	hs       raftdata.HardState
	snap     raftdata.SnapshotMeta // Index 0 when there is no snapshot
	snapData []byte                // never modified once installed

	// first is the index of ents[0] (or where it would be when ents is
	// empty); the log holds indexes first .. first+len(ents)-1. Invariant:
	// first-1 <= snap.Index, so Term can always answer for first-1 when
	// anything was compacted.
	first uint64
	ents  chunkLog
}

// Compile-time check that *Storage implements raft.Storage.
var _ raft.Storage = (*Storage)(nil)

// New returns an empty store: no hard state, no snapshot, FirstIndex 1 and
// LastIndex 0.
func New() *Storage {
	return &Storage{d: &data{first: 1}}
}

// Reopen returns a new, open handle onto the same data as s, modelling a
// node that restarts and finds its durable state as it left it: the hard
// state, log and latest committed snapshot. Snapshots that were being written
// through s and not yet committed are lost, as they would be in a crash: their
// Commit fails with raft.ErrClosed once s is closed.
//
// Reopen is normally called after Close, but it does not close s. It may be
// called on a closed handle.
func (s *Storage) Reopen() *Storage {
	return &Storage{d: s.d}
}

// Close closes this handle; the data stays behind for Reopen. Every later
// call on the handle returns an error wrapping raft.ErrClosed, except Close itself,
// which is idempotent and always returns nil, and the inspection helpers
// HardState and AllEntries.
func (s *Storage) Close() error {
	s.closed.Store(true)
	return nil
}

// check returns the error that an operation op must fail with before doing
// anything, if any: raft.ErrClosed or the context's error.
func (s *Storage) check(ctx context.Context, op string) error {
	return storeutil.Check(ctx, s.closed.Load(), "memory", op)
}

// lastIndex returns the index of the last entry, or first-1 for an empty
// log. The caller holds d.mu.
func (d *data) lastIndex() uint64 {
	return d.first + uint64(d.ents.len()) - 1
}

// InitialState returns the hard state, the latest snapshot's metadata and the
// bounds of the log. For an empty log LastIndex is FirstIndex-1, so a new
// store reports FirstIndex 1 and LastIndex 0.
func (s *Storage) InitialState(ctx context.Context) (raft.State, error) {
	if err := s.check(ctx, "initial state"); err != nil {
		return raft.State{}, err
	}
	d := s.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	return raft.State{
		HardState:  d.hs,
		Snapshot:   cloneMeta(d.snap),
		FirstIndex: d.first,
		LastIndex:  d.lastIndex(),
	}, nil
}

// Save writes entries and, when hs is non-nil, the hard state, atomically:
// everything is validated first, and on error nothing changes.
//
// entries must have contiguous, ascending indexes and non-decreasing terms
// (else raft.ErrInvalidArgument). The first index must lie in
// [FirstIndex, LastIndex+1]: below it Save fails with ErrOutOfRange (which
// also wraps raft.ErrCompacted), above it with ErrGap (which also wraps
// raft.ErrUnavailable). Stored entries from the first index onward are
// replaced, even where the batch is shorter than what it replaces.
//
// The Entry structs are copied into the store; the Data byte slices are
// retained, so callers must not modify them after Save.
func (s *Storage) Save(ctx context.Context, hs *raftdata.HardState, entries []raftdata.Entry) error {
	if err := s.check(ctx, "save"); err != nil {
		return err
	}
	if err := storeutil.ValidateBatch(entries); err != nil {
		return err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(entries) > 0 {
		lo, last := entries[0].Index, d.lastIndex()
		switch {
		case lo < d.first:
			return fmt.Errorf("%w: %w: save at index %d, first index is %d",
				ErrOutOfRange, raft.ErrCompacted, lo, d.first)
		case lo > last+1:
			return fmt.Errorf("%w: %w: save at index %d, last index is %d",
				ErrGap, raft.ErrUnavailable, lo, last)
		}
		d.put(int(lo-d.first), entries)
	}
	if hs != nil {
		d.hs = *hs
	}
	return nil
}

// SaveInline reports true: Save only copies into memory under a lock that
// no method holds across I/O, so the node may call it on its main loop
// (raft.InlineSaver).
func (s *Storage) SaveInline() bool { return true }

// put stores entries at position at of the log, dropping everything after
// them. The caller holds d.mu for writing and has checked at <= d.ents.len().
func (d *data) put(at int, entries []raftdata.Entry) {
	d.ents.truncate(at)
	d.ents.append(entries)
}

// Entries returns a newly allocated copy of the entries with indexes in
// [lo, hi). When maxBytes > 0 it stops before the total Entry.Size would
// exceed maxBytes, but returns at least one entry when lo < hi. It returns an
// empty result when lo == hi.
//
// It fails with an error wrapping raft.ErrCompacted when lo < FirstIndex, one
// wrapping raft.ErrUnavailable when hi > LastIndex+1, and one wrapping
// raft.ErrInvalidArgument when lo > hi.
func (s *Storage) Entries(ctx context.Context, lo, hi uint64, maxBytes int) ([]raftdata.Entry, error) {
	if err := s.check(ctx, "entries"); err != nil {
		return nil, err
	}
	if lo > hi {
		return nil, fmt.Errorf("%w: entries [%d, %d): lo > hi", raft.ErrInvalidArgument, lo, hi)
	}
	d := s.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	if lo < d.first {
		return nil, fmt.Errorf("memory: entries [%d, %d): %w (first index is %d)",
			lo, hi, raft.ErrCompacted, d.first)
	}
	if last := d.lastIndex(); hi > last+1 {
		return nil, fmt.Errorf("memory: entries [%d, %d): %w (last index is %d)",
			lo, hi, raft.ErrUnavailable, last)
	}
	a, b := int(lo-d.first), int(hi-d.first)
	if maxBytes > 0 {
		size := 0
		for i := a; i < b; i++ {
			size += d.ents.at(i).Size()
			if size > maxBytes && i > a {
				b = i
				break
			}
		}
	}
	if a == b {
		return nil, nil
	}
	return d.ents.copyOut(make([]raftdata.Entry, 0, b-a), a, b), nil
}

// Term returns the term of the entry at index. It answers for the latest
// snapshot's index with the snapshot's term even when that entry has been
// compacted away, and for index 0 with 0 while nothing has been compacted
// (FirstIndex is 1). Otherwise it fails with an error wrapping
// raft.ErrCompacted for indexes below FirstIndex and one wrapping
// raft.ErrUnavailable for indexes above LastIndex.
func (s *Storage) Term(ctx context.Context, index uint64) (uint64, error) {
	if err := s.check(ctx, "term"); err != nil {
		return 0, err
	}
	d := s.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	last := d.lastIndex()
	switch {
	case index >= d.first && index <= last:
		return d.ents.at(int(index - d.first)).Term, nil
	case index == d.snap.Index:
		return d.snap.Term, nil
	case index == 0 && d.first == 1:
		return 0, nil
	case index < d.first:
		return 0, fmt.Errorf("memory: term of %d: %w (first index is %d)",
			index, raft.ErrCompacted, d.first)
	default:
		return 0, fmt.Errorf("memory: term of %d: %w (last index is %d)",
			index, raft.ErrUnavailable, last)
	}
}

// Compact discards the entries with index ≤ upTo and releases their memory.
// upTo must not exceed the latest snapshot's index, or Compact fails with an
// error wrapping raft.ErrUnavailable; upTo < FirstIndex is a no-op.
func (s *Storage) Compact(ctx context.Context, upTo uint64) error {
	if err := s.check(ctx, "compact"); err != nil {
		return err
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if upTo > d.snap.Index {
		return fmt.Errorf("memory: compact up to %d: %w (latest snapshot index is %d)",
			upTo, raft.ErrUnavailable, d.snap.Index)
	}
	if upTo < d.first {
		return nil
	}
	d.ents.dropFront(int(upTo + 1 - d.first))
	d.first = upTo + 1
	return nil
}

// HardState returns the last hard state saved. It is an inspection helper
// for tests and works on closed handles too.
func (s *Storage) HardState() raftdata.HardState {
	d := s.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.hs
}

// AllEntries returns a copy of every entry in the log, from FirstIndex to
// LastIndex; it returns nil for an empty log. It is an inspection helper for
// tests and works on closed handles too. The Data slices are shared with the
// store and must not be modified.
func (s *Storage) AllEntries() []raftdata.Entry {
	d := s.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.ents.len() == 0 {
		return nil
	}
	return d.ents.copyOut(make([]raftdata.Entry, 0, d.ents.len()), 0, d.ents.len())
}

// cloneMeta returns a copy of m that shares no memory with it.
func cloneMeta(m raftdata.SnapshotMeta) raftdata.SnapshotMeta {
	m.Membership = m.Membership.Clone()
	return m
}
