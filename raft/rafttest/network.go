package rafttest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// DefaultNetworkQueueLimit is the default bound on the number of messages on
// one directed link not yet handed to the receiver: queued, waiting out a
// delay, or in the Step call under way. Messages sent beyond it are dropped
// and counted.
const DefaultNetworkQueueLimit = 8192

// netMaxBatch is the most messages one Handler.Step call receives.
const netMaxBatch = 256

// ErrNetworkClosed is returned by Start on an endpoint of a closed Network.
var ErrNetworkClosed = errors.New("rafttest: network closed")

var (
	errNetEndpointClosed  = errors.New("rafttest: network endpoint closed")
	errNetEndpointStarted = errors.New("rafttest: network endpoint already started")
	errNetNilHandler      = errors.New("rafttest: nil handler")
)

// NetworkOption configures a Network.
type NetworkOption func(*netOptions)

type netOptions struct {
	seed       int64
	queueLimit int
}

// WithSeed seeds the pseudo-random generator behind drop, duplication and
// delay decisions. The default seed is 1. The sequence of decisions is
// deterministic for a seed, though which message meets which decision still
// depends on goroutine scheduling.
func WithSeed(seed int64) NetworkOption {
	return func(o *netOptions) { o.seed = seed }
}

// WithQueueLimit bounds each directed link to n messages not yet handed to
// the receiver (queued, waiting out a delay, or in the Step call under way);
// messages sent beyond it are dropped and counted. n <= 0 selects
// DefaultNetworkQueueLimit.
func WithQueueLimit(n int) NetworkOption {
	return func(o *netOptions) {
		if n <= 0 {
			n = DefaultNetworkQueueLimit
		}
		o.queueLimit = n
	}
}

// LinkFaults are the faults of a directed link. The zero value is a perfect
// link.
type LinkFaults struct {
	// DropRate is the probability, in [0, 1], that a message is lost.
	DropRate float64
	// DuplicateRate is the probability, in [0, 1], that a message that was
	// not dropped is delivered twice.
	DuplicateRate float64
	// MinDelay and MaxDelay bound the delay of each message, drawn
	// uniformly in [MinDelay, MaxDelay] per message, so that messages of
	// one link may overtake each other. A MaxDelay below MinDelay counts as
	// MinDelay.
	MinDelay, MaxDelay time.Duration
}

func (f LinkFaults) normalized() LinkFaults {
	f.DropRate = clampRate(f.DropRate)
	f.DuplicateRate = clampRate(f.DuplicateRate)
	if f.MinDelay < 0 {
		f.MinDelay = 0
	}
	if f.MaxDelay < f.MinDelay {
		f.MaxDelay = f.MinDelay
	}
	return f
}

func clampRate(r float64) float64 {
	if !(r > 0) { // also NaN
		return 0
	}
	if r > 1 {
		return 1
	}
	return r
}

// NetworkStats counts messages through a Network since it was created.
// Once the network is quiet (nothing queued, delayed or being handed over),
// Sent + Duplicated == Delivered + Dropped.
type NetworkStats struct {
	// Sent counts messages passed to Send on open endpoints.
	Sent uint64
	// Delivered counts messages handed to a Handler whose Step returned
	// nil; a duplicated message counts twice.
	Delivered uint64
	// Dropped counts messages lost for any reason: a partition or cut, a
	// DropRate, a full queue, an unknown or closed destination, a
	// destination without a handler, a Step that returned an error, or
	// a closed endpoint discarding its queues.
	Dropped uint64
	// Duplicated counts the extra copies made by DuplicateRate.
	Duplicated uint64
}

