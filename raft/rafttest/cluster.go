package rafttest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// ClusterConfig configures NewCluster. Zero values pick test defaults.
type ClusterConfig struct {
	// Seed seeds the network's fault injection and the nodes' timers.
	Seed int64
	// HeartbeatInterval defaults to 10ms and ElectionTimeout to 100ms.
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// Configure, if set, adjusts each node's Config before it starts.
	Configure func(*raft.Config)
	// KV runs a KV state machine on each node instead of a bare Recorder.
	KV bool
	// Transport, if set, opens node id's network instead of an endpoint
	// of the in-memory Network (whose faults then do not apply to it). It
	// is called on every start of the node with the address the node had
	// ("" on its first start) and returns the network and its address.
	Transport func(id raftdata.NodeID, addr string) (raft.Network, string, error)
	// Storage, if set, opens node id's storage instead of a memory store.
	// It is called on every start of the node and must return a store over
	// the same data each time (a crash closes the store it returned). The
	// cluster then checks agreement through the state machines, which
	// record every command they apply, and Cluster.Storage returns nil.
	Storage func(id raftdata.NodeID) (raft.Storage, error)
}

// Cluster runs Raft nodes in one process over an in-memory Network, each
// with memory storage and a Recorder state machine. It can crash and
// restart nodes (keeping their storage) and check that every node agrees.
type Cluster struct {
	t    testing.TB
	Net  *Network
	opts ClusterConfig
	ids  []raftdata.NodeID

	mu    sync.Mutex
	nodes map[raftdata.NodeID]*clusterMember
}

type clusterMember struct {
	node  *raft.Node // nil while crashed
	net   raft.Network
	addr  string
	store *memory.Storage
	open  raft.Storage // from ClusterConfig.Storage, nil while crashed
	sm    *Recorder
	kv    *KV // set with ClusterConfig.KV
}

// NewCluster starts n voters with IDs 1..n, initializes them as one
// cluster, and stops them when the test ends.
func NewCluster(t testing.TB, n int, opts ClusterConfig) *Cluster {
	t.Helper()
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 10 * time.Millisecond
	}
	if opts.ElectionTimeout == 0 {
		opts.ElectionTimeout = 10 * opts.HeartbeatInterval
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	c := &Cluster{t: t, Net: NewNetwork(WithSeed(opts.Seed)), opts: opts, nodes: map[raftdata.NodeID]*clusterMember{}}
	c.mu.Lock()
	for i := 1; i <= n; i++ {
		id := raftdata.NodeID(i)
		c.ids = append(c.ids, id)
		c.nodes[id] = &clusterMember{store: memory.New()}
	}
	c.mu.Unlock()
	t.Cleanup(c.Stop)
	t.Cleanup(c.finalCheck) // runs first: cleanups run last-registered first
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var members []raftdata.Member
	for _, id := range c.IDs() {
		c.start(id)
		members = append(members, c.Member(id))
	}
	for _, id := range c.IDs() {
		if err := c.Node(id).Initialize(ctx, members); err != nil {
			t.Fatalf("initialize node %d: %v", id, err)
		}
	}
	return c
}

// AddNode starts a new node with empty storage and no configuration, as a
// fresh machine about to be added with AddNonVoter or ChangeMembership. It
// returns the member to add.
func (c *Cluster) AddNode(id raftdata.NodeID) raftdata.Member {
	c.t.Helper()
	c.mu.Lock()
	c.ids = append(c.ids, id)
	c.nodes[id] = &clusterMember{store: memory.New()}
	c.mu.Unlock()
	c.start(id)
	return c.Member(id)
}

// Member returns node id as a member, with its address.
func (c *Cluster) Member(id raftdata.NodeID) raftdata.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return raftdata.Member{ID: id, Addr: c.nodes[id].addr}
}

