package engine

import (
	"errors"
	"testing"
)

// leaseWorld is a 3-node world whose nodes may serve lease reads: a lease
// of 8 ticks under an election timeout of 10.
func leaseWorld(t *testing.T) *world {
	w := newWorld(t, 3)
	for _, id := range w.ids {
		w.nodes[id].e.cfg.LeaseTicks = 8
	}
	return w
}

// TestLeaseEndsWhenPausedTimeIsCounted: a leader paused for three election
// timeouts while the others elect a new leader and commit must find its
// lease expired when it resumes. The runtime hands it all the elapsed
// ticks at once (Advance); one tick per wake-up, as before, left the lease
// looking valid.
func TestLeaseEndsWhenPausedTimeIsCounted(t *testing.T) {
	w := leaseWorld(t)
	w.elect(1)
	w.tick(1)
	if _, ok := w.nodes[1].e.LeaseRead(); !ok {
		t.Fatal("no lease right after a heartbeat round")
	}
	// Node 1 is paused: it neither ticks nor hears anything.
	w.isolate(1)
	w.tick(25, 2, 3)
	if ls := w.leaders(); len(ls) != 2 {
		t.Fatalf("leaders %v: nodes 2 and 3 should have elected one beside the paused node 1", ls)
	}
	newLeader := w.leaders()[1]
	if newLeader == 1 {
		newLeader = w.leaders()[0]
	}
	idx := w.propose(newLeader, "written while 1 was paused")
	w.step()
	if w.nodes[newLeader].e.Committed() < idx {
		t.Fatal("the new leader did not commit")
	}
	// Node 1 resumes: 30 ticks passed on its clock.
	w.nodes[1].e.Advance(30)
	if idx, ok := w.nodes[1].e.LeaseRead(); ok {
		t.Fatalf("resumed leader served a lease read at %d after a new leader committed %d", idx, w.nodes[newLeader].e.Committed())
	}
	if w.nodes[1].e.Role() == Leader {
		t.Fatal("check-quorum kept a leader that heard from nobody for three election timeouts")
	}
}

// TestAdvanceIsManyTicks: advancing by k ticks has the effect of k ticks on
// timeouts (one election, one heartbeat round), without k rounds.
func TestAdvanceIsManyTicks(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.isolate(1)
	w.nodes[2].e.Advance(25) // past any randomized timeout
	w.collect()
	if r := w.nodes[2].e.Role(); r != PreCandidate {
		t.Fatalf("follower after 25 ticks without a leader: %v, want pre-candidate", r)
	}
	w.nodes[1].e.Advance(5)
	rd := w.nodes[1].e.Ready()
	beats := 0
	for _, m := range rd.Messages {
		if m.Type == MsgHeartbeat {
			beats++
		}
	}
	if beats != 2 {
		t.Fatalf("%d heartbeats after advancing 5 ticks, want one round (2)", beats)
	}
}

// TestNoLeaseAfterAbortedTransfer replays the stale read after an aborted
// leadership transfer: the MsgTimeoutNow is delayed past the transfer's
// timeout, the old leader goes back to lease reads, and then the target
// campaigns (voters disregard their lease for a transfer), wins and commits
// while the old leader still serves its lease. Once MsgTimeoutNow went out,
// the term serves no lease reads.
func TestNoLeaseAfterAbortedTransfer(t *testing.T) {
	w := leaseWorld(t)
	w.elect(1)
	w.tick(1)
	if err := w.nodes[1].e.TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	var delayed []Message
	w.deliverOnly(func(m Message) bool {
		if m.Type == MsgTimeoutNow {
			delayed = append(delayed, m)
			return false
		}
		return true
	})
	if len(delayed) != 1 {
		t.Fatalf("%d MsgTimeoutNow sent, want 1", len(delayed))
	}
	// The transfer times out; heartbeats keep a quorum acknowledging node 1.
	for range 11 {
		for _, id := range w.ids {
			w.nodes[id].e.Tick()
		}
		w.step()
	}
	if !w.nodes[1].aborted || w.nodes[1].e.Role() != Leader {
		t.Fatalf("transfer aborted %v, node 1 %v: want an aborted transfer and node 1 still leading", w.nodes[1].aborted, w.nodes[1].e.Role())
	}
	if idx, ok := w.nodes[1].e.LeaseRead(); ok {
		t.Fatalf("lease read served at %d after MsgTimeoutNow went out in this term", idx)
	}
	// What the lease would have missed: the delayed message arrives, node
	// 3 wins with node 2's vote and commits, unseen by node 1.
	w.isolate(1)
	if err := w.nodes[3].e.Step(delayed[0]); err != nil {
		t.Fatal(err)
	}
	w.step()
	if w.nodes[3].e.Role() != Leader {
		t.Fatalf("node 3 is %v after the delayed MsgTimeoutNow", w.nodes[3].e.Role())
	}
	w.propose(3, "x")
	w.step()
	if _, ok := w.nodes[1].e.LeaseRead(); ok {
		t.Fatal("stale leader serves a lease read while node 3 commits")
	}
	// ReadIndex still works for a leader in a new term.
	w.heal()
	w.tick(25)
	l := w.leaders()
	if len(l) != 1 {
		t.Fatalf("leaders %v", l)
	}
	w.tick(1)
	if _, ok := w.nodes[l[0]].e.LeaseRead(); !ok {
		t.Fatalf("leader %d of a new term has no lease", l[0])
	}
}

