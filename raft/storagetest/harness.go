package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"testing"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Contracts of the operations the checks use to set a store up. A check
// reports a failing setup step under the operation's own contract, and what
// it observes afterwards under the contract it checks.
const (
	cInitialState = "InitialState: must succeed on an open store"
	cSave         = "Save: a batch starting in [FirstIndex, LastIndex+1] must be accepted"
	cCreate       = "CreateSnapshot: must succeed"
	cWrite        = "SnapshotWriter.Write: must accept the snapshot's bytes"
	cCommit       = "SnapshotWriter.Commit: must succeed"
	cCompact      = "Compact: compacting up to the snapshot index must succeed"
	cOpen         = "OpenSnapshot: must return the latest committed snapshot"
	cClose        = "Close: must succeed"
	cReopen       = "Reopen: the store must open again"

	cTerm0         = "Term: index 0 must have term 0 while nothing is compacted and there is no snapshot"
	cTermSnap      = "Term: must answer for the snapshot index even after compaction"
	cTermCompacted = "Term: an index before FirstIndex, other than the snapshot index, must fail with ErrCompacted"
	cTermAfter     = "Term: an index after LastIndex must fail with ErrUnavailable"
)

// harness is one check's store and the model of what it must hold.
type harness struct {
	t   *testing.T
	f   Factory
	ctx context.Context
	s   raft.Storage // nil while reopening
	m   model
	// initial is what InitialState reported when the store was opened.
	initial raft.State
	// note, when set, is appended to failure messages.
	note string
}

// newHarness opens a new store, registers its Close and calls InitialState,
// as the runtime does first.
func newHarness(t *testing.T, f Factory) *harness {
	t.Helper()
	h := &harness{t: t, f: f, ctx: t.Context(), m: model{first: 1}}
	h.s = f.New(t)
	if h.s == nil {
		t.Fatal("Factory.New: must return a store: got nil")
	}
	t.Cleanup(func() {
		if h.s != nil {
			if err := h.s.Close(); err != nil {
				t.Errorf("%s: %v", cClose, err)
			}
		}
	})
	h.initial = h.initialState()
	return h
}

// fatalf fails the check with a message that starts with the contract
// broken and ends with the harness's note, if any.
func (h *harness) fatalf(contract, format string, args ...any) {
	h.t.Helper()
	msg := contract + ": " + fmt.Sprintf(format, args...)
	if h.note != "" {
		msg += " (" + h.note + ")"
	}
	h.t.Fatal(msg)
}

func (h *harness) initialState() raft.State {
	h.t.Helper()
	st, err := h.s.InitialState(h.ctx)
	if err != nil {
		h.fatalf(cInitialState, "%v", err)
	}
	return st
}

// reopen reopens the store, as after a restart, and returns what its
// InitialState reports.
func (h *harness) reopen() raft.State {
	h.t.Helper()
	old := h.s
	h.s = nil // Reopen closes it
	s := h.f.Reopen(h.t, old)
	if s == nil {
		h.fatalf(cReopen, "Factory.Reopen returned nil")
	}
	h.s = s
	h.initial = h.initialState()
	return h.initial
}

// reopenAndCheck reopens the store and checks that it holds exactly what the
// model holds: hard state, snapshot, bounds, entries and terms.
func (h *harness) reopenAndCheck(contract string) {
	h.t.Helper()
	h.checkState(contract, h.reopen())
	h.verify(contract)
	h.checkSnapshot(contract)
}

// save saves entries and hs and records them in the model.
func (h *harness) save(hs *raftdata.HardState, entries []raftdata.Entry) {
	h.t.Helper()
	// Record first: the check may change entries once Save returns.
	h.m.save(hs, entries)
	if err := h.s.Save(h.ctx, hs, entries); err != nil {
		h.fatalf(cSave, "Save(hs %v, entries %s): %v", fmtHS(hs), fmtRange(entries), err)
	}
}

// createSnapshot starts a snapshot and writes data to it in pieces of
// varying sizes.
func (h *harness) createSnapshot(meta raftdata.SnapshotMeta, data []byte) raft.SnapshotWriter {
	h.t.Helper()
	w, err := h.s.CreateSnapshot(h.ctx, cloneMeta(meta))
	if err != nil {
		h.fatalf(cCreate, "CreateSnapshot(index %d, term %d): %v", meta.Index, meta.Term, err)
	}
	if err := writeInPieces(w, data); err != nil {
		_ = w.Abort()
		h.fatalf(cWrite, "snapshot at index %d: %v", meta.Index, err)
	}
	return w
}

// commit commits w, which createSnapshot returned for meta and data, and
// records the snapshot in the model.
func (h *harness) commit(w raft.SnapshotWriter, meta raftdata.SnapshotMeta, data []byte) {
	h.t.Helper()
	if err := w.Commit(h.ctx); err != nil {
		h.fatalf(cCommit, "snapshot at index %d, term %d: %v", meta.Index, meta.Term, err)
	}
	h.m.commitSnapshot(meta, data)
}

