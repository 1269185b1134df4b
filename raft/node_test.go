package raft_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

const waitLong = 10 * time.Second

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestProposeAppliesOnEveryNode(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	var last uint64
	for i := 0; i < 100; i++ {
		res, err := c.Node(l).Propose(ctxT(t, waitLong), []byte(fmt.Sprint("cmd-", i)))
		if err != nil {
			t.Fatalf("propose %d: %v", i, err)
		}
		idx := res.(uint64)
		if idx <= last {
			t.Fatalf("result index %d not above %d", idx, last)
		}
		last = idx
	}
	c.WaitConverged(waitLong)
	for _, id := range c.IDs() {
		if got := len(c.StateMachine(id).Applied()); got != 100 {
			t.Fatalf("node %d applied %d commands, want 100", id, got)
		}
	}
}

func TestFollowerReturnsNotLeaderAndForwardingSucceeds(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	// Wait until every node knows the leader.
	deadline := time.Now().Add(waitLong)
	var f raftdata.NodeID
	for _, id := range c.IDs() {
		if id != l {
			f = id
		}
	}
	for {
		if id, _ := c.Node(f).Leader(); id == l {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("follower never learned the leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err := c.Node(f).Propose(ctxT(t, waitLong), []byte("x"))
	var nl *raft.NotLeaderError
	if !errors.Is(err, raft.ErrNotLeader) || !errors.As(err, &nl) {
		t.Fatalf("propose on follower: %v", err)
	}
	if nl.LeaderID != l || nl.LeaderAddr != fmt.Sprintf("node-%d", l) {
		t.Fatalf("not-leader error names %d at %q, want %d", nl.LeaderID, nl.LeaderAddr, l)
	}
	forwarded := 0
	forward := func(ctx context.Context, leader raftdata.Member, cmd []byte) (any, error) {
		forwarded++
		return c.Node(leader.ID).Propose(ctx, cmd)
	}
	res, err := c.Node(f).ProposeOrForward(ctxT(t, waitLong), []byte("forwarded"), forward)
	if err != nil || forwarded != 1 {
		t.Fatalf("forwarded propose: %v (forwarded %d times)", err, forwarded)
	}
	c.WaitApplied(res.(uint64), waitLong)
	c.WaitConverged(waitLong)
}

// writeLoad runs clients that each write unique commands to whichever node
// leads, retrying elsewhere on failure, and records every acknowledged one.
type writeLoad struct {
	c     *rafttest.Cluster
	acked sync.Map // command -> index
	count atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(c *rafttest.Cluster, clients int) *writeLoad {
	w := &writeLoad{c: c, stop: make(chan struct{})}
	for i := 0; i < clients; i++ {
		w.wg.Add(1)
		go func(client int) {
			defer w.wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-w.stop:
					return
				default:
				}
				cmd := fmt.Sprintf("c%d-%d", client, seq)
				l := c.Leader()
				if l == 0 {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				n := c.Node(l)
				if n == nil {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				res, err := n.Propose(ctx, []byte(cmd))
				cancel()
				if err == nil {
					w.acked.Store(cmd, res.(uint64))
					w.count.Add(1)
				}
			}
		}(i)
	}
	return w
}

func (w *writeLoad) finish() {
	close(w.stop)
	w.wg.Wait()
}

// checkAcked asserts that every acknowledged command is in every live
// node's state machine exactly once, at the index it was acknowledged at.
func (w *writeLoad) checkAcked(t *testing.T) {
	t.Helper()
	for _, id := range w.c.Live() {
		seen := map[string]uint64{}
		for _, e := range w.c.StateMachine(id).Applied() {
			if _, dup := seen[string(e.Data)]; dup {
				t.Fatalf("node %d applied %q twice", id, e.Data)
			}
			seen[string(e.Data)] = e.Index
		}
		w.acked.Range(func(k, v any) bool {
			idx, ok := seen[k.(string)]
			if !ok {
				t.Fatalf("node %d lost acknowledged write %q", id, k)
			}
			if idx != v.(uint64) {
				t.Fatalf("node %d applied %q at %d, acknowledged at %d", id, k, idx, v)
			}
			return true
		})
	}
}

func TestLeaderCrashUnderLoadLosesNoAcknowledgedWrite(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	old := c.WaitLeader(waitLong)
	load := startLoad(c, 32)
	waitCount(t, load, 300)
	c.Crash(old)
	before := load.count.Load()
	l := c.WaitLeader(waitLong)
	if l == old {
		t.Fatal("crashed node still leader")
	}
	waitCount(t, load, before+300)
	load.finish()
	c.Restart(old)
	c.WaitConverged(waitLong)
	load.checkAcked(t)
	t.Logf("%d writes acknowledged across the crash", load.count.Load())
}

func waitCount(t *testing.T, w *writeLoad, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for w.count.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d writes acknowledged", w.count.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTimedOutProposalsNeverCrossResults runs proposals whose contexts
// expire at random points (before submission, while queued, while
// replicating) alongside normal ones. Recycled futures must never deliver
// one proposal's result to another: every result names the index holding
// the command that was proposed.
func TestTimedOutProposalsNeverCrossResults(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	type ack struct {
		cmd string
		idx uint64
	}
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	for client := 0; client < 32; client++ {
		wg.Add(1)
		go func(client int) {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				cmd := fmt.Sprintf("c%d-%d", client, i)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration((client*7+i)%5)*300*time.Microsecond)
				if (client+i)%3 == 0 {
					cancel()
					ctx, cancel = context.WithTimeout(context.Background(), waitLong)
				}
				res, err := c.Node(l).Propose(ctx, []byte(cmd))
				cancel()
				if err == nil {
					mu.Lock()
					acks = append(acks, ack{cmd, res.(uint64)})
					mu.Unlock()
				}
			}
		}(client)
	}
	wg.Wait()
	if len(acks) < 32*50 {
		t.Fatalf("only %d proposals succeeded", len(acks))
	}
	c.WaitConverged(waitLong)
	byIndex := map[uint64]string{}
	for _, e := range c.StateMachine(l).Applied() {
		byIndex[e.Index] = string(e.Data)
	}
	for _, a := range acks {
		if got := byIndex[a.idx]; got != a.cmd {
			t.Fatalf("proposal %q was told index %d, which holds %q", a.cmd, a.idx, got)
		}
	}
}

func TestIsolatedLeaderMakesNoProgress(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	old := c.WaitLeader(waitLong)
	if _, err := c.Node(old).Propose(ctxT(t, waitLong), []byte("before")); err != nil {
		t.Fatal(err)
	}
	c.Net.Isolate(old)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := c.Node(old).Propose(ctx, []byte("stranded"))
	cancel()
	if err == nil {
		t.Fatal("isolated leader acknowledged a write")
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, raft.ErrNotLeader) {
		t.Fatalf("isolated leader's write failed with %v", err)
	}
	// The client retries on the majority side and succeeds.
	var others []raftdata.NodeID
	for _, id := range c.IDs() {
		if id != old {
			others = append(others, id)
		}
	}
	l := c.WaitLeader(waitLong, others...)
	if _, err := c.Node(l).Propose(ctxT(t, waitLong), []byte("retried")); err != nil {
		t.Fatalf("retry on new leader %d: %v", l, err)
	}
	c.Net.Heal()
	c.WaitConverged(waitLong)
	for _, id := range c.IDs() {
		for _, e := range c.StateMachine(id).Applied() {
			if string(e.Data) == "stranded" {
				t.Fatalf("node %d applied the write that timed out on the isolated leader", id)
			}
		}
	}
}

func TestReadIndexAndLeaseRead(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{Configure: func(cfg *raft.Config) { cfg.LeaseReads = true }})
	l := c.WaitLeader(waitLong)
	res, err := c.Node(l).Propose(ctxT(t, waitLong), []byte("w"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := c.Node(l).ReadIndex(ctxT(t, waitLong))
	if err != nil || idx < res.(uint64) || c.Node(l).Applied() < idx {
		t.Fatalf("ReadIndex = %d, %v (write at %d, applied %d)", idx, err, res, c.Node(l).Applied())
	}
	idx, err = c.Node(l).LeaseRead(ctxT(t, waitLong))
	if err != nil || idx < res.(uint64) {
		t.Fatalf("LeaseRead = %d, %v", idx, err)
	}
	for _, id := range c.IDs() {
		if id == l {
			continue
		}
		if _, err := c.Node(id).ReadIndex(ctxT(t, waitLong)); !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("ReadIndex on follower %d: %v", id, err)
		}
	}
	// A leader cut off from the majority cannot confirm a read.
	c.Net.Isolate(l)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Node(l).ReadIndex(ctx); err == nil {
		t.Fatal("isolated leader confirmed a read")
	}
}

func TestTransferLeadership(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	target := l%3 + 1
	if err := c.Node(l).TransferLeadership(ctxT(t, waitLong), target); err != nil {
		t.Fatalf("transfer to %d: %v", target, err)
	}
	if got := c.WaitLeader(waitLong); got != target {
		t.Fatalf("leader after transfer = %d, want %d", got, target)
	}
	if err := c.Node(target).TransferLeadership(ctxT(t, waitLong), 0); err != nil {
		t.Fatalf("transfer to most up-to-date: %v", err)
	}
	if got := c.WaitLeader(waitLong); got == target {
		t.Fatal("leadership did not move")
	}
	if err := c.Node(c.Leader()).TransferLeadership(ctxT(t, waitLong), 99); !errors.Is(err, raft.ErrUnknownPeer) {
		t.Fatalf("transfer to unknown peer: %v", err)
	}
}

func TestStopReturnsPromptlyWithPeersUnreachable(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	for _, id := range c.IDs() {
		c.Net.Isolate(id)
	}
	// Leave a proposal pending.
	f, err := c.Node(l).ProposeAsync(ctxT(t, waitLong), []byte("pending"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Node(l).Stop(ctxT(t, 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Stop took %v", d)
	}
	if _, err := f.Wait(ctxT(t, time.Second)); !errors.Is(err, raft.ErrStopped) {
		t.Fatalf("pending proposal after stop: %v", err)
	}
	if _, err := c.Node(l).Propose(ctxT(t, time.Second), []byte("x")); err == nil {
		t.Fatal("stopped node accepted a proposal")
	}
}

func TestProposeAsyncReportsIndexThenResult(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	f, err := c.Node(l).ProposeAsync(ctxT(t, waitLong), []byte("async"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Index() == 0 || f.Term() == 0 {
		t.Fatalf("index %d term %d", f.Index(), f.Term())
	}
	res, err := f.Wait(ctxT(t, waitLong))
	if err != nil || res.(uint64) != f.Index() {
		t.Fatalf("result %v, %v; want index %d", res, err, f.Index())
	}
}

func TestProposalTooLarge(t *testing.T) {
	c := rafttest.NewCluster(t, 1, rafttest.ClusterConfig{Configure: func(cfg *raft.Config) { cfg.MaxEntryBytes = 100 }})
	l := c.WaitLeader(waitLong)
	_, err := c.Node(l).Propose(ctxT(t, waitLong), make([]byte, 101))
	if !errors.Is(err, raft.ErrProposalTooLarge) {
		t.Fatalf("got %v", err)
	}
	if _, err := c.Node(l).Propose(ctxT(t, waitLong), make([]byte, 100)); err != nil {
		t.Fatalf("entry at the limit: %v", err)
	}
}

func TestRestartReplaysCommittedLog(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	for i := 0; i < 20; i++ {
		if _, err := c.Node(l).Propose(ctxT(t, waitLong), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitConverged(waitLong)
	for _, id := range c.IDs() {
		c.Crash(id)
	}
	for _, id := range c.IDs() {
		c.Restart(id)
	}
	l = c.WaitLeader(waitLong)
	if _, err := c.Node(l).Propose(ctxT(t, waitLong), []byte("after")); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(waitLong)
	for _, id := range c.IDs() {
		if got := len(c.StateMachine(id).Applied()); got != 21 {
			t.Fatalf("node %d applied %d commands after restart, want 21", id, got)
		}
	}
}

func TestMetricsPublishedOnChange(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	ch, cancel := c.Node(l).Subscribe()
	defer cancel()
	m := <-ch
	if m.ID != l {
		t.Fatalf("metrics for %d", m.ID)
	}
	target := l%3 + 1
	if err := c.Node(l).TransferLeadership(ctxT(t, waitLong), target); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(waitLong)
	for {
		select {
		case m := <-ch:
			if m.Role != raftdata.RoleLeader && m.Leader == target {
				return
			}
		case <-deadline:
			t.Fatal("no metrics showing the new leader")
		}
	}
}

func TestLeaderMetricsShowPeers(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{Configure: func(cfg *raft.Config) { cfg.MetricsInterval = 10 * time.Millisecond }})
	l := c.WaitLeader(waitLong)
	if _, err := c.Node(l).Propose(ctxT(t, waitLong), []byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLong)
	for {
		m := c.Node(l).Metrics()
		if len(m.Peers) == 2 && m.Peers[0].Match == m.LastIndex && m.Peers[1].Match == m.LastIndex && m.AppliedIndex == m.LastIndex {
			if len(m.Membership.Voters) != 3 || m.Role != raftdata.RoleLeader || m.Term == 0 {
				t.Fatalf("metrics %+v", m)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader metrics never showed caught-up peers: %+v", m)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCurrentMetricsIsUpToDate checks that CurrentMetrics reflects a write
// at once, where the periodic publication would show it only an interval
// later (an hour here), and that it fails with ErrStopped after Stop.
func TestCurrentMetricsIsUpToDate(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{Configure: func(cfg *raft.Config) { cfg.MetricsInterval = time.Hour }})
	l := c.WaitLeader(waitLong)
	n := c.Node(l)
	for i := range 5 {
		f, err := n.ProposeAsync(ctxT(t, waitLong), []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Wait(ctxT(t, waitLong)); err != nil {
			t.Fatal(err)
		}
		m, err := n.CurrentMetrics(ctxT(t, waitLong))
		if err != nil {
			t.Fatal(err)
		}
		if m.CommitIndex < f.Index() || m.AppliedIndex < f.Index() || m.LastIndex < f.Index() || m.Role != raftdata.RoleLeader {
			t.Fatalf("after applying index %d: CurrentMetrics %+v", f.Index(), m)
		}
		if got := n.Metrics(); got.At != m.At {
			t.Fatalf("CurrentMetrics was not published: Metrics().At %v, CurrentMetrics().At %v", got.At, m.At)
		}
	}
	if err := n.Stop(ctxT(t, waitLong)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.CurrentMetrics(ctxT(t, waitLong)); !errors.Is(err, raft.ErrStopped) {
		t.Fatalf("CurrentMetrics after Stop: %v, want ErrStopped", err)
	}
}

func TestStepRejectsOtherGroups(t *testing.T) {
	c := rafttest.NewCluster(t, 1, rafttest.ClusterConfig{})
	err := c.Node(1).Step(ctxT(t, time.Second), []raftdata.Message{{Type: raftdata.MsgHeartbeat, Group: 7, From: 2, To: 1, Term: 1}})
	if !errors.Is(err, raft.ErrWrongGroup) || !strings.Contains(err.Error(), "group 7") {
		t.Fatalf("got %v", err)
	}
}
