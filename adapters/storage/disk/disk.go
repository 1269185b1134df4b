// Package disk is raftkit's embedded durable raft.Storage: a purpose-built
// segmented write-ahead log with one fsync per Save, plus snapshot files.
//
// A Storage owns a directory:
//
//	LOCK                                  locked (flock, LockFileEx) while the store is open
//	wal/<first index>-<sequence>.log      log segments (16 hex digits each)
//	snap/<index>-<term>.snap              the latest snapshot
//
// Every change to the log (Save, Compact, a snapshot's Commit) is one record
// written into zero-filled space preallocated at the end of the active
// segment and synced before the call returns. On Open the records are
// replayed to rebuild an in-memory index of the log, up to a zero header
// (the end of data) in each segment; a torn record at the very end of the
// log (a write cut short by a crash, followed only by zeros) is zeroed,
// while a bad record anywhere else fails Open with an error wrapping
// raft.ErrCorrupt. See README.md for the formats and rules.
package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/raftkit/raftkit/adapters/storage/internal/storeutil"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// DefaultSegmentBytes is the segment size used when Config.SegmentBytes is 0.
const DefaultSegmentBytes = 64 << 20

// Config configures Open. The zero value is a good default.
type Config struct {
	// SegmentBytes is the size past which the log moves on to a new
	// segment file. Compaction deletes whole segments, so it is also the
	// granularity at which disk space is given back. 0 means
	// DefaultSegmentBytes.
	SegmentBytes int64
	// NoSync skips every fsync. It is UNSAFE: a machine crash can lose or
	// corrupt acknowledged writes. Use it only in tests.
	NoSync bool
	// Logger receives notices about recovery (torn writes truncated,
	// leftover files removed). nil discards them.
	Logger *slog.Logger
}

// Storage is a durable raft.Storage kept in one directory. Create one with
// Open. All methods are safe for concurrent use as raft.Storage allows.
type Storage struct {
	dir, walDir, snapDir string
	segBytes             int64
	noSync               bool
	log                  *slog.Logger
	lock                 *os.File
	closed               atomic.Bool
	syncs, saved         atomic.Uint64

	// wmu serializes changes (Save, Compact, Commit, Close); the fields
	// below it are used only while it is held.
	wmu    sync.Mutex
	buf    []byte
	offs   []int
	locs   []entryLoc
	failed error

	// mu guards the log's state. Changes hold both wmu and mu (for
	// writing); reads hold mu for reading, or wmu alone in a writer.
	mu    sync.RWMutex
	hs    raftdata.HardState
	snap  snapFile // meta.Index 0 when there is none
	first uint64
	ents  []entryLoc // first .. first+len(ents)-1
	segs  []*segment // in log order; the last one is being appended to
}

// Compile-time check that *Storage implements raft.Storage.
var _ raft.Storage = (*Storage)(nil)

