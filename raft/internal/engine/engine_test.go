package engine

import (
	"errors"
	"testing"
)

func TestSingleNodeElectsItselfAndCommits(t *testing.T) {
	w := newWorld(t, 1)
	w.tick(20)
	if got := w.leaders(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("leaders = %v", got)
	}
	idx := w.propose(1, "x")
	w.step()
	if c := w.nodes[1].e.Committed(); c != idx {
		t.Fatalf("committed %d, want %d", c, idx)
	}
	w.checkLogs()
}

func TestElectionByTimeout(t *testing.T) {
	w := newWorld(t, 3)
	w.tick(25)
	ls := w.leaders()
	if len(ls) != 1 {
		t.Fatalf("leaders = %v", ls)
	}
	l := ls[0]
	for _, id := range w.ids {
		if got := w.nodes[id].e.Leader(); got != l {
			t.Fatalf("node %d thinks leader is %d, want %d", id, got, l)
		}
	}
	// The no-op of the new term commits everywhere, and with it the
	// bootstrap configuration entry.
	w.tick(2)
	for _, id := range w.ids {
		if c := w.nodes[id].e.Committed(); c != 2 {
			t.Fatalf("node %d committed %d, want 2", id, c)
		}
	}
	w.checkLogs()
}

func TestSplitVoteThenRecovery(t *testing.T) {
	w := newWorld(t, 4)
	// Nodes 1 and 3 pass pre-vote together, then campaign at the same term.
	// Votes are delivered so that each gets exactly one other vote: 2 for 1
	// and 4 for 3. Neither reaches 3 of 4.
	w.nodes[1].e.campaign(false, false)
	w.nodes[3].e.campaign(false, false)
	w.collect()
	var q []Message
	for _, m := range w.queue {
		if m.Type == MsgVote && (m.From == 1 && m.To == 2 || m.From == 3 && m.To == 4) {
			q = append(q, m)
		}
	}
	w.queue = q
	for len(w.queue) > 0 {
		q := w.queue
		w.queue = nil
		for _, m := range q {
			w.deliverOne(m)
		}
		w.collect()
	}
	if ls := w.leaders(); len(ls) != 0 {
		t.Fatalf("split vote elected %v", ls)
	}
	if w.nodes[1].e.Term() != w.nodes[3].e.Term() {
		t.Fatal("candidates should share a term")
	}
	term := w.nodes[1].e.Term()
	// Randomized timeouts break the tie.
	w.tick(40)
	ls := w.leaders()
	if len(ls) != 1 {
		t.Fatalf("leaders after retry = %v", ls)
	}
	if w.nodes[ls[0]].e.Term() <= term {
		t.Fatalf("new leader's term %d not above split term %d", w.nodes[ls[0]].e.Term(), term)
	}
}

func TestPreVoteStopsPartitionedNodeInflatingTerm(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	term := w.nodes[1].e.Term()
	w.isolate(3)
	w.tick(100, 3)
	if got := w.nodes[3].e.Term(); got != term {
		t.Fatalf("isolated node's term rose to %d (was %d)", got, term)
	}
	if w.nodes[3].e.Role() != PreCandidate {
		t.Fatalf("isolated node role %v, want pre-candidate", w.nodes[3].e.Role())
	}
	// On rejoining, the leader is undisturbed.
	w.heal()
	w.tick(3)
	if w.nodes[1].e.Role() != Leader || w.nodes[1].e.Term() != term {
		t.Fatalf("leader disrupted: role %v term %d", w.nodes[1].e.Role(), w.nodes[1].e.Term())
	}
	if w.nodes[3].e.Leader() != 1 {
		t.Fatalf("rejoined node's leader = %d", w.nodes[3].e.Leader())
	}
}

func TestVoteSuppressedWhileLeaderAlive(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	term := w.nodes[1].e.Term()
	// Node 3 campaigns directly (as after a bug or a very slow clock): the
	// others heard from the leader recently and ignore it.
	w.nodes[3].e.campaign(false, false)
	w.step()
	if w.nodes[1].e.Role() != Leader || w.nodes[1].e.Term() != term {
		t.Fatalf("leader deposed: role %v term %d", w.nodes[1].e.Role(), w.nodes[1].e.Term())
	}
	if w.nodes[2].e.Term() != term {
		t.Fatalf("follower took the disruptive term %d", w.nodes[2].e.Term())
	}
}

func TestCheckQuorumStepDown(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.isolate(1)
	w.tick(25, 1)
	if r := w.nodes[1].e.Role(); r == Leader {
		t.Fatal("isolated leader did not step down")
	}
	if _, err := w.nodes[1].e.Propose([]Entry{{Data: []byte("x")}}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("propose on deposed leader: %v", err)
	}
}

