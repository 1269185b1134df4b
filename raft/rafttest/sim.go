package rafttest

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/internal/simhook"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// SimConfig configures Simulate. Zero values are chosen from the seed.
type SimConfig struct {
	Seed int64
	// Nodes is the cluster size (3 or 5 when zero).
	Nodes int
	// Duration is the simulated time with faults (default 6s), after
	// which faults stop, crashed nodes restart and the cluster must
	// converge.
	Duration time.Duration
	// Clients is the number of concurrent KV clients (default 4); one
	// more only reads.
	Clients int
	// BrokenReads makes a node that believes it leads answer reads from
	// its state machine without confirming leadership: the negative
	// control that the linearizability checker must catch.
	BrokenReads bool
	// mutation, set by this package's tests only, breaks the system on
	// purpose to show that an invariant catches it (see sim_mutations.go).
	mutation simMutation
	// Logf, if set, receives a trace of faults and elections.
	Logf func(format string, args ...any)
}

// SimResult is what a simulation found.
type SimResult struct {
	Seed int64
	// Violation is the first invariant that broke, or "".
	Violation string
	// Check is the linearizability verdict on the client history.
	Check CheckResult
	// Counters describing the run.
	Events, Ops, Acked, Crashes, Partitions, Transfers, Elections int
	SnapshotsTaken, SnapshotsInstalled, CrashesDuringInstall      int
	Changes, Pauses                                               int
	SimTime                                                       time.Duration
}

// Failed reports whether the run broke an invariant or linearizability.
func (r *SimResult) Failed() bool { return r.Violation != "" || !r.Check.OK }

// Simulate runs a whole cluster of real raft.Node code paths (the engine,
// the persist-before-send ordering, group commit, in-order apply, futures
// and reads) in one goroutine, on simulated time, network and disks, with
// faults drawn from the seed. The same options replay the same run exactly.
func Simulate(opts SimConfig) *SimResult {
	s := newSim(opts)
	s.run()
	return s.result()
}

const (
	us          = int64(time.Microsecond)
	ms          = int64(time.Millisecond)
	simTick     = 10 * ms
	settleLimit = 30 * time.Second
)

type simEvent struct {
	at   int64
	seq  uint64
	kind eventKind
	node int // index into sim.nodes
	msg  raftdata.Message
	n    int // client index or incarnation
}

type eventKind uint8

const (
	evTick eventKind = iota
	evDeliver
	evWrite
	evApply
	evClient
	evFault
	evMembership
	evIsolate // partition node from all others
)

type eventHeap []simEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type simNode struct {
	id          raftdata.NodeID
	store       *simStore
	kv          *KV
	node        simhook.Node
	up          bool
	incarnation int
	tickEvery   int64 // this node's clock rate
	disk        int64 // write latency
	writeAt     int64 // scheduled write time, 0 if none
	applyAt     int64
	bootAt      int64 // when this incarnation started: its clock's zero
	// pausedUntil, when in the future, freezes the node as SIGSTOP would:
	// no ticks, deliveries, writes or applies until then; its clock keeps
	// running, so it resumes with the time jumped. Messages sent to it
	// meanwhile are held until it resumes, unless it is cut off from its
	// peers (both ways) until cutUntil: cut off while stopped, and for a
	// while after, as a fault proxy would.
	pausedUntil int64
	cutUntil    int64
	// A pause may be a suspension of the whole host: the monotonic clock
	// misses [suspendFrom, suspendTo) (and suspendedDone of earlier ones)
	// while the wall clock keeps time. wallStep is how far the wall clock
	// was stepped (NTP, an operator), either way.
	suspendFrom, suspendTo, suspendedDone int64
	wallStep                              int64
	// Completeness check: the index of the last command seen applied, and
	// the Recorder's restore generation it was read under.
	lastSeenIndex uint64
	restoreGen    int
	lastRole      raftdata.Role
	lastTerm      uint64
	lastCommit    uint64
	lastApplied   uint64
	seenApplied   int
	// snapshot counters seen in this incarnation
	lastTaken, lastInstalled uint64
}