// Open opens the store in dir, creating it if needed, and recovers its
// state. It fails with an error wrapping ErrLocked when another Storage holds
// dir, and with one wrapping raft.ErrCorrupt when the log or the snapshot is
// damaged other than by a torn final write. Unless NoSync is set, the
// directories it creates, dir and any missing ancestors, are made durable
// before it returns. Recovery reads the whole log: ctx bounds it (it is
// checked between segments), and is not kept.
func Open(ctx context.Context, dir string, opts Config) (*Storage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("disk: open: %w", err)
	}
	s := &Storage{
		dir: dir, walDir: filepath.Join(dir, "wal"), snapDir: filepath.Join(dir, "snap"),
		segBytes: opts.SegmentBytes, noSync: opts.NoSync, log: opts.Logger,
	}
	if s.segBytes <= 0 {
		s.segBytes = DefaultSegmentBytes
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	created := missingDirs(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("disk: open: %w", err)
	}
	if err := s.syncParents(created); err != nil {
		return nil, fmt.Errorf("disk: open: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("disk: open: %w", err)
	}
	if err := lockFile(lock); err != nil {
		_ = lock.Close()
		if errors.Is(err, errLockHeld) {
			return nil, fmt.Errorf("disk: open %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("disk: open: locking %s: %w", dir, err)
	}
	s.lock = lock
	if err := s.recover(ctx); err != nil {
		closeSegments(s.segs)
		_ = lock.Close() // releases the lock
		return nil, err
	}
	return s, nil
}

// missingDirs returns dir and those of its ancestors that do not exist yet,
// deepest first: the directories os.MkdirAll(dir) is about to create. The
// path is taken lexically (filepath.Clean). An error other than "does not
// exist" ends the walk; MkdirAll reports it if it matters.
func missingDirs(dir string) []string {
	var missing []string
	for d := filepath.Clean(dir); ; {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			return missing
		}
		missing = append(missing, d)
		parent := filepath.Dir(d)
		if parent == d {
			return missing
		}
		d = parent
	}
}

// syncParents fsyncs the parent of each directory in created (as returned by
// missingDirs, deepest first), unless NoSync is set. Creating a directory
// adds an entry to its parent, and on some filesystems (ext4, for one) that
// entry is durable only once the parent itself is fsynced: without this, a
// power loss shortly after a first Open could lose the store's directory,
// or an ancestor made along with it, together with everything acknowledged
// in it. The store's own directory is synced by recover, for wal, snap and
// LOCK.
func (s *Storage) syncParents(created []string) error {
	for _, d := range created {
		if err := s.syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// recover creates the directory layout if needed and rebuilds the store's
// state from the snapshot and the log.
func (s *Storage) recover(ctx context.Context) error {
	for _, d := range []string{s.walDir, s.snapDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("disk: open: %w", err)
		}
	}
	// For the entries wal, snap and LOCK; Open has synced the parents of
	// the directories it created.
	if err := s.syncDir(s.dir); err != nil {
		return fmt.Errorf("disk: open: %w", err)
	}
	snap, older, err := loadSnapshot(s.snapDir, s.log)
	if err != nil {
		return err
	}
	if s.segs, err = openSegments(s.walDir, s.log); err != nil {
		return err
	}
	r := &replay{first: 1, start: 1}
	for i, sg := range s.segs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("disk: open: %w", err)
		}
		if err := r.readSegment(sg, i == len(s.segs)-1, s.noSync, s.log); err != nil {
			return err
		}
	}
	if s.ents, err = r.finish(); err != nil {
		return err
	}
	s.hs, s.first = r.hs, r.first
	if len(s.segs) == 0 {
		sg, err := createSegment(s.walDir, s.first, 1)
		if err != nil {
			return err
		}
		s.segs = []*segment{sg}
	}

	switch {
	case r.markIndex > snap.meta.Index:
		return corruptf("the log records a snapshot at index %d, term %d, but the latest snapshot file is at index %d",
			r.markIndex, r.markTerm, snap.meta.Index)
	case snap.meta.Index == 0:
	case r.markIndex == snap.meta.Index && r.markTerm == snap.meta.Term:
		s.snap = snap
	default:
		// A crash interrupted Commit after the snapshot file was renamed
		// into place: finish it.
		s.log.Info("disk: finishing an interrupted snapshot commit", "index", snap.meta.Index, "term", snap.meta.Term)
		s.snap = snapFile{meta: raftdata.SnapshotMeta{Index: r.markIndex, Term: r.markTerm}}
		if err := s.recordSnapshot(snap); err != nil {
			return err
		}
	}
	for _, p := range older {
		if err := os.Remove(p); err != nil {
			s.log.Warn("disk: removing an old snapshot", "path", p, "err", err)
		}
	}
	return nil
}

// Dir returns the directory the store was opened on.
func (s *Storage) Dir() string { return s.dir }

// Syncs returns the number of fsyncs the store has issued (log segments,
// snapshot files and directories), for measurements.
func (s *Storage) Syncs() uint64 { return s.syncs.Load() }

// SavedEntries returns the number of entries Save has written since Open,
// for measurements.
func (s *Storage) SavedEntries() uint64 { return s.saved.Load() }

// Close closes the store's files and releases the directory lock; the data
// stays behind for a later Open. Every later call fails with an error
// wrapping raft.ErrClosed, except Close, which returns nil. Snapshot writers still
// open are left to their Abort.
func (s *Storage) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	for _, sg := range s.segs {
		errs = append(errs, sg.f.Close())
	}
	s.segs, s.ents = nil, nil
	errs = append(errs, s.lock.Close()) // releases the lock
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("disk: close: %w", err)
	}
	return nil
}