func TestLogConflictRepair(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.propose(1, "a")
	w.step()
	// Leader 1 appends entries only it receives, then is deposed.
	w.isolate(1)
	for i := 0; i < 5; i++ {
		w.propose(1, "lost")
	}
	w.step()
	w.expireLease(2, 3)
	w.elect(2)
	w.propose(2, "b")
	w.propose(2, "c")
	w.step()
	w.heal()
	w.tick(3)
	// Node 1's five uncommitted entries are replaced by node 2's log.
	last := w.nodes[2].e.LastIndex()
	for _, id := range w.ids {
		n := w.nodes[id]
		if n.e.LastIndex() != last || n.e.Committed() != last {
			t.Fatalf("node %d last %d committed %d, want %d", id, n.e.LastIndex(), n.e.Committed(), last)
		}
		for _, e := range n.stable {
			if string(e.Data) == "lost" {
				t.Fatalf("node %d still holds an overwritten entry at %d", id, e.Index)
			}
		}
	}
	w.checkLogs()
}

func TestFastBackOffSkipsTerms(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.isolate(3)
	for i := 0; i < 50; i++ {
		w.propose(1, "x")
	}
	w.step()
	w.heal()
	// Count the rejections node 3 sends while catching up: one term of
	// difference needs one probe, not fifty.
	w.collect()
	rejects := 0
	w.tick(1)
	for i := 0; i < 5; i++ {
		w.collect()
		for _, m := range w.queue {
			if m.Type == MsgAppResp && m.Reject {
				rejects++
			}
		}
		w.step()
	}
	if w.nodes[3].e.LastIndex() != w.nodes[1].e.LastIndex() {
		t.Fatalf("node 3 did not catch up: %d vs %d", w.nodes[3].e.LastIndex(), w.nodes[1].e.LastIndex())
	}
	if rejects > 2 {
		t.Fatalf("%d rejections to catch up", rejects)
	}
}

// TestFigure8 replays the Raft paper's figure 8: a leader must not commit
// an entry of an earlier term by counting replicas, or a later leader could
// overwrite it.
func TestFigure8(t *testing.T) {
	w := newWorld(t, 5)
	w.elect(1)
	base := w.nodes[1].e.LastIndex()
	w.step()
	// (a) S1 leads term T and replicates index base+1 to S2 only.
	for _, o := range []NodeID{3, 4, 5} {
		w.cut[[2]NodeID{1, o}] = true
	}
	old := w.propose(1, "term-a")
	w.step()
	if !w.nodes[2].e.log.matchTerm(old, w.nodes[1].e.Term()) {
		t.Fatal("S2 should hold the entry")
	}
	// (b) S1 crashes. S5 is elected by S3, S4 and itself and appends an
	// entry at the same index that reaches no one.
	w.heal()
	w.isolate(1)
	w.expireLease(2, 3, 4, 5)
	w.nodes[5].e.campaign(true, false)
	w.deliverOnly(isVote)
	if w.nodes[5].e.Role() != Leader {
		t.Fatalf("S5 not elected: %v", w.nodes[5].e.Role())
	}
	w.propose(5, "term-b")
	w.deliverOnly(func(Message) bool { return false })
	// (c) S5 crashes; S1 restarts and is elected by S2, S3 and S4 in a
	// newer term, then replicates its old-term entry to S3: a majority (S1,
	// S2, S3) now holds index base+1.
	w.heal()
	w.isolate(5)
	w.expireLease(1, 2, 3, 4)
	w.nodes[1].e.becomeFollower(w.nodes[5].e.Term(), 0)
	w.nodes[1].e.campaign(true, false)
	w.deliverOnly(isVote)
	s1 := w.nodes[1].e
	if s1.Role() != Leader {
		t.Fatalf("S1 not elected: %v term %d", s1.Role(), s1.Term())
	}
	termA, _ := w.nodes[2].e.log.term(old)
	for _, id := range []NodeID{2, 3} {
		app := Message{Type: MsgApp, From: 1, To: id, Term: s1.Term(), Index: old - 1, LogTerm: termA,
			Entries: []Entry{{Index: old, Term: termA, Data: []byte("term-a")}}, Commit: s1.Committed()}
		w.deliverOne(app)
	}
	w.deliverOnly(func(m Message) bool { return m.Type == MsgAppResp })
	// The entry is on a majority but is from an old term: not committed.
	if c := s1.Committed(); c >= old {
		t.Fatalf("S1 committed old-term entry %d by counting (commit %d)", old, c)
	}
	// (d) S1 crashes before its own term's entry spreads. S5 returns and
	// wins with S2, S3, S4 (its last term is newer), overwriting index
	// base+1 everywhere: legal only because it was never committed.
	w.heal()
	w.isolate(1)
	w.expireLease(2, 3, 4, 5)
	w.nodes[5].e.becomeFollower(s1.Term(), 0)
	w.nodes[5].e.campaign(true, false)
	w.deliverOnly(isVote)
	if w.nodes[5].e.Role() != Leader {
		t.Fatalf("S5 not re-elected: %v", w.nodes[5].e.Role())
	}
	w.tick(2, 2, 3, 4, 5)
	// S5's entry at that index (its term's no-op) replaced S1's everywhere.
	want, _ := w.nodes[5].e.log.term(old)
	for _, id := range []NodeID{2, 3, 4, 5} {
		n := w.nodes[id]
		if got := n.stable[old-1]; got.Term != want || string(got.Data) == "term-a" {
			t.Fatalf("node %d index %d = %+v, want S5's entry of term %d", id, old, got, want)
		}
	}
	if base >= old {
		t.Fatal("bad setup")
	}
	w.checkLogs()
}

