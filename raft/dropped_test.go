package raft_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// filteredNet drops the messages its rule picks, to steer the cluster into
// one exact history.
type filteredNet struct {
	raft.Network
	rule *atomic.Value // func(raftdata.Message) bool: true drops
}

func (f *filteredNet) Send(msgs []raftdata.Message) {
	drop, _ := f.rule.Load().(func(raftdata.Message) bool)
	var keep []raftdata.Message
	for _, m := range msgs {
		if drop == nil || !drop(m) {
			keep = append(keep, m)
		}
	}
	if len(keep) > 0 {
		f.Network.Send(keep)
	}
}

// TestTruncatedProposalIsNotReportedDropped replays the figure 8 kind of
// history (§5.4.2) in which a leader's uncommitted entry X is erased from its
// own log by a later leader, yet survives on another node that commits it
// later. The first leader, leading again and appending over X's index,
// must not answer X's proposal ErrProposalDropped ("not applied, retry"):
// X is applied in the end, and a retry would apply it twice.
func TestTruncatedProposalIsNotReportedDropped(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	var rule atomic.Value
	rule.Store(func(raftdata.Message) bool { return false })
	nw := rafttest.NewNetwork()
	defer nw.Close()
	nodes := map[raftdata.NodeID]*raft.Node{}
	machines := map[raftdata.NodeID]*rafttest.Recorder{}
	var members []raftdata.Member
	for id := raftdata.NodeID(1); id <= 5; id++ {
		members = append(members, raftdata.Member{ID: id, Addr: fmt.Sprint("n", id)})
	}
	for id := raftdata.NodeID(1); id <= 5; id++ {
		machines[id] = rafttest.NewRecorder()
		n, err := raft.NewNode(ctx, raft.Config{ID: id, Storage: memory.New(), Network: &filteredNet{nw.Endpoint(id), &rule},
			StateMachine: machines[id], HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
			MetricsInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Stop(context.Background())
		if err := n.Initialize(ctx, members); err != nil {
			t.Fatal(err)
		}
		nodes[id] = n
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	in := func(id raftdata.NodeID, ids ...raftdata.NodeID) bool { return slices.Contains(ids, id) }
	waitFor("a leader", func() bool { l, _ := nodes[1].Leader(); return l != 0 })
	if l, _ := nodes[1].Leader(); l != 1 {
		if err := nodes[l].TransferLeadership(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("node 1 to lead", func() bool { return nodes[1].Role() == raftdata.RoleLeader })
	if _, err := nodes[1].Propose(ctx, []byte("warm-up")); err != nil {
		t.Fatal(err)
	}
	k := nodes[1].Applied()

	// Node 1's appends reach node 2 only; nodes 3-5 cannot append to 2.
	rule.Store(func(m raftdata.Message) bool {
		return (m.From == 1 && in(m.To, 3, 4, 5)) ||
			(in(m.From, 3, 4, 5) && (m.Type == raftdata.MsgApp || m.Type == raftdata.MsgSnap) && m.To != 1)
	})
	// A and B fill the indexes that the next leaders' empty entries will
	// take, so that node 1's Z lands on X's index.
	for _, cmd := range []string{"A", "B"} {
		if _, err := nodes[1].ProposeAsync(ctx, []byte(cmd)); err != nil {
			t.Fatal(err)
		}
	}
	fx, err := nodes[1].ProposeAsync(ctx, []byte("X"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor("node 2 to hold X", func() bool { m, _ := nodes[2].CurrentMetrics(ctx); return m.LastIndex >= fx.Index() })

	// One of 3-5 is elected and overwrites X's index on node 1.
	var y raftdata.NodeID
	waitFor("a leader among 3-5", func() bool {
		for _, id := range []raftdata.NodeID{3, 4, 5} {
			if nodes[id].Role() == raftdata.RoleLeader {
				y = id
				return true
			}
		}
		return false
	})
	waitFor("node 1's log to be truncated", func() bool {
		m, _ := nodes[1].CurrentMetrics(ctx)
		my, _ := nodes[y].CurrentMetrics(ctx)
		return m.Term == my.Term && m.LastIndex == k+1
	})

	// y stops, node 2 is cut off; node 1 leads again (its appends go
	// nowhere) and appends Z over X's index.
	_ = nodes[y].Stop(ctx)
	nw.Isolate(y)
	nw.Isolate(2)
	rule.Store(func(m raftdata.Message) bool {
		return m.From == 1 && (m.Type == raftdata.MsgApp || m.Type == raftdata.MsgSnap)
	})
	waitFor("node 1 to lead again", func() bool { return nodes[1].Role() == raftdata.RoleLeader })
	fz, err := nodes[1].ProposeAsync(ctx, []byte("Z"))
	if err != nil {
		t.Fatal(err)
	}
	if fz.Index() != fx.Index() {
		t.Fatalf("Z at %d does not overwrite X at %d: the history did not happen", fz.Index(), fx.Index())
	}
	select {
	case <-fx.Done():
		_, err := fx.Result()
		t.Fatalf("X's proposal answered (%v) while X may still commit", err)
	case <-time.After(500 * time.Millisecond):
	}

	// Node 1 stops; node 2, back, is elected with X in its log and commits it.
	_ = nodes[1].Stop(ctx)
	rule.Store(func(raftdata.Message) bool { return false })
	nw.Heal()
	nw.Isolate(1)
	nw.Isolate(y)
	var survivor raftdata.NodeID
	for _, id := range []raftdata.NodeID{3, 4, 5} {
		if id != y {
			survivor = id
		}
	}
	waitFor("X to be applied on the survivors", func() bool {
		return slices.ContainsFunc(machines[survivor].Applied(), func(e raftdata.Entry) bool { return string(e.Data) == "X" })
	})
	// Node 1 stopped with X's outcome unknown to it: ErrStopped, never
	// ErrProposalDropped.
	<-fx.Done()
	if _, err := fx.Result(); errors.Is(err, raft.ErrProposalDropped) {
		t.Fatalf("X was applied, yet its proposal answered %v", err)
	}
}
