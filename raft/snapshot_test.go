package raft_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// snapshotCluster runs 3 nodes taking a snapshot every `every` entries and
// keeping `trailing` entries behind it.
func snapshotCluster(t *testing.T, every, trailing, chunk int) *rafttest.Cluster {
	return snapshotClusterWith(t, every, trailing, chunk, rafttest.ClusterConfig{})
}

// snapshotClusterWith is snapshotCluster with more options (KV and
// Configure are set by it).
func snapshotClusterWith(t *testing.T, every, trailing, chunk int, opts rafttest.ClusterConfig) *rafttest.Cluster {
	opts.KV = true
	opts.Configure = func(cfg *raft.Config) {
		cfg.SnapshotEntries = every
		cfg.SnapshotTrailingEntries = trailing
		cfg.SnapshotChunkBytes = chunk
		cfg.MetricsInterval = 5 * time.Millisecond
	}
	return rafttest.NewCluster(t, 3, opts)
}

// chunkGate connects a cluster's nodes through its own rafttest.Network
// (as ClusterConfig.Transport) and watches the MsgSnap chunks handed to
// them. To the node it holds, it never hands the last chunk of a snapshot,
// so that no transfer to that node can finish, and it records when that
// node is midway through one.
type chunkGate struct {
	net  *rafttest.Network
	held atomic.Uint64 // the raftdata.NodeID held, 0 for none
	// midway is set once the held node was handed a chunk that is neither
	// its snapshot's first nor its last. The leader sends a chunk only
	// once the follower acknowledged the one before, which it does after
	// writing it, so the node then holds a partly written snapshot.
	midway atomic.Bool
}

// transport is a ClusterConfig.Transport.
func (g *chunkGate) transport(id raftdata.NodeID, _ string) (raft.Network, string, error) {
	return &gatedNetwork{Network: g.net.Endpoint(id), gate: g, id: id}, fmt.Sprintf("node-%d", id), nil
}

// gatedNetwork is one node's network behind a chunkGate. It is also the
// Handler it registers with the underlying network, standing between the
// network and the node.
type gatedNetwork struct {
	raft.Network
	gate *chunkGate
	id   raftdata.NodeID
	h    raft.Handler // the node, set by Start
}

// Start registers g in front of the node's handler h.
func (g *gatedNetwork) Start(h raft.Handler) error {
	g.h = h
	return g.Network.Start(g)
}

// Step hands msgs to the node, but for the last snapshot chunks withheld
// from the held node.
func (g *gatedNetwork) Step(ctx context.Context, msgs []raftdata.Message) error {
	held := raftdata.NodeID(g.gate.held.Load()) == g.id
	keep := make([]raftdata.Message, 0, len(msgs))
	midway := false
	for _, m := range msgs {
		if c := m.Snapshot; held && m.Type == raftdata.MsgSnap && c != nil {
			if c.Done {
				continue
			}
			midway = midway || c.Offset > 0
		}
		keep = append(keep, m)
	}
	if len(keep) == 0 {
		return nil
	}
	err := g.h.Step(ctx, keep)
	if err == nil && midway {
		g.gate.midway.Store(true)
	}
	return err
}

func writeN(t *testing.T, c *rafttest.Cluster, n int, prefix string) uint64 {
	t.Helper()
	var last uint64
	for i := 0; i < n; i++ {
		l := c.WaitLeader(waitLong)
		op := rafttest.KVOp{Kind: rafttest.KVPut, Key: fmt.Sprint("k", i%50), Value: fmt.Sprint(prefix, i)}
		if _, err := c.Node(l).Propose(ctxT(t, waitLong), op.Encode()); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		last = c.Node(l).Applied()
	}
	return last
}

func otherThan(c *rafttest.Cluster, id raftdata.NodeID) raftdata.NodeID {
	for _, x := range c.IDs() {
		if x != id {
			return x
		}
	}
	return 0
}

