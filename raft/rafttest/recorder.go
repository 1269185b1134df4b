package rafttest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Recorder is a StateMachine that records every command it applies and
// notes any violation of the apply contract: an index applied twice or out
// of order. Apply returns each command's index as its result.
type Recorder struct {
	mu         sync.Mutex
	applied    []raftdata.Entry
	violations []string
	// restores counts Restore calls, and restored is how many commands
	// the latest one brought: commands after it were applied here.
	restores, restored int
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Apply records entries.
func (r *Recorder) Apply(entries []raftdata.Entry, results []any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range entries {
		if n := len(r.applied); n > 0 && e.Index <= r.applied[n-1].Index {
			r.violations = append(r.violations, fmt.Sprintf("index %d applied after %d", e.Index, r.applied[n-1].Index))
		}
		if e.Type != raftdata.EntryNormal {
			r.violations = append(r.violations, fmt.Sprintf("index %d of type %v passed to Apply", e.Index, e.Type))
		}
		r.applied = append(r.applied, raftdata.Entry{Index: e.Index, Term: e.Term, Data: bytes.Clone(e.Data)})
		results[i] = e.Index
	}
	return nil
}

// Applied returns a copy of the applied commands, in order.
func (r *Recorder) Applied() []raftdata.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]raftdata.Entry(nil), r.applied...)
}

// AppliedSince returns a copy of the commands applied after the first k.
func (r *Recorder) AppliedSince(k int) []raftdata.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k >= len(r.applied) {
		return nil
	}
	return append([]raftdata.Entry(nil), r.applied[k:]...)
}

// Violations returns the contract violations seen so far.
func (r *Recorder) Violations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.violations...)
}

// Snapshot captures the applied commands.
func (r *Recorder) Snapshot() (raft.Snapshot, error) {
	return &recorderSnapshot{entries: r.Applied()}, nil
}

// Restore replaces the applied commands with a snapshot's.
func (r *Recorder) Restore(rd io.Reader) error {
	var entries []raftdata.Entry
	br := &byteReader{r: rd}
	for {
		idx, err := binary.ReadUvarint(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: recorder snapshot: %v", raft.ErrCorrupt, err)
		}
		term, err1 := binary.ReadUvarint(br)
		n, err2 := binary.ReadUvarint(br)
		if err1 != nil || err2 != nil || n > 1<<30 {
			return fmt.Errorf("%w: recorder snapshot: truncated", raft.ErrCorrupt)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(rd, data); err != nil {
			return fmt.Errorf("%w: recorder snapshot: %v", raft.ErrCorrupt, err)
		}
		entries = append(entries, raftdata.Entry{Index: idx, Term: term, Data: data})
	}
	r.mu.Lock()
	r.applied = entries
	r.restores++
	r.restored = len(entries)
	r.mu.Unlock()
	return nil
}

// restoreMark returns how many times the Recorder was restored, and how
// many of its commands the latest restore brought.
func (r *Recorder) restoreMark() (restores, restored int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restores, r.restored
}

type recorderSnapshot struct{ entries []raftdata.Entry }

func (s *recorderSnapshot) WriteTo(w io.Writer) (int64, error) {
	var buf []byte
	for _, e := range s.entries {
		buf = binary.AppendUvarint(buf, e.Index)
		buf = binary.AppendUvarint(buf, e.Term)
		buf = binary.AppendUvarint(buf, uint64(len(e.Data)))
		buf = append(buf, e.Data...)
	}
	n, err := w.Write(buf)
	return int64(n), err
}

func (s *recorderSnapshot) Release() {}

type byteReader struct{ r io.Reader }

func (b *byteReader) ReadByte() (byte, error) {
	var p [1]byte
	_, err := io.ReadFull(b.r, p[:])
	return p[0], err
}
