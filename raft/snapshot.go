package raft

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/raftkit/raftkit/raft/internal/engine"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Snapshots on the runtime side. The applier captures a point-in-time view
// of the state machine (StateMachine.Snapshot) between two batches; the
// bytes are written out concurrently with further applies; the persister,
// which serializes every storage write, commits the snapshot and compacts
// the log. A follower's incoming chunks also go through the persister, and
// its state machine is restored on the applier, in order with apply.

// ErrOutcomeUnknown is returned for a proposal whose entry was covered by a
// snapshot received from the leader before it was applied here: it may or
// may not have been applied.
var ErrOutcomeUnknown = errors.New("raft: outcome unknown (state replaced by a snapshot)")

// snapshotCounters are the snapshot metrics.
type snapshotCounters struct {
	taken, sent, received atomic.Uint64
}

// ownSnapshot is this node's snapshot, written and waiting to be committed.
type ownSnapshot struct {
	w      SnapshotWriter
	meta   raftdata.SnapshotMeta
	waiter chan snapshotResult
}

type snapshotResult struct {
	index uint64
	err   error
}

// snapshotDone is posted to the loop when an own snapshot finished.
type snapshotDone struct {
	meta      raftdata.SnapshotMeta
	compacted uint64
	err       error
	waiter    chan snapshotResult
	// superseded is set, to the installed snapshot's index, when the own
	// snapshot was dropped because one from the leader at or past it was
	// installed meanwhile.
	superseded uint64
}

// restoreTask asks the applier to restore the state machine from the
// snapshot just installed from leader.
type restoreTask struct {
	leader raftdata.NodeID
	meta   raftdata.SnapshotMeta
}

// snapshotInstalled is posted to the loop once a received snapshot is
// durable and restored.
type snapshotInstalled struct {
	leader raftdata.NodeID
	meta   raftdata.SnapshotMeta
}

// Snapshot takes a snapshot of the state machine now, commits it and
// compacts the log, and returns its index. If one is already being taken,
// it waits for that one.
func (n *Node) Snapshot(ctx context.Context) (uint64, error) {
	waiter := make(chan snapshotResult, 1)
	n.applier.enqueue(applyTask{snapshot: waiter})
	select {
	case r := <-waiter:
		return r.index, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("raft: waiting for snapshot: %w", ctx.Err())
	case <-n.stopping:
		return 0, ErrStopped
	}
}

// maybeSnapshot takes a snapshot once the policy says so.
func (a *applier) maybeSnapshot() {
	every := a.n.cfg.SnapshotEntries
	if every > 0 && !a.snapshotting.Load() && a.applied.Load() >= a.lastSnapshot.Load()+uint64(every) {
		a.takeSnapshot(nil)
	}
}

