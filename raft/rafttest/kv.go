package rafttest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// NoTrailing is raft.NoTrailingEntries, re-exported for test tables.
const NoTrailing = raft.NoTrailingEntries

// KVOp is an operation of the KV workload: a write (Put, CAS) goes through
// the log, a read (Get) through ReadIndex or a lease read.
type KVOp struct {
	Kind  KVKind
	Key   string
	Value string // Put: the value; CAS: the new value
	Old   string // CAS: the expected value
}

// KVKind names a KV operation.
type KVKind uint8

// KV operation kinds.
const (
	KVGet KVKind = iota + 1
	KVPut
	KVCAS
)

// Encode returns the command bytes of a write.
func (op KVOp) Encode() []byte {
	b := []byte{byte(op.Kind)}
	for _, s := range []string{op.Key, op.Value, op.Old} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// DecodeKVOp parses a command written by Encode.
func DecodeKVOp(b []byte) (KVOp, error) {
	if len(b) == 0 {
		return KVOp{}, fmt.Errorf("%w: empty kv command", raft.ErrCorrupt)
	}
	op := KVOp{Kind: KVKind(b[0])}
	b = b[1:]
	for _, s := range []*string{&op.Key, &op.Value, &op.Old} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return KVOp{}, fmt.Errorf("%w: truncated kv command", raft.ErrCorrupt)
		}
		*s = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if op.Kind != KVPut && op.Kind != KVCAS {
		return KVOp{}, fmt.Errorf("%w: kv command kind %d", raft.ErrCorrupt, op.Kind)
	}
	return op, nil
}

// KV is a replicated string map: the state machine of the linearizability
// workload. It embeds a Recorder, so the cluster's exactly-once and
// in-order checks apply to it too. A Put returns nil; a CAS returns whether
// it swapped.
type KV struct {
	*Recorder
	mu   sync.RWMutex
	data map[string]string
}

// NewKV returns an empty KV.
func NewKV() *KV { return &KV{Recorder: NewRecorder(), data: map[string]string{}} }

// Apply applies Put and CAS commands.
func (kv *KV) Apply(entries []raftdata.Entry, results []any) error {
	if err := kv.Recorder.Apply(entries, results); err != nil {
		return err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	for i, e := range entries {
		op, err := DecodeKVOp(e.Data)
		if err != nil {
			results[i] = err
			continue
		}
		switch op.Kind {
		case KVPut:
			kv.data[op.Key] = op.Value
			results[i] = nil
		case KVCAS:
			ok := kv.data[op.Key] == op.Old
			if ok {
				kv.data[op.Key] = op.Value
			}
			results[i] = ok
		}
	}
	return nil
}

// Get returns the value of key ("" when absent) as of the last applied
// entry.
func (kv *KV) Get(key string) string {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.data[key]
}

// Snapshot captures the map and the Recorder's history (so that the
// exactly-once checks survive a restore).
func (kv *KV) Snapshot() (raft.Snapshot, error) {
	rs, err := kv.Recorder.Snapshot()
	if err != nil {
		return nil, err
	}
	var rec bytes.Buffer
	if _, err := rs.WriteTo(&rec); err != nil {
		return nil, err
	}
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	b := binary.AppendUvarint(nil, uint64(rec.Len()))
	b = append(b, rec.Bytes()...)
	keys := make([]string, 0, len(kv.data))
	for k := range kv.data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(kv.data[k])))
		b = append(b, kv.data[k]...)
	}
	return bytesSnapshot(b), nil
}

// Restore replaces the map with a snapshot's.
func (kv *KV) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return fmt.Errorf("%w: kv snapshot", raft.ErrCorrupt)
	}
	if err := kv.Recorder.Restore(bytes.NewReader(b[k : k+int(n)])); err != nil {
		return err
	}
	b = b[k+int(n):]
	data := map[string]string{}
	for len(b) > 0 {
		var kvs [2]string
		for i := range kvs {
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k) {
				return fmt.Errorf("%w: kv snapshot", raft.ErrCorrupt)
			}
			kvs[i] = string(b[k : k+int(n)])
			b = b[k+int(n):]
		}
		data[kvs[0]] = kvs[1]
	}
	kv.mu.Lock()
	kv.data = data
	kv.mu.Unlock()
	return nil
}

type bytesSnapshot []byte

func (s bytesSnapshot) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, bytes.NewReader(s))
}

func (bytesSnapshot) Release() {}
