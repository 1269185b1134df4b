package redis

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/raftkit/raftkit/adapters/storage/internal/storeutil"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// CreateSnapshot registers a pending snapshot and returns a writer that
// stores its bytes as list elements of Config.ChunkBytes, buffering at most
// one. Nothing is visible to OpenSnapshot until Commit.
func (s *Storage) CreateSnapshot(ctx context.Context, meta raftdata.SnapshotMeta) (raft.SnapshotWriter, error) {
	if err := s.check(ctx, "create snapshot"); err != nil {
		return nil, err
	}
	if meta.Index == 0 {
		return nil, fmt.Errorf("%w: snapshot at index 0", raft.ErrInvalidArgument)
	}
	id, err := createScript.Run(ctx, s.c, []string{s.meta, s.pending}, s.owner).Int64()
	if err != nil {
		return nil, s.scriptErr("create snapshot", err)
	}
	ids := strconv.FormatInt(id, 10)
	w := &snapshotWriter{s: s, id: ids, key: s.chunkKey(ids), meta: meta}
	w.chunks = storeutil.Chunker{Size: s.chunk, Store: w.storeChunk}
	return w, nil
}

// snapshotWriter stores a snapshot's bytes chunk by chunk.
type snapshotWriter struct {
	s      *Storage
	id     string
	key    string
	meta   raftdata.SnapshotMeta
	mu     sync.Mutex
	chunks storeutil.Chunker
	state  storeutil.WriterState
}

// Write buffers p, storing an element each time Config.ChunkBytes
// accumulate.
func (w *snapshotWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable("snapshot write"); err != nil {
		return 0, err
	}
	return w.chunks.Write(p)
}

func (w *snapshotWriter) usable(op string) error {
	return w.state.Usable("redis", op, w.s.closed.Load())
}

// storeChunk stores the next chunk while the snapshot is still pending
// (storeutil.Chunker.Store).
func (w *snapshotWriter) storeChunk(chunk []byte) error {
	s := w.s
	if err := chunkScript.Run(context.Background(), s.c, []string{s.pending, w.key}, w.id, w.chunks.Chunks(), chunk).Err(); err != nil {
		err = s.scriptErr("snapshot write", err)
		w.state.Fail(err)
		return err
	}
	return nil
}

// Commit stores the last chunk and, in one script, makes the snapshot the
// latest one, keeps or discards the log (Raft paper §7: kept when it holds
// the snapshot's last entry with the same term) and sets the previous
// snapshot to expire after Config.OldSnapshotTTL.
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
	var term [8]byte
	binary.BigEndian.PutUint64(term[:], w.meta.Term)
	old := strconv.FormatInt(s.snapID, 10)
	for attempt := 0; ; attempt++ {
		keys := []string{s.meta, s.logKey, s.pending, s.chunkKey(old)}
		err := commitScript.Run(ctx, s.c, keys, s.owner, w.id, w.meta.Index, term[:], w.meta.Term,
			raftdata.EncodeMembership(w.meta.Membership), w.chunks.Chunks(), old, s.oldTTL.Milliseconds()).Err()
		if err == nil {
			break
		}
		// An earlier Commit succeeded but its reply was lost: learn the
		// latest snapshot's ID and try again.
		if latest, ok := strings.CutPrefix(err.Error(), "RACE "); ok && attempt == 0 {
			old = latest
			continue
		}
		return s.scriptErr("snapshot commit", err)
	}
	w.state.Finish()
	s.snapID, _ = strconv.ParseInt(w.id, 10, 64)
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
		return nil // the next Open drops pending snapshots
	}
	if err := abortScript.Run(context.Background(), s.c, []string{s.pending, w.key}, w.id).Err(); err != nil {
		return s.scriptErr("snapshot abort", err)
	}
	return nil
}

// OpenSnapshot opens the latest committed snapshot and reads it one chunk
// per round trip. A newer snapshot committed meanwhile does not disturb the
// reader for Config.OldSnapshotTTL; after that its reads fail with
// ErrSnapshotGone.
func (s *Storage) OpenSnapshot(ctx context.Context) (raftdata.SnapshotMeta, io.ReadCloser, error) {
	if err := s.check(ctx, "open snapshot"); err != nil {
		return raftdata.SnapshotMeta{}, nil, err
	}
	vals, err := snapMetaScript.Run(ctx, s.c, []string{s.meta}).Slice()
	if err != nil {
		return raftdata.SnapshotMeta{}, nil, s.scriptErr("open snapshot", err)
	}
	str := func(i int) string {
		if i < len(vals) {
			v, _ := vals[i].(string)
			return v
		}
		return ""
	}
	if str(0) == "" || str(0) == "0" {
		return raftdata.SnapshotMeta{}, nil, fmt.Errorf("redis: open snapshot: %w", raft.ErrNoSnapshot)
	}
	var nums [3]uint64
	for i, f := range []int{1, 2, 4} {
		if nums[i], err = strconv.ParseUint(str(f), 10, 64); err != nil {
			return raftdata.SnapshotMeta{}, nil, corruptf("%s: snapshot %s metadata: %q", s.meta, str(0), str(f))
		}
	}
	meta := raftdata.SnapshotMeta{Index: nums[0], Term: nums[1]}
	if meta.Membership, err = raftdata.DecodeMembership([]byte(str(3))); err != nil {
		return raftdata.SnapshotMeta{}, nil, fmt.Errorf("redis: snapshot %s membership: %w", str(0), err)
	}
	return meta, &snapshotReader{s: s, id: str(0), key: s.chunkKey(str(0)), chunks: int64(nums[2])}, nil
}

// snapshotReader streams a snapshot's chunks in order.
type snapshotReader struct {
	s      *Storage
	id     string
	key    string
	chunks int64
	seq    int64
	buf    []byte
	closed bool
}

func (r *snapshotReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("redis: snapshot read: %w", raft.ErrClosed)
	}
	for len(r.buf) == 0 {
		if r.seq == r.chunks {
			return 0, io.EOF
		}
		if r.s.closed.Load() {
			return 0, fmt.Errorf("redis: snapshot read: %w", raft.ErrClosed)
		}
		b, err := r.s.c.LIndex(context.Background(), r.key, r.seq).Bytes()
		if isNil(err) {
			// Gone with its TTL if a newer snapshot replaced it; missing
			// from the latest snapshot, it is corruption.
			if cur, _ := r.s.c.HGet(context.Background(), r.s.meta, "snap").Result(); cur == r.id {
				return 0, corruptf("snapshot %s of %s lacks chunk %d of %d", r.id, r.s.tag, r.seq, r.chunks)
			}
			return 0, fmt.Errorf("redis: snapshot %s chunk %d: %w", r.id, r.seq, ErrSnapshotGone)
		}
		if err != nil {
			return 0, fmt.Errorf("redis: snapshot read: %w", err)
		}
		r.buf = b
		r.seq++
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Close ends the read.
func (r *snapshotReader) Close() error {
	r.closed = true
	r.buf = nil
	return nil
}
