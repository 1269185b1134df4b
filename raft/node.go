// Package raft is raftkit's Raft consensus library: a replicated log driving
// a user's state machine, over pluggable storage and network.
//
// A Node wraps a pure, deterministic engine (the protocol) with a thin
// runtime that owns the goroutines, timers and I/O: a main loop that feeds
// the engine batches of inputs, a persist goroutine that makes writes
// durable before the messages that depend on them are sent, and an apply
// goroutine that applies committed entries in index order and answers the
// proposers.
//
// The data a Storage keeps and a Network carries (log entries, hard state,
// membership, snapshot metadata and chunks, messages, roles) are declared
// in package [github.com/raftkit/raftkit/raft/raftdata], shared by this
// package, the wire codec, the conformance suites and every adapter; `go
// doc raftdata` shows their fields and methods.
//
// Packages beside this one: raft/wire encodes messages for networks,
// raft/storagetest and raft/networktest are the conformance suites an
// implementation runs against itself, raft/rafttest is the deterministic
// cluster simulator, and raft/session gives exactly-once client commands.
package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkit/raftkit/raft/internal/engine"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Node is one member of a Raft group. Its methods are safe for concurrent
// use.
type Node struct {
	cfg   Config
	log   *slog.Logger
	eng   *engine.Engine // owned by the main loop
	store Storage
	net   Network

	props *proposalQueue
	inbox *inbox // received messages and loop events
	wake  chan struct{}

	persister *persister
	// inlineSave: the Storage saves without I/O (InlineSaver), so log
	// writes are made on the loop when nothing else is pending.
	inlineSave bool
	applier    *applier
	metrics    *metricsHub
	trace      tracing

	// view is what callers see without a round trip to the loop.
	view atomic.Pointer[nodeView]

	reads    map[uint64]*readRequest
	readSeq  uint64
	transfer *transferWaiter
	lastView nodeView
	stopping chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	failMu   sync.Mutex
	failure  error
	// watch is what the watchdog knows of the storage work in progress
	// (storagefail.go).
	watch storageWatch
	// exited is closed once every goroutine of the node has returned, or
	// once the node stopped because its storage stalled (a goroutine may
	// then stay stuck in the store).
	exited     chan struct{}
	exitedOnce sync.Once
	spare      []*Future
	// clock returns the time elapsed since the node started on the
	// monotonic clock and on the wall clock (the simulator's in manual
	// mode); ticks is how many monotonic ticks the engine has been given,
	// wallLead how much the wall clock gained on the monotonic one in all,
	// and wallDiff their difference at the last reading (syncClock).
	clock     func() (mono, wall time.Duration)
	monoClock func() time.Duration
	ticks     uint64
	wallLead  time.Duration
	wallDiff  time.Duration
	// held, when set, freezes the node's goroutines at their next unit of
	// work until the channel is closed (simhook.Hold, for tests).
	held     atomic.Pointer[chan struct{}]
	batch    []raftdata.Entry
	manual   bool
	senders  map[raftdata.NodeID]*snapshotSender
	snapSeq  uint64 // sequence number of the latest snapshot chunk sent
	snaps    snapshotCounters
	changing atomic.Bool // a membership change call is running
}

// nodeView is the loop's latest state, published for lock-free reads.
type nodeView struct {
	removed    bool
	role       raftdata.Role
	term       uint64
	leader     raftdata.NodeID
	leaderAddr string
	membership raftdata.Membership
}

// NewNode restores a node from cfg.Storage (restoring the state machine
// from the latest snapshot and scanning the log) and starts it. A node
// whose storage is empty has no configuration: call Initialize on it, or
// let a leader add it to an existing cluster.
func NewNode(ctx context.Context, cfg Config) (*Node, error) {
	return newNode(ctx, cfg, nil)
}

