package raft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/raftkit/raftkit/raft/internal/engine"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// applyTask is a batch of committed entries to apply.
type applyTask struct {
	batch engine.ApplyBatch
	// restore installs a snapshot received from the leader; snapshot asks
	// for a snapshot now (Node.Snapshot).
	restore  *restoreTask
	snapshot chan snapshotResult
	// at is when the loop learned the batch was committed; set only when
	// tracing.
	at time.Time
}

// applier applies committed entries to the state machine on its own
// goroutine, strictly in index order and in batches, then completes the
// futures of the proposals they carry and the reads waiting for them.
type applier struct {
	n       *Node
	applied atomic.Uint64

	mu      sync.Mutex
	tasks   []applyTask
	pending []*Future // registered proposals, ascending index
	// npending is len(pending), readable without the lock: the loop's
	// sign that several writers are active.
	npending atomic.Int64
	reads    []*readRequest
	signal   chan struct{}

	normal  []raftdata.Entry
	results []any
	// deferred holds committed ranges that wait for a snapshot restore
	// queued behind them: their head was discarded from storage by the
	// snapshot's Commit, and they are applied, past the snapshot, once it
	// is restored (see apply).
	deferred []engine.ApplyBatch
	// committedAt is the current batch's applyTask.at.
	committedAt time.Time

	// What a snapshot taken now would describe: the term and membership
	// at the applied index.
	appliedTerm uint64
	membership  raftdata.Membership
	// lastSnapshot is the latest snapshot's index; snapshotting is set
	// while one is written; installing counts received snapshots being
	// committed or restored.
	lastSnapshot    atomic.Uint64
	snapshotting    atomic.Bool
	installing      atomic.Int64
	snapshotWaiters []chan snapshotResult
}

func newApplier(n *Node, applied uint64, snap raftdata.SnapshotMeta) *applier {
	a := &applier{n: n, signal: make(chan struct{}, 1)}
	a.applied.Store(applied)
	a.lastSnapshot.Store(snap.Index)
	a.appliedTerm = snap.Term
	a.membership = snap.Membership.Clone()
	return a
}

func (a *applier) wake() {
	select {
	case a.signal <- struct{}{}:
	default:
	}
}

func (a *applier) enqueue(t applyTask) {
	a.mu.Lock()
	a.tasks = append(a.tasks, t)
	a.mu.Unlock()
	a.wake()
}

// register records proposals just appended at consecutive indexes from
// first in term. Proposals already registered at or after first were
// appended by this node in an earlier term and have since been truncated
// from its log (another leader overwrote them before this node led again).
// They stay pending: another node may still hold such an entry and commit
// it as a later leader (§5.4.2, figure 8), so only the entry finally
// committed at their index tells whether they were applied (complete
// compares its term). The queue stays sorted by index; equal indexes keep
// their append order.
func (a *applier) register(fs []*Future) {
	a.mu.Lock()
	defer a.mu.Unlock()
	first := fs[0].index
	k := len(a.pending)
	for k > 0 && a.pending[k-1].index >= first {
		k--
	}
	if k == len(a.pending) {
		a.pending = append(a.pending, fs...)
		a.npending.Store(int64(len(a.pending)))
		return
	}
	stale := slices.Clone(a.pending[k:]) // merged below overwrites them in place
	merged := a.pending[:k]
	i, j := 0, 0
	for i < len(stale) || j < len(fs) {
		if j == len(fs) || (i < len(stale) && stale[i].index <= fs[j].index) {
			merged = append(merged, stale[i])
			i++
		} else {
			merged = append(merged, fs[j])
			j++
		}
	}
	a.pending = merged
	a.npending.Store(int64(len(a.pending)))
}

// waitRead completes r once the state machine has applied r.index.
func (a *applier) waitRead(r *readRequest) {
	if a.applied.Load() >= r.index {
		r.finish(r.index, nil)
		return
	}
	a.mu.Lock()
	a.reads = append(a.reads, r)
	a.mu.Unlock()
	// The index may have been applied between the check and the append.
	a.wake()
}

