package engine

import "github.com/raftkit/raftkit/raft/internal/quorum"

// promotable reports whether this node is a voter of the configuration in
// force (its newest): what its role shows.
func (e *Engine) promotable() bool { return e.membership.IsVoter(e.id) }

// mayCampaign reports whether this node may start an election: a voter of
// its newest configuration, or, while that configuration is uncommitted, a
// voter of the one before it. Thesis §4.2.2: a server left out of its own
// newest configuration must still start elections until that entry
// commits, as the others may need it to elect anyone (the nodes that hold
// only C_old,new need a majority of C_old). Winning, it commits the
// configuration that removes it and steps down (maybeStepDownRemoved).
func (e *Engine) mayCampaign() bool {
	if e.membership.IsVoter(e.id) {
		return true
	}
	if e.pendingConfIndex <= e.log.committed {
		return false
	}
	prev := e.snapConfig
	if n := len(e.configs); n >= 2 {
		prev = e.configs[n-2].Membership
	}
	return prev.IsVoter(e.id)
}

func (e *Engine) resetTimers() {
	e.electionElapsed = 0
	e.heartbeatElapsed = 0
	e.randomizedTimeout = e.cfg.ElectionTicks + e.cfg.Rand(e.cfg.ElectionTicks)
}

func (e *Engine) becomeFollower(term uint64, lead NodeID) {
	if term > e.term {
		e.term = term
		e.vote = 0
	}
	wasLeader := e.role == Leader
	e.role = Follower
	if !e.promotable() && e.membership.Contains(e.id) {
		e.role = NonVoter
	}
	e.lead = lead
	e.resetTimers()
	e.transferee = 0
	if wasLeader {
		e.failReads()
		e.prs = map[NodeID]*progress{}
		e.peers = nil
	}
}

// campaign starts a pre-vote (pre) or an election. A transfer campaign
// skips the pre-vote and asks voters to disregard their leader lease
// (thesis §3.10).
func (e *Engine) campaign(pre, transfer bool) {
	term := e.term + 1
	if pre {
		e.role = PreCandidate
		e.lead = 0
		e.resetTimers()
	} else {
		e.becomeFollower(term, 0)
		e.role = Candidate
		e.vote = e.id
	}
	clear(e.votes)
	e.votes[uint64(e.id)] = true
	if e.quorum.Vote(e.votes) == quorum.VoteWon {
		e.winElection(pre, transfer)
		return
	}
	t := MsgVote
	if pre {
		t = MsgPreVote
	}
	lastTerm := e.log.lastTerm()
	for _, id := range e.quorum.IDs() {
		if NodeID(id) == e.id {
			continue
		}
		e.send(Message{Type: t, To: NodeID(id), Term: term, Index: e.log.last, LogTerm: lastTerm, Transfer: transfer})
	}
}

func (e *Engine) winElection(pre, transfer bool) {
	if pre {
		e.campaign(false, transfer)
		return
	}
	e.becomeLeader()
}

// handleVoteRequest answers MsgVote and MsgPreVote (Raft paper §5.2, §5.4.1).
func (e *Engine) handleVoteRequest(m Message) {
	resp := MsgVoteResp
	if m.Type == MsgPreVote {
		resp = MsgPreVoteResp
	}
	canVote := e.vote == m.From ||
		e.vote == 0 && e.lead == 0 ||
		m.Type == MsgPreVote && m.Term > e.term
	if canVote && e.log.isUpToDate(m.Index, m.LogTerm) {
		// A granted pre-vote carries the campaign's term so that the
		// pre-candidate counts it; a vote's term is ours (now m.Term).
		e.send(Message{Type: resp, To: m.From, Term: m.Term})
		if m.Type == MsgVote {
			e.electionElapsed = 0
			e.vote = m.From
		}
		return
	}
	e.send(Message{Type: resp, To: m.From, Reject: true})
}

func (e *Engine) stepCandidate(m Message) {
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap:
		// A leader of our term exists (Raft paper §5.2).
		e.becomeFollower(m.Term, m.From)
		e.stepFollower(m)
	case MsgVoteResp, MsgPreVoteResp:
		if (m.Type == MsgVoteResp) != (e.role == Candidate) {
			return
		}
		if !e.quorum.Contains(uint64(m.From)) {
			return
		}
		if _, ok := e.votes[uint64(m.From)]; !ok {
			e.votes[uint64(m.From)] = !m.Reject
		}
		switch e.quorum.Vote(e.votes) {
		case quorum.VoteWon:
			e.winElection(e.role == PreCandidate, false)
		case quorum.VoteLost:
			e.becomeFollower(e.term, 0)
		}
	case MsgTimeoutNow:
		// Only followers act on it.
	}
}

func (e *Engine) becomeLeader() {
	e.role = Leader
	e.lead = e.id
	e.resetTimers()
	e.transferee = 0
	e.prs = map[NodeID]*progress{}
	e.peers = nil
	e.departDone = map[NodeID]bool{}
	e.syncProgress()
	e.reads.reset()
	// Append a no-op so that entries of earlier terms commit through it
	// (Raft paper §5.4.2, §8).
	e.appendLeader([]Entry{{Type: EntryNoop}})
}

// syncProgress makes the progress map match the membership: new peers start
// probing from our last index, removed ones are dropped.
func (e *Engine) syncProgress() {
	ids := e.membership.IDs()
	for id := range e.prs {
		if !containsID(ids, id) && id != e.id {
			ids = append(ids, id) // departing: kept until it holds its removal
		}
	}
	if e.role == Leader {
		// Removed nodes this leader has not yet seen learn their removal
		// (one may have missed it when an earlier leader fell).
		for _, r := range e.membership.Removed {
			if !containsID(ids, r.ID) && r.ID != e.id && !e.departDone[r.ID] {
				ids = append(ids, r.ID)
			}
		}
	}
	sortIDs(ids)
	e.peers = e.peers[:0]
	for _, id := range ids { // ascending
		if id == e.id {
			continue
		}
		pr := e.prs[id]
		member := e.membership.Contains(id)
		if pr == nil {
			pr = &progress{id: id, next: e.log.last + 1, lastContact: e.now}
			e.prs[id] = pr
		}
		pr.voter = e.membership.IsVoter(id)
		switch {
		case member:
			pr.departAt = 0
		case pr.departAt == 0:
			pr.departAt = e.pendingConfIndex
		}
		if pr.departAt > 0 && (pr.departed() || e.now-pr.lastContact > uint64(100*e.cfg.ElectionTicks)) {
			// It holds its removal, or has been silent too long to wait
			// for: stop tracking it for the rest of this leadership.
			delete(e.prs, id)
			e.departDone[id] = true
			continue
		}
		e.peers = append(e.peers, pr)
	}
}
