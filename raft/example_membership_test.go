package raft_test

import (
	"context"
	"fmt"
	"time"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// ExampleNode_AddNonVoter adds a fourth node to a running cluster as a
// non-voter: it receives the log but does not vote or count toward any
// quorum, so a node that is still catching up cannot slow down commits
// (Raft thesis §4.2.1).
func ExampleNode_AddNonVoter() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, leader, err := startCluster(ctx, 3, nil)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer c.stop()
	if _, err := leader.Propose(ctx, []byte("9")); err != nil {
		fmt.Println("propose:", err)
		return
	}

	// Node 4 starts on empty storage and is NOT initialized: it waits for
	// a leader to reach it. (Initialize would make it a cluster of its own.)
	n4, err := c.start(ctx, 4, nil)
	if err != nil {
		fmt.Println("start node 4:", err)
		return
	}

	// Only the leader accepts the change. AddNonVoter returns once node 4
	// is within Config.CatchUpEntries of the leader's log.
	if err := leader.AddNonVoter(ctx, 4, "node-4"); err != nil {
		fmt.Println("add non-voter:", err)
		return
	}
	m := leader.Metrics().Membership
	fmt.Println("voters:", len(m.Voters), "non-voters:", len(m.NonVoters))

	// Caught up "to within CatchUpEntries" may still be some entries
	// behind; wait until node 4 knows its role and holds the write.
	err = waitFor(ctx, func() bool {
		return n4.Role() == raftdata.RoleNonVoter && c.machines[4].Total() == 9
	})
	if err != nil {
		fmt.Println("node 4:", err)
		return
	}
	fmt.Println("node 4 is a", n4.Role(), "with total", c.machines[4].Total())

	// Output:
	// voters: 3 non-voters: 1
	// node 4 is a non-voter with total 9
}

// ExampleNode_ChangeMembership grows a three-node cluster to four voters.
// A new node first joins as a non-voter and catches up; only then does it
// become a voter, through joint consensus (Raft paper §6), so that the
// cluster never depends on a node that does not yet hold the log.
func ExampleNode_ChangeMembership() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, leader, err := startCluster(ctx, 3, nil)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer c.stop()

	// Start node 4 without Initialize and add it as a non-voter.
	// (ChangeMembership would add a newcomer as a non-voter by itself;
	// doing it first makes the slow part, catching up, a separate step.)
	if _, err := c.start(ctx, 4, nil); err != nil {
		fmt.Println("start node 4:", err)
		return
	}
	if err := leader.AddNonVoter(ctx, 4, "node-4"); err != nil {
		fmt.Println("add non-voter:", err)
		return
	}

	// Promote it: the new voters are the old ones plus node 4, with their
	// addresses. ChangeMembership returns once C_new is committed.
	// (Clone: the slices of a Metrics value are shared with other readers.)
	current := leader.Metrics().Membership.Clone()
	voters := append(current.Voters, raftdata.Member{ID: 4, Addr: "node-4"})
	if err := leader.ChangeMembership(ctx, voters, nil); err != nil {
		// ErrNotLeader or ErrLeadershipLost if leadership moved meanwhile,
		// ErrConfigChangeInProgress if another change is running.
		fmt.Println("change membership:", err)
		return
	}
	m := leader.Metrics().Membership
	var ids []raftdata.NodeID
	for _, v := range m.Voters {
		ids = append(ids, v.ID)
	}
	fmt.Println("voters:", ids, "non-voters:", len(m.NonVoters), "joint:", m.IsJoint())

	// A write now needs three of the four voters.
	res, err := leader.Propose(ctx, []byte("4"))
	fmt.Println("write after the change:", res, err)

	// Output:
	// voters: [1 2 3 4] non-voters: 0 joint: false
	// write after the change: 4 <nil>
}