// Network is a simulated network connecting any number of nodes in one process.
//
// Each directed link (from, to) has its own FIFO queue and one delivery
// goroutine, started on the link's first message. Send only enqueues, so it
// never blocks; the link goroutine hands the queued messages to the
// destination's Handler.Step in batches of up to 256, one call per batch, and
// a Step that blocks stalls only its own link (whose queue then fills up to
// the limit and drops). Without faults a link delivers in order; delays drawn
// per message reorder.
//
// Messages are never modified, copied deeply or inspected beyond their To
// field: ownership passes from the sender to the receiving Handler. A
// duplicated message is the same Message value delivered twice, sharing its
// Entries and Snapshot, which relies on receivers not mutating the messages
// they are handed (raftkit's nodes do not).
//
// Faults (Partition, Isolate, Cut, SetLinkFaults) act on messages sent after
// the call and on messages still queued or delayed on a link. All methods are
// safe for concurrent use with traffic. Close stops every goroutine.
type Network struct {
	queueLimit int
	start      time.Time
	ctx        context.Context
	cancel     context.CancelFunc
	closed     atomic.Bool
	wg         sync.WaitGroup

	rngMu sync.Mutex
	rng   *rand.Rand

	sent, delivered, dropped, duplicated atomic.Uint64

	mu          sync.Mutex // guards the fields below
	nodes       map[raftdata.NodeID]*netNode
	links       map[netLinkKey]*netLink
	partitioned bool
	groupOf     map[raftdata.NodeID]int
	isolated    map[raftdata.NodeID]bool
	cuts        map[netLinkKey]bool
	faults      map[netLinkKey]LinkFaults
}

// NewNetwork returns an empty network. Call Close when done with it.
func NewNetwork(opts ...NetworkOption) *Network {
	o := netOptions{seed: 1, queueLimit: DefaultNetworkQueueLimit}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	seed := uint64(o.seed)
	return &Network{
		queueLimit: o.queueLimit,
		start:      time.Now(),
		ctx:        ctx,
		cancel:     cancel,
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		nodes:      make(map[raftdata.NodeID]*netNode),
		links:      make(map[netLinkKey]*netLink),
		isolated:   make(map[raftdata.NodeID]bool),
		cuts:       make(map[netLinkKey]bool),
		faults:     make(map[netLinkKey]LinkFaults),
	}
}

// Endpoint returns the raft.Network of node id, creating it on first use.
// While that endpoint is open, further calls return it again; once it is
// closed, Endpoint returns a fresh endpoint, for the node restarted. On a
// closed Network it returns an endpoint whose Start fails with
// ErrNetworkClosed. id must not be zero.
//
// The endpoint's Start registers the node's handler; Send routes each message
// by its To field, dropping (and counting) messages to ids that have no open
// endpoint; SetPeers only records the members, as routing does not need
// addresses; Close unregisters the handler, cancels the context of Step calls
// in progress, discards the messages queued from and to the node, and makes
// further Sends no-ops.
func (n *Network) Endpoint(id raftdata.NodeID) raft.Network {
	if id == 0 {
		panic("rafttest: Network.Endpoint(0): node IDs start at 1")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	node := n.nodes[id]
	if node == nil {
		node = &netNode{id: id}
		n.nodes[id] = node
	}
	if ep := node.cur.Load(); ep != nil {
		return ep
	}
	ctx, cancel := context.WithCancel(n.ctx)
	ep := &netEndpoint{net: n, node: node, ctx: ctx, cancel: cancel}
	if n.closed.Load() {
		ep.closed.Store(true)
		cancel()
		return ep
	}
	node.cur.Store(ep)
	return ep
}

// Partition splits the network into groups: nodes of different groups cannot
// talk, in either direction, and nodes named in no group (including nodes
// created later) are isolated from everyone. A node named in several groups
// belongs to the last. Partition replaces the previous partition; Isolate and
// Cut stay in force until Heal. Partition() with no groups isolates every node.
func (n *Network) Partition(groups ...[]raftdata.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.partitioned = true
	n.groupOf = make(map[raftdata.NodeID]int)
	for g, ids := range groups {
		for _, id := range ids {
			n.groupOf[id] = g
		}
	}
	n.refreshLocked()
}

// Isolate cuts id off from every other node, in both directions, until Heal.
func (n *Network) Isolate(id raftdata.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = true
	n.refreshLocked()
}

// Cut drops the messages from → to, but not those to → from, until Heal.
// Either side may be 0, meaning any node.
func (n *Network) Cut(from, to raftdata.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cuts[netLinkKey{from, to}] = true
	n.refreshLocked()
}

// Heal removes every partition, isolation, cut and link fault.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.partitioned = false
	n.groupOf = nil
	clear(n.isolated)
	clear(n.cuts)
	clear(n.faults)
	n.refreshLocked()
}

