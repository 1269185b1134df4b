package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/raftkit/raftkit/adapters/storage/internal/storeutil"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// CreateSnapshot starts a snapshot described by meta, which must have a
// non-zero Index (else raft.ErrInvalidArgument). The returned writer buffers the
// bytes in memory; nothing is visible to readers until its Commit succeeds.
// meta is copied, so the caller may reuse it.
func (s *Storage) CreateSnapshot(ctx context.Context, meta raftdata.SnapshotMeta) (raft.SnapshotWriter, error) {
	if err := s.check(ctx, "create snapshot"); err != nil {
		return nil, err
	}
	if meta.Index == 0 {
		return nil, fmt.Errorf("%w: create snapshot: index 0", raft.ErrInvalidArgument)
	}
	return &snapshotWriter{s: s, meta: cloneMeta(meta)}, nil
}

// OpenSnapshot returns the latest committed snapshot's metadata (a deep copy)
// and a reader over its bytes. The bytes are immutable, so the reader stays
// valid when a newer snapshot is committed, and closing it is optional. With
// no snapshot it fails with an error wrapping raft.ErrNoSnapshot.
func (s *Storage) OpenSnapshot(ctx context.Context) (raftdata.SnapshotMeta, io.ReadCloser, error) {
	if err := s.check(ctx, "open snapshot"); err != nil {
		return raftdata.SnapshotMeta{}, nil, err
	}
	d := s.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.snap.Index == 0 {
		return raftdata.SnapshotMeta{}, nil, fmt.Errorf("memory: open snapshot: %w", raft.ErrNoSnapshot)
	}
	return cloneMeta(d.snap), io.NopCloser(bytes.NewReader(d.snapData)), nil
}

// snapshotWriter is the raft.SnapshotWriter returned by CreateSnapshot.
type snapshotWriter struct {
	s    *Storage
	meta raftdata.SnapshotMeta

	mu    sync.Mutex
	buf   bytes.Buffer
	state storeutil.WriterState
}

// Write appends p to the snapshot. It fails with raft.ErrSnapshotFinished after
// Commit or Abort.
func (w *snapshotWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.state.Usable("memory", "snapshot write", false); err != nil {
		return 0, err
	}
	return w.buf.Write(p)
}

// Commit installs the snapshot as the latest one, replacing the previous
// snapshot. If the log holds the entry at meta.Index with meta.Term the log is
// kept; otherwise it is discarded, leaving FirstIndex = LastIndex+1 =
// meta.Index+1. The hard state is untouched.
//
// A snapshot with a lower index than the latest committed one fails with
// raft.ErrStaleSnapshot and changes nothing. Whatever Commit returns, the writer is
// finished afterwards: a second Commit fails with raft.ErrSnapshotFinished.
func (w *snapshotWriter) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.state.Usable("memory", "snapshot commit", false); err != nil {
		return err
	}
	w.state.Finish()
	buf := w.buf.Bytes()
	w.buf = bytes.Buffer{}
	if err := w.s.check(ctx, "snapshot commit"); err != nil {
		return err
	}
	if cap(buf)-len(buf) > len(buf)/4 {
		// Do not keep the buffer's spare capacity alive for the life of
		// the snapshot.
		buf = bytes.Clone(buf)
	}

	d := w.s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	meta := w.meta
	if meta.Index < d.snap.Index {
		return fmt.Errorf("%w: snapshot at index %d is older than the latest at index %d",
			raft.ErrStaleSnapshot, meta.Index, d.snap.Index)
	}
	if !d.holds(meta.Index, meta.Term) {
		d.ents.truncate(0)
		d.first = meta.Index + 1
	}
	d.snap = meta
	d.snapData = buf
	return nil
}

// Abort discards the snapshot. It is a no-op after Commit or Abort.
func (w *snapshotWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state.Finish()
	w.buf = bytes.Buffer{}
	return nil
}

// holds reports whether the log ends in agreement with an entry at index with
// term: either the entry is in the log, or it is the latest snapshot's last
// entry and everything before FirstIndex was compacted up to it. The caller
// holds d.mu.
func (d *data) holds(index, term uint64) bool {
	if index >= d.first && index <= d.lastIndex() {
		return d.ents.at(int(index-d.first)).Term == term
	}
	return index == d.snap.Index && index == d.first-1 && term == d.snap.Term
}
