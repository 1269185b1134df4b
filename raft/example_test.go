package raft_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// counter is a tiny replicated state machine: each command is a decimal
// integer added to a running total, and each command's result is the new
// total.
type counter struct {
	mu    sync.Mutex // guards total against readers outside the apply goroutine
	total int64
}

// Apply adds each command to the total. A command that does not parse is a
// per-command failure: its result is the error, and the machine goes on.
func (c *counter) Apply(entries []raftdata.Entry, results []any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range entries {
		v, err := strconv.ParseInt(string(e.Data), 10, 64)
		if err != nil {
			results[i] = fmt.Errorf("bad command %q: %w", e.Data, err)
			continue
		}
		c.total += v
		results[i] = c.total
	}
	return nil
}

// Snapshot captures the total; the value is copied, so Apply may go on
// while the snapshot is written out.
func (c *counter) Snapshot() (raft.Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return counterSnapshot{total: c.total}, nil
}

// Restore replaces the total with the one a snapshot wrote.
func (c *counter) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("counter snapshot: %w", err)
	}
	c.mu.Lock()
	c.total = v
	c.mu.Unlock()
	return nil
}

// Total reads the state, as an application's read path would.
func (c *counter) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// counterSnapshot is a point-in-time view of a counter.
type counterSnapshot struct{ total int64 }

func (s counterSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := io.WriteString(w, strconv.FormatInt(s.total, 10))
	return int64(n), err
}

func (s counterSnapshot) Release() {}

