package engine

import (
	"errors"
	"testing"
)

func voters(ids ...NodeID) []Member { return members(ids...).Voters }

func (w *world) proposeConfig(leader NodeID, m Membership) {
	w.t.Helper()
	if _, err := w.nodes[leader].e.ProposeConfig(m); err != nil {
		w.t.Fatalf("propose config %+v: %v", m, err)
	}
	w.step()
}

func TestReplaceNodeByJointConsensus(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.addNode(4)
	// 4 joins as a non-voter and catches up.
	w.proposeConfig(1, Membership{Voters: voters(1, 2, 3), NonVoters: voters(4)})
	w.tick(2)
	if w.nodes[4].e.LastIndex() != w.nodes[1].e.LastIndex() || w.nodes[4].e.Role() != NonVoter {
		t.Fatalf("non-voter 4: last %d role %v", w.nodes[4].e.LastIndex(), w.nodes[4].e.Role())
	}
	// Replace 3 by 4: C_old,new, then C_new appended by the leader itself.
	w.proposeConfig(1, Membership{Voters: voters(1, 2, 4), OutgoingVoters: voters(1, 2, 3)})
	w.tick(3)
	for _, id := range []NodeID{1, 2, 4} {
		m := w.nodes[id].e.Membership()
		if m.IsJoint() || !m.IsVoter(4) || m.IsVoter(3) {
			t.Fatalf("node %d membership %+v, want C_new {1,2,4}", id, m)
		}
	}
	if c := w.nodes[1].e; c.ConfigPending() {
		t.Fatal("change still pending on the leader")
	}
	// 3 received the entry that removed it and knows.
	if !w.nodes[3].e.Removed() || w.nodes[3].e.promotable() {
		t.Fatalf("node 3 removed=%v promotable=%v", w.nodes[3].e.Removed(), w.nodes[3].e.promotable())
	}
	if _, tracked := w.nodes[1].e.PeerMatch(3); tracked {
		t.Fatal("leader still tracks the removed node")
	}
	// A removed node cannot disrupt: its campaign is ignored.
	term := w.nodes[1].e.Term()
	w.nodes[3].e.campaign(false, false)
	w.step()
	if w.nodes[1].e.Role() != Leader || w.nodes[1].e.Term() != term {
		t.Fatalf("removed node disrupted the leader: role %v term %d", w.nodes[1].e.Role(), w.nodes[1].e.Term())
	}
	w.propose(1, "after")
	w.step()
	w.checkLogs()
}

func TestJointConfigNeedsBothMajorities(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.addNode(4)
	w.addNode(5)
	w.proposeConfig(1, Membership{Voters: voters(1, 2, 3), NonVoters: voters(4, 5)})
	w.tick(2)
	// Move to {1,4,5} while 4 and 5 are unreachable: the old majority is
	// there, the new one is not, so C_old,new must not commit.
	for _, id := range []NodeID{4, 5} {
		w.isolate(id)
	}
	if _, err := w.nodes[1].e.ProposeConfig(Membership{Voters: voters(1, 4, 5), OutgoingVoters: voters(1, 2, 3)}); err != nil {
		t.Fatal(err)
	}
	w.tick(3, 1, 2, 3)
	if w.nodes[1].e.Committed() >= w.nodes[1].e.pendingConfIndex {
		t.Fatal("joint configuration committed without a majority of C_new")
	}
	w.heal()
	w.tick(3)
	if m := w.nodes[1].e.Membership(); m.IsJoint() || !m.IsVoter(5) || m.IsVoter(2) {
		t.Fatalf("membership %+v, want {1,4,5}", m)
	}
}

func TestLeaderRemovedStepsDownAfterCNewCommits(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.proposeConfig(1, Membership{Voters: voters(2, 3), OutgoingVoters: voters(1, 2, 3)})
	// While joint, the leader knows it will be phased out and keeps leading.
	if m := w.nodes[1].e.Membership(); w.nodes[1].e.Role() == Leader && m.IsJoint() && !w.nodes[1].e.PhasingOut() {
		t.Fatal("joint leader does not know it is being phased out")
	}
	w.tick(3)
	if w.nodes[1].e.Role() == Leader {
		t.Fatal("removed leader kept leading after C_new committed")
	}
	ls := w.leaders()
	if len(ls) != 1 || ls[0] == 1 {
		t.Fatalf("leaders after removal = %v", ls)
	}
	w.propose(ls[0], "x")
	w.step()
	w.checkLogs()
}

func TestConfigRevertsWhenTruncated(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	e := w.nodes[2].e
	term, last := e.Term(), e.LastIndex()
	lastTerm, _ := e.TermAt(last)
	// Leader 1 sends 2 a configuration adding non-voter 4: it takes effect
	// on append, before any commit.
	cfg := Membership{Voters: voters(1, 2, 3), NonVoters: voters(4)}
	w.deliverOne(Message{Type: MsgApp, From: 1, To: 2, Term: term, Index: last, LogTerm: lastTerm,
		Entries: []Entry{{Index: last + 1, Term: term, Type: EntryConfig, Data: EncodeMembership(cfg)}}, Commit: e.Committed()})
	if m := e.Membership(); !m.Contains(4) {
		t.Fatal("configuration did not take effect on append")
	}
	// A leader of a later term overwrites that index with its no-op: the
	// configuration reverts to the previous one.
	w.deliverOne(Message{Type: MsgApp, From: 3, To: 2, Term: term + 1, Index: last, LogTerm: lastTerm,
		Entries: []Entry{{Index: last + 1, Term: term + 1, Type: EntryNoop}}, Commit: e.Committed()})
	if m := e.Membership(); m.Contains(4) || len(m.Voters) != 3 {
		t.Fatalf("membership after truncation %+v, want the bootstrap configuration", m)
	}
}

