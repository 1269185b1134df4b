// Package networktest is the conformance suite for raft.Network
// implementations. An adapter's test calls Run with a Factory that opens its
// endpoints; every contract written on raft.Network (and on
// raft.MeasuredNetwork, which the suite requires) is then checked against
// it over real traffic:
//
//	func TestConformance(t *testing.T) {
//		networktest.Run(t, func(t testing.TB) networktest.Opener {
//			return func(o networktest.Config) (raft.Network, string, error) {
//				tr, err := mynet.New(mynet.Config{ClusterID: o.ClusterID, ID: o.ID, Listen: o.Addr})
//				if err != nil {
//					return nil, "", err
//				}
//				return tr, tr.Addr(), nil
//			}
//		})
//	}
//
// Bench measures messages and bytes per second through the same factory.
package networktest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/wire"
)

// Config describes the endpoint an Opener opens.
type Config struct {
	// ClusterID names the cluster. Endpoints of different clusters must
	// never deliver to each other, even when one is given the other's
	// address.
	ClusterID uint64
	// ID is the node the endpoint belongs to.
	ID raftdata.NodeID
	// Addr is "" on a node's first open: the Opener picks a fresh address.
	// When the suite reopens a node (a restart), Addr is the address its
	// first open returned, and peers must reach the new endpoint there.
	Addr string
}

// Opener opens one endpoint, not yet started, and returns it with the
// address peers reach it at (what the suite puts in raftdata.Member.Addr). The
// endpoint must implement raft.MeasuredNetwork.
type Opener func(o Config) (raft.Network, string, error)

// Factory returns the Opener for one check, which may register cleanups
// on t. The suite closes every endpoint it opens.
type Factory func(t testing.TB) Opener

// Bounds of the suite. A Send may take at most SendBound to return, whatever
// the state of the peers; a message on a healthy link arrives within
// DeliveryBound; a restarted peer is reached again within ReconnectBound.
const (
	SendBound      = time.Second
	DeliveryBound  = 10 * time.Second
	ReconnectBound = 15 * time.Second
)

// Sizes the suite sends: a maximum snapshot chunk (raft.MaxSnapshotChunkBytes
// of data) and an append message whose entries total LargeAppendBytes.
const LargeAppendBytes = 768 << 10

// Run checks every contract of raft.Network against the networks f opens.
func Run(t *testing.T, f Factory) {
	checks := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"AllMessageTypes", testAllTypes},
		{"LargeMessages", testLargeMessages},
		{"LargeBatch", testLargeBatch},
		{"ConcurrentSenders", testConcurrentSenders},
		{"UnreachablePeer", testUnreachable},
		{"SlowPeer", testSlowPeer},
		{"PeerRestart", testPeerRestart},
		{"SenderRestart", testSenderRestart},
		{"MembershipChange", testMembershipChange},
		{"UnknownSender", testUnknownSender},
		{"ReplyToUnknown", testReplyToUnknown},
		{"OtherCluster", testOtherCluster},
		{"Close", testClose},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, f) })
	}
}

// harness opens endpoints for one check and closes them at its end.
type harness struct {
	t     testing.TB
	open  Opener
	mu    sync.Mutex
	nodes map[nodeKey]*node
}

type nodeKey struct {
	cluster uint64
	id      raftdata.NodeID
}

// node is one opened endpoint with the collector it delivers to.
type node struct {
	key  nodeKey
	net  raft.MeasuredNetwork
	addr string
	in   *collector
}

func newHarness(t testing.TB, f Factory) *harness {
	h := &harness{t: t, open: f(t), nodes: map[nodeKey]*node{}}
	t.Cleanup(h.closeAll)
	return h
}

// start opens and starts node id of cluster, on addr ("" for a fresh one).
func (h *harness) start(cluster uint64, id raftdata.NodeID, addr string) *node {
	h.t.Helper()
	nw, got, err := h.open(Config{ClusterID: cluster, ID: id, Addr: addr})
	if err != nil {
		h.t.Fatalf("opening node %d of cluster %d: %v", id, cluster, err)
	}
	mn, ok := nw.(raft.MeasuredNetwork)
	if !ok {
		_ = nw.Close()
		h.t.Fatalf("%T does not implement raft.MeasuredNetwork (Stats)", nw)
	}
	n := &node{key: nodeKey{cluster, id}, net: mn, addr: got, in: newCollector()}
	if err := nw.Start(n.in); err != nil {
		_ = nw.Close()
		h.t.Fatalf("starting node %d: %v", id, err)
	}
	h.mu.Lock()
	h.nodes[n.key] = n
	h.mu.Unlock()
	return n
}