// snapshot writes and commits a snapshot.
func (h *harness) snapshot(meta raftdata.SnapshotMeta, data []byte) {
	h.t.Helper()
	h.commit(h.createSnapshot(meta, data), meta, data)
}

// compact compacts the log and records it in the model.
func (h *harness) compact(upTo uint64) {
	h.t.Helper()
	if err := h.s.Compact(h.ctx, upTo); err != nil {
		h.fatalf(cCompact, "Compact(%d) with the snapshot at %d: %v", upTo, h.m.snap.Index, err)
	}
	h.m.compact(upTo)
}

// entries calls Entries and fails unless it succeeds.
func (h *harness) entries(contract string, lo, hi uint64, maxBytes int) []raftdata.Entry {
	h.t.Helper()
	es, err := h.s.Entries(h.ctx, lo, hi, maxBytes)
	if err != nil {
		h.fatalf(contract, "Entries(%d, %d, %d): %v", lo, hi, maxBytes, err)
	}
	return es
}

// wantEntries checks that Entries(lo, hi, 0) returns want.
func (h *harness) wantEntries(contract string, lo, hi uint64, want []raftdata.Entry) {
	h.t.Helper()
	got := h.entries(contract, lo, hi, 0)
	if d := diffEntries(got, want); d != "" {
		h.fatalf(contract, "Entries(%d, %d, 0): %s", lo, hi, d)
	}
}

// wantEntriesErr checks that Entries(lo, hi, 0) fails with an error wrapping
// want.
func (h *harness) wantEntriesErr(contract string, lo, hi uint64, want error) {
	h.t.Helper()
	es, err := h.s.Entries(h.ctx, lo, hi, 0)
	if !errors.Is(err, want) {
		h.fatalf(contract, "Entries(%d, %d, 0) = %d entries, error %v; want an error wrapping %q",
			lo, hi, len(es), err, want)
	}
}

// wantTerm checks that Term(index) returns want.
func (h *harness) wantTerm(contract string, index, want uint64) {
	h.t.Helper()
	got, err := h.s.Term(h.ctx, index)
	if err != nil || got != want {
		h.fatalf(contract, "Term(%d) = %d, %v; want %d, nil", index, got, err, want)
	}
}

// wantTermErr checks that Term(index) fails with an error wrapping want.
func (h *harness) wantTermErr(contract string, index uint64, want error) {
	h.t.Helper()
	got, err := h.s.Term(h.ctx, index)
	if !errors.Is(err, want) {
		h.fatalf(contract, "Term(%d) = %d, %v; want an error wrapping %q", index, got, err, want)
	}
}

// verify checks the store's log against the model through Entries and Term:
// the bounds (by the errors just outside them), every entry, and the term of
// every index from FirstIndex-1 to LastIndex+1. What follows from the check's
// operations is reported under contract; a broken general rule of Term is
// reported under that rule, naming the check it broke in.
func (h *harness) verify(contract string) {
	h.t.Helper()
	m := &h.m
	first, last := m.first, m.last()
	h.note = fmt.Sprintf("FirstIndex must now be %d and LastIndex %d", first, last)
	defer func() { h.note = "" }()
	if len(m.ents) > 0 {
		h.wantEntries(contract, first, last+1, m.ents)
	}
	h.wantEntries(contract, last+1, last+1, nil)
	h.wantEntriesErr(contract, first, last+2, raft.ErrUnavailable)
	h.wantEntriesErr(contract, last+1, last+2, raft.ErrUnavailable)
	h.wantTermErr(contract, last+1, raft.ErrUnavailable)
	if first > 1 {
		h.wantEntriesErr(contract, first-1, last+1, raft.ErrCompacted)
	}
	for i := first; i <= last; i++ {
		h.wantTerm(contract, i, m.ents[i-first].Term)
	}
	h.note = "in a store where " + h.note + ", checking " + strconv.Quote(contract)
	switch {
	case first-1 == m.snap.Index && first == 1:
		h.wantTerm(cTerm0, 0, 0)
	case first-1 == m.snap.Index:
		h.wantTerm(cTermSnap, first-1, m.snap.Term)
	case first > 1:
		h.wantTermErr(cTermCompacted, first-1, raft.ErrCompacted)
	}
	if m.snap.Index > 0 && m.snap.Index >= first && m.snap.Index <= last {
		h.wantTerm(cTermSnap, m.snap.Index, m.snap.Term)
	}
}

// checkState checks what InitialState reported against the model.
func (h *harness) checkState(contract string, st raft.State) {
	h.t.Helper()
	m := &h.m
	if st.HardState != m.hs {
		h.fatalf(contract, "InitialState().HardState = %+v, want %+v", st.HardState, m.hs)
	}
	if !metaEqual(st.Snapshot, m.snap) {
		h.fatalf(contract, "InitialState().Snapshot = %+v, want %+v", st.Snapshot, m.snap)
	}
	if st.FirstIndex != m.first || st.LastIndex != m.last() {
		h.fatalf(contract, "InitialState() bounds = [%d, %d], want [%d, %d]",
			st.FirstIndex, st.LastIndex, m.first, m.last())
	}
}

