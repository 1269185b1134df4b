package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"sync"

	"github.com/raftkit/raftkit/raft"
)

// op is a write to the store, as it travels in the log (JSON: small,
// readable in a log dump, and this example is about the wiring).
type op struct {
	Kind  string `json:"k"` // put, delete, cas
	Key   string `json:"key"`
	Value []byte `json:"v,omitempty"`   // any bytes (base64 in the JSON)
	Old   []byte `json:"old,omitempty"` // cas: the value expected
}

// store is the replicated map. Apply runs on the node's apply goroutine;
// HTTP handlers read under the lock.
type store struct {
	mu   sync.RWMutex
	data map[string]string
}

func newStore() *store { return &store{data: map[string]string{}} }

// Apply applies writes. A put or delete returns nil; a cas returns whether
// it swapped. A command that does not decode fails alone (its result is
// the error), as a bad request must not stop the node.
func (s *store) Apply(ents []raft.Entry, results []any) error {
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
			swapped := (ok && cur == string(o.Old)) || (!ok && len(o.Old) == 0)
			if swapped {
				s.data[o.Key] = string(o.Value)
			}
			results[i] = swapped
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

// Snapshot copies the map (a real service would use a copy-on-write
// structure or a database snapshot).
func (s *store) Snapshot() (raft.Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return mapSnapshot(maps.Clone(s.data)), nil
}

func (s *store) Restore(r io.Reader) error {
	data := map[string]string{}
	if err := json.NewDecoder(r).Decode(&data); err != nil {
		return fmt.Errorf("kv snapshot: %w", err)
	}
	s.mu.Lock()
	s.data = data
	s.mu.Unlock()
	return nil
}

type mapSnapshot map[string]string

func (m mapSnapshot) WriteTo(w io.Writer) (int64, error) {
	b, err := json.Marshal(map[string]string(m))
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

func (mapSnapshot) Release() {}