// stop closes n, expecting no error.
func (h *harness) stop(n *node) {
	h.t.Helper()
	h.mu.Lock()
	if h.nodes[n.key] == n {
		delete(h.nodes, n.key)
	}
	h.mu.Unlock()
	if err := n.net.Close(); err != nil {
		h.t.Errorf("closing node %d: %v", n.key.id, err)
	}
}

func (h *harness) closeAll() {
	h.mu.Lock()
	nodes := h.nodes
	h.nodes = map[nodeKey]*node{}
	h.mu.Unlock()
	for _, n := range nodes {
		if err := n.net.Close(); err != nil {
			h.t.Errorf("closing node %d: %v", n.key.id, err)
		}
	}
}

// cluster starts nodes 1..k of cluster 1 and tells each about all.
func (h *harness) cluster(k int) []*node {
	h.t.Helper()
	nodes := make([]*node, k)
	for i := range nodes {
		nodes[i] = h.start(1, raftdata.NodeID(i+1), "")
	}
	members := membersOf(nodes...)
	for _, n := range nodes {
		n.net.SetPeers(members)
	}
	return nodes
}

func membersOf(nodes ...*node) []raftdata.Member {
	out := make([]raftdata.Member, len(nodes))
	for i, n := range nodes {
		out[i] = raftdata.Member{ID: n.key.id, Addr: n.addr}
	}
	return out
}

// send calls Send and fails the check if it took longer than SendBound.
func send(t testing.TB, n *node, msgs []raftdata.Message) {
	t.Helper()
	start := time.Now()
	n.net.Send(msgs)
	if d := time.Since(start); d > SendBound {
		t.Fatalf("Send of %d messages blocked for %v (bound %v)", len(msgs), d, SendBound)
	}
}

// collector is the Handler of a test endpoint: it keeps what arrives.
type collector struct {
	mu      sync.Mutex
	msgs    []raftdata.Message
	changed chan struct{} // closed and replaced on every arrival
	gate    chan struct{} // while non-nil, Step waits for it to close
}

func newCollector() *collector { return &collector{changed: make(chan struct{})} }

func (c *collector) Step(ctx context.Context, msgs []raftdata.Message) error {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, msgs...)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// block makes Step wait until the returned function is called.
func (c *collector) block() (release func()) {
	gate := make(chan struct{})
	c.mu.Lock()
	c.gate = gate
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.gate = nil
			c.mu.Unlock()
			close(gate)
		})
	}
}

func (c *collector) snapshot() []raftdata.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]raftdata.Message(nil), c.msgs...)
}

// waitFor waits until ok holds over the messages received so far, or
// bound passes; it reports whether ok held.
func (c *collector) waitFor(bound time.Duration, ok func([]raftdata.Message) bool) bool {
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		done := ok(c.msgs)
		changed := c.changed
		c.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			return ok(c.msgs)
		}
	}
}

// count is an ok func for waitFor: at least k messages matching match.
func count(k int, match func(*raftdata.Message) bool) func([]raftdata.Message) bool {
	return func(ms []raftdata.Message) bool {
		n := 0
		for i := range ms {
			if match(&ms[i]) {
				n++
			}
		}
		return n >= k
	}
}

// tagged matches messages whose Context is tag.
func tagged(tag uint64) func(*raftdata.Message) bool {
	return func(m *raftdata.Message) bool { return m.Context == tag }
}

// sameMessage reports whether a and b are equal field by field, comparing
// through the canonical wire encoding (nil and empty slices are equal).
func sameMessage(a, b *raftdata.Message) bool {
	return bytes.Equal(wire.AppendMessage(nil, a), wire.AppendMessage(nil, b))
}

func describe(m *raftdata.Message) string {
	return fmt.Sprintf("%v from %d to %d term %d index %d context %d (%d entries)", m.Type, m.From, m.To, m.Term, m.Index, m.Context, len(m.Entries))
}

// waitStats waits until ok holds over n's counters, or bound passes.
func waitStats(n *node, bound time.Duration, ok func(raft.NetworkStats) bool) (raft.NetworkStats, bool) {
	deadline := time.Now().Add(bound)
	for {
		s := n.net.Stats()
		if ok(s) || time.Now().After(deadline) {
			return s, ok(s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