// startSingleNode starts node 1 alone as a one-member cluster, waits until
// it leads, and returns it with its state machine and a function that stops
// it and releases its storage and network.
func startSingleNode(ctx context.Context) (*raft.Node, *counter, func(), error) {
	net := rafttest.NewNetwork()
	store := memory.New()
	sm := &counter{}
	node, err := raft.NewNode(ctx, raft.Config{
		ID:                1,
		Storage:           store,
		Network:           net.Endpoint(1),
		StateMachine:      sm,
		HeartbeatInterval: 10 * time.Millisecond,
		ElectionTimeout:   100 * time.Millisecond,
	})
	if err != nil {
		net.Close()
		return nil, nil, nil, err
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = node.Stop(sctx) // Stop leaves the Storage and Network to their owner.
		net.Close()
		_ = store.Close()
	}
	// A brand-new node has no configuration: form a cluster of one.
	if err := node.Initialize(ctx, []raftdata.Member{{ID: 1, Addr: "node-1"}}); err != nil {
		stop()
		return nil, nil, nil, err
	}
	// The node elects itself after one election timeout.
	deadline := time.Now().Add(5 * time.Second)
	for node.Role() != raftdata.RoleLeader {
		if time.Now().After(deadline) {
			stop()
			return nil, nil, nil, errors.New("no leader within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return node, sm, stop, nil
}

// Example embeds a Node in a program: a one-node cluster on memory storage
// and the in-memory test network, driving a counter state machine.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	node, sm, stop, err := startSingleNode(ctx)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer stop()

	// Propose returns once the command is committed and applied, with the
	// state machine's result for it.
	for _, cmd := range []string{"5", "10", "-3", "oops"} {
		res, err := node.Propose(ctx, []byte(cmd))
		if err != nil {
			fmt.Println("propose:", err)
			return
		}
		fmt.Printf("add %s -> %v\n", cmd, res)
	}

	// A linearizable read: confirm leadership, wait until the state machine
	// has caught up, then read it directly.
	if _, err := node.ReadIndex(ctx); err != nil {
		fmt.Println("read:", err)
		return
	}
	fmt.Println("total:", sm.Total())

	// Output:
	// add 5 -> 5
	// add 10 -> 15
	// add -3 -> 12
	// add oops -> bad command "oops": strconv.ParseInt: parsing "oops": invalid syntax
	// total: 12
}

// ExampleNode_ProposeOrForward shows the shape of a ForwardFunc. On the
// leader, ProposeOrForward proposes locally and forward is not called; on a
// follower it is called with the leader this node knows of, and would send
// the command through the application's own RPC.
func ExampleNode_ProposeOrForward() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	node, _, stop, err := startSingleNode(ctx)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer stop()

	forwarded := false
	forward := func(ctx context.Context, leader raftdata.Member, cmd []byte) (any, error) {
		forwarded = true
		// A real application calls the leader's service at leader.Addr here
		// and returns its result, and its error as is (so that a
		// raft.ErrNotLeader from a deposed leader is retried).
		return nil, fmt.Errorf("no RPC in this example (leader %d at %q)", leader.ID, leader.Addr)
	}

	res, err := node.ProposeOrForward(ctx, []byte("42"), forward)
	if err != nil {
		fmt.Println("propose:", err)
		return
	}
	fmt.Println("result:", res)
	fmt.Println("forwarded:", forwarded)

	// Output:
	// result: 42
	// forwarded: false
}

// ExampleNotLeaderError shows how a caller finds the leader to retry with
// when a call reaches a node that does not lead.
func ExampleNotLeaderError() {
	// Calls such as Propose and ReadIndex on a follower return an error
	// like this one, possibly wrapped by the application.
	err := fmt.Errorf("put x: %w", &raft.NotLeaderError{LeaderID: 2, LeaderAddr: "10.0.0.2:7000"})

	fmt.Println(err)
	fmt.Println("not leader:", errors.Is(err, raft.ErrNotLeader))

	var nl *raft.NotLeaderError
	if errors.As(err, &nl) && nl.LeaderID != 0 {
		fmt.Printf("retry on node %d at %s\n", nl.LeaderID, nl.LeaderAddr)
	}

	// Output:
	// put x: raft: not the leader (leader is 2 at "10.0.0.2:7000")
	// not leader: true
	// retry on node 2 at 10.0.0.2:7000
}

// The examples below run several nodes in one process. Their timers are
// short so that they finish quickly; the defaults (a 100ms heartbeat and a
// 1s election timeout) suit a real network.
const (
	exampleHeartbeat = 10 * time.Millisecond
	exampleElection  = 100 * time.Millisecond
)

// testCluster is a few nodes on one in-memory network, each with its own
// memory storage and counter.
type testCluster struct {
	net      *rafttest.Network
	nodes    map[raftdata.NodeID]*raft.Node
	machines map[raftdata.NodeID]*counter
	stores   []*memory.Storage
}

// start starts node id on empty storage. It does not initialize it: the
// caller either forms a cluster with Initialize or lets a leader add it.
func (c *testCluster) start(ctx context.Context, id raftdata.NodeID, tweak func(*raft.Config)) (*raft.Node, error) {
	store := memory.New()
	sm := &counter{}
	cfg := raft.Config{
		ID:                id,
		Storage:           store,
		Network:           c.net.Endpoint(id),
		StateMachine:      sm,
		HeartbeatInterval: exampleHeartbeat,
		ElectionTimeout:   exampleElection,
		MetricsInterval:   exampleHeartbeat,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	node, err := raft.NewNode(ctx, cfg)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	c.nodes[id], c.machines[id] = node, sm
	c.stores = append(c.stores, store)
	return node, nil
}

// startCluster starts nodes 1 to n, initializes them as one cluster and
// waits until they agree on a leader, which it returns. tweak, if not nil,
// adjusts each node's Config.
func startCluster(ctx context.Context, n int, tweak func(*raft.Config)) (*testCluster, *raft.Node, error) {
	c := &testCluster{net: rafttest.NewNetwork(), nodes: map[raftdata.NodeID]*raft.Node{}, machines: map[raftdata.NodeID]*counter{}}
	var members []raftdata.Member
	for id := raftdata.NodeID(1); id <= raftdata.NodeID(n); id++ {
		members = append(members, raftdata.Member{ID: id, Addr: fmt.Sprintf("node-%d", id)})
	}
	for _, m := range members {
		node, err := c.start(ctx, m.ID, tweak)
		if err == nil {
			err = node.Initialize(ctx, members)
		}
		if err != nil {
			c.stop()
			return nil, nil, err
		}
	}
	leader, err := waitLeader(ctx, c.list()...)
	if err != nil {
		c.stop()
		return nil, nil, err
	}
	return c, leader, nil
}

// list returns the cluster's nodes.
func (c *testCluster) list() []*raft.Node {
	var out []*raft.Node
	for _, n := range c.nodes {
		out = append(out, n)
	}
	return out
}

// stop stops every node, then closes the network and the storage, which
// Node.Stop leaves to their owner.
func (c *testCluster) stop() {
	for _, n := range c.nodes {
		stopNode(n)
	}
	c.net.Close()
	for _, s := range c.stores {
		_ = s.Close()
	}
}

// stopNode stops a node, giving it a few seconds to finish its writes.
func stopNode(n *raft.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.Stop(ctx)
}

// waitLeader waits until one of nodes leads and every other one knows it
// as its leader, and returns it.
func waitLeader(ctx context.Context, nodes ...*raft.Node) (*raft.Node, error) {
	var leader *raft.Node
	err := waitFor(ctx, func() bool {
		leader = nil
		for _, n := range nodes {
			if n.Role() == raftdata.RoleLeader {
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range nodes {
			if id, _ := n.Leader(); id != leader.ID() {
				return false
			}
		}
		return true
	})
	return leader, err
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// ExampleNewNode starts a three-node cluster in one process. Each node has
// its own storage and its own endpoint of the network, and every initial
// node is initialized with the same members. In production each node runs
// in its own process, on adapters/storage/disk and adapters/network/tcp.
func ExampleNewNode() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	net := rafttest.NewNetwork() // the test kit's in-memory network
	defer net.Close()

	members := []raftdata.Member{{ID: 1, Addr: "node-1"}, {ID: 2, Addr: "node-2"}, {ID: 3, Addr: "node-3"}}
	var nodes []*raft.Node
	var machines []*counter
	for _, m := range members {
		store := memory.New()
		defer store.Close() // the node does not close its storage
		sm := &counter{}
		node, err := raft.NewNode(ctx, raft.Config{
			ID:           m.ID,
			Storage:      store,
			Network:      net.Endpoint(m.ID),
			StateMachine: sm,
			// Short timers for a demo in one process; the defaults
			// (100ms and 1s) suit a real network.
			HeartbeatInterval: 10 * time.Millisecond,
			ElectionTimeout:   100 * time.Millisecond,
		})
		if err != nil {
			fmt.Println("new node:", err)
			return
		}
		defer stopNode(node)
		// A new node has no configuration. Initialize gives every initial
		// node the same one; it does nothing on a node that already holds
		// it, so a program may call it on every start.
		if err := node.Initialize(ctx, members); err != nil {
			fmt.Println("initialize:", err)
			return
		}
		nodes, machines = append(nodes, node), append(machines, sm)
	}

	// One node wins an election (Raft paper §5.2). Which one is up to the
	// randomized timeouts, so the example does not print its ID.
	leader, err := waitLeader(ctx, nodes...)
	if err != nil {
		fmt.Println("no leader:", err)
		return
	}
	fmt.Println("leader elected")

	res, err := leader.Propose(ctx, []byte("7"))
	if err != nil {
		fmt.Println("propose:", err)
		return
	}
	fmt.Println("result on the leader:", res)

	// Followers apply the entry once they learn it is committed, with the
	// leader's next message.
	err = waitFor(ctx, func() bool {
		for _, sm := range machines {
			if sm.Total() != 7 {
				return false
			}
		}
		return true
	})
	fmt.Println("applied on all three nodes:", err == nil)

	// Output:
	// leader elected
	// result on the leader: 7
	// applied on all three nodes: true
}

// ExampleNode_TransferLeadership hands leadership to a chosen follower, as
// before restarting the leader's machine for maintenance. The leader stops
// taking proposals, brings the target up to date and tells it to campaign
// at once (Raft thesis §3.10), so the cluster is without a leader for a
// round trip instead of an election timeout.
func ExampleNode_TransferLeadership() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, leader, err := startCluster(ctx, 3, nil)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer c.stop()

	if _, err := leader.Propose(ctx, []byte("1")); err != nil {
		fmt.Println("propose:", err)
		return
	}

	// Pick a follower. Passing 0 instead lets the leader pick the most
	// up-to-date voter.
	var target raftdata.NodeID
	for id := range c.nodes {
		if id != leader.ID() {
			target = id
			break
		}
	}
	if err := leader.TransferLeadership(ctx, target); err != nil {
		// errors.Is(err, raft.ErrTransferFailed) when the target did not
		// win within an election timeout: the old leader leads on.
		fmt.Println("transfer:", err)
		return
	}
	// It returns once the old leader has seen another node lead. Wait
	// until every node agrees on the new leader before looking.
	newLeader, err := waitLeader(ctx, c.list()...)
	if err != nil {
		fmt.Println("no leader:", err)
		return
	}
	fmt.Println("old leader is now a", leader.Role())
	fmt.Println("the target leads:", newLeader.ID() == target)

	// The old leader refuses proposals and names the new leader.
	_, err = leader.Propose(ctx, []byte("1"))
	var nl *raft.NotLeaderError
	fmt.Println("proposal on the old leader redirected:", errors.As(err, &nl) && nl.LeaderID == target)

	// Output:
	// old leader is now a follower
	// the target leads: true
	// proposal on the old leader redirected: true
}

// ExampleNode_ReadIndex serves a linearizable read. Reading a follower's
// state machine directly could return stale data, and so could a leader
// that was deposed without knowing it; ReadIndex confirms leadership with
// a quorum and waits until the state machine has caught up (Raft thesis
// §6.4) before the application reads.
func ExampleNode_ReadIndex() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, leader, err := startCluster(ctx, 3, nil)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer c.stop()

	for _, cmd := range []string{"20", "22"} {
		if _, err := leader.Propose(ctx, []byte(cmd)); err != nil {
			fmt.Println("propose:", err)
			return
		}
	}

	// A follower does not serve reads: it names the leader to forward to.
	for id, n := range c.nodes {
		if id == leader.ID() {
			continue
		}
		_, err := n.ReadIndex(ctx)
		var nl *raft.NotLeaderError
		fmt.Println("follower forwards to the leader:", errors.As(err, &nl) && nl.LeaderID == leader.ID())
		break
	}

	// On the leader: once ReadIndex returns, reading the state machine
	// observes every write acknowledged before the call.
	if _, err := leader.ReadIndex(ctx); err != nil {
		fmt.Println("read:", err)
		return
	}
	fmt.Println("total:", c.machines[leader.ID()].Total())

	// Output:
	// follower forwards to the leader: true
	// total: 42
}

// ExampleNode_LeaseRead serves reads from the leader's lease, without a
// quorum round per read (Raft thesis §6.4.1). It must be enabled with
// Config.LeaseReads, and is safe only under the clock-drift bound
// Config.MaxClockDrift; when the lease is not known to hold, LeaseRead
// falls back to a ReadIndex round.
func ExampleNode_LeaseRead() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, leader, err := startCluster(ctx, 3, func(cfg *raft.Config) {
		cfg.LeaseReads = true
		cfg.MaxClockDrift = 0.1 // the default: clocks' rates differ by at most 10%
	})
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer c.stop()

	if _, err := leader.Propose(ctx, []byte("5")); err != nil {
		fmt.Println("propose:", err)
		return
	}
	if _, err := leader.LeaseRead(ctx); err != nil {
		fmt.Println("read:", err)
		return
	}
	fmt.Println("total:", c.machines[leader.ID()].Total())

	// Output:
	// total: 5
}

// ExampleNode_Subscribe watches a leader's metrics until every follower
// has replicated a write. Updates coalesce: a slow reader finds only the
// newest metrics, so the loop checks a condition rather than counting
// updates.
func ExampleNode_Subscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, leader, err := startCluster(ctx, 3, nil)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer c.stop()

	f, err := leader.ProposeAsync(ctx, []byte("3"))
	if err != nil {
		fmt.Println("propose:", err)
		return
	}

	// The channel holds the latest metrics at once, then an update on
	// every change of role, term, leader or membership, and every
	// Config.MetricsInterval otherwise (10ms for these example nodes).
	updates, unsubscribe := leader.Subscribe()
	defer unsubscribe()
	for {
		select {
		case m := <-updates:
			// Peers are reported by the leader only, ordered by ID.
			replicated := 0
			for _, p := range m.Peers {
				if p.Match >= f.Index() {
					replicated++
				}
			}
			if m.Role != raftdata.RoleLeader || replicated < 2 {
				continue // wait for the next update
			}
			fmt.Println("role:", m.Role)
			fmt.Println("voters:", len(m.Membership.Voters))
			fmt.Println("peers holding the write:", replicated)
			return
		case <-ctx.Done():
			fmt.Println("gave up:", ctx.Err())
			return
		}
	}

	// Output:
	// role: leader
	// voters: 3
	// peers holding the write: 2
}