func (c *Cluster) start(id raftdata.NodeID) {
	c.t.Helper()
	c.mu.Lock()
	m := c.nodes[id]
	store := m.store
	addr := m.addr
	c.mu.Unlock()
	var nw raft.Network
	if c.opts.Transport == nil {
		nw, addr = c.Net.Endpoint(id), fmt.Sprintf("node-%d", id)
	} else {
		var err error
		if nw, addr, err = c.opts.Transport(id, addr); err != nil {
			c.t.Fatalf("open the network of node %d: %v", id, err)
		}
	}
	c.mu.Lock()
	m.net, m.addr = nw, addr
	c.mu.Unlock()
	var sm raft.StateMachine
	if c.opts.KV {
		kv := NewKV()
		sm = kv
		c.mu.Lock()
		m.kv, m.sm = kv, kv.Recorder
		c.mu.Unlock()
	} else {
		rec := NewRecorder()
		sm = rec
		c.mu.Lock()
		m.sm = rec
		c.mu.Unlock()
	}
	var st raft.Storage = store
	if c.opts.Storage != nil {
		var err error
		if st, err = c.opts.Storage(id); err != nil {
			c.t.Fatalf("open the storage of node %d: %v", id, err)
		}
		c.mu.Lock()
		m.open = st
		c.mu.Unlock()
	}
	cfg := raft.Config{
		ID: id, Storage: st, Network: nw, StateMachine: sm,
		HeartbeatInterval: c.opts.HeartbeatInterval, ElectionTimeout: c.opts.ElectionTimeout,
		RandSeed: uint64(c.opts.Seed)*1000 + uint64(id),
	}
	if c.opts.Configure != nil {
		c.opts.Configure(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node, err := raft.NewNode(ctx, cfg)
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	c.mu.Lock()
	m.node = node
	c.mu.Unlock()
}

// IDs returns the nodes' IDs.
func (c *Cluster) IDs() []raftdata.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

// Node returns node id, or nil while it is crashed.
func (c *Cluster) Node(id raftdata.NodeID) *raft.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id].node
}

// StateMachine returns node id's current state machine.
func (c *Cluster) StateMachine(id raftdata.NodeID) *Recorder {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id].sm
}

// KV returns node id's current KV state machine (with ClusterConfig.KV).
func (c *Cluster) KV(id raftdata.NodeID) *KV {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id].kv
}

// Storage returns node id's memory storage, or nil when
// ClusterConfig.Storage provides the stores.
func (c *Cluster) Storage(id raftdata.NodeID) *memory.Storage {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opts.Storage != nil {
		return nil
	}
	return c.nodes[id].store
}

// closeStore closes the store ClusterConfig.Storage opened for m, if any.
func (c *Cluster) closeStore(id raftdata.NodeID, m *clusterMember) {
	if m.open == nil {
		return
	}
	if err := m.open.Close(); err != nil {
		c.t.Errorf("close the storage of node %d: %v", id, err)
	}
	m.open = nil
}

// Crash stops node id abruptly, as a process crash: its storage keeps what
// was durable, its state machine is lost.
func (c *Cluster) Crash(id raftdata.NodeID) {
	c.t.Helper()
	c.mu.Lock()
	m := c.nodes[id]
	node := m.node
	m.node = nil
	c.mu.Unlock()
	if node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Stop(ctx); err != nil {
		c.t.Fatalf("crash node %d: %v", id, err)
	}
	c.mu.Lock()
	_ = m.net.Close()
	_ = m.store.Close()
	m.store = m.store.Reopen()
	c.closeStore(id, m)
	c.mu.Unlock()
}

// Restart starts a crashed node again on its storage, with a fresh state
// machine that replays the log.
func (c *Cluster) Restart(id raftdata.NodeID) {
	c.t.Helper()
	c.start(id)
}

// Live returns the IDs of the nodes running: neither crashed through the
// harness nor stopped by the test.
func (c *Cluster) Live() []raftdata.NodeID {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []raftdata.NodeID
	for _, id := range c.ids {
		n := c.nodes[id].node
		if n == nil || n.Metrics().Removed {
			continue // crashed, or no longer a member
		}
		select {
		case <-n.Done():
			continue
		default:
		}
		out = append(out, id)
	}
	return out
}

// finalCheck runs when the test ends (unless it already failed): it heals
// the network, waits for the running nodes to converge, and checks that
// every node's log and state machine agree. Every test on a Cluster thereby
// asserts that no committed entry was lost or applied twice.
func (c *Cluster) finalCheck() {
	if c.t.Failed() || len(c.Live()) == 0 {
		return
	}
	c.Net.Heal()
	c.WaitConverged(20 * time.Second)
}