func metricsOf(t *testing.T, c *rafttest.Cluster, id raftdata.NodeID, cond func(raft.Metrics) bool) raft.Metrics {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		m := c.Node(id).Metrics()
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d metrics never matched: %+v", id, m)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sameKV asserts that every node's KV holds the same values.
func sameKV(t *testing.T, c *rafttest.Cluster) {
	t.Helper()
	c.WaitConverged(waitLong)
	ref := c.KV(c.IDs()[0])
	for _, id := range c.IDs()[1:] {
		for k := 0; k < 50; k++ {
			key := fmt.Sprint("k", k)
			if a, b := ref.Get(key), c.KV(id).Get(key); a != b {
				t.Fatalf("node %d has %s=%q, node %d has %q", id, key, b, c.IDs()[0], a)
			}
		}
	}
}

func TestFollowerSlightlyBehindCatchesUpFromLog(t *testing.T) {
	c := snapshotCluster(t, 200, 1000, 0)
	l := c.WaitLeader(waitLong)
	f := otherThan(c, l)
	writeN(t, c, 300, "a") // the leader snapshots, keeping 1000 entries
	c.Crash(f)
	writeN(t, c, 150, "b")
	c.Restart(f)
	sameKV(t, c)
	l = c.Leader()
	if m := c.Node(l).Metrics(); m.SnapshotsSent != 0 {
		t.Fatalf("leader sent %d snapshots to a follower only 150 entries behind", m.SnapshotsSent)
	}
	if m := c.Node(f).Metrics(); m.SnapshotsReceived != 0 {
		t.Fatalf("follower received %d snapshots", m.SnapshotsReceived)
	}
	if m := c.Node(l).Metrics(); m.SnapshotsTaken == 0 || m.SnapshotIndex == 0 {
		t.Fatalf("leader took no snapshot: %+v", m)
	}
}

func TestFollowerFarBehindReceivesSnapshot(t *testing.T) {
	c := snapshotCluster(t, 100, 10, 0)
	l := c.WaitLeader(waitLong)
	f := otherThan(c, l)
	c.Crash(f)
	writeN(t, c, 600, "x")
	l = c.Leader()
	metricsOf(t, c, l, func(m raft.Metrics) bool { return m.FirstIndex > 100 })
	c.Restart(f)
	m := metricsOf(t, c, f, func(m raft.Metrics) bool { return m.SnapshotsReceived > 0 })
	if m.SnapshotIndex == 0 {
		t.Fatalf("follower metrics show no snapshot index: %+v", m)
	}
	writeN(t, c, 20, "after")
	sameKV(t, c)
}

func TestPartitionedFollowerCatchesUpBySnapshot(t *testing.T) {
	c := snapshotCluster(t, 100, rafttest.NoTrailing, 0)
	l := c.WaitLeader(waitLong)
	f := otherThan(c, l)
	c.Net.Isolate(f)
	writeN(t, c, 400, "p")
	c.Net.Heal()
	metricsOf(t, c, f, func(m raft.Metrics) bool { return m.SnapshotsReceived > 0 })
	sameKV(t, c)
}

// TestCrashWhileReceivingSnapshot crashes a follower that holds a partly
// written snapshot, and checks that it recovers (by a new transfer) after
// a restart. Small chunks make the snapshot many chunks long, and a gate
// withholds the last one until after the crash, so that the transfer cannot
// finish first, however slow the machine.
func TestCrashWhileReceivingSnapshot(t *testing.T) {
	gate := &chunkGate{net: rafttest.NewNetwork()}
	t.Cleanup(gate.net.Close) // after the cluster's own cleanups
	c := snapshotClusterWith(t, 100, 10, 256, rafttest.ClusterConfig{Transport: gate.transport})
	l := c.WaitLeader(waitLong)
	f := otherThan(c, l)
	c.Crash(f)
	writeN(t, c, 500, "big-value-to-make-the-snapshot-larger-")
	gate.held.Store(uint64(f))
	c.Restart(f)
	deadline := time.Now().Add(waitLong)
	for !gate.midway.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("node %d was never handed a snapshot chunk past the first", f)
		}
		time.Sleep(time.Millisecond)
	}
	m, err := c.Node(f).CurrentMetrics(ctxT(t, waitLong))
	if err != nil || m.SnapshotsReceived != 0 {
		t.Fatalf("node %d installed %d snapshots (%v) while the last chunk was withheld", f, m.SnapshotsReceived, err)
	}
	c.Crash(f)
	gate.held.Store(0)
	c.Restart(f)
	metricsOf(t, c, f, func(m raft.Metrics) bool { return m.SnapshotsReceived > 0 })
	writeN(t, c, 10, "after")
	sameKV(t, c)
}