// SetLinkFaults sets the faults of the directed link from → to, replacing
// those set before for the same pair; zero LinkFaults removes them. Either
// side may be 0, meaning any node. A link takes the faults of the most
// specific pair that matches it: (from, to), then (from, 0), then (0, to),
// then (0, 0).
func (n *Network) SetLinkFaults(from, to raftdata.NodeID, f LinkFaults) {
	f = f.normalized()
	n.mu.Lock()
	defer n.mu.Unlock()
	if f == (LinkFaults{}) {
		delete(n.faults, netLinkKey{from, to})
	} else {
		n.faults[netLinkKey{from, to}] = f
	}
	n.refreshLocked()
}

// Stats returns the network's counters.
func (n *Network) Stats() NetworkStats {
	return NetworkStats{
		Sent:       n.sent.Load(),
		Delivered:  n.delivered.Load(),
		Dropped:    n.dropped.Load(),
		Duplicated: n.duplicated.Load(),
	}
}

// Close stops all delivery: it cancels the context of Step calls in progress,
// waits for every goroutine of the network to return, and makes every
// endpoint's Send a no-op. Handlers must return from Step once its context is
// done, or Close waits for them. Calling Close again does nothing.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed.Store(true) // under mu: no link goroutine starts after this
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
}

// now is the network's monotonic clock, for delays.
func (n *Network) now() int64 { return int64(time.Since(n.start)) }

// refreshLocked recomputes the fault state of every link.
func (n *Network) refreshLocked() {
	for _, l := range n.links {
		l.state.Store(n.linkStateLocked(l.from, l.to))
	}
}

var netPerfectLink = &netLinkState{}

func (n *Network) linkStateLocked(from, to raftdata.NodeID) *netLinkState {
	blocked := n.blockedLocked(from, to)
	var f LinkFaults
	var found bool
	for _, k := range [...]netLinkKey{{from, to}, {from, 0}, {0, to}, {0, 0}} {
		if f, found = n.faults[k]; found {
			break
		}
	}
	if !blocked && !found {
		return netPerfectLink
	}
	return &netLinkState{
		blocked: blocked,
		faults:  f,
		lossy:   f.DropRate > 0 || f.DuplicateRate > 0,
		delayed: f.MaxDelay > 0,
	}
}

func (n *Network) blockedLocked(from, to raftdata.NodeID) bool {
	if n.cuts[netLinkKey{from, to}] || n.cuts[netLinkKey{from, 0}] ||
		n.cuts[netLinkKey{0, to}] || n.cuts[netLinkKey{0, 0}] {
		return true
	}
	if from == to {
		return false
	}
	if n.isolated[from] || n.isolated[to] {
		return true
	}
	if n.partitioned {
		gf, okf := n.groupOf[from]
		gt, okt := n.groupOf[to]
		if !okf || !okt || gf != gt {
			return true
		}
	}
	return false
}