// checkSnapshot checks that OpenSnapshot returns the model's snapshot, or
// fails with ErrNoSnapshot if the model has none.
func (h *harness) checkSnapshot(contract string) {
	h.t.Helper()
	if h.m.snap.Index == 0 {
		_, rc, err := h.s.OpenSnapshot(h.ctx)
		if err == nil {
			_ = rc.Close()
		}
		if !errors.Is(err, raft.ErrNoSnapshot) {
			h.fatalf(contract, "OpenSnapshot with no snapshot committed: error %v, want an error wrapping %q",
				err, raft.ErrNoSnapshot)
		}
		return
	}
	h.wantSnapshot(contract, h.m.snap, h.m.snapData)
}

// wantSnapshot checks that OpenSnapshot returns meta and data.
func (h *harness) wantSnapshot(contract string, meta raftdata.SnapshotMeta, data []byte) {
	h.t.Helper()
	got, rc, err := h.s.OpenSnapshot(h.ctx)
	if err != nil {
		h.fatalf(contract, "OpenSnapshot: %v", err)
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		h.fatalf(contract, "reading the snapshot at index %d: %v", meta.Index, err)
	}
	if !metaEqual(got, meta) {
		h.fatalf(contract, "OpenSnapshot meta = %+v, want %+v", got, meta)
	}
	if d := diffBytes(b, data); d != "" {
		h.fatalf(contract, "snapshot at index %d: %s", meta.Index, d)
	}
}

// model is what a store must hold after the operations a check performed.
type model struct {
	hs       raftdata.HardState
	snap     raftdata.SnapshotMeta
	snapData []byte
	first    uint64           // FirstIndex
	ents     []raftdata.Entry // FirstIndex..LastIndex, deep copies
}

func (m *model) last() uint64 { return m.first + uint64(len(m.ents)) - 1 }

func (m *model) save(hs *raftdata.HardState, entries []raftdata.Entry) {
	if hs != nil {
		m.hs = *hs
	}
	if len(entries) == 0 {
		return
	}
	at := entries[0].Index - m.first
	m.ents = append(m.ents[:at:at], cloneEntries(entries)...)
}

func (m *model) commitSnapshot(meta raftdata.SnapshotMeta, data []byte) {
	i := meta.Index
	if i < m.first || i > m.last() || m.ents[i-m.first].Term != meta.Term {
		m.ents, m.first = nil, i+1
	}
	m.snap, m.snapData = cloneMeta(meta), data
}

func (m *model) compact(upTo uint64) {
	if upTo < m.first {
		return
	}
	m.ents = slices.Clone(m.ents[upTo+1-m.first:])
	m.first = upTo + 1
}

// writeInPieces writes data to w in pieces of varying sizes, the way a state
// machine streams a snapshot.
func writeInPieces(w io.Writer, data []byte) error {
	sizes := []int{1, 7, 4096, 64<<10 + 3, 1 << 20}
	for i := 0; len(data) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(data))
		k, err := w.Write(data[:n])
		if err == nil && k != n {
			err = fmt.Errorf("short write: %d of %d bytes", k, n)
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func cloneEntries(es []raftdata.Entry) []raftdata.Entry {
	out := make([]raftdata.Entry, len(es))
	for i, e := range es {
		e.Data = bytes.Clone(e.Data)
		out[i] = e
	}
	return out
}

func cloneMeta(m raftdata.SnapshotMeta) raftdata.SnapshotMeta {
	m.Membership = m.Membership.Clone()
	return m
}

// metaEqual compares snapshot metadata; nil and empty member lists are
// equal.
func metaEqual(a, b raftdata.SnapshotMeta) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Membership.Equal(&b.Membership)
}

// diffEntries describes the first difference between got and want, or
// returns "". Nil and empty Data are equal.
func diffEntries(got, want []raftdata.Entry) string {
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.Index != w.Index || g.Term != w.Term || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) {
			return fmt.Sprintf("entry #%d is %s, want %s", i, fmtEntry(g), fmtEntry(w))
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("got %d entries %s, want %d entries %s", len(got), fmtRange(got), len(want), fmtRange(want))
	}
	return ""
}

// diffBytes describes the first difference between got and want, or
// returns "".
func diffBytes(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("bytes differ at offset %d of %d", i, len(want))
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("got %d bytes, want %d", len(got), len(want))
	}
	return ""
}

func fmtEntry(e raftdata.Entry) string {
	d := e.Data
	if len(d) > 24 {
		d = d[:24]
	}
	return fmt.Sprintf("{Index %d, Term %d, Type %v, %d bytes of Data %q}", e.Index, e.Term, e.Type, len(e.Data), d)
}

func fmtRange(es []raftdata.Entry) string {
	if len(es) == 0 {
		return "[]"
	}
	return fmt.Sprintf("[%d..%d]", es[0].Index, es[len(es)-1].Index)
}

func fmtHS(hs *raftdata.HardState) string {
	if hs == nil {
		return "nil"
	}
	return fmt.Sprintf("%+v", *hs)
}