// takeSnapshot captures the state machine on the applier goroutine (no
// Apply runs meanwhile) and writes it out concurrently.
func (a *applier) takeSnapshot(waiter chan snapshotResult) {
	applied := a.applied.Load()
	// The flag is read and the waiter queued under the lock that
	// snapshotFinished holds to take the waiters and clear the flag, so a
	// waiter is never queued after the last snapshot's waiters were taken.
	a.mu.Lock()
	if a.snapshotting.Load() {
		if waiter != nil {
			a.snapshotWaiters = append(a.snapshotWaiters, waiter)
		}
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	if applied <= a.lastSnapshot.Load() {
		if waiter != nil {
			waiter <- snapshotResult{index: a.lastSnapshot.Load()}
		}
		return
	}
	s, err := a.n.cfg.StateMachine.Snapshot()
	if err != nil {
		a.n.log.Error("state machine snapshot failed", "err", err)
		if waiter != nil {
			waiter <- snapshotResult{err: fmt.Errorf("raft: state machine snapshot: %w", err)}
		}
		return
	}
	meta := raftdata.SnapshotMeta{Index: applied, Term: a.appliedTerm, Membership: a.membership.Clone()}
	a.snapshotting.Store(true)
	n := a.n
	write := func() {
		ctx := context.Background()
		var span trace.Span
		if n.trace.on() {
			_, span = n.trace.start(ctx, "raft.snapshot.write", attribute.Int64("raft.index", int64(meta.Index)))
		}
		w, err := n.store.CreateSnapshot(ctx, meta)
		if err != nil {
			n.watch.failed(err)
			if isPermanent(err) {
				n.storageFailedFor("snapshot create", err)
			}
		}
		var size int64
		if err == nil {
			if size, err = s.WriteTo(w); err != nil {
				_ = w.Abort()
			}
		}
		s.Release()
		if span != nil {
			span.SetAttributes(attribute.Int64("raft.bytes", size))
			end(span, err)
		}
		if err != nil {
			n.post(loopEvent{snapshotDone: &snapshotDone{meta: meta, err: fmt.Errorf("raft: writing snapshot %d: %w", meta.Index, err), waiter: waiter}})
			return
		}
		n.persister.enqueue(persistJob{own: &ownSnapshot{w: w, meta: meta, waiter: waiter}})
	}
	if n.manual {
		write()
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		write()
	}()
}

// snapshotFinished runs on the loop when an own snapshot is committed (or
// failed).
func (n *Node) snapshotFinished(d *snapshotDone) {
	a := n.applier
	switch {
	case d.superseded > 0:
		n.log.Info("own snapshot dropped: a newer one from the leader was installed", "index", d.meta.Index, "installed", d.superseded)
		d.meta.Index = d.superseded // what a waiter gets: the latest snapshot
	case d.err == nil:
		n.eng.SnapshotTaken(d.meta)
		n.eng.Compacted(d.compacted)
		a.lastSnapshot.Store(d.meta.Index)
		n.snaps.taken.Add(1)
		n.log.Info("snapshot taken", "index", d.meta.Index, "compacted_through", d.compacted)
	default:
		n.log.Error("snapshot failed", "err", d.err)
	}
	a.mu.Lock()
	waiters := append(a.snapshotWaiters, d.waiter)
	a.snapshotWaiters = nil
	a.snapshotting.Store(false)
	a.mu.Unlock()
	for _, w := range waiters {
		if w != nil {
			w <- snapshotResult{index: d.meta.Index, err: d.err}
		}
	}
}

// commitOwn commits an own snapshot and compacts the log (persister).
func (p *persister) commitOwn(o *ownSnapshot) {
	ctx := context.Background()
	d := &snapshotDone{meta: o.meta, waiter: o.waiter}
	if o.meta.Index <= p.floor {
		// A snapshot from the leader at or past this one was installed
		// while this one was written: committing it would make an older
		// snapshot the latest and could compact entries the installed
		// one does not cover. Drop it.
		_ = o.w.Abort()
		d.superseded = p.floor
		p.n.post(loopEvent{snapshotDone: d})
		return
	}
	if err := p.check("snapshot commit", o.w.Commit(ctx)); err != nil {
		_ = o.w.Abort() // release what was written; a no-op if it did commit
		d.err = fmt.Errorf("raft: committing snapshot %d: %w", o.meta.Index, err)
		p.n.post(loopEvent{snapshotDone: d})
		return
	}
	keep := uint64(p.n.cfg.SnapshotTrailingEntries)
	upTo := o.meta.Index - min(keep, o.meta.Index)
	if upTo > 0 {
		if err := p.check("compaction", p.n.store.Compact(ctx, upTo)); err != nil {
			p.n.log.Error("compacting the log", "through", upTo, "err", err)
			upTo = 0
		}
	}
	d.compacted = upTo
	p.n.post(loopEvent{snapshotDone: d})
}

// snapshotReceiver is a snapshot being received from the leader.
type snapshotReceiver struct {
	from raftdata.NodeID
	term uint64
	meta raftdata.SnapshotMeta
	next uint64
	w    SnapshotWriter
}

// writeChunk writes one chunk received from the leader (persister) and
// acknowledges it; the last one commits the snapshot and hands the restore
// to the applier.
func (p *persister) writeChunk(m *raftdata.Message) {
	n := p.n
	c := m.Snapshot
	ack := func(next uint64, reject bool) {
		n.net.Send([]raftdata.Message{{Type: raftdata.MsgSnapResp, Group: n.cfg.Group, From: n.cfg.ID, To: m.From, Term: m.Term,
			Index: c.Meta.Index, Context: next, HintTerm: m.Context, Reject: reject}})
	}
	ctx := context.Background()
	r := p.recv
	if r != nil && (r.from != m.From || r.term != m.Term || r.meta.Index != c.Meta.Index) {
		_ = r.w.Abort() // a new transfer replaces an abandoned one
		p.recv, r = nil, nil
	}
	if r == nil {
		if c.Offset != 0 {
			ack(0, false) // start over
			return
		}
		w, err := n.store.CreateSnapshot(ctx, c.Meta)
		if p.check("snapshot create", err) != nil {
			n.log.Error("receiving snapshot", "index", c.Meta.Index, "err", err)
			ack(0, true)
			return
		}
		r = &snapshotReceiver{from: m.From, term: m.Term, meta: c.Meta, w: w}
		p.recv = r
	}
	if c.Offset != r.next {
		ack(r.next, false) // a duplicate or a gap: say where we are
		return
	}
	if _, err := r.w.Write(c.Data); p.check("snapshot write", err) != nil {
		n.log.Error("receiving snapshot", "index", c.Meta.Index, "err", err)
		_ = r.w.Abort()
		p.recv = nil
		ack(0, true)
		return
	}
	r.next += uint64(len(c.Data))
	if !c.Done {
		ack(r.next, false)
		return
	}
	p.recv = nil
	n.applier.installing.Add(1)
	if err := p.check("snapshot commit", r.w.Commit(ctx)); err != nil {
		_ = r.w.Abort() // release what was written; a no-op if it did commit
		n.applier.installing.Add(-1)
		n.log.Error("committing received snapshot", "index", c.Meta.Index, "err", err)
		ack(0, true)
		return
	}
	p.floor = max(p.floor, c.Meta.Index)
	ack(r.next, false)
	n.applier.enqueue(applyTask{restore: &restoreTask{leader: m.From, meta: c.Meta}})
}

// restore replaces the state machine with a received snapshot (applier).
func (a *applier) restore(t *restoreTask) error {
	defer a.installing.Add(-1)
	n := a.n
	meta, rc, err := n.store.OpenSnapshot(context.Background())
	if err != nil {
		return fmt.Errorf("raft: opening installed snapshot: %w", err)
	}
	if meta.Index <= a.applied.Load() {
		// Entries reached us during the transfer and the state machine
		// is already past the snapshot: restoring would take it back.
		// The log still holds those entries (storage keeps a log that
		// contains the snapshot's last entry), so nothing is lost.
		rc.Close()
		a.lastSnapshot.Store(max(a.lastSnapshot.Load(), meta.Index))
		n.post(loopEvent{installed: &snapshotInstalled{leader: t.leader, meta: meta}})
		return nil
	}
	var span trace.Span
	if n.trace.on() {
		_, span = n.trace.start(context.Background(), "raft.snapshot.restore",
			attribute.Int64("raft.index", int64(meta.Index)), attribute.Int64("raft.leader", int64(t.leader)))
	}
	err = n.cfg.StateMachine.Restore(rc)
	rc.Close()
	if span != nil {
		end(span, err)
	}
	if err != nil {
		return fmt.Errorf("raft: restoring snapshot %d: %w", meta.Index, err)
	}
	a.applied.Store(meta.Index)
	a.appliedTerm = meta.Term
	a.membership = meta.Membership.Clone()
	a.lastSnapshot.Store(meta.Index)
	a.mu.Lock()
	k := 0
	for k < len(a.pending) && a.pending[k].index <= meta.Index {
		a.pending[k].finish(nil, ErrOutcomeUnknown)
		k++
	}
	a.pending = a.pending[k:]
	a.npending.Store(int64(len(a.pending)))
	a.mu.Unlock()
	n.post(loopEvent{installed: &snapshotInstalled{leader: t.leader, meta: meta}})
	return nil
}

// snapshotSender streams the latest snapshot to one follower, one chunk at
// a time: it sends a chunk, waits for the follower to acknowledge it (or
// to ask for another offset), and resends after a timeout. It runs on the
// main loop, so that simulation drives it exactly as production does.
//
// Every send carries a fresh sequence number, which the acknowledgement
// echoes; the sender reacts only to the answer to its latest send. A
// duplicated chunk or acknowledgement therefore costs nothing: without
// this, each stale answer drew a resend, which drew another answer, and a
// network that duplicates messages faster than it drops them turned one
// transfer into an unbounded storm.
type snapshotSender struct {
	n      *Node
	peer   raftdata.NodeID
	term   uint64
	meta   raftdata.SnapshotMeta
	rc     io.ReadCloser
	pos    uint64 // bytes consumed from rc
	offset uint64 // offset of the chunk in flight
	chunk  []byte
	last   bool
	seq    uint64 // sequence number of the latest send
	idle   int    // ticks since the chunk was sent
}

func (n *Node) startSender(peer raftdata.NodeID) {
	if s := n.senders[peer]; s != nil {
		s.close()
	}
	s := &snapshotSender{n: n, peer: peer, term: n.eng.Term()}
	if err := s.open(0); err != nil {
		n.log.Error("opening snapshot to send", "peer", uint64(peer), "err", err)
		return
	}
	n.senders[peer] = s
	n.snaps.sent.Add(1)
	n.log.Info("sending snapshot", "peer", uint64(peer), "index", s.meta.Index)
	s.send()
}

// open (re)opens the snapshot and positions it at offset.
func (s *snapshotSender) open(offset uint64) error {
	if s.rc != nil {
		s.rc.Close()
	}
	meta, rc, err := s.n.store.OpenSnapshot(context.Background())
	if err != nil {
		return err
	}
	if s.meta.Index != 0 && meta.Index != s.meta.Index {
		rc.Close()
		return fmt.Errorf("raft: snapshot changed from %d to %d during transfer", s.meta.Index, meta.Index)
	}
	if _, err := io.CopyN(io.Discard, rc, int64(offset)); err != nil {
		rc.Close()
		return err
	}
	s.meta, s.rc, s.pos, s.offset = meta, rc, offset, offset
	return s.readChunk()
}

func (s *snapshotSender) readChunk() error {
	buf := make([]byte, s.n.cfg.SnapshotChunkBytes)
	k, err := io.ReadFull(s.rc, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		s.last = true
	case err != nil:
		return err
	default:
		s.last = false
	}
	s.chunk = buf[:k]
	s.offset = s.pos
	s.pos += uint64(k)
	return nil
}

func (s *snapshotSender) send() {
	s.idle = 0
	s.n.snapSeq++
	s.seq = s.n.snapSeq
	s.n.net.Send([]raftdata.Message{{Type: raftdata.MsgSnap, Group: s.n.cfg.Group, From: s.n.cfg.ID, To: s.peer, Term: s.term, Context: s.seq,
		Snapshot: &raftdata.SnapshotChunk{Meta: s.meta, Offset: s.offset, Data: s.chunk, Done: s.last}}})
}

func (s *snapshotSender) onAck(a engine.SnapshotAck) {
	if a.Stop {
		s.close()
		return
	}
	if a.Seq != s.seq {
		return // answers an earlier send; the latest one's answer, or a resend, follows
	}
	end := s.offset + uint64(len(s.chunk))
	var err error
	switch {
	case a.Next == end && s.last:
		return // the follower is installing it; its answer stops us
	case a.Next == end:
		err = s.readChunk()
	case a.Next == s.offset:
		// The follower asks for the chunk in flight again.
	default:
		err = s.open(a.Next)
	}
	if err != nil {
		s.n.log.Error("reading snapshot to send", "peer", uint64(s.peer), "err", err)
		s.close()
		return
	}
	s.send()
}

func (s *snapshotSender) onTick(ticks uint64) {
	if s.idle += int(min(ticks, 5)); s.idle >= 5 {
		s.send() // lost chunk or acknowledgement: resend
	}
}

func (s *snapshotSender) close() {
	if s.rc != nil {
		s.rc.Close()
		s.rc = nil
	}
	if s.n.senders[s.peer] == s {
		delete(s.n.senders, s.peer)
	}
}

// handleSnapshots carries out the snapshot part of a Ready (main loop).
func (n *Node) handleSnapshots(rd *engine.Ready) {
	for _, peer := range rd.SendSnapshots {
		n.startSender(peer)
	}
	for _, a := range rd.SnapshotAcks {
		if s := n.senders[a.Peer]; s != nil {
			s.onAck(a)
		}
	}
	for i := range rd.SnapshotChunks {
		n.persister.enqueue(persistJob{chunk: &rd.SnapshotChunks[i]})
	}
	if len(n.senders) > 0 && (n.eng.Role() != raftdata.RoleLeader) {
		for _, s := range n.sortedSenders() {
			s.close()
		}
	}
}

// tickSenders lets senders retransmit, in peer order (deterministic), once
// ticks more ticks have passed.
func (n *Node) tickSenders(ticks uint64) {
	for _, s := range n.sortedSenders() {
		if s.term != n.eng.Term() {
			s.close()
			continue
		}
		s.onTick(ticks)
	}
}

func (n *Node) sortedSenders() []*snapshotSender {
	if len(n.senders) == 0 {
		return nil
	}
	out := make([]*snapshotSender, 0, len(n.senders))
	for id, s := range n.senders {
		// A node removed from the configuration may still need the
		// snapshot: the leader tells it of its removal until it knows
		// (engine.syncProgress), and if the entries it lacks were
		// compacted, only a snapshot can. Senders to peers the engine
		// no longer tracks end.
		if _, tracked := n.eng.PeerMatch(id); !tracked {
			s.close()
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *snapshotSender) int { return cmp.Compare(a.peer, b.peer) })
	return out
}