// linkFrom returns the link from → to, creating it and starting its goroutine
// on first use, or nil when to has never had an endpoint or the network is
// closed.
func (n *Network) linkFrom(from *netNode, to raftdata.NodeID) *netLink {
	if m := from.out.Load(); m != nil {
		if l := (*m)[to]; l != nil {
			return l
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed.Load() {
		return nil
	}
	old := from.out.Load()
	if old != nil {
		if l := (*old)[to]; l != nil {
			return l
		}
	}
	dst := n.nodes[to]
	if dst == nil {
		return nil
	}
	l := &netLink{
		net:    n,
		from:   from.id,
		to:     to,
		src:    from,
		dst:    dst,
		signal: make(chan struct{}, 1),
		quit:   make(chan struct{}),
	}
	l.state.Store(n.linkStateLocked(from.id, to))
	n.links[netLinkKey{from.id, to}] = l
	m := make(map[raftdata.NodeID]*netLink, 1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[to] = l
	from.out.Store(&m)
	n.wg.Add(1)
	go l.run()
	return l
}

// netNode is the lasting state of a node id, across endpoint incarnations.
type netNode struct {
	id raftdata.NodeID
	// Counters since the node's first endpoint, for Stats.
	sent, received, dropped atomic.Uint64
	cur                     atomic.Pointer[netEndpoint]                  // open endpoint, or nil
	out                     atomic.Pointer[map[raftdata.NodeID]*netLink] // outbound links, copy on write under Network.mu
}

// netEndpoint is one incarnation of a node's raft.Network.
type netEndpoint struct {
	net     *Network
	node    *netNode
	ctx     context.Context // passed to the handler's Step; cancelled by Close
	cancel  context.CancelFunc
	handler atomic.Pointer[netHandlerBox]
	closed  atomic.Bool

	mu    sync.Mutex
	peers []raftdata.Member
}

type netHandlerBox struct{ h raft.Handler }

// Start registers h as the receiver of the node's inbound messages.
func (e *netEndpoint) Start(h raft.Handler) error {
	if h == nil {
		return errNetNilHandler
	}
	if e.net.closed.Load() {
		return ErrNetworkClosed
	}
	if e.closed.Load() {
		return errNetEndpointClosed
	}
	if !e.handler.CompareAndSwap(nil, &netHandlerBox{h}) {
		return errNetEndpointStarted
	}
	return nil
}

// SetPeers records the members; routing goes by node ID alone.
func (e *netEndpoint) SetPeers(members []raftdata.Member) {
	e.mu.Lock()
	e.peers = append(e.peers[:0:0], members...)
	e.mu.Unlock()
}

// Send enqueues msgs on the links to their To nodes and returns at once.
func (e *netEndpoint) Send(msgs []raftdata.Message) {
	n := e.net
	if len(msgs) == 0 || e.closed.Load() || n.closed.Load() {
		return
	}
	n.sent.Add(uint64(len(msgs)))
	e.node.sent.Add(uint64(len(msgs)))
	for i := 0; i < len(msgs); {
		to := msgs[i].To
		j := i + 1
		for j < len(msgs) && msgs[j].To == to {
			j++
		}
		if l := n.linkFrom(e.node, to); l != nil {
			l.enqueue(msgs[i:j])
		} else {
			n.dropped.Add(uint64(j - i))
			e.node.dropped.Add(uint64(j - i))
		}
		i = j
	}
}

// Stats returns the node's counters since its first endpoint: messages
// passed to Send, delivered to it, and dropped on their way from it.
func (e *netEndpoint) Stats() raft.NetworkStats {
	return raft.NetworkStats{Sent: e.node.sent.Load(), Received: e.node.received.Load(), Dropped: e.node.dropped.Load()}
}

// Close unregisters the endpoint, stops the goroutines of its links and discards the messages queued from and to
// its node.
func (e *netEndpoint) Close() error {
	n := e.net
	n.mu.Lock()
	if e.closed.Load() {
		n.mu.Unlock()
		return nil
	}
	e.closed.Store(true)
	e.node.cur.CompareAndSwap(e, nil)
	id := e.node.id
	for k, l := range n.links {
		if k.from == id || k.to == id {
			// Stop the link (its goroutine ends) and forget it; the
			// next message on it starts a new one.
			delete(n.links, k)
			if old := l.src.out.Load(); old != nil {
				m := make(map[raftdata.NodeID]*netLink, len(*old))
				for to, x := range *old {
					if x != l {
						m[to] = x
					}
				}
				l.src.out.Store(&m)
			}
			l.stop()
		}
	}
	n.mu.Unlock()
	e.cancel()
	return nil
}