func TestProposeConfigWhilePendingRefused(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.isolate(2)
	w.isolate(3)
	if _, err := w.nodes[1].e.ProposeConfig(Membership{Voters: voters(1, 2), OutgoingVoters: voters(1, 2, 3), Removed: voters(3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.nodes[1].e.ProposeConfig(Membership{Voters: voters(1, 2, 3), NonVoters: voters(4)}); !errors.Is(err, ErrConfigPending) {
		t.Fatalf("second change: %v", err)
	}
}

// TestRemovedNodeWinsThenCompletesItsRemoval replays the rare case in
// which a node being removed is elected: the leader committed C_old,new,
// appended C_new (which leaves node 5 out) and died before C_new reached
// anyone. Node 5 is a voter of C_old,new with a log as up to date as the
// others', so it can win. It then leads a joint configuration that phases
// it out: it appends C_new itself, commits it with the new voters, and
// steps down. The cluster converges on C_new.
func TestRemovedNodeWinsThenCompletesItsRemoval(t *testing.T) {
	w := newWorld(t, 5)
	w.elect(1)
	joint := Membership{Voters: voters(1, 2, 3, 4), OutgoingVoters: voters(1, 2, 3, 4, 5), Removed: voters(5)}
	if _, err := w.nodes[1].e.ProposeConfig(joint); err != nil {
		t.Fatal(err)
	}
	// Everything is delivered until the joint entry commits; the leader's
	// C_new append goes nowhere because it dies at once.
	w.deliverOnly(func(m Message) bool {
		return !(m.From == 1 && m.Type == MsgApp && len(m.Entries) > 0 && m.Entries[len(m.Entries)-1].Type == EntryConfig && !containsCfgJoint(m.Entries))
	})
	if m := w.nodes[5].e.Membership(); !m.IsJoint() {
		t.Fatalf("node 5 should hold C_old,new, has %+v", m)
	}
	w.isolate(1)
	w.expireLease(2, 3, 4, 5)
	w.nodes[5].e.campaign(true, false)
	w.deliverOnly(isVote)
	if w.nodes[5].e.Role() != Leader {
		t.Fatalf("node 5 did not win: %v", w.nodes[5].e.Role())
	}
	if !w.nodes[5].e.PhasingOut() {
		t.Fatal("node 5 leads without knowing it is being phased out")
	}
	w.tick(3, 2, 3, 4, 5)
	if w.nodes[5].e.Role() == Leader {
		t.Fatal("node 5 kept leading after committing its own removal")
	}
	var ls []NodeID // among the living: node 1 is dead (isolated, never ticked)
	for _, id := range w.leaders() {
		if id != 1 {
			ls = append(ls, id)
		}
	}
	if len(ls) != 1 || ls[0] == 5 {
		t.Fatalf("leaders among 2..5 = %v", ls)
	}
	for _, id := range []NodeID{2, 3, 4, 5} {
		m := w.nodes[id].e.Membership()
		if m.IsJoint() || m.Contains(5) {
			t.Fatalf("node %d ends with %+v, want C_new {1,2,3,4}", id, m)
		}
	}
	if !w.nodes[5].e.Removed() {
		t.Fatal("node 5 does not know it was removed")
	}
}

func containsCfgJoint(ents []Entry) bool {
	for _, e := range ents {
		if e.Type == EntryConfig {
			if m, err := DecodeMembership(e.Data); err == nil && m.IsJoint() {
				return true
			}
		}
	}
	return false
}

// TestNextLeaderTellsRemovedNode: node 5 is cut off while it is removed and
// the leader that removed it dies. The next leader never tracked node 5,
// yet must tell it of its removal, so that it stops campaigning (found by
// the simulator: such a node stayed a pre-candidate forever).
func TestNextLeaderTellsRemovedNode(t *testing.T) {
	w := newWorld(t, 5)
	w.elect(1)
	w.isolate(5)
	w.proposeConfig(1, Membership{Voters: voters(1, 2, 3, 4), OutgoingVoters: voters(1, 2, 3, 4, 5), Removed: voters(5)})
	w.tick(2, 1, 2, 3, 4)
	if m := w.nodes[1].e.Membership(); m.IsJoint() || m.Contains(5) {
		t.Fatalf("leader membership %+v", m)
	}
	w.isolate(1) // the leader that removed 5 is gone
	w.cut = map[[2]NodeID]bool{}
	w.isolate(1)
	w.expireLease(2, 3, 4)
	w.elect(2)
	w.tick(3, 2, 3, 4, 5)
	if !w.nodes[5].e.Removed() {
		t.Fatalf("node 5 never learned it was removed: membership %+v", w.nodes[5].e.Membership())
	}
	if r := w.nodes[5].e.Role(); r == PreCandidate || r == Candidate {
		t.Fatalf("removed node 5 still campaigns: %v", r)
	}
	if _, tracked := w.nodes[2].e.PeerMatch(5); tracked {
		t.Fatal("leader keeps tracking node 5 after it learned")
	}
}

// TestNodesBeingRemovedCampaignUntilCNewCommits: 5 voters shrink to 3. The
// leader commits C_old,new, appends C_new, which reaches only the two
// nodes being removed (4 and 5), and dies. Nodes 2 and 3 (C_old,new in
// force) need a vote of 4 or 5 for a majority of C_old, and 4 and 5 refuse
// them, their logs being longer. Unless 4 or 5 campaign, no leader is ever
// elected: a node left out of its newest configuration must still start
// elections while that configuration is uncommitted (thesis §4.2.2). One
// of them wins, commits C_new and steps down; then 2 or 3 leads C_new.
func TestNodesBeingRemovedCampaignUntilCNewCommits(t *testing.T) {
	w := newWorld(t, 5)
	w.elect(1)
	joint := Membership{Voters: voters(1, 2, 3), OutgoingVoters: voters(1, 2, 3, 4, 5), Removed: voters(4, 5)}
	if _, err := w.nodes[1].e.ProposeConfig(joint); err != nil {
		t.Fatal(err)
	}
	// Everything is delivered, except the leader's C_new append to 2 and 3.
	w.deliverOnly(func(m Message) bool {
		isCNew := m.From == 1 && m.Type == MsgApp && len(m.Entries) > 0 &&
			m.Entries[len(m.Entries)-1].Type == EntryConfig && !containsCfgJoint(m.Entries)
		return !isCNew || m.To == 4 || m.To == 5
	})
	for _, id := range []NodeID{4, 5} {
		if m := w.nodes[id].e.Membership(); m.IsJoint() || m.Contains(id) {
			t.Fatalf("node %d should hold C_new without itself, has %+v", id, m)
		}
	}
	for _, id := range []NodeID{2, 3} {
		if m := w.nodes[id].e.Membership(); !m.IsJoint() {
			t.Fatalf("node %d should hold C_old,new, has %+v", id, m)
		}
	}
	w.isolate(1)
	w.tick(30*w.nodes[2].e.cfg.ElectionTicks, 2, 3, 4, 5)
	var ls []NodeID
	for _, id := range w.leaders() {
		if id != 1 {
			ls = append(ls, id)
		}
	}
	if len(ls) != 1 || (ls[0] != 2 && ls[0] != 3) {
		t.Fatalf("leaders among 2..5 = %v, want one of 2 and 3", ls)
	}
	for _, id := range []NodeID{2, 3, 4, 5} {
		m := w.nodes[id].e.Membership()
		if m.IsJoint() || m.Contains(4) || m.Contains(5) {
			t.Fatalf("node %d ends with %+v, want C_new {1,2,3}", id, m)
		}
	}
	for _, id := range []NodeID{4, 5} {
		if r := w.nodes[id].e.Role(); r == PreCandidate || r == Candidate {
			t.Fatalf("removed node %d still campaigns after C_new committed: %v", id, r)
		}
	}
}

// TestStepDownHandsLeadershipToTheBestVoter: a leader whose storage failed
// steps down; the voter with the most of its log campaigns at once (no
// election timeout passes) and wins, and every committed entry survives.
// A follower's StepDown does nothing.
func TestStepDownHandsLeadershipToTheBestVoter(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.propose(1, "a")
	w.step()
	// Node 3 misses the next entry: node 2 holds the most of the log.
	w.cut[[2]NodeID{1, 3}] = true
	w.propose(1, "b")
	w.step()
	w.heal()
	if w.nodes[2].e.StepDown() {
		t.Fatal("a follower stepped down")
	}
	committed := w.nodes[1].e.Committed()
	if !w.nodes[1].e.StepDown() {
		t.Fatal("the leader did not step down")
	}
	if r := w.nodes[1].e.Role(); r != Follower {
		t.Fatalf("after StepDown the old leader is %v", r)
	}
	if _, ok := w.nodes[1].e.LeaseRead(); ok {
		t.Fatal("lease read served after stepping down")
	}
	// Its storage is gone: it sends the MsgTimeoutNow and takes no
	// further part. No tick passes: only MsgTimeoutNow can start the
	// election.
	w.deliverOnly(func(m Message) bool { return m.From != 1 || m.Type == MsgTimeoutNow })
	w.isolate(1)
	w.step()
	if ls := w.leaders(); len(ls) != 1 || ls[0] != 2 {
		t.Fatalf("leaders after StepDown = %v, want [2]", ls)
	}
	if got := w.nodes[2].e.Committed(); got < committed {
		t.Fatalf("new leader committed %d, below the old leader's %d", got, committed)
	}
	w.propose(2, "c")
	w.step()
	w.checkLogs()
}