// Leader returns the live node that leads with the highest term, or 0.
func (c *Cluster) Leader() raftdata.NodeID {
	var best raftdata.NodeID
	var term uint64
	for _, id := range c.Live() {
		n := c.Node(id)
		if n == nil {
			continue
		}
		if m := n.Metrics(); n.Role() == raftdata.RoleLeader && m.Term >= term {
			best, term = id, m.Term
		}
	}
	return best
}

// WaitLeader waits up to timeout for a leader among the nodes in among (all
// live nodes if empty) and returns it.
func (c *Cluster) WaitLeader(timeout time.Duration, among ...raftdata.NodeID) raftdata.NodeID {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ids := among
		if len(ids) == 0 {
			ids = c.Live()
		}
		for _, id := range ids {
			if n := c.Node(id); n != nil && n.Role() == raftdata.RoleLeader {
				return id
			}
		}
		time.Sleep(c.opts.HeartbeatInterval / 2)
	}
	c.t.Fatalf("no leader among %v within %v", among, timeout)
	return 0
}

// WaitApplied waits until every live node has applied index.
func (c *Cluster) WaitApplied(index uint64, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		behind := raftdata.NodeID(0)
		for _, id := range c.Live() {
			if n := c.Node(id); n != nil && n.Applied() < index {
				behind = id
				break
			}
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d applied %d, want %d, after %v", behind, c.Node(behind).Applied(), index, timeout)
		}
		time.Sleep(c.opts.HeartbeatInterval / 2)
	}
}

// WaitConverged waits until every live node holds the same log, has
// committed and applied all of it, then checks consistency.
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := c.converged()
		if err == nil {
			c.CheckConsistency()
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster did not converge within %v: %v", timeout, err)
		}
		time.Sleep(c.opts.HeartbeatInterval)
	}
}

func (c *Cluster) converged() error {
	if c.opts.Storage != nil {
		return c.convergedByMetrics()
	}
	var ref uint64
	var refID raftdata.NodeID
	for _, id := range c.Live() {
		n := c.Node(id)
		if n == nil {
			continue
		}
		// The store's last index counts a snapshot: after a compaction
		// that kept no trailing entries, or an installed snapshot, the log
		// may be empty with every entry in the snapshot.
		st, err := c.Storage(id).InitialState(context.Background())
		if err != nil {
			return fmt.Errorf("node %d: %w", id, err)
		}
		last := st.LastIndex
		if last == 0 {
			return fmt.Errorf("node %d has an empty log and no snapshot", id)
		}
		m, err := currentMetrics(n)
		if err != nil {
			return fmt.Errorf("node %d: %w", id, err)
		}
		if n.Applied() != last || m.CommitIndex < last {
			return fmt.Errorf("node %d: last %d commit %d applied %d", id, last, m.CommitIndex, n.Applied())
		}
		if refID == 0 {
			ref, refID = last, id
		} else if last != ref {
			return fmt.Errorf("node %d log ends at %d, node %d at %d", id, last, refID, ref)
		}
	}
	return nil
}