// InitialState returns the hard state, the latest snapshot's metadata and the
// bounds of the log. For an empty log LastIndex is FirstIndex-1, so a new
// store reports FirstIndex 1 and LastIndex 0.
func (s *Storage) InitialState(ctx context.Context) (raft.State, error) {
	if err := s.check(ctx, "initial state"); err != nil {
		return raft.State{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return raft.State{}, fmt.Errorf("disk: initial state: %w", raft.ErrClosed)
	}
	return raft.State{
		HardState:  s.hs,
		Snapshot:   cloneMeta(s.snap.meta),
		FirstIndex: s.first,
		LastIndex:  s.lastIndex(),
	}, nil
}

// check returns the error an operation op must fail with before doing
// anything, if any: raft.ErrClosed or the context's error.
func (s *Storage) check(ctx context.Context, op string) error {
	return storeutil.Check(ctx, s.closed.Load(), "disk", op)
}

// writable returns the error a change must fail with: raft.ErrClosed or
// ErrFailed. The caller holds s.wmu.
func (s *Storage) writable(op string) error {
	if s.closed.Load() {
		return fmt.Errorf("disk: %s: %w", op, raft.ErrClosed)
	}
	if s.failed != nil {
		return fmt.Errorf("disk: %s: %w (%v)", op, ErrFailed, s.failed)
	}
	return nil
}

// fail records err, from a write whose outcome on disk is unknown, so that
// every later change fails, and returns it wrapped with ErrFailed (hence
// raft.ErrPermanent: retrying cannot succeed, and after a failed fsync the
// kernel may have dropped the data it was to sync). The caller holds s.wmu.
func (s *Storage) fail(op string, err error) error {
	s.failed = err
	s.log.Error("disk: write failed; the store refuses further writes", "op", op, "err", err)
	return fmt.Errorf("disk: %s: %w: %w", op, ErrFailed, err)
}

// lastIndex returns the index of the last entry, or first-1 for an empty
// log. The caller holds s.mu or s.wmu.
func (s *Storage) lastIndex() uint64 { return s.first + uint64(len(s.ents)) - 1 }

// sync fsyncs f unless NoSync is set.
func (s *Storage) sync(f *os.File) error {
	if s.noSync {
		return nil
	}
	s.syncs.Add(1)
	return f.Sync()
}

// syncDir fsyncs directory dir unless NoSync is set.
func (s *Storage) syncDir(dir string) error {
	if s.noSync {
		return nil
	}
	s.syncs.Add(1)
	return syncDir(dir)
}

// appendRecord writes rec at the end of the log, moving on to a new segment
// first if the active one would grow past SegmentBytes, and fsyncs it. The
// caller holds s.wmu.
func (s *Storage) appendRecord(rec []byte) error {
	_, _, err := s.appendAt(rec)
	return err
}

// preallocBytes is how much zero-filled space a segment is extended by at a
// time (at most up to SegmentBytes).
const preallocBytes = 4 << 20

// appendAt is appendRecord, also returning the segment and the offset it
// wrote at. The record is written into space that was zero-filled and
// fsynced beforehand, so its own sync (fdatasync) changes no metadata, and
// a crash before that sync leaves the whole record or a torn record
// followed by zeros.
func (s *Storage) appendAt(rec []byte) (*segment, int64, error) {
	sg := s.segs[len(s.segs)-1]
	if sg.size > 0 && sg.size+int64(len(rec)) > s.segBytes {
		next, err := createSegment(s.walDir, s.lastIndex()+1, sg.seq+1)
		if err != nil {
			return nil, 0, err
		}
		s.syncs.Add(1) // createSegment fsyncs the directory
		s.mu.Lock()
		s.segs = append(s.segs, next)
		s.mu.Unlock()
		sg = next
	}
	off := sg.size
	if end := off + int64(len(rec)); end > sg.alloc {
		if err := s.extend(sg, max(end, min(sg.alloc+preallocBytes, s.segBytes))); err != nil {
			return nil, 0, err
		}
	}
	if _, err := sg.f.WriteAt(rec, off); err != nil {
		return nil, 0, err
	}
	if !s.noSync {
		s.syncs.Add(1)
		if err := datasync(sg.f); err != nil {
			return nil, 0, err
		}
	}
	sg.size += int64(len(rec))
	return sg, off, nil
}

// zeros is written to extend segments.
var zeros [256 << 10]byte

// extend grows sg's file to size bytes by writing zeros after sg.alloc, and
// fsyncs it. Real zeros, not fallocate or truncate: those leave unwritten
// extents or holes whose first write still updates metadata.
func (s *Storage) extend(sg *segment, size int64) error {
	if err := writeZeros(sg.f, sg.alloc, size); err != nil {
		return err
	}
	if err := s.sync(sg.f); err != nil {
		return err
	}
	sg.alloc = size
	return nil
}

// writeZeros writes zeros over [from, to) of f.
func writeZeros(f *os.File, from, to int64) error {
	for from < to {
		n := min(to-from, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:n], from); err != nil {
			return err
		}
		from += n
	}
	return nil
}

// detachSegments removes from s.segs the leading segments, other than the
// active one, that hold no entry above upTo, and returns them. The caller
// holds s.wmu and s.mu for writing.
func (s *Storage) detachSegments(upTo uint64) []*segment {
	n := 0
	for n < len(s.segs)-1 && s.segs[n].maxIndex <= upTo {
		n++
	}
	dead := s.segs[:n:n]
	s.segs = append([]*segment(nil), s.segs[n:]...)
	return dead
}

// removeSegments closes and deletes segments detached from the log. A
// failure only leaves files that replay handles, so it is logged.
func (s *Storage) removeSegments(dead []*segment) {
	for _, sg := range dead {
		_ = sg.f.Close()
		if err := os.Remove(sg.path); err != nil {
			s.log.Warn("disk: removing a compacted segment", "path", sg.path, "err", err)
		}
	}
}