// newNode builds a node. Given a clock, it is a manual node, which starts
// no goroutines: a deterministic simulator runs its units of work (loop
// step, write, apply) itself, through the methods in manual.go, on the
// simulated time clock returns, so that simulation exercises exactly the
// code that runs in production.
func newNode(ctx context.Context, cfg Config, clock func() (mono, wall time.Duration)) (*Node, error) {
	manual := clock != nil
	var monoClock func() time.Duration
	if manual {
		monoClock = func() time.Duration { m, _ := clock(); return m }
	} else {
		start := time.Now() // with a monotonic reading: wall clock steps do not move it
		wallStart := start.Round(0)
		clock = func() (time.Duration, time.Duration) {
			now := time.Now() // one reading of both clocks
			return now.Sub(start), now.Round(0).Sub(wallStart)
		}
		monoClock = func() time.Duration { return time.Since(start) } // the monotonic clock alone
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if bn, ok := c.Network.(BoundedNetwork); ok {
		if err := c.fitNetwork(cfg, bn.MaxMessageBytes()); err != nil {
			return nil, err
		}
	}
	n := &Node{
		cfg:       c,
		log:       c.Logger.With("node", uint64(c.ID), "group", uint64(c.Group)),
		store:     c.Storage,
		net:       c.Network,
		wake:      make(chan struct{}, 1),
		reads:     map[uint64]*readRequest{},
		senders:   map[raftdata.NodeID]*snapshotSender{},
		stopping:  make(chan struct{}),
		done:      make(chan struct{}),
		manual:    manual,
		clock:     clock,
		monoClock: monoClock,
	}
	n.watch.abandon = make(chan struct{})
	n.exited = make(chan struct{})
	n.props = newProposalQueue(4*c.MaxProposalBatch, n.wake)
	n.inbox = newInbox(1024, n.wake)
	st, applied, err := n.restore(ctx)
	if err != nil {
		return nil, err
	}
	election, lease := c.ticks()
	rng := rand.New(rand.NewPCG(c.RandSeed, uint64(c.ID)))
	n.eng, err = engine.New(engine.Config{
		ID: c.ID, Group: c.Group,
		ElectionTicks: election, HeartbeatTicks: 1, LeaseTicks: lease,
		MaxMsgBytes: c.MaxAppendBytes, MaxInflightMsgs: c.MaxInflightAppends,
		MaxInflightBytes: c.MaxInflightBytes, CacheBytes: c.EntryCacheBytes,
		Rand: rng.IntN,
	}, st)
	if err != nil {
		return nil, fmt.Errorf("raft: restoring engine: %w", err)
	}
	n.metrics = newMetricsHub()
	n.trace = newTracing(c.TracerProvider, c.ID, c.Group)
	n.persister = newPersister(n)
	if s, ok := c.Storage.(InlineSaver); ok && !manual {
		n.inlineSave = s.SaveInline()
	}
	n.applier = newApplier(n, applied, st.Snapshot)
	n.updateView() // also hands the membership to the network
	if err := n.net.Start(n); err != nil {
		return nil, fmt.Errorf("raft: starting network: %w", err)
	}
	if !manual {
		n.wg.Add(3)
		go n.persister.run()
		go n.applier.run()
		go n.run()
	}
	n.log.Info("node started", "term", st.HardState.Term, "first", st.FirstIndex, "last", st.LastIndex, "commit", st.HardState.Commit)
	return n, nil
}

// restore reads the storage: it restores the state machine from the latest
// snapshot and scans the log for terms and configurations.
func (n *Node) restore(ctx context.Context) (engine.InitialState, uint64, error) {
	var st engine.InitialState
	s, err := n.store.InitialState(ctx)
	if err != nil {
		return st, 0, fmt.Errorf("raft: reading initial state: %w", err)
	}
	st.HardState, st.Snapshot, st.FirstIndex, st.LastIndex = s.HardState, s.Snapshot, s.FirstIndex, s.LastIndex
	applied := uint64(0)
	if s.Snapshot.Index > 0 {
		meta, rc, err := n.store.OpenSnapshot(ctx)
		if err != nil {
			return st, 0, fmt.Errorf("raft: opening snapshot: %w", err)
		}
		err = n.cfg.StateMachine.Restore(rc)
		rc.Close()
		if err != nil {
			return st, 0, fmt.Errorf("raft: restoring snapshot %d: %w", meta.Index, err)
		}
		st.Snapshot = meta
		applied = meta.Index
	}
	for lo := s.FirstIndex; lo <= s.LastIndex; {
		ents, err := n.store.Entries(ctx, lo, s.LastIndex+1, 4<<20)
		if err != nil {
			return st, 0, fmt.Errorf("raft: scanning log at %d: %w", lo, err)
		}
		if len(ents) == 0 || ents[0].Index != lo {
			return st, 0, fmt.Errorf("%w: storage returned no entry at %d", ErrCorrupt, lo)
		}
		if err := st.Observe(ents, n.cfg.EntryCacheBytes/4); err != nil {
			return st, 0, wrapCorrupt(err)
		}
		lo = ents[len(ents)-1].Index + 1
	}
	return st, applied, nil
}

// Step hands messages received from the network to the node. See Handler.
func (n *Node) Step(ctx context.Context, msgs []raftdata.Message) error {
	var bad error
	k := 0
	for _, m := range msgs {
		if m.Group != n.cfg.Group || m.To != n.cfg.ID {
			bad = fmt.Errorf("%w: %v from %d for group %d node %d", ErrWrongGroup, m.Type, m.From, m.Group, m.To)
			continue
		}
		msgs[k] = m
		k++
	}
	if k > 0 {
		if err := n.inbox.pushMsgs(ctx, msgs[:k], n.stopping); err != nil {
			return err
		}
	}
	return bad
}

// loopEvent is anything other than a proposal or a message that the main
// loop must handle. The inbox carries them, with the messages.
type loopEvent struct {
	persisted    *persisted
	fetched      *fetchResult
	read         *readRequest
	fn           func()
	snapshotDone *snapshotDone
	installed    *snapshotInstalled
}

// post queues ev for the loop; false once the loop has stopped.
func (n *Node) post(ev loopEvent) bool { return n.inbox.post(ev) }

func (n *Node) handleEvent(ev loopEvent) {
	switch {
	case ev.persisted != nil:
		n.eng.Persisted(ev.persisted.index, ev.persisted.term)
	case ev.fetched != nil:
		n.eng.Fetched(ev.fetched.peer, ev.fetched.lo, ev.fetched.ents, ev.fetched.compacted)
	case ev.snapshotDone != nil:
		n.snapshotFinished(ev.snapshotDone)
	case ev.installed != nil:
		n.eng.SnapshotInstalled(ev.installed.leader, ev.installed.meta)
		// Counted here, on the loop, so that published metrics never show a
		// snapshot received without its index.
		n.snaps.received.Add(1)
		n.log.Info("snapshot installed", "index", ev.installed.meta.Index, "leader", uint64(ev.installed.leader))
	case ev.read != nil:
		n.startRead(ev.read)
	case ev.fn != nil:
		ev.fn()
	}
}

// run is the main loop: it feeds the engine batches of inputs and carries
// out what each Ready asks.
func (n *Node) run() {
	defer n.wg.Done()
	ticker := time.NewTicker(n.cfg.HeartbeatInterval)
	defer ticker.Stop()
	metricsEvery := max(1, int(n.cfg.MetricsInterval/n.cfg.HeartbeatInterval))
	ticks := 0
	defer n.shutdown()
	for {
		select {
		case <-n.stopping:
			return
		case <-ticker.C:
			// The engine's time comes from the monotonic clock, not from
			// counting ticks: a ticker drops the ticks of a paused process.
			n.syncClock()
			n.checkStorage()
			if ticks++; ticks%metricsEvery == 0 {
				n.publishMetrics()
			}
		case <-n.wake: // proposals, messages or events queued
		}
		n.waitHeld()
		n.process()
	}
}

// waitHeld blocks while the node is held (simhook.Hold).
func (n *Node) waitHeld() {
	if c := n.held.Load(); c != nil {
		select {
		case <-*c:
		case <-n.stopping:
		}
	}
}

// process is one step of the main loop after an input: it takes whatever
// else is waiting and carries out the resulting Ready.
func (n *Node) process() {
	n.drain()
	if !n.manual && n.applier.npending.Load() > 0 && n.props.waiting() {
		// Several writers are active (proposals wait for their commit
		// while new ones queue): let those just answered, runnable now,
		// queue their next proposals first, so that one batch, one append
		// and one round of messages carry them all. A lone writer, whose
		// proposal is the only one, never waits.
		runtime.Gosched()
	}
	n.takeProposals()
	for i := 0; i < 4 && n.handleReady(n.eng.Ready()); i++ {
	}
}

// drain takes whatever is waiting in the inbox, so that one Ready covers
// as much work as possible (this is where batching comes from).
func (n *Node) drain() {
	batches, events := n.inbox.take()
	// The clock is read after the messages were taken, so that each is
	// stepped at a time no earlier than it arrived: a follower resets its
	// election timer on a heartbeat, and the time it spent paused before
	// the heartbeat arrived must not count after the reset. Events and
	// proposals need no time (a lease read reads the clock itself).
	if len(batches) > 0 {
		n.advanceClock()
	}
	for _, msgs := range batches {
		n.stepMessages(msgs)
	}
	for _, ev := range events {
		n.handleEvent(ev)
	}
}

// syncClock gives the engine every tick elapsed on the node's monotonic
// clock since the last call (engine.Advance): after a pause of seconds the
// engine sees seconds pass, and a lease it held has run out. Ticks are
// whole heartbeat intervals, rounded down, on the leader's side as on the
// followers': the lease arithmetic in Config.ticks counts on it.
//
// It also tells the engine how much the wall clock has gained on the
// monotonic one (engine.SetWallLead, rounded up), which counts against
// leases only: the monotonic clock stops while the host is suspended. Gains
// add up from reading to reading, and a wall clock stepped back lowers the
// baseline instead of hiding later gains: only a step back between a
// suspension and the next reading can hide it (guides/clients.md).
//
// The wall clock is read on ticker wake-ups and for lease reads, where the
// lease is judged; advanceClock, before messages are stepped, reads the
// monotonic clock alone (half the cost, on the busiest path). A round of
// heartbeats started meanwhile records a lead no newer than the truth, so
// its lease can only be judged shorter.
func (n *Node) syncClock() {
	mono, wall := n.clock()
	iv := n.cfg.HeartbeatInterval
	diff := wall - mono
	if gain := diff - n.wallDiff; gain > 0 {
		n.wallLead += gain
		n.eng.SetWallLead(uint64((n.wallLead + iv - 1) / iv))
	}
	n.wallDiff = diff
	n.advanceTo(mono)
}

// advanceClock is syncClock on the monotonic clock alone.
func (n *Node) advanceClock() { n.advanceTo(n.monoClock()) }

// advanceTo gives the engine the ticks elapsed up to mono.
func (n *Node) advanceTo(mono time.Duration) {
	t := uint64(mono / n.cfg.HeartbeatInterval)
	if t <= n.ticks {
		return
	}
	d := t - n.ticks
	n.ticks = t
	n.eng.Advance(d)
	n.tickSenders(d)
}

func (n *Node) stepMessages(msgs []raftdata.Message) {
	for _, m := range msgs {
		if err := n.eng.Step(m); err != nil {
			n.log.Warn("dropping message", "type", m.Type.String(), "from", uint64(m.From), "err", err)
		}
	}
}

// handleReady carries out a Ready: messages that depend on nothing go out
// now; writes and the messages that depend on them go to the persister;
// committed entries go to the applier.
//
// It reports whether a write was made durable on the spot (InlineSaver),
// which may let the engine commit: the caller then asks for another Ready.
func (n *Node) handleReady(rd engine.Ready) (again bool) {
	// Publish the view first: the network learns new peers before
	// messages go to them, and the node's metrics show the role and
	// membership it acts on before any peer hears from it (a write's
	// acknowledgement leaves from the loop or the write goroutine).
	n.updateView()
	if len(rd.Messages) > 0 {
		n.trace.send(n, rd.Messages)
	}
	if rd.HardState != nil || len(rd.Entries) > 0 || len(rd.AfterPersist) > 0 {
		j := persistJob{hs: rd.HardState, ents: rd.Entries, msgs: rd.AfterPersist}
		if n.inlineSave && n.saveInline(j.ents) && n.persister.writeInline(&j) {
			again = len(j.ents) > 0
		} else {
			n.persister.enqueue(j)
		}
	}
	if rd.Apply.Hi > 0 {
		t := applyTask{batch: rd.Apply}
		if n.trace.on() {
			t.at = time.Now() // when the commit was learned, for the proposals' spans
		}
		n.applier.enqueue(t)
	}
	for _, f := range rd.Fetches {
		n.fetch(f)
	}
	n.handleSnapshots(&rd)
	for _, rs := range rd.ReadStates {
		if r := n.reads[rs.Ctx]; r != nil {
			delete(n.reads, rs.Ctx)
			r.index = rs.Index
			n.applier.waitRead(r)
		}
	}
	for _, ctx := range rd.FailedReads {
		if r := n.reads[ctx]; r != nil {
			delete(n.reads, ctx)
			r.finish(0, ErrLeadershipLost)
		}
	}
	if rd.TransferAborted && n.transfer != nil {
		n.transfer.finish(ErrTransferFailed)
		n.transfer = nil
	}
	return again
}

// saveInline decides whether a write goes to an InlineSaver on the loop.
// A follower always does: its loop has little else to do, and the
// acknowledgement leaves as soon as the entries are stored. A leader does
// only when the write is the sole uncommitted one — an idle leader, where
// a write's latency is all that counts. Under load the leader's loop is the
// cluster's bottleneck and the write goroutine takes the Save off it.
func (n *Node) saveInline(ents []raftdata.Entry) bool {
	if n.eng.Role() != engine.Leader || len(ents) == 0 {
		return true
	}
	return ents[0].Index == n.eng.Committed()+1
}

// fetch reads entries a lagging follower needs from storage, off the loop.
func (n *Node) fetch(f engine.Fetch) {
	if n.manual {
		n.fetchNow(f)
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*n.cfg.ElectionTimeout)
		defer cancel()
		ents, err := n.store.Entries(ctx, f.Lo, f.Hi, f.MaxBytes)
		if err != nil && !errors.Is(err, ErrCompacted) {
			n.watch.failed(err)
			if isPermanent(err) {
				n.storageFailedFor("read", err)
				return
			}
		}
		if err != nil {
			n.log.Warn("reading entries for a follower", "peer", uint64(f.Peer), "lo", f.Lo, "err", err)
			ents = nil
		}
		n.post(loopEvent{fetched: &fetchResult{peer: f.Peer, lo: f.Lo, ents: ents, compacted: errors.Is(err, ErrCompacted)}})
	}()
}