// CheckConsistency fails the test unless every node's committed log
// agrees with every other's, and every live node's state machine applied
// exactly the committed commands up to its applied index, once each, in
// index order.
func (c *Cluster) CheckConsistency() {
	c.t.Helper()
	if c.opts.Storage != nil {
		c.checkAppliedAgree()
		return
	}
	committed := map[uint64]raftdata.Entry{}
	for _, id := range c.IDs() {
		log := c.Storage(id).AllEntries()
		commit := c.Storage(id).HardState().Commit
		if n := c.Node(id); n != nil {
			commit = max(commit, n.Applied())
		}
		for _, e := range log {
			if e.Index > commit {
				break
			}
			if o, ok := committed[e.Index]; ok && (o.Term != e.Term || string(o.Data) != string(e.Data)) {
				c.t.Fatalf("committed entry %d differs: node %d has term %d %q, another has term %d %q",
					e.Index, id, e.Term, e.Data, o.Term, o.Data)
			}
			committed[e.Index] = e
		}
	}
	for _, id := range c.Live() {
		n := c.Node(id)
		sm := c.StateMachine(id)
		if n == nil || sm == nil {
			continue
		}
		if v := sm.Violations(); len(v) > 0 {
			c.t.Fatalf("node %d state machine: %v", id, v)
		}
		log := c.Storage(id).AllEntries()
		var want []raftdata.Entry
		for _, e := range log {
			if e.Index <= n.Applied() && e.Type == raftdata.EntryNormal {
				want = append(want, e)
			}
		}
		// Compare with the part of the log that is left: commands before it
		// were compacted into snapshots (the Recorder checks their order).
		// The log may be empty, everything in a snapshot.
		applied := sm.Applied()
		first := uint64(1)
		if len(log) > 0 {
			first = log[0].Index
		} else if st, err := c.Storage(id).InitialState(context.Background()); err == nil {
			first = st.FirstIndex
		}
		k := 0
		for k < len(applied) && applied[k].Index < first {
			k++
		}
		applied = applied[k:]
		if len(applied) != len(want) {
			c.t.Fatalf("node %d applied %d commands, log holds %d up to applied index %d", id, len(applied), len(want), n.Applied())
		}
		for i := range want {
			if applied[i].Index != want[i].Index || string(applied[i].Data) != string(want[i].Data) {
				c.t.Fatalf("node %d applied %d:%q at position %d, log has %d:%q", id, applied[i].Index, applied[i].Data, i, want[i].Index, want[i].Data)
			}
		}
	}
}

// Stop stops every node and the network.
func (c *Cluster) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range c.IDs() {
		if n := c.Node(id); n != nil {
			if err := n.Stop(ctx); err != nil {
				c.t.Errorf("stop node %d: %v", id, err)
			}
		}
		c.mu.Lock()
		nw := c.nodes[id].net
		c.closeStore(id, c.nodes[id])
		c.mu.Unlock()
		if nw != nil && c.opts.Transport != nil {
			if err := nw.Close(); err != nil {
				c.t.Errorf("close the network of node %d: %v", id, err)
			}
		}
	}
	c.Net.Close()
}

// currentMetrics reads n's metrics as of now (a published reading may be
// up to its MetricsInterval old).
func currentMetrics(n *raft.Node) (raft.Metrics, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.CurrentMetrics(ctx)
}

// convergedByMetrics is converged for stores the cluster cannot inspect:
// every live node has committed and applied the same last index.
func (c *Cluster) convergedByMetrics() error {
	var ref uint64
	var refID raftdata.NodeID
	for _, id := range c.Live() {
		n := c.Node(id)
		if n == nil {
			continue
		}
		m, err := currentMetrics(n)
		if err != nil {
			return fmt.Errorf("node %d: %w", id, err)
		}
		if m.LastIndex == 0 || m.CommitIndex < m.LastIndex || n.Applied() != m.LastIndex {
			return fmt.Errorf("node %d: last %d commit %d applied %d", id, m.LastIndex, m.CommitIndex, n.Applied())
		}
		if refID == 0 {
			ref, refID = m.LastIndex, id
		} else if m.LastIndex != ref {
			return fmt.Errorf("node %d log ends at %d, node %d at %d", id, m.LastIndex, refID, ref)
		}
	}
	return nil
}

// checkAppliedAgree is CheckConsistency for stores the cluster cannot
// inspect: each live state machine applied commands once each in index
// order (the Recorder checks), and no two nodes applied different commands
// at one index.
func (c *Cluster) checkAppliedAgree() {
	c.t.Helper()
	seen := map[uint64]raftdata.Entry{}
	owner := map[uint64]raftdata.NodeID{}
	for _, id := range c.Live() {
		sm := c.StateMachine(id)
		if sm == nil {
			continue
		}
		if v := sm.Violations(); len(v) > 0 {
			c.t.Fatalf("node %d state machine: %v", id, v)
		}
		for _, e := range sm.Applied() {
			if o, ok := seen[e.Index]; ok && (o.Term != e.Term || string(o.Data) != string(e.Data)) {
				c.t.Fatalf("entry %d differs: node %d applied term %d %q, node %d applied term %d %q",
					e.Index, id, e.Term, e.Data, owner[e.Index], o.Term, o.Data)
			}
			seen[e.Index], owner[e.Index] = e, id
		}
	}
}
