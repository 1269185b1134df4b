package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"sync"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// op is a write to the store, as it travels in the log (JSON: small,
// readable in a log dump, and this example is about the wiring).
type op struct {
	Kind  string `json:"k"` // put, delete, cas, addr
	Key   string `json:"key,omitempty"`
	Node  uint64 `json:"node,omitempty"` // addr: the node whose HTTP address Value is
	Value []byte `json:"v,omitempty"`    // any bytes (base64 in the JSON)
	Old   []byte `json:"old,omitempty"`  // cas: the value expected
	If    string `json:"if,omitempty"`   // cas: casEqual or casAbsent; "" in commands written before it existed
}

// The conditions of a cas.
const (
	// casEqual swaps if the key holds Old.
	casEqual = "equal"
	// casAbsent swaps if the key is absent.
	casAbsent = "absent"
)

// store is the replicated map, and the members' HTTP addresses recorded by
// admin requests. Apply runs on the node's apply goroutine; HTTP handlers
// read under the lock.
type store struct {
	mu   sync.RWMutex
	data map[string]string
	http map[uint64]string
}

func newStore() *store { return &store{data: map[string]string{}, http: map[uint64]string{}} }

// Apply applies writes. A put or delete returns nil; a cas returns whether
// it swapped. A command that does not decode fails alone (its result is
// the error), as a bad request must not stop the node.
func (s *store) Apply(ents []raftdata.Entry, results []any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range ents {
		var o op
		if err := json.Unmarshal(e.Data, &o); err != nil {
			results[i] = fmt.Errorf("bad command: %w", err)
			continue
		}
		switch o.Kind {
		case "put":
			s.data[o.Key] = string(o.Value)
		case "delete":
			delete(s.data, o.Key)
		case "cas":
			cur, ok := s.data[o.Key]
			var swapped bool
			switch o.If {
			case casEqual:
				swapped = ok && cur == string(o.Old)
			case casAbsent:
				swapped = !ok
			case "":
				// Written before conditions were explicit: an empty Old
				// also matched an absent key. Kept as it was, as the log
				// is replayed.
				swapped = (ok && cur == string(o.Old)) || (!ok && len(o.Old) == 0)
			default:
				results[i] = fmt.Errorf("bad cas condition %q", o.If)
				continue
			}
			if swapped {
				s.data[o.Key] = string(o.Value)
			}
			results[i] = swapped
		case "addr":
			s.http[o.Node] = string(o.Value)
		default:
			results[i] = fmt.Errorf("bad command kind %q", o.Kind)
		}
	}
	return nil
}

func (s *store) get(key string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.data[key]
	return v, ok
}

// httpAddr returns node's recorded HTTP address.
func (s *store) httpAddr(node uint64) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.http[node]
	return a, ok
}

// Snapshot copies the maps (a real service would use a copy-on-write
// structure or a database snapshot).
func (s *store) Snapshot() (raft.Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return &storeSnapshot{Version: 2, Data: maps.Clone(s.data), HTTP: maps.Clone(s.http)}, nil
}

// Restore reads a snapshot; one written before HTTP addresses were
// recorded is the bare map of keys.
func (s *store) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("kv snapshot: %w", err)
	}
	var snap storeSnapshot
	if err := json.Unmarshal(b, &snap); err != nil || snap.Version < 2 {
		snap = storeSnapshot{}
		if err := json.Unmarshal(b, &snap.Data); err != nil {
			return fmt.Errorf("kv snapshot: %w", err)
		}
	}
	if snap.Data == nil {
		snap.Data = map[string]string{}
	}
	if snap.HTTP == nil {
		snap.HTTP = map[uint64]string{}
	}
	s.mu.Lock()
	s.data, s.http = snap.Data, snap.HTTP
	s.mu.Unlock()
	return nil
}

// storeSnapshot is the snapshot's JSON form.
type storeSnapshot struct {
	Version int               `json:"version"`
	Data    map[string]string `json:"data"`
	HTTP    map[uint64]string `json:"http,omitempty"`
}

func (m *storeSnapshot) WriteTo(w io.Writer) (int64, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

func (*storeSnapshot) Release() {}