func TestProposeConfigMustFollowTheOneInForce(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	e := w.nodes[1].e
	bad := map[string]Membership{
		"voters replaced without a joint phase":   {Voters: voters(1, 4, 5)},
		"one voter removed without a joint phase": {Voters: voters(1, 2)},
		"outgoing half not the voters in force":   {Voters: voters(1, 2, 4), OutgoingVoters: voters(1, 2, 5)},
		"no voters":                               {NonVoters: voters(4)},
		"a voter listed twice":                    {Voters: voters(1, 2, 3, 3)},
		"voter and non-voter":                     {Voters: voters(1, 2, 3), NonVoters: voters(3)},
		"a member also removed":                   {Voters: voters(1, 2, 3), NonVoters: voters(4), Removed: voters(4)},
	}
	for name, m := range bad {
		if _, err := e.ProposeConfig(m); !errors.Is(err, ErrBadConfigChange) {
			t.Errorf("%s: %v, want ErrBadConfigChange", name, err)
		}
	}
	if e.LastIndex() != 2 {
		t.Fatalf("refused configurations were appended: last index %d", e.LastIndex())
	}
	w.proposeConfig(1, Membership{Voters: voters(1, 2, 3), NonVoters: voters(4)})
	w.tick(1)
	// Node 4 joined as a non-voter; now replace 3 by 4 jointly, forgetting
	// nobody that was removed.
	w.proposeConfig(1, Membership{Voters: voters(1, 2, 4), OutgoingVoters: voters(1, 2, 3), Removed: voters(3)})
	w.tick(3)
	if m := e.Membership(); m.IsJoint() || !sameMemberIDs(m.Voters, voters(1, 2, 4)) {
		t.Fatalf("membership %+v, want voters 1, 2, 4", m)
	}
	if _, err := e.ProposeConfig(Membership{Voters: voters(1, 2, 4)}); !errors.Is(err, ErrBadConfigChange) {
		t.Fatalf("a configuration that forgets removed node 3: %v", err)
	}
}

// TestLeaseCountsWallClockLead: the monotonic clock stops while the host is
// suspended; the wall clock does not. A leader counts what the wall clock
// gained against its lease (only against its lease), and the lease comes
// back with the next acknowledged round.
func TestLeaseCountsWallClockLead(t *testing.T) {
	w := leaseWorld(t)
	w.elect(1)
	w.tick(1)
	if _, ok := w.nodes[1].e.LeaseRead(); !ok {
		t.Fatal("no lease right after a heartbeat round")
	}
	w.nodes[1].e.SetWallLead(30) // resumed from a suspend of 30 ticks
	if _, ok := w.nodes[1].e.LeaseRead(); ok {
		t.Fatal("lease still held after the host was suspended for three election timeouts")
	}
	if w.nodes[1].e.Role() != Leader {
		t.Fatal("the wall clock's lead moved the leader's other timers")
	}
	w.nodes[1].e.SetWallLead(10) // it only grows
	w.tick(1)
	if _, ok := w.nodes[1].e.LeaseRead(); !ok {
		t.Fatal("no lease after a round acknowledged since the suspend")
	}
}
