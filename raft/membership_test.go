package raft_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

func member(id raftdata.NodeID) raftdata.Member {
	return raftdata.Member{ID: id, Addr: fmt.Sprintf("node-%d", id)}
}

func members(ids ...raftdata.NodeID) []raftdata.Member {
	var out []raftdata.Member
	for _, id := range ids {
		out = append(out, member(id))
	}
	return out
}

// change runs ChangeMembership on whichever node leads, retrying while
// leadership moves.
func change(t *testing.T, c *rafttest.Cluster, voters, nonVoters []raftdata.Member) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		l := c.WaitLeader(waitLong)
		err := c.Node(l).ChangeMembership(ctxT(t, waitLong), voters, nonVoters)
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !(errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrConfigChangeInProgress)) {
			t.Fatalf("change to %v: %v", voters, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func votersOf(m raft.Metrics) []raftdata.NodeID {
	var ids []raftdata.NodeID
	for _, v := range m.Membership.Voters {
		ids = append(ids, v.ID)
	}
	return ids
}

func TestGrowOneToThreeToFiveUnderLoad(t *testing.T) {
	c := rafttest.NewCluster(t, 1, rafttest.ClusterConfig{})
	c.WaitLeader(waitLong)
	load := startLoad(c, 8)
	c.AddNode(2)
	c.AddNode(3)
	change(t, c, members(1, 2, 3), nil)
	c.AddNode(4)
	c.AddNode(5)
	change(t, c, members(1, 2, 3, 4, 5), nil)
	waitCount(t, load, load.count.Load()+200)
	load.finish()
	c.WaitConverged(waitLong)
	load.checkAcked(t)
	l := c.Leader()
	if got := votersOf(c.Node(l).Metrics()); len(got) != 5 {
		t.Fatalf("voters %v, want 5", got)
	}
}

func TestShrinkFiveToThree(t *testing.T) {
	c := rafttest.NewCluster(t, 5, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	var keep []raftdata.NodeID
	keep = append(keep, l)
	for _, id := range c.IDs() {
		if id != l && len(keep) < 3 {
			keep = append(keep, id)
		}
	}
	change(t, c, members(keep...), nil)
	writeN(t, c, 20, "s")
	c.WaitConverged(waitLong)
	for _, id := range c.IDs() {
		removed := c.Node(id).Metrics().Removed
		kept := id == keep[0] || id == keep[1] || id == keep[2]
		if removed == kept {
			t.Fatalf("node %d removed=%v, kept=%v", id, removed, kept)
		}
	}
}

func TestReplaceOneNode(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{KV: true})
	l := c.WaitLeader(waitLong)
	writeN(t, c, 50, "before")
	old := otherThan(c, l)
	c.AddNode(4)
	var voters []raftdata.NodeID
	for _, id := range c.IDs() {
		if id != old {
			voters = append(voters, id)
		}
	}
	change(t, c, members(voters...), nil)
	writeN(t, c, 50, "after")
	c.WaitConverged(waitLong)
	if !c.Node(old).Metrics().Removed {
		t.Fatalf("replaced node %d does not know it was removed", old)
	}
	if _, err := c.Node(old).Propose(ctxT(t, time.Second), []byte("x")); !errors.Is(err, raft.ErrRemoved) {
		t.Fatalf("propose on a removed node: %v", err)
	}
	if got := c.KV(4).Get("k0"); got != c.KV(l).Get("k0") {
		t.Fatalf("new node has k0=%q, leader %q", got, c.KV(l).Get("k0"))
	}
}

func TestRemoveTheLeader(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	if err := c.Node(l).RemoveServer(ctxT(t, waitLong), l); err != nil {
		t.Fatal(err)
	}
	var others []raftdata.NodeID
	for _, id := range c.IDs() {
		if id != l {
			others = append(others, id)
		}
	}
	nl := c.WaitLeader(waitLong, others...)
	if _, err := c.Node(nl).Propose(ctxT(t, waitLong), []byte("after")); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(waitLong)
	if !c.Node(l).Metrics().Removed || c.Node(l).Role() == raftdata.RoleLeader {
		t.Fatalf("old leader role %v removed %v", c.Node(l).Role(), c.Node(l).Metrics().Removed)
	}
}

func TestRemovedNodeDoesNotDisrupt(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	gone := otherThan(c, l)
	if err := c.Node(l).RemoveServer(ctxT(t, waitLong), gone); err != nil {
		t.Fatal(err)
	}
	term := c.Node(l).Metrics().Term
	// The removed node keeps running and connected for many election
	// timeouts: it must not campaign, and the leader must stay.
	time.Sleep(500 * time.Millisecond)
	if c.Node(l).Role() != raftdata.RoleLeader || c.Node(l).Metrics().Term != term {
		t.Fatalf("leader disrupted: role %v term %d (was %d)", c.Node(l).Role(), c.Node(l).Metrics().Term, term)
	}
	if r := c.Node(gone).Role(); r == raftdata.RoleCandidate || r == raftdata.RolePreCandidate {
		t.Fatalf("removed node campaigns (%v)", r)
	}
}

func TestNonVoterCatchesUpBySnapshotBeforePromotion(t *testing.T) {
	c := snapshotCluster(t, 100, 10, 0)
	writeN(t, c, 600, "long")
	c.AddNode(4)
	l := c.WaitLeader(waitLong)
	if err := c.Node(l).AddNonVoter(ctxT(t, waitLong), 4, "node-4"); err != nil {
		t.Fatal(err)
	}
	// AddNonVoter returns once the leader counts node 4 within
	// CatchUpEntries, which the snapshot alone can achieve: node 4 may not
	// hold the configuration entry naming it yet, so wait for its role.
	m := metricsOf(t, c, 4, func(m raft.Metrics) bool { return m.Role == raftdata.RoleNonVoter })
	if m.SnapshotsReceived == 0 {
		t.Fatalf("non-voter metrics: role %v snapshots received %d", m.Role, m.SnapshotsReceived)
	}
	lm := c.Node(l).Metrics()
	if lm.LastIndex-m.AppliedIndex > 1024 {
		t.Fatalf("AddNonVoter returned with the node %d entries behind", lm.LastIndex-m.AppliedIndex)
	}
	change(t, c, members(1, 2, 3, 4), nil)
	sameKV(t, c)
}

func TestMembershipChangeErrors(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(waitLong)
	n := c.Node(l)
	ctx := ctxT(t, waitLong)
	if err := n.ChangeMembership(ctx, nil, nil); !errors.Is(err, raft.ErrBadConfig) {
		t.Fatalf("empty voters: %v", err)
	}
	if err := n.ChangeMembership(ctx, members(1, 1), nil); !errors.Is(err, raft.ErrBadConfig) {
		t.Fatalf("duplicate voter: %v", err)
	}
	if err := n.RemoveServer(ctx, 42); !errors.Is(err, raft.ErrUnknownPeer) {
		t.Fatalf("remove unknown: %v", err)
	}
	f := otherThan(c, l)
	if err := c.Node(f).AddNonVoter(ctx, 9, "node-9"); !errors.Is(err, raft.ErrNotLeader) {
		t.Fatalf("change on a follower: %v", err)
	}
	// A change in progress blocks another: make node 7 a voter while it
	// does not exist. Stage 1 of the change makes 7 a non-voter, then the
	// call waits for 7 to catch up, which it never does, until it is
	// cancelled: once the membership shows 7, the call is running, however
	// slow the machine.
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	first := make(chan error, 1)
	go func() { first <- n.ChangeMembership(firstCtx, members(1, 2, 3, 7), nil) }()
	metricsOf(t, c, l, func(m raft.Metrics) bool { return m.Membership.Contains(7) && !m.Membership.IsVoter(7) })
	if err := n.RemoveServer(ctx, f); !errors.Is(err, raft.ErrConfigChangeInProgress) {
		select {
		case ferr := <-first:
			t.Fatalf("concurrent change: %v (the first change had ended: %v)", err, ferr)
		default:
			t.Fatalf("concurrent change: %v", err)
		}
	}
	cancelFirst()
	select {
	case err := <-first:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("change waiting for a missing node: %v, want context.Canceled", err)
		}
	case <-time.After(waitLong):
		t.Fatal("the change waiting for a missing node did not end when cancelled")
	}
	// 7 stayed a non-voter; remove it, then the follower, and refuse to
	// take the follower's ID back.
	if err := n.RemoveServer(ctx, 7); err != nil {
		t.Fatalf("remove 7: %v", err)
	}
	if err := n.RemoveServer(ctx, f); err != nil {
		t.Fatalf("remove %d: %v", f, err)
	}
	if err := n.AddNonVoter(ctx, f, "node-x"); !errors.Is(err, raft.ErrReusedID) {
		t.Fatalf("re-adding removed ID %d: %v", f, err)
	}
}

// TestLeaderCrashDuringJointPhase crashes the leader while a change from
// five voters to three is in its joint phase: early (C_old,new probably not
// yet committed) and late (probably committed). Either way the cluster must
// end in one configuration, C_old or C_new, never stuck in C_old,new.
func TestLeaderCrashDuringJointPhase(t *testing.T) {
	for _, delay := range []time.Duration{0, 15 * time.Millisecond} {
		t.Run(fmt.Sprint("after", delay), func(t *testing.T) {
			c := rafttest.NewCluster(t, 5, rafttest.ClusterConfig{})
			l := c.WaitLeader(waitLong)
			var keep []raftdata.NodeID
			for _, id := range c.IDs() {
				if id != l && len(keep) < 3 {
					keep = append(keep, id)
				}
			}
			go func() { _ = c.Node(l).ChangeMembership(context.Background(), members(keep...), nil) }()
			// Crash the leader once a follower holds the joint config.
			deadline := time.Now().Add(waitLong)
			for {
				m := c.Node(keep[0]).Metrics()
				if m.Membership.IsJoint() || len(m.Membership.Voters) == 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the joint configuration never reached a follower")
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(delay)
			c.Crash(l)
			nl := c.WaitLeader(waitLong)
			if _, err := c.Node(nl).Propose(ctxT(t, waitLong), []byte("after")); err != nil {
				t.Fatalf("write after the crash: %v", err)
			}
			c.Restart(l)
			c.WaitConverged(waitLong)
			var final *raftdata.Membership
			for _, id := range c.Live() {
				m := c.Node(id).Metrics().Membership
				if m.IsJoint() {
					t.Fatalf("node %d still in a joint configuration: %+v", id, m)
				}
				if final == nil {
					final = &m
				} else if !final.Equal(&m) {
					t.Fatalf("nodes disagree on the configuration: %+v vs %+v", *final, m)
				}
			}
			if n := len(final.Voters); n != 3 && n != 5 {
				t.Fatalf("final voters %+v, want C_old (5) or C_new (3)", final.Voters)
			}
		})
	}
}