// TestFigure8NoCommitByCounting isolates the counting rule: a leader that
// has replicated an old-term entry to a majority, but not yet any entry of
// its own term, must leave it uncommitted.
func TestFigure8NoCommitByCounting(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.isolate(1)
	idx := w.propose(1, "old")
	w.step()
	// S1 campaigns in a new term while its old entry sits only on S1.
	w.heal()
	w.nodes[1].e.becomeFollower(w.nodes[1].e.Term(), 0)
	w.expireLease(2, 3)
	w.nodes[1].e.campaign(false, false)
	// Deliver only votes, then check the commit rule directly on the old
	// entry.
	w.deliverOnly(isVote)
	e := w.nodes[1].e
	if e.Role() != Leader {
		t.Fatalf("S1 not leader: %v", e.Role())
	}
	// Pretend S2 acknowledged the old entry (but not the no-op above it).
	e.prs[2].match = idx
	e.maybeCommit()
	if c := e.Committed(); c >= idx {
		t.Fatalf("old-term entry %d committed by counting (commit %d)", idx, c)
	}
	e.prs[2].match = idx + 1 // now the no-op of the current term
	e.maybeCommit()
	if c := e.Committed(); c != idx+1 {
		t.Fatalf("commit %d, want %d", c, idx+1)
	}
}

func TestReadIndexConfirmsLeadership(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.propose(1, "a")
	w.step()
	if err := w.nodes[1].e.ReadIndex(7); err != nil {
		t.Fatal(err)
	}
	w.step()
	rs := w.nodes[1].reads
	if len(rs) != 1 || rs[0].Ctx != 7 || rs[0].Index != w.nodes[1].e.Committed() {
		t.Fatalf("read states %+v, committed %d", rs, w.nodes[1].e.Committed())
	}
}

func TestReadIndexWithStaleLeaderNeverConfirms(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.isolate(1)
	// A new leader is elected among the majority and commits a write.
	w.expireLease(2, 3)
	w.elect(2)
	w.propose(2, "new")
	w.step()
	// The stale leader cannot confirm a read: it would miss "new".
	if err := w.nodes[1].e.ReadIndex(9); err != nil {
		t.Fatal(err)
	}
	w.tick(5, 1)
	if len(w.nodes[1].reads) != 0 {
		t.Fatalf("stale leader served read %+v", w.nodes[1].reads)
	}
	// When it steps down (check-quorum) the read fails.
	w.tick(20, 1)
	if w.nodes[1].e.Role() == Leader {
		t.Fatal("stale leader kept leading")
	}
	if len(w.nodes[1].failed) != 1 || w.nodes[1].failed[0] != 9 {
		t.Fatalf("failed reads %v", w.nodes[1].failed)
	}
}

func TestLeaseRead(t *testing.T) {
	w := newWorld(t, 3)
	for _, id := range w.ids {
		w.nodes[id].e.cfg.LeaseTicks = 8
	}
	w.elect(1)
	w.tick(1)
	idx, ok := w.nodes[1].e.LeaseRead()
	if !ok || idx != w.nodes[1].e.Committed() {
		t.Fatalf("lease read = %d, %v", idx, ok)
	}
	w.isolate(1)
	w.tick(9, 1)
	if _, ok := w.nodes[1].e.LeaseRead(); ok {
		t.Fatal("lease still valid after LeaseTicks without acknowledgement")
	}
}

func TestLeadershipTransfer(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	// Node 3 lags; transfer must first bring it up to date.
	w.isolate(3)
	w.propose(1, "a")
	w.step()
	w.heal()
	if err := w.nodes[1].e.TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	if _, err := w.nodes[1].e.Propose([]Entry{{Data: []byte("x")}}); !errors.Is(err, ErrTransferring) {
		t.Fatalf("propose during transfer: %v", err)
	}
	w.step()
	w.tick(2)
	if ls := w.leaders(); len(ls) != 1 || ls[0] != 3 {
		t.Fatalf("leaders after transfer = %v", ls)
	}
	w.checkLogs()
}