type sim struct {
	opts    SimConfig
	rng     *rand.Rand
	now     int64
	seq     uint64
	events  eventHeap
	nodes   []*simNode
	members []raftdata.Member
	net     simNet
	clients []*simClient
	history History
	end     int64 // end of the faulty phase
	settled bool
	checks  simChecks
	res     SimResult
	// Snapshot policy for the run, drawn from the seed: often small, so
	// that compaction races replication and followers install snapshots.
	snapEvery, snapTrailing, snapChunk int
	change                             *simChange
	// cacheBytes is the nodes' EntryCacheBytes, often tiny so that
	// replication and apply read back from storage; applyLag the most an
	// apply pass waits after it becomes due.
	cacheBytes int
	applyLag   int64
	// clientWait is how long a client waits for an answer before it gives
	// up on the operation (outcome unknown) and tries another node.
	clientWait int64
}

func newSim(opts SimConfig) *sim {
	s := &sim{opts: opts, rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed))}
	if s.opts.Nodes == 0 {
		s.opts.Nodes = 3 + 2*s.rng.IntN(2)
	}
	if s.opts.Duration == 0 {
		s.opts.Duration = 6 * time.Second
	}
	if s.opts.Clients == 0 {
		s.opts.Clients = 4
	}
	s.res.Seed = opts.Seed
	s.end = int64(s.opts.Duration)
	s.snapEvery = 20 + s.rng.IntN(400)
	s.snapTrailing = []int{raft.NoTrailingEntries, 1 + s.rng.IntN(10), 10 + s.rng.IntN(200)}[s.rng.IntN(3)]
	s.snapChunk = 64 + s.rng.IntN(4096)
	s.cacheBytes = []int{0, 1 + s.rng.IntN(2048), 2048 + s.rng.IntN(64<<10)}[s.rng.IntN(3)]
	s.applyLag = []int64{20 * us, 2 * ms, 30 * ms}[s.rng.IntN(3)]
	s.clientWait = []int64{250 * ms, 1500 * ms}[s.rng.IntN(2)]
	s.checks.init()
	s.net.init(s)
	for i := 1; i <= s.opts.Nodes; i++ {
		s.members = append(s.members, raftdata.Member{ID: raftdata.NodeID(i), Addr: fmt.Sprint("sim-", i)})
	}
	for i := range s.opts.Nodes {
		n := &simNode{
			id: raftdata.NodeID(i + 1),
			// Clock rates differ by up to ±4%: within the 10% drift
			// that leases assume, so lease reads must stay correct.
			tickEvery: simTick + int64(s.rng.IntN(int(simTick*8/100))) - simTick*4/100,
			disk:      s.diskLatency(),
		}
		n.store = &simStore{Storage: memory.New(), s: s, id: n.id, chain: []uint64{0}}
		s.nodes = append(s.nodes, n)
		s.start(n)
		if err := n.node.Bootstrap(s.members); err != nil {
			s.violate("bootstrap node %d: %v", n.id, err)
		}
		s.after(n)
	}
	for c := range s.opts.Clients + 1 {
		// The last client only reads, mostly from the lease, and gives up
		// quickly: it keeps reading from whichever node believes it leads,
		// where the writers get stuck behind writes that cannot commit.
		s.clients = append(s.clients, &simClient{id: c, guess: s.rng.IntN(s.opts.Nodes), reader: c == s.opts.Clients})
		s.schedule(simEvent{at: int64(s.rng.IntN(int(200 * ms))), kind: evClient, n: c})
	}
	s.planFaults()
	s.schedule(simEvent{at: 20 * ms, kind: evMembership})
	return s
}

func (s *sim) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf("%8.3fs "+format, append([]any{float64(s.now) / 1e9}, args...)...)
	}
}

func (s *sim) diskLatency() int64 { return 50*us + int64(s.rng.IntN(int(2*ms))) }