type fetchResult struct {
	peer      raftdata.NodeID
	lo        uint64
	ents      []raftdata.Entry
	compacted bool
}

// updateView publishes role, term, leader and membership, and pushes
// metrics at once when any of them changed.
func (n *Node) updateView() {
	e := n.eng
	v := nodeView{role: e.Role(), term: e.Term(), leader: e.Leader(), membership: n.lastView.membership, removed: e.Removed()}
	changed := v.role != n.lastView.role || v.term != n.lastView.term || v.leader != n.lastView.leader || v.removed != n.lastView.removed
	if n.view.Load() == nil || n.membershipChanged() {
		v.membership = e.Membership().Clone()
		// Keep the addresses of members just removed: the leader goes on
		// replicating to them until they hold their removal.
		// Removed members stay reachable: the leader tells them of their
		// removal until they know.
		peers := append(v.membership.Members(), v.membership.Removed...)
		for _, old := range n.lastView.membership.Members() {
			if !v.membership.Contains(old.ID) && !v.membership.WasRemoved(old.ID) {
				peers = append(peers, old)
			}
		}
		n.net.SetPeers(peers)
		changed = true
	}
	if m, ok := v.membership.Lookup(v.leader); ok {
		v.leaderAddr = m.Addr
	}
	if !changed {
		return
	}
	if v.role != n.lastView.role || v.leader != n.lastView.leader {
		n.log.Info("state changed", "role", v.role.String(), "term", v.term, "leader", uint64(v.leader))
	}
	if v.removed && !n.lastView.removed {
		n.log.Warn("this node was removed from the cluster")
	}
	n.lastView = v
	nv := v // only a changed view is allocated (v stays on the stack)
	n.view.Store(&nv)
	n.publishMetrics()
	// After the view: a caller whose TransferLeadership returns sees the
	// new leader in Role, Leader and Metrics.
	if n.transfer != nil && v.role != raftdata.RoleLeader && v.leader != 0 && v.leader != n.cfg.ID {
		n.transfer.finish(nil)
		n.transfer = nil
	}
}

