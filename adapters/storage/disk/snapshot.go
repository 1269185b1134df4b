package disk

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/raftkit/raftkit/adapters/storage/internal/storeutil"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// CreateSnapshot starts a snapshot described by meta, which must have a
// non-zero Index (else raft.ErrInvalidArgument). The bytes are streamed to a
// temporary file in the snapshot directory; nothing is visible to readers
// until Commit succeeds. It may run concurrently with Save, Compact and
// Commit.
func (s *Storage) CreateSnapshot(ctx context.Context, meta raftdata.SnapshotMeta) (raft.SnapshotWriter, error) {
	if err := s.check(ctx, "create snapshot"); err != nil {
		return nil, err
	}
	if meta.Index == 0 {
		return nil, fmt.Errorf("%w: create snapshot: index 0", raft.ErrInvalidArgument)
	}
	f, err := os.CreateTemp(s.snapDir, tmpPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("disk: create snapshot: %w", err)
	}
	w := &snapshotWriter{s: s, meta: cloneMeta(meta), f: f, bw: bufio.NewWriterSize(f, 1<<20)}
	if _, err := w.bw.Write(encodeSnapHeader(meta)); err != nil {
		w.discard()
		return nil, fmt.Errorf("disk: create snapshot: %w", err)
	}
	return w, nil
}

// OpenSnapshot returns the latest committed snapshot's metadata and a reader
// over its bytes, which the caller must close. The reader reads the file the
// snapshot was committed to; it keeps working after a newer snapshot
// replaces it, because an unlinked file stays readable while open. At the end
// of the data the reader returns an error wrapping raft.ErrCorrupt instead of
// io.EOF if the bytes do not match the checksum written at Commit. With no
// snapshot it fails with an error wrapping raft.ErrNoSnapshot.
func (s *Storage) OpenSnapshot(ctx context.Context) (raftdata.SnapshotMeta, io.ReadCloser, error) {
	if err := s.check(ctx, "open snapshot"); err != nil {
		return raftdata.SnapshotMeta{}, nil, err
	}
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		return raftdata.SnapshotMeta{}, nil, fmt.Errorf("disk: open snapshot: %w", raft.ErrClosed)
	}
	if s.snap.meta.Index == 0 {
		s.mu.RUnlock()
		return raftdata.SnapshotMeta{}, nil, fmt.Errorf("disk: open snapshot: %w", raft.ErrNoSnapshot)
	}
	path := s.snap.path
	// Opened under the lock: the file cannot be replaced and removed
	// before it is open.
	f, err := os.Open(path)
	s.mu.RUnlock()
	if err != nil {
		return raftdata.SnapshotMeta{}, nil, fmt.Errorf("disk: open snapshot: %w", err)
	}
	sf, err := readSnapFile(f, path)
	if err != nil {
		_ = f.Close()
		return raftdata.SnapshotMeta{}, nil, err
	}
	return sf.meta, &snapReader{f: f, sr: io.NewSectionReader(f, sf.hdr, sf.n), want: sf.crc, path: path}, nil
}

// snapshotWriter is the raft.SnapshotWriter returned by CreateSnapshot.
type snapshotWriter struct {
	s    *Storage
	meta raftdata.SnapshotMeta

	mu    sync.Mutex
	f     *os.File
	bw    *bufio.Writer
	n     int64
	crc   uint32
	state storeutil.WriterState
}

// Write appends p to the snapshot. It fails with raft.ErrSnapshotFinished after
// Commit or Abort, and with raft.ErrClosed once the store is closed.
func (w *snapshotWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.state.Usable("disk", "snapshot write", w.s.closed.Load()); err != nil {
		return 0, err
	}
	n, err := w.bw.Write(p)
	w.crc = crc32.Update(w.crc, castagnoli, p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("disk: snapshot write: %w", err)
	}
	return n, nil
}

