package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/raftkit/raftkit/adapters/storage/internal/storeutil"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// CreateSnapshot registers a snapshot and returns a writer that stores its
// bytes in rows of Config.ChunkBytes, buffering at most one row. Nothing is
// visible to OpenSnapshot until Commit.
func (s *Storage) CreateSnapshot(ctx context.Context, meta raftdata.SnapshotMeta) (raft.SnapshotWriter, error) {
	if err := s.check(ctx, "create snapshot"); err != nil {
		return nil, err
	}
	if meta.Index == 0 {
		return nil, fmt.Errorf("%w: snapshot at index 0", raft.ErrInvalidArgument)
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO `+s.q+`.snapshots (group_id, node_id, snapshot_id, idx, term, membership)
		VALUES ($1, $2, nextval('`+s.q+`.snapshot_ids'), $3, $4, $5) RETURNING snapshot_id`,
		s.group, s.node, int64(meta.Index), int64(meta.Term), raftdata.EncodeMembership(meta.Membership)).Scan(&id)
	if err != nil {
		return nil, s.dbErr("create snapshot", err)
	}
	w := &snapshotWriter{s: s, id: id, meta: cloneMeta(meta)}
	w.chunks = storeutil.Chunker{Size: s.chunk, Store: w.storeChunk}
	return w, nil
}

// snapshotWriter stores a snapshot's bytes chunk by chunk.
type snapshotWriter struct {
	s      *Storage
	id     int64
	meta   raftdata.SnapshotMeta
	mu     sync.Mutex
	chunks storeutil.Chunker
	state  storeutil.WriterState
}

// Write buffers p, storing a row each time Config.ChunkBytes accumulate.
func (w *snapshotWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable("snapshot write"); err != nil {
		return 0, err
	}
	return w.chunks.Write(p)
}

func (w *snapshotWriter) usable(op string) error {
	return w.state.Usable("postgres", op, w.s.closed.Load())
}

// storeChunk stores the next chunk (storeutil.Chunker.Store).
func (w *snapshotWriter) storeChunk(chunk []byte) error {
	ctx := context.Background()
	s := w.s
	// Only while the snapshot's row is there: a store opened since for
	// this node deleted it with every uncommitted snapshot, and this
	// writer must not leave chunks nobody will delete.
	tag, err := s.pool.Exec(ctx, `INSERT INTO `+s.q+`.snapshot_chunks (group_id, node_id, snapshot_id, seq, data)
		SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM `+s.q+`.snapshots
			WHERE group_id = $1 AND node_id = $2 AND snapshot_id = $3 AND NOT committed)`,
		s.group, s.node, w.id, int32(w.chunks.Chunks()), chunk)
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("%w: snapshot %d was removed by a newer open (group %d node %d)", ErrFenced, w.id, s.group, s.node)
	}
	if err != nil {
		err = s.dbErr("snapshot write", err)
		w.state.Fail(err)
		return err
	}
	return nil
}

// Commit stores the last chunk and, in one transaction, makes the snapshot
// the latest one, keeps or discards the log (Raft paper §7: the log is kept
// when it holds the snapshot's last entry with the same term) and deletes
// older snapshots. Readers opened on an older snapshot keep reading it.
func (w *snapshotWriter) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable("snapshot commit"); err != nil {
		return err
	}
	if err := w.chunks.Flush(); err != nil {
		return err
	}
	s := w.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	cur := s.snap.Index
	s.mu.RUnlock()
	if w.meta.Index < cur {
		return fmt.Errorf("postgres: snapshot commit: %w: index %d is below the latest snapshot's %d", raft.ErrStaleSnapshot, w.meta.Index, cur)
	}
	idx, term := int64(w.meta.Index), int64(w.meta.Term)
	var first int64
	b := &pgx.Batch{}
	b.Queue(`SELECT `+s.q+`.fence($1, $2, $3)`, s.group, s.node, s.owner)
	b.Queue(`UPDATE `+s.q+`.snapshots SET committed = true, bytes = $4, chunks = $5
		WHERE group_id = $1 AND node_id = $2 AND snapshot_id = $3`, s.group, s.node, w.id, w.chunks.Bytes(), int32(w.chunks.Chunks()))
	// The log is kept if it holds the snapshot's last entry with its term.
	b.Queue(`UPDATE `+s.q+`.nodes SET snapshot_id = $3,
			first_index = CASE WHEN EXISTS (SELECT 1 FROM `+s.q+`.entries
				WHERE group_id = $1 AND node_id = $2 AND idx = $4 AND term = $5)
				THEN first_index ELSE $4 + 1 END
		WHERE group_id = $1 AND node_id = $2 RETURNING first_index`, s.group, s.node, w.id, idx, term).
		QueryRow(func(r pgx.Row) error { return r.Scan(&first) })
	// Discarded: first_index became idx+1, which a kept log cannot have
	// (it holds idx). Then every entry goes, those after idx too.
	b.Queue(`DELETE FROM `+s.q+`.entries WHERE group_id = $1 AND node_id = $2 AND
		(SELECT first_index FROM `+s.q+`.nodes WHERE group_id = $1 AND node_id = $2) = $3`,
		s.group, s.node, idx+1)
	b.Queue(`DELETE FROM `+s.q+`.snapshot_chunks WHERE group_id = $1 AND node_id = $2 AND snapshot_id IN
		(SELECT snapshot_id FROM `+s.q+`.snapshots WHERE group_id = $1 AND node_id = $2 AND committed AND snapshot_id <> $3)`,
		s.group, s.node, w.id)
	b.Queue(`DELETE FROM `+s.q+`.snapshots WHERE group_id = $1 AND node_id = $2 AND committed AND snapshot_id <> $3`,
		s.group, s.node, w.id)
	s.gen.Add(1)
	defer s.gen.Add(1)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return s.dbErr("snapshot commit", err)
	}
	w.state.Finish()
	s.mu.Lock()
	if uint64(first) == w.meta.Index+1 {
		s.first, s.last = w.meta.Index+1, w.meta.Index // discarded
	}
	s.snap, s.snapID = cloneMeta(w.meta), w.id
	s.mu.Unlock()
	return nil
}

// Abort deletes what was written. It is a no-op after Commit or Abort.
func (w *snapshotWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state.Finished() {
		return nil
	}
	w.state.Finish()
	s := w.s
	if s.closed.Load() {
		return nil // Open of the next store deletes uncommitted snapshots
	}
	b := &pgx.Batch{}
	// Only an uncommitted snapshot: a Commit whose reply was lost may have
	// made this one the latest.
	b.Queue(`DELETE FROM `+s.q+`.snapshot_chunks WHERE group_id = $1 AND node_id = $2 AND snapshot_id = $3
		AND EXISTS (SELECT 1 FROM `+s.q+`.snapshots WHERE group_id = $1 AND node_id = $2 AND snapshot_id = $3 AND NOT committed)`,
		s.group, s.node, w.id)
	b.Queue(`DELETE FROM `+s.q+`.snapshots WHERE group_id = $1 AND node_id = $2 AND snapshot_id = $3 AND NOT committed`, s.group, s.node, w.id)
	if err := s.pool.SendBatch(context.Background(), b).Close(); err != nil {
		return s.dbErr("snapshot abort", err)
	}
	return nil
}

// OpenSnapshot opens the latest committed snapshot. The reader runs in a
// read-only REPEATABLE READ transaction, holding one pooled connection until
// it is closed: it reads one chunk at a time from the database's snapshot
// taken when it opened, so a newer snapshot committed meanwhile (which
// deletes this one's rows) does not disturb it.
func (s *Storage) OpenSnapshot(ctx context.Context) (raftdata.SnapshotMeta, io.ReadCloser, error) {
	if err := s.check(ctx, "open snapshot"); err != nil {
		return raftdata.SnapshotMeta{}, nil, err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return raftdata.SnapshotMeta{}, nil, s.dbErr("open snapshot", err)
	}
	var (
		id, idx, term *int64
		membership    []byte
		chunks        *int32
	)
	err = tx.QueryRow(ctx, `SELECT p.snapshot_id, p.idx, p.term, p.membership, p.chunks
		FROM `+s.q+`.nodes n LEFT JOIN `+s.q+`.snapshots p
			ON p.group_id = n.group_id AND p.node_id = n.node_id AND p.snapshot_id = n.snapshot_id
		WHERE n.group_id = $1 AND n.node_id = $2`, s.group, s.node).Scan(&id, &idx, &term, &membership, &chunks)
	if err == nil && id == nil {
		err = fmt.Errorf("postgres: open snapshot: %w", raft.ErrNoSnapshot)
	} else if err == nil && idx == nil {
		err = corruptf("group %d node %d: snapshot %d is missing", s.group, s.node, *id)
	} else if err != nil {
		err = s.dbErr("open snapshot", err)
	}
	var meta raftdata.SnapshotMeta
	if err == nil {
		meta = raftdata.SnapshotMeta{Index: uint64(*idx), Term: uint64(*term)}
		if meta.Membership, err = raftdata.DecodeMembership(membership); err != nil {
			err = fmt.Errorf("postgres: snapshot %d membership: %w", *id, err)
		}
	}
	if err != nil {
		_ = tx.Rollback(context.Background())
		return raftdata.SnapshotMeta{}, nil, err
	}
	return meta, &snapshotReader{s: s, tx: tx, id: *id, chunks: *chunks}, nil
}

// snapshotReader streams a snapshot's chunks in order.
type snapshotReader struct {
	s      *Storage
	tx     pgx.Tx
	id     int64
	chunks int32
	seq    int32
	buf    []byte
	closed bool
}

func (r *snapshotReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("postgres: snapshot read: %w", raft.ErrClosed)
	}
	for len(r.buf) == 0 {
		if r.seq == r.chunks {
			return 0, io.EOF
		}
		if r.s.closed.Load() {
			return 0, fmt.Errorf("postgres: snapshot read: %w", raft.ErrClosed)
		}
		s := r.s
		err := r.tx.QueryRow(context.Background(), `SELECT data FROM `+s.q+`.snapshot_chunks
			WHERE group_id = $1 AND node_id = $2 AND snapshot_id = $3 AND seq = $4`,
			s.group, s.node, r.id, r.seq).Scan(&r.buf)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, corruptf("group %d node %d: snapshot %d chunk %d is missing", s.group, s.node, r.id, r.seq)
		}
		if err != nil {
			return 0, s.dbErr("snapshot read", err)
		}
		r.seq++
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Close ends the read transaction and returns its connection to the pool.
func (r *snapshotReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.buf = nil
	return r.tx.Rollback(context.Background())
}