func TestRestartAllFromSnapshotAndTail(t *testing.T) {
	c := snapshotCluster(t, 100, 30, 0)
	writeN(t, c, 450, "r")
	c.WaitConverged(waitLong)
	for _, id := range c.IDs() {
		if m := c.Node(id).Metrics(); m.SnapshotIndex == 0 {
			t.Fatalf("node %d took no snapshot", id)
		}
	}
	for _, id := range c.IDs() {
		c.Crash(id)
	}
	for _, id := range c.IDs() {
		c.Restart(id)
	}
	writeN(t, c, 10, "after")
	sameKV(t, c) // the Recorder inside each KV flags anything applied twice
}

func TestSnapshotOnDemand(t *testing.T) {
	c := snapshotCluster(t, -1, 5, 0)
	writeN(t, c, 40, "d")
	l := c.Leader()
	idx, err := c.Node(l).Snapshot(ctxT(t, waitLong))
	if err != nil || idx == 0 {
		t.Fatalf("Snapshot() = %d, %v", idx, err)
	}
	m := metricsOf(t, c, l, func(m raft.Metrics) bool { return m.SnapshotIndex == idx })
	if m.FirstIndex != idx-5+1 {
		t.Fatalf("first index %d after compacting to %d keeping 5", m.FirstIndex, idx)
	}
	again, err := c.Node(l).Snapshot(ctxT(t, waitLong))
	if err != nil || again != idx {
		t.Fatalf("second Snapshot() with nothing new = %d, %v; want %d", again, err, idx)
	}
}

// TestInitializeAfterCompaction: Initialize is documented safe to call on
// every start. Once a snapshot has compacted the first configuration
// entry away it must still answer nil for the cluster's members, on the
// running node and after a restart; a different membership on a node
// whose index 1 is still in the log is refused.
func TestInitializeAfterCompaction(t *testing.T) {
	c := snapshotCluster(t, 20, rafttest.NoTrailing, 0)
	l := c.WaitLeader(waitLong)
	var members []raftdata.Member
	for _, id := range c.IDs() {
		members = append(members, c.Member(id))
	}
	if err := c.Node(l).Initialize(ctxT(t, waitLong), members); err != nil {
		t.Fatalf("Initialize again before compaction: %v", err)
	}
	if err := c.Node(l).Initialize(ctxT(t, waitLong), members[:1]); !errors.Is(err, raft.ErrBadConfig) {
		t.Fatalf("Initialize with other members: %v, want ErrBadConfig", err)
	}
	writeN(t, c, 60, "x")
	for _, id := range c.IDs() {
		metricsOf(t, c, id, func(m raft.Metrics) bool { return m.FirstIndex > 1 })
		if err := c.Node(id).Initialize(ctxT(t, waitLong), members); err != nil {
			t.Fatalf("node %d: Initialize after compaction: %v", id, err)
		}
	}
	f := otherThan(c, c.Leader())
	c.Crash(f)
	c.Restart(f)
	if err := c.Node(f).Initialize(ctxT(t, waitLong), members); err != nil {
		t.Fatalf("node %d: Initialize after compaction and restart: %v", f, err)
	}
	writeN(t, c, 5, "after")
}