func (a *applier) run() {
	defer a.n.wg.Done()
	var tasks []applyTask
	for {
		select {
		case <-a.signal:
		case <-a.n.stopping:
			a.failAll(ErrStopped)
			return
		}
		a.n.waitHeld()
		var err error
		if tasks, err = a.applyQueued(tasks); err != nil {
			return
		}
	}
}

// applyQueued applies every queued batch and releases the reads they
// satisfy, reusing buf for the task list. On a state machine failure it
// stops the node and fails everything waiting.
func (a *applier) applyQueued(buf []applyTask) ([]applyTask, error) {
	a.mu.Lock()
	tasks := a.tasks
	a.tasks = buf[:0]
	a.mu.Unlock()
	for _, t := range tasks {
		var err error
		switch {
		case t.restore != nil:
			if err = a.restore(t.restore); err == nil {
				err = a.applyDeferred()
			}
		case t.snapshot != nil:
			a.takeSnapshot(t.snapshot)
		default:
			a.committedAt = t.at
			err = a.apply(t.batch)
		}
		if err != nil {
			a.n.fail(err)
			a.failAll(err)
			return nil, err
		}
	}
	clear(tasks)
	a.releaseReads()
	a.maybeSnapshot()
	return tasks[:0], nil
}

// hasWork reports whether batches are queued or a waiting read can be
// released.
func (a *applier) hasWork() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.tasks) > 0 {
		return true
	}
	for _, r := range a.reads {
		if r.index <= a.applied.Load() {
			return true
		}
	}
	return false
}

// apply applies one committed range, reading from storage the head that
// was no longer cached.
func (a *applier) apply(b engine.ApplyBatch) error {
	if b.Hi <= a.applied.Load() {
		return nil
	}
	if len(a.deferred) > 0 {
		// An earlier range waits for a restore: nothing may be applied
		// before it (index order).
		a.deferred = append(a.deferred, b)
		if a.installing.Load() == 0 {
			// No restore is coming after all (the install failed): try
			// again, and fail loudly if storage still lacks the entries.
			return a.applyDeferred()
		}
		return nil
	}
	lo := max(b.Lo, a.applied.Load()+1)
	ents := b.Entries
	for len(ents) > 0 && ents[0].Index < lo {
		ents = ents[1:]
	}
	for lo < b.Hi+1 && (len(ents) == 0 || lo < ents[0].Index) {
		hi := b.Hi + 1
		if len(ents) > 0 {
			hi = ents[0].Index
		}
		head, err := a.n.store.Entries(context.Background(), lo, hi, 4<<20)
		if errors.Is(err, ErrCompacted) && a.installing.Load() > 0 {
			// A snapshot from the leader replaced these entries (its
			// Commit discarded the stored log); its restore, queued behind
			// this batch, covers them up to the snapshot's index. The
			// engine counts the whole batch as handed over, so what lies
			// past the snapshot must not be dropped with the head: keep
			// the rest of the range and apply it after the restore.
			a.deferred = append(a.deferred, engine.ApplyBatch{Lo: lo, Hi: b.Hi, Entries: ents})
			return nil
		}
		if err != nil {
			return fmt.Errorf("raft: reading committed entries [%d, %d): %w", lo, hi, err)
		}
		if len(head) == 0 || head[0].Index != lo {
			return fmt.Errorf("%w: storage returned no entry at %d", ErrCorrupt, lo)
		}
		if err := a.applyEntries(head); err != nil {
			return err
		}
		lo = head[len(head)-1].Index + 1
	}
	if len(ents) == 0 {
		return nil
	}
	return a.applyEntries(ents)
}

// applyDeferred applies, after a restore, the ranges that waited for it:
// apply skips what the snapshot covered and reads from storage what the
// batch did not carry.
func (a *applier) applyDeferred() error {
	batches := a.deferred
	a.deferred = nil
	for i, b := range batches {
		if err := a.apply(b); err != nil {
			return err
		}
		if len(a.deferred) > 0 {
			// Compacted again: another snapshot's restore is queued.
			a.deferred = append(a.deferred, batches[i+1:]...)
			return nil
		}
	}
	return nil
}