// ExampleNode_Snapshot takes a snapshot on demand and restarts the node on
// the same storage: NewNode restores the state machine from the snapshot
// (Raft paper §7) and replays only the log after it.
func ExampleNode_Snapshot() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	net := rafttest.NewNetwork()
	defer net.Close()
	store := memory.New()
	cfg := raft.Config{
		ID:                1,
		Storage:           store,
		Network:           net.Endpoint(1),
		StateMachine:      &counter{},
		HeartbeatInterval: exampleHeartbeat,
		ElectionTimeout:   exampleElection,
		// Automatic snapshots come every SnapshotEntries applied entries
		// (default 16384); this example takes one by hand.
		SnapshotEntries: -1,
	}
	node, err := raft.NewNode(ctx, cfg)
	if err == nil {
		err = node.Initialize(ctx, []raftdata.Member{{ID: 1, Addr: "node-1"}})
	}
	if err == nil {
		_, err = waitLeader(ctx, node)
	}
	for _, cmd := range []string{"4", "5", "6"} {
		if err == nil {
			_, err = node.Propose(ctx, []byte(cmd))
		}
	}
	if err != nil {
		fmt.Println("start:", err)
		return
	}

	index, err := node.Snapshot(ctx)
	if err != nil {
		fmt.Println("snapshot:", err)
		return
	}
	fmt.Println("snapshot at the applied index:", index == node.Applied())

	// Restart: stop the node, close its network endpoint and storage
	// (Stop leaves them to their owner), and open the storage again, as a
	// process would after a crash (memory.Storage.Reopen models that).
	stopNode(node)
	_ = cfg.Network.Close()
	_ = store.Close()
	store = store.Reopen()
	defer store.Close()
	restored := &counter{}
	cfg.Storage, cfg.Network, cfg.StateMachine = store, net.Endpoint(1), restored
	node, err = raft.NewNode(ctx, cfg)
	if err != nil {
		fmt.Println("restart:", err)
		return
	}
	defer stopNode(node)
	fmt.Println("total restored from the snapshot:", restored.Total())

	// Output:
	// snapshot at the applied index: true
	// total restored from the snapshot: 15
}