func (n *Node) membershipChanged() bool {
	m := n.eng.Membership()
	return !m.Equal(&n.lastView.membership)
}

// Stop stops the node: it fails pending calls with ErrStopped and returns
// once every goroutine has exited, or when ctx ends. Writes already handed
// to storage complete first. Stop does not close the Storage or the
// Network; their owner does. A node that stopped because its storage
// stalled (ErrStorageStalled) does not wait for the call stuck in the
// store: closing that Storage may find a call still in progress.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() { close(n.stopping) })
	select {
	case <-n.exitedCh():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("raft: stopping node %d: %w", n.cfg.ID, ctx.Err())
	}
}

// fail stops the node because it cannot go on safely (the state machine
// returned an error, storage gave up).
func (n *Node) fail(err error) {
	n.failMu.Lock()
	if n.failure == nil {
		n.failure = err
		n.log.Error("node failed", "err", err)
	}
	n.failMu.Unlock()
	n.stopOnce.Do(func() { close(n.stopping) })
}

// Err returns the error that stopped the node, if it stopped by failure.
func (n *Node) Err() error {
	n.failMu.Lock()
	defer n.failMu.Unlock()
	return n.failure
}

// Done is closed when the node has stopped, by Stop or by failure (Err
// then tells why).
func (n *Node) Done() <-chan struct{} { return n.done }

