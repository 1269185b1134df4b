package rafttest

import (
	"context"
	"encoding/binary"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// simStore is a node's disk in the simulation: a memory store (its Save is
// the fsync boundary: a crash keeps what Save stored and loses everything
// the node had not yet handed to it) that checks log matching on every
// write. It keeps the chain hash of the log up to each index, so that two
// logs holding an entry with the same index and term can be compared in
// full at the cost of one hash per entry written.
type simStore struct {
	*memory.Storage
	s     *sim
	id    raftdata.NodeID
	chain []uint64 // chain[i] is the hash of the log up to index i
}

func (st *simStore) Save(ctx context.Context, hs *raftdata.HardState, ents []raftdata.Entry) error {
	if err := st.Storage.Save(ctx, hs, ents); err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].Index
	if uint64(len(st.chain)) > first {
		st.chain = st.chain[:first]
	}
	for uint64(len(st.chain)) < first {
		st.chain = append(st.chain, 0) // index 0, or a compacted prefix
	}
	var buf [24]byte
	for _, e := range ents {
		binary.LittleEndian.PutUint64(buf[0:], st.chain[e.Index-1])
		binary.LittleEndian.PutUint64(buf[8:], e.Term)
		binary.LittleEndian.PutUint64(buf[16:], hashBytes(e.Data)^uint64(e.Type))
		h := hashBytes(buf[:])
		st.chain = append(st.chain, h)
		key := [2]uint64{e.Index, e.Term}
		if prev, ok := st.s.checks.chain[key]; ok && prev != h {
			st.s.violate("log matching: node %d's log differs from another's at or before entry %d of term %d", st.id, e.Index, e.Term)
		}
		st.s.checks.chain[key] = h
	}
	return nil
}

// CreateSnapshot wraps the store's writer so that the chain of hashes
// follows a snapshot that replaces the log.
func (st *simStore) CreateSnapshot(ctx context.Context, meta raftdata.SnapshotMeta) (raft.SnapshotWriter, error) {
	w, err := st.Storage.CreateSnapshot(ctx, meta)
	if err != nil {
		return nil, err
	}
	return &simSnapshotWriter{SnapshotWriter: w, st: st, meta: meta}, nil
}

type simSnapshotWriter struct {
	raft.SnapshotWriter
	st   *simStore
	meta raftdata.SnapshotMeta
}

func (w *simSnapshotWriter) Commit(ctx context.Context) error {
	st := w.st
	kept, _ := st.Storage.Term(ctx, w.meta.Index)
	keeps := kept == w.meta.Term && w.meta.Index < uint64(len(st.chain))
	if err := w.SnapshotWriter.Commit(ctx); err != nil {
		return err
	}
	if keeps {
		return nil // the log holds the snapshot's last entry and stays
	}
	// The log is replaced by the snapshot: continue the chain from the
	// hash every node agrees on for its last entry.
	h, ok := st.s.checks.chain[[2]uint64{w.meta.Index, w.meta.Term}]
	if !ok {
		st.s.violate("node %d installed a snapshot ending at entry %d of term %d, which no node ever wrote", st.id, w.meta.Index, w.meta.Term)
	}
	st.chain = make([]uint64, w.meta.Index+1)
	st.chain[w.meta.Index] = h
	return nil
}