func (a *applier) applyEntries(ents []raftdata.Entry) error {
	a.normal = a.normal[:0]
	for i := range ents {
		switch ents[i].Type {
		case raftdata.EntryNormal:
			a.normal = append(a.normal, ents[i])
		case raftdata.EntryConfig:
			if m, err := raftdata.DecodeMembership(ents[i].Data); err == nil {
				a.membership = m
			}
		}
	}
	a.appliedTerm = ents[len(ents)-1].Term
	if cap(a.results) < len(a.normal) {
		a.results = make([]any, len(a.normal))
	}
	results := a.results[:len(a.normal)]
	if len(a.normal) > 0 {
		var span trace.Span
		if a.n.trace.on() {
			_, span = a.n.trace.start(context.Background(), "raft.apply", attribute.Int("raft.entries", len(a.normal)),
				attribute.Int64("raft.first_index", int64(a.normal[0].Index)), attribute.Int64("raft.last_index", int64(a.normal[len(a.normal)-1].Index)))
		}
		err := a.n.cfg.StateMachine.Apply(a.normal, results)
		if span != nil {
			end(span, err)
		}
		if err != nil {
			return fmt.Errorf("raft: state machine failed at index %d: %w", a.normal[0].Index, err)
		}
	}
	last := ents[len(ents)-1].Index
	a.applied.Store(last)
	a.complete(ents, results)
	clear(results)
	clear(a.normal)
	return nil
}

// complete answers the proposals whose entries were just applied. A
// proposal whose index holds a committed entry of another term was
// overwritten by another leader: it was not applied and is reported
// dropped.
func (a *applier) complete(ents []raftdata.Entry, results []any) {
	last := ents[len(ents)-1].Index
	a.mu.Lock()
	k := 0
	for k < len(a.pending) && a.pending[k].index <= last {
		k++
	}
	done := a.pending[:k:k]
	a.pending = a.pending[k:]
	a.npending.Store(int64(len(a.pending)))
	a.mu.Unlock()
	if k == 0 {
		return
	}
	first := ents[0].Index
	r := 0 // position in results, which has one slot per normal entry
	i := 0
	for _, f := range done {
		if f.index < first {
			// Its index was applied without it being matched: nothing
			// tells whether its entry was the one applied.
			f.finish(nil, ErrOutcomeUnknown)
			continue
		}
		for i < len(ents) && ents[i].Index < f.index {
			if ents[i].Type == raftdata.EntryNormal {
				r++
			}
			i++
		}
		e := &ents[i]
		if e.Term != f.term || e.Type != raftdata.EntryNormal {
			f.finish(nil, ErrProposalDropped)
			continue
		}
		if f.span != nil {
			f.committed(a.committedAt)
		}
		f.finish(results[r], nil)
	}
}

func (a *applier) releaseReads() {
	applied := a.applied.Load()
	a.mu.Lock()
	k := 0
	var ready []*readRequest
	for _, r := range a.reads {
		if r.index <= applied {
			ready = append(ready, r)
		} else {
			a.reads[k] = r
			k++
		}
	}
	clear(a.reads[k:])
	a.reads = a.reads[:k]
	a.mu.Unlock()
	for _, r := range ready {
		r.finish(r.index, nil)
	}
}

func (a *applier) failAll(err error) {
	a.mu.Lock()
	pending, reads := a.pending, a.reads
	a.pending, a.reads = nil, nil
	a.npending.Store(0)
	a.mu.Unlock()
	for _, f := range pending {
		f.finish(nil, err)
	}
	for _, r := range reads {
		r.finish(0, err)
	}
}

// Applied returns the index of the last entry applied to the state machine.
func (n *Node) Applied() uint64 { return n.applier.applied.Load() }