// shutdown runs when the main loop exits: it fails everything waiting on
// the loop.
func (n *Node) shutdown() {
	for _, f := range n.props.close() {
		f.finish(nil, ErrStopped)
	}
	for _, ev := range n.inbox.close() {
		if ev.read != nil {
			ev.read.finish(0, ErrStopped)
		}
	}
	for id, r := range n.reads {
		r.finish(0, ErrStopped)
		delete(n.reads, id)
	}
	if n.transfer != nil {
		n.transfer.finish(ErrStopped)
	}
	n.metrics.close()
	go func() {
		<-n.exitedCh()
		close(n.done)
	}()
}

// exitedCh returns a channel closed once the node's goroutines have
// returned, or once it stopped because storage stalled (storagefail.go).
func (n *Node) exitedCh() <-chan struct{} {
	n.exitedOnce.Do(func() {
		all := make(chan struct{})
		go func() {
			n.wg.Wait()
			close(all)
		}()
		go func() {
			select {
			case <-all:
			case <-n.watch.abandon:
			}
			close(n.exited)
		}()
	})
	return n.exited
}

// control runs fn on the main loop and waits for it.
func (n *Node) control(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	if !n.post(loopEvent{fn: func() { fn(); close(done) }}) {
		return ErrStopped
	}
	select {
	case <-done:
		return nil
	case <-n.stopping:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Initialize forms a new cluster of members on a brand-new node. Call it on
// every initial node with the same members (in the same order). On a node
// that already holds state it changes nothing, so it is safe to call on
// every start: it returns nil when the node's first configuration entry
// (index 1) is these members, or when a snapshot has compacted that entry
// away, and an error wrapping ErrBadConfig when index 1 holds another
// configuration, or the node has state but no index 1 (it joined another
// cluster). It returns once the configuration is durable.
func (n *Node) Initialize(ctx context.Context, members []raftdata.Member) error {
	var err error
	var durable chan error
	if cerr := n.control(ctx, func() {
		err = n.eng.Bootstrap(raftdata.Membership{Voters: members})
		if err == nil {
			// Hand the configuration entry to the persister first: the
			// notification is answered once every write queued before it
			// is durable, so it must come after the write that carries
			// entry 1 (queued alone, it answered with nothing saved).
			n.handleReady(n.eng.Ready())
			durable = make(chan error, 1)
			n.persister.enqueue(persistJob{notify: durable})
		}
	}); cerr != nil {
		return cerr
	}
	if errors.Is(err, engine.ErrInitialized) {
		return fmt.Errorf("%w: node %d already belongs to another cluster", ErrBadConfig, n.cfg.ID)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	select {
	case err := <-durable:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopping:
		return ErrStopped
	}
}

// ID returns this node's ID.
func (n *Node) ID() raftdata.NodeID { return n.cfg.ID }

// Leader returns the leader this node knows of (0 if none) and its address.
func (n *Node) Leader() (raftdata.NodeID, string) {
	v := n.view.Load()
	return v.leader, v.leaderAddr
}

// Role returns the node's current role.
func (n *Node) Role() raftdata.Role { return n.view.Load().role }

// notLeader returns the error for a call only a leader serves: ErrRemoved
// on a node removed from the cluster, a *NotLeaderError otherwise.
func (n *Node) notLeader() error {
	v := n.view.Load()
	if v.removed {
		return fmt.Errorf("%w: node %d", ErrRemoved, n.cfg.ID)
	}
	return &NotLeaderError{LeaderID: v.leader, LeaderAddr: v.leaderAddr}
}