func TestLeadershipTransferToMostUpToDate(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.isolate(2)
	w.propose(1, "a")
	w.step()
	w.heal()
	if err := w.nodes[1].e.TransferLeadership(0); err != nil {
		t.Fatal(err)
	}
	w.step()
	if ls := w.leaders(); len(ls) != 1 || ls[0] != 3 {
		t.Fatalf("leaders = %v, want [3]", ls)
	}
}

func TestLeadershipTransferAbortsOnTimeout(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.isolate(3)
	if err := w.nodes[1].e.TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	w.tick(11, 1, 2)
	if !w.nodes[1].aborted {
		t.Fatal("transfer not aborted")
	}
	if w.nodes[1].e.Role() != Leader {
		t.Fatal("leader lost leadership after an aborted transfer")
	}
	w.propose(1, "after")
}

func TestFollowerDurabilityBeforeResponse(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.noAuto = true
	w.propose(1, "a")
	w.collect()
	// Deliver the appends; followers' responses must wait for their writes.
	q := w.queue
	w.queue = nil
	for _, m := range q {
		w.deliverOne(m)
	}
	w.collect()
	for _, m := range w.queue {
		if m.Type == MsgAppResp {
			t.Fatalf("follower %d answered before its write was durable", m.From)
		}
	}
	if c := w.nodes[1].e.Committed(); c == w.nodes[1].e.LastIndex() {
		t.Fatal("committed without durable replicas")
	}
	for _, id := range w.ids {
		w.persist(id)
	}
	w.noAuto = false
	w.step()
	if c := w.nodes[1].e.Committed(); c != w.nodes[1].e.LastIndex() {
		t.Fatalf("committed %d, want %d", c, w.nodes[1].e.LastIndex())
	}
}

func TestBootstrapIdempotent(t *testing.T) {
	w := newWorld(t, 3)
	if err := w.nodes[1].e.Bootstrap(members(1, 2, 3)); err != nil {
		t.Fatalf("same bootstrap again: %v", err)
	}
	if err := w.nodes[1].e.Bootstrap(members(1, 2)); !errors.Is(err, ErrInitialized) {
		t.Fatalf("different bootstrap: %v", err)
	}
}

// TestBootstrapAfterTermRaised: a brand-new node that heard a running
// cluster's message (raising its term) before Initialize still bootstraps:
// its log is empty. Its term is kept, not lowered to 1.
func TestBootstrapAfterTermRaised(t *testing.T) {
	e, err := New(testConfig(4, 1), InitialState{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Step(Message{Type: MsgHeartbeat, From: 1, To: 4, Term: 7}); err != nil {
		t.Fatal(err)
	}
	if e.Term() != 7 {
		t.Fatalf("setup: term %d, want 7", e.Term())
	}
	if err := e.Bootstrap(members(1, 2, 4)); err != nil {
		t.Fatalf("bootstrap of an empty log after a term change: %v", err)
	}
	if m := e.Membership(); e.Term() != 7 || e.LastIndex() != 1 || !m.IsVoter(4) {
		t.Fatalf("after bootstrap: term %d, last index %d, membership %+v", e.Term(), e.LastIndex(), m)
	}
}

func TestWrongTargetRejected(t *testing.T) {
	w := newWorld(t, 1)
	err := w.nodes[1].e.Step(Message{Type: MsgHeartbeat, To: 2, From: 3, Term: 1})
	if !errors.Is(err, ErrWrongTarget) {
		t.Fatalf("got %v", err)
	}
}

// TestLostAppendsRepairedWhenIdle: appends to a follower are all lost and
// no new entry follows them. Heartbeats alone must repair the gap (found
// by the simulator: the follower stayed behind forever in a quiet cluster).
func TestLostAppendsRepairedWhenIdle(t *testing.T) {
	w := newWorld(t, 3)
	w.elect(1)
	w.cut[[2]NodeID{1, 3}] = true // appends to 3 are lost; heartbeats too
	for i := 0; i < 5; i++ {
		w.propose(1, "x")
		w.step()
	}
	pr := w.nodes[1].e.prs[3]
	if pr.state != stateReplicate || len(pr.inflights) == 0 {
		t.Fatalf("setup: peer 3 state %v inflights %d", pr.state, len(pr.inflights))
	}
	w.heal()
	w.tick(3)
	if got, want := w.nodes[3].e.LastIndex(), w.nodes[1].e.LastIndex(); got != want {
		t.Fatalf("follower stuck at %d, leader at %d", got, want)
	}
}