// start boots a node on its storage: a new incarnation with a fresh state
// machine that replays the log.
func (s *sim) start(n *simNode) {
	n.incarnation++
	n.kv = NewKV()
	n.up = true
	n.writeAt, n.applyAt = 0, 0
	n.bootAt, n.pausedUntil, n.cutUntil = s.now, 0, 0
	n.suspendFrom, n.suspendTo, n.suspendedDone, n.wallStep = 0, 0, 0, 0
	n.lastSeenIndex, n.restoreGen = 0, 0
	n.lastRole, n.lastTerm, n.lastCommit, n.lastApplied, n.seenApplied = 0, 0, 0, 0, 0
	n.lastTaken, n.lastInstalled = 0, 0
	cfg := raft.Config{
		ID: n.id, Storage: n.store, Network: &simEndpoint{s: s, id: n.id}, StateMachine: s.stateMachine(n),
		HeartbeatInterval: time.Duration(simTick), ElectionTimeout: time.Duration(10 * simTick),
		LeaseReads: true, RandSeed: uint64(s.opts.Seed)*31 + uint64(n.id)*7 + uint64(n.incarnation),
		MetricsInterval: time.Hour,
		SnapshotEntries: s.snapEvery, SnapshotTrailingEntries: s.snapTrailing, SnapshotChunkBytes: s.snapChunk,
		EntryCacheBytes: s.cacheBytes,
	}
	// The node's clocks: simulated time since it started, at its own
	// rate; the monotonic one misses the time its host spent suspended,
	// the wall one is off by the steps it was given.
	boot, incarnation := n.bootAt, n.incarnation
	clock := func() (time.Duration, time.Duration) {
		if n.incarnation != incarnation {
			return 0, 0 // a stale node of an earlier incarnation is never run
		}
		up := s.now - boot
		mono := up - n.suspendedDone - max(0, min(s.now, n.suspendTo)-n.suspendFrom)
		return time.Duration(mono * simTick / n.tickEvery), time.Duration((up + n.wallStep) * simTick / n.tickEvery)
	}
	node, err := simhook.NewNode(context.Background(), cfg, clock)
	if err != nil {
		s.violate("start node %d: %v", n.id, err)
		n.up = false
		return
	}
	n.node = node
	s.schedule(simEvent{at: s.now + int64(s.rng.IntN(int(n.tickEvery))), kind: evTick, node: int(n.id - 1), n: n.incarnation})
}

// crash stops a node as a power loss would: writes it had not yet handed
// to storage (queued for the next group commit) are lost, with the
// messages that waited on them, and so is its state machine.
func (s *sim) crash(n *simNode) {
	if !n.up {
		return
	}
	if n.node.Status().Receiving {
		s.res.CrashesDuringInstall++
	}
	n.up = false
	n.node = nil
	s.res.Crashes++
	s.logf("crash node %d", n.id)
	_ = n.store.Close()
	n.store.Storage = n.store.Storage.Reopen()
	for _, c := range s.clients {
		if c.pending != nil && c.pending.node == n {
			c.giveUp(s)
		}
	}
}

func (s *sim) schedule(e simEvent) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.events, e)
}

func (s *sim) violate(format string, args ...any) {
	if s.res.Violation == "" {
		s.res.Violation = fmt.Sprintf("t=%.3fs: ", float64(s.now)/1e9) + fmt.Sprintf(format, args...)
	}
}

func (s *sim) run() {
	limit := s.end + int64(settleLimit)
	for len(s.events) > 0 && s.res.Violation == "" {
		e := heap.Pop(&s.events).(simEvent)
		if e.at > limit {
			break
		}
		s.now = e.at
		s.res.Events++
		s.handle(e)
		if !s.settled && s.now >= s.end {
			s.settle()
		}
		if s.settled && s.converged() {
			break
		}
	}
	s.res.SimTime = time.Duration(s.now)
	if s.res.Violation != "" {
		return
	}
	if !s.converged() {
		s.violate("cluster did not converge within %v of the faults ending: %s", settleLimit, s.describe())
		return
	}
	s.checks.final(s)
	s.res.Check = s.history.Check(time.Minute)
	s.res.Ops = s.history.Len()
}