// Commit makes the snapshot durable and the latest one: it writes the
// trailer, fsyncs the file, renames it into place and fsyncs the directory.
// Then, if the log holds the entry at meta.Index with meta.Term, the log is
// kept; otherwise it is discarded, leaving FirstIndex = LastIndex+1 =
// meta.Index+1. Either way a record of the commit is appended to the log and
// fsynced. The previous snapshot file is removed; open readers keep it. The
// hard state is untouched.
//
// A snapshot with a lower index than the latest committed one fails with
// raft.ErrStaleSnapshot and changes nothing. Whatever Commit returns, the writer is
// finished afterwards.
func (w *snapshotWriter) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.state.Usable("disk", "snapshot commit", false); err != nil {
		return err
	}
	w.state.Finish()
	if err := w.s.check(ctx, "snapshot commit"); err != nil {
		w.discard()
		return err
	}
	if err := w.finish(); err != nil {
		w.discard()
		return fmt.Errorf("disk: snapshot commit: %w", err)
	}
	sf := snapFile{meta: w.meta, path: w.f.Name(), hdr: int64(len(encodeSnapHeader(w.meta))), n: w.n, crc: w.crc}
	return w.s.install(sf)
}

// finish writes the trailer, fsyncs and closes the temporary file.
func (w *snapshotWriter) finish() error {
	if _, err := w.bw.Write(encodeSnapTrailer(w.n, w.crc)); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	if err := w.s.sync(w.f); err != nil {
		return err
	}
	return w.f.Close()
}

// Abort discards the snapshot and removes its temporary file. It is a no-op
// after Commit or Abort.
func (w *snapshotWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state.Finish() {
		return nil
	}
	return w.discard()
}

// discard closes and removes the temporary file.
func (w *snapshotWriter) discard() error {
	_ = w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disk: snapshot abort: %w", err)
	}
	return nil
}

// install makes the complete, fsynced temporary snapshot file sf.path the
// latest snapshot, as described at snapshotWriter.Commit.
func (s *Storage) install(sf snapFile) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tmp := sf.path
	if err := s.writable("snapshot commit"); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if sf.meta.Index < s.snap.meta.Index {
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: snapshot at index %d is older than the latest at index %d",
			raft.ErrStaleSnapshot, sf.meta.Index, s.snap.meta.Index)
	}
	sf.path = filepath.Join(s.snapDir, snapshotName(sf.meta.Index, sf.meta.Term))
	if err := os.Rename(tmp, sf.path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("disk: snapshot commit: %w", err)
	}
	if err := s.syncDir(s.snapDir); err != nil {
		return s.fail("snapshot commit", err)
	}
	// From here a crash leaves the new snapshot in place; Open finishes the
	// commit if the record below is missing.
	return s.recordSnapshot(sf)
}

// recordSnapshot appends and fsyncs the record of a committed snapshot sf,
// discarding the log unless it holds (sf.meta.Index, sf.meta.Term), then
// makes sf the latest snapshot and removes the previous one. The caller
// holds s.wmu.
func (s *Storage) recordSnapshot(sf snapFile) error {
	meta := sf.meta
	discard := !s.holds(meta.Index, meta.Term)
	rec := stateRec{hs: s.hs, snapIndex: meta.Index, snapTerm: meta.Term, discardLog: discard}
	s.buf = encodeState(s.buf, recSnapshot, rec)
	if err := s.appendRecord(s.buf); err != nil {
		return s.fail("snapshot commit", err)
	}
	s.mu.Lock()
	old := s.snap.path
	s.snap = sf
	var dead []*segment
	if discard {
		s.ents, s.first = nil, meta.Index+1
		dead = s.detachSegments(meta.Index)
	}
	s.mu.Unlock()
	if old != "" && old != sf.path {
		if err := os.Remove(old); err != nil {
			s.log.Warn("disk: removing the previous snapshot", "path", old, "err", err)
		}
	}
	s.removeSegments(dead)
	return nil
}

// holds reports whether the log agrees with an entry at index with term:
// the entry is in the log, or it is the latest snapshot's last entry and
// everything before FirstIndex was compacted up to it. The caller holds
// s.wmu or s.mu.
func (s *Storage) holds(index, term uint64) bool {
	if index >= s.first && index <= s.lastIndex() {
		return s.ents[index-s.first].term == term
	}
	return index == s.snap.meta.Index && index == s.first-1 && term == s.snap.meta.Term
}

// cloneMeta returns a copy of m that shares no memory with it.
func cloneMeta(m raftdata.SnapshotMeta) raftdata.SnapshotMeta {
	m.Membership = m.Membership.Clone()
	return m
}
