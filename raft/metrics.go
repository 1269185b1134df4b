package raft

import (
	"context"
	"sync"
	"time"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// PeerMetrics is the leader's view of one peer.
type PeerMetrics struct {
	ID raftdata.NodeID
	// Voter is false for a non-voter.
	Voter bool
	// Match is the highest index known replicated on the peer.
	Match uint64
	// Lag is how many entries the peer is behind the leader's last index.
	Lag uint64
	// LastContact is how long ago the leader last heard from the peer,
	// to heartbeat granularity.
	LastContact time.Duration
	// State is "probe", "replicate" or "snapshot".
	State string
}

// Metrics is a point-in-time view of a node. Its slices (Membership's and
// Peers) are shared by every reader of the same publication: treat them as
// read-only, and Clone a Membership before changing it.
type Metrics struct {
	// ID is this node's ID.
	ID raftdata.NodeID
	// Group is the Raft group the node belongs to.
	Group raftdata.GroupID
	// Role is the node's part in the protocol now.
	Role raftdata.Role
	// Term is the node's current term.
	Term uint64
	// Leader is the leader the node knows of, or 0.
	Leader raftdata.NodeID
	// LeaderAddr is that leader's address, or "".
	LeaderAddr string
	// CommitIndex, AppliedIndex and LastIndex are the highest committed,
	// applied and appended indexes; FirstIndex is the first in the log.
	CommitIndex  uint64
	AppliedIndex uint64
	LastIndex    uint64
	FirstIndex   uint64
	Membership   raftdata.Membership
	// Removed is set once this node's log holds a configuration without
	// it: it no longer takes part and will not campaign.
	Removed bool
	// PhasingOut is set on a leader of a joint configuration whose new
	// voters exclude it: it steps down once C_new commits.
	PhasingOut bool
	// SnapshotIndex is the index of the latest snapshot (0 if none).
	SnapshotIndex uint64
	// SnapshotsTaken, SnapshotsSent and SnapshotsReceived count snapshots
	// of this node's state, transfers started to followers, and snapshots
	// installed from a leader, since the node started.
	SnapshotsTaken    uint64
	SnapshotsSent     uint64
	SnapshotsReceived uint64
	// StorageErrors counts storage calls that failed since the node
	// started (each retry counts once).
	StorageErrors uint64
	// StorageStall is how long the storage write in progress has been
	// failing or waiting (0 when none is, or when it is young): a leader
	// hands leadership over past an election timeout, and the node stops
	// past Config.StorageTimeout.
	StorageStall time.Duration
	// Peers is filled on the leader only, ordered by ID.
	Peers []PeerMetrics
	// Network holds the counters of a Network that implements
	// MeasuredNetwork (every raftkit adapter does); zero otherwise.
	Network NetworkStats
	// At is when the metrics were taken.
	At time.Time
}

// metricsHub fans metrics out to subscribers without ever blocking the
// node: each subscriber has a one-slot channel, and a slow one finds only
// the newest metrics in it (updates coalesce).
type metricsHub struct {
	mu     sync.Mutex
	subs   map[int]chan Metrics
	next   int
	last   Metrics
	closed bool
}

func newMetricsHub() *metricsHub { return &metricsHub{subs: map[int]chan Metrics{}} }

func (h *metricsHub) publish(m Metrics) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = m
	for _, ch := range h.subs {
		select {
		case ch <- m:
			continue
		default:
		}
		select { // replace the stale value the reader has not taken
		case <-ch:
		default:
		}
		select {
		case ch <- m:
		default:
		}
	}
}

func (h *metricsHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for id, ch := range h.subs {
		close(ch)
		delete(h.subs, id)
	}
}

// Subscribe returns a channel of metrics, published every
// Config.MetricsInterval and at once on every change of role, term, leader
// or membership. The channel holds one value: a reader that falls behind
// receives the newest metrics, never a backlog, and never slows the node.
// The channel is closed when the node stops or cancel is called.
func (n *Node) Subscribe() (<-chan Metrics, func()) {
	h := n.metrics
	ch := make(chan Metrics, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	id := h.next
	h.next++
	h.subs[id] = ch
	ch <- h.last
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if c, ok := h.subs[id]; ok {
			close(c)
			delete(h.subs, id)
		}
	}
}

// Metrics returns the most recently published metrics: the role, term,
// leader and membership are current, while counters and indexes may be up
// to Config.MetricsInterval old (see CurrentMetrics).
func (n *Node) Metrics() Metrics {
	n.metrics.mu.Lock()
	defer n.metrics.mu.Unlock()
	return n.metrics.last
}

// CurrentMetrics gathers the node's metrics now, on its main loop, and
// publishes them to subscribers too. Use it where a reading must be up to
// date (a status page, a test); it waits for the loop, so polling it often
// costs the node work that Metrics does not. It returns ErrStopped once the
// node stopped, or ctx's error.
func (n *Node) CurrentMetrics(ctx context.Context) (Metrics, error) {
	var m Metrics
	if err := n.control(ctx, func() { m = n.publishMetrics() }); err != nil {
		return Metrics{}, err
	}
	return m, nil
}

// publishMetrics runs on the main loop; it returns what it published.
func (n *Node) publishMetrics() Metrics {
	s := n.eng.Status()
	m := Metrics{
		ID: n.cfg.ID, Group: n.cfg.Group, Role: s.Role, Term: s.Term, Leader: s.Leader,
		LeaderAddr: n.lastView.leaderAddr, CommitIndex: s.Committed, AppliedIndex: n.applier.applied.Load(),
		LastIndex: s.LastIndex, FirstIndex: s.FirstIndex, Membership: s.Membership, At: time.Now(),
		Removed:       n.eng.Removed(),
		PhasingOut:    n.eng.PhasingOut(),
		SnapshotIndex: n.eng.SnapshotIndex(), SnapshotsTaken: n.snaps.taken.Load(),
		SnapshotsSent: n.snaps.sent.Load(), SnapshotsReceived: n.snaps.received.Load(),
	}
	m.StorageErrors = n.watch.errors.Load()
	m.StorageStall, _ = n.watch.busyFor(n.monoClock())
	if mn, ok := n.cfg.Network.(MeasuredNetwork); ok {
		m.Network = mn.Stats()
	}
	for _, p := range s.Peers {
		m.Peers = append(m.Peers, PeerMetrics{
			ID: p.ID, Voter: p.Voter, Match: p.Match, Lag: s.LastIndex - min(p.Match, s.LastIndex),
			LastContact: time.Duration(p.TicksSinceContact) * n.cfg.HeartbeatInterval, State: p.State,
		})
	}
	n.metrics.publish(m)
	return m
}