func (s *sim) handle(e simEvent) {
	switch e.kind {
	case evTick:
		n := s.nodes[e.node]
		if !n.up || n.incarnation != e.n {
			return
		}
		if s.paused(n) {
			s.schedule(simEvent{at: n.pausedUntil, kind: evTick, node: e.node, n: e.n})
			return
		}
		n.node.Tick()
		s.after(n)
		s.schedule(simEvent{at: s.now + n.tickEvery, kind: evTick, node: e.node, n: e.n})
	case evDeliver:
		n := s.nodes[e.msg.To-1]
		if !n.up || s.net.blocked(e.msg.From, e.msg.To) || n.cutUntil > s.now || s.nodes[e.msg.From-1].cutUntil > s.now {
			return
		}
		if s.paused(n) { // waits in the socket until the process resumes
			e.at = n.pausedUntil + int64(s.rng.IntN(int(ms)))
			s.schedule(e)
			return
		}
		n.node.Deliver([]raftdata.Message{e.msg})
		s.after(n)
	case evWrite:
		n := s.nodes[e.node]
		if !n.up || n.incarnation != e.n || n.writeAt != s.now {
			return
		}
		if s.paused(n) { // the write completes, but the process sees it later
			n.writeAt = n.pausedUntil + 1
			s.schedule(simEvent{at: n.writeAt, kind: evWrite, node: e.node, n: e.n})
			return
		}
		n.writeAt = 0
		n.node.Write()
		s.after(n)
	case evApply:
		n := s.nodes[e.node]
		if !n.up || n.incarnation != e.n || n.applyAt != s.now {
			return
		}
		if s.paused(n) {
			n.applyAt = n.pausedUntil + 1
			s.schedule(simEvent{at: n.applyAt, kind: evApply, node: e.node, n: e.n})
			return
		}
		n.applyAt = 0
		n.node.Apply()
		s.after(n)
	case evClient:
		s.clients[e.n].next(s)
	case evFault:
		s.fault()
	case evIsolate:
		if !s.settled {
			s.net.heal()
			for i := range s.net.group {
				s.net.group[i] = 0
			}
			s.net.group[e.node] = 1
			s.res.Partitions++
			s.logf("isolate node %d", e.node+1)
		}
	case evMembership:
		s.driveChange()
		s.schedule(simEvent{at: s.now + 20*ms, kind: evMembership})
	}
	s.pollClients()
}

// after runs once a node did some work: it schedules the node's pending
// write and apply, and checks the invariants that concern it.
func (s *sim) after(n *simNode) {
	if !n.up {
		return
	}
	if n.writeAt == 0 && n.node.HasWrite() {
		n.writeAt = s.now + n.disk
		s.schedule(simEvent{at: n.writeAt, kind: evWrite, node: int(n.id - 1), n: n.incarnation})
	}
	if n.applyAt == 0 && n.node.HasApply() {
		n.applyAt = s.now + 20*us + int64(s.rng.IntN(int(s.applyLag)))
		s.schedule(simEvent{at: n.applyAt, kind: evApply, node: int(n.id - 1), n: n.incarnation})
	}
	s.checks.node(s, n)
}

// settle ends the faulty phase: the network heals and calms down, crashed
// nodes restart, and clients stop starting new operations.
func (s *sim) settle() {
	s.settled = true
	s.logf("faults end: healing and restarting")
	s.net.heal()
	s.net.calm()
	for _, n := range s.nodes {
		n.disk = 100 * us
		n.pausedUntil, n.cutUntil = min(n.pausedUntil, s.now), min(n.cutUntil, s.now)
		if !n.up {
			s.start(n)
			s.after(n)
		}
	}
}

// converged reports whether every node holds the same log, committed and
// applied, and no client operation is outstanding.
func (s *sim) converged() bool {
	for _, c := range s.clients {
		if c.pending != nil {
			return false
		}
	}
	if s.change != nil {
		return false
	}
	var last uint64
	first := true
	for _, n := range s.nodes {
		if !n.up {
			return false
		}
		st := n.node.Status()
		if st.Removed {
			continue // its log stops at the entry that removed it
		}
		if st.Commit != st.LastIndex || st.Applied != st.LastIndex || n.node.HasWrite() {
			return false
		}
		if !first && st.LastIndex != last {
			return false
		}
		first, last = false, st.LastIndex
	}
	return true
}

func (s *sim) describe() string {
	out := ""
	for _, n := range s.nodes {
		if !n.up {
			out += fmt.Sprintf("[%d down] ", n.id)
			continue
		}
		out += fmt.Sprintf("[%d: %s applied %d] ", n.id, n.node.Describe(), n.node.Status().Applied)
	}
	return out
}

// paused reports whether n is frozen now.
func (s *sim) paused(n *simNode) bool { return n.pausedUntil > s.now }

func (s *sim) result() *SimResult {
	r := s.res
	return &r
}

// simEndpoint is a node's raft.Network in the simulation.
type simEndpoint struct {
	s  *sim
	id raftdata.NodeID
}

func (e *simEndpoint) Start(raft.Handler) error     { return nil }
func (e *simEndpoint) SetPeers([]raftdata.Member)   {}
func (e *simEndpoint) Close() error                 { return nil }
func (e *simEndpoint) Send(msgs []raftdata.Message) { e.s.net.send(msgs) }
