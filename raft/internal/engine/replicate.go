package engine

import "fmt"

// Propose appends commands to the leader's log. Each entry's Type and Data
// are the caller's; Index and Term are assigned in place. It returns the
// index of the first entry.
func (e *Engine) Propose(ents []Entry) (uint64, error) {
	if e.role != Leader {
		return 0, ErrNotLeader
	}
	if e.transferee != 0 {
		return 0, ErrTransferring
	}
	for i := range ents {
		if ents[i].Type == EntryConfig {
			return 0, fmt.Errorf("engine: config entries go through ProposeConfig")
		}
	}
	first := e.log.last + 1
	e.appendLeader(ents)
	return first, nil
}

// appendLeader assigns indexes and the current term, appends to the log and
// starts replicating.
func (e *Engine) appendLeader(ents []Entry) {
	if len(ents) == 0 {
		return
	}
	idx := e.log.last
	for i := range ents {
		idx++
		ents[i].Index = idx
		ents[i].Term = e.term
	}
	e.log.append(ents)
	for i := range ents {
		if ents[i].Type == EntryConfig {
			e.addConfigEntry(ents[i])
		}
	}
	// A single voter commits as soon as its own write is durable.
	e.commitDirty = true
	e.bcastAppend()
}

func (e *Engine) bcastAppend() {
	for _, pr := range e.peers {
		e.sendApp(pr, false)
	}
}

// sendApp sends the peer as many appends as its window allows. With
// sendEmpty, a peer with nothing to receive gets an empty append carrying
// the commit index (or probing for the match point).
func (e *Engine) sendApp(pr *progress, sendEmpty bool) {
	for !pr.paused(e.cfg.MaxInflightMsgs, e.cfg.MaxInflightBytes) {
		if pr.next > e.log.last && !sendEmpty {
			return
		}
		prevIndex := pr.next - 1
		prevTerm, ok := e.log.term(prevIndex)
		if !ok || pr.next < e.log.first {
			// The entries the peer needs were compacted away: never send
			// what the log no longer holds; send the snapshot instead.
			e.startSnapshot(pr)
			return
		}
		var ents []Entry
		if pr.next <= e.log.last {
			var cached bool
			ents, cached = e.log.cached(pr.next, e.log.last+1, e.cfg.MaxMsgBytes)
			if !cached {
				pr.fetching = true
				e.fetches = append(e.fetches, Fetch{Peer: pr.id, Lo: pr.next, Hi: min(e.log.last+1, e.log.cacheFirst), MaxBytes: e.cfg.MaxMsgBytes})
				return
			}
		}
		e.sendEntries(pr, prevIndex, prevTerm, ents)
		if len(ents) == 0 || pr.state != stateReplicate {
			return
		}
		sendEmpty = false
	}
}

func (e *Engine) sendEntries(pr *progress, prevIndex, prevTerm uint64, ents []Entry) {
	commit := e.log.committed
	bytes := 0
	for i := range ents {
		bytes += ents[i].Size()
	}
	e.send(Message{Type: MsgApp, To: pr.id, Index: prevIndex, LogTerm: prevTerm, Entries: ents, Commit: commit})
	pr.commitSent = max(pr.commitSent, min(commit, prevIndex+uint64(len(ents))))
	pr.sentEntries(prevIndex+uint64(len(ents)), bytes)
	e.sentCommitMax = max(e.sentCommitMax, commit)
}

// Fetched hands back entries read from storage for a Fetch. ents may be
// empty when the read failed; the peer is then retried later, or sent the
// snapshot if compacted reports that storage no longer holds lo.
func (e *Engine) Fetched(peer NodeID, lo uint64, ents []Entry, compacted bool) {
	pr := e.prs[peer]
	if pr == nil || e.role != Leader {
		return
	}
	pr.fetching = false
	if compacted && pr.next == lo {
		e.startSnapshot(pr)
		return
	}
	if len(ents) == 0 || pr.next != lo || ents[0].Index != lo {
		return
	}
	for i := range ents {
		if !e.log.matchTerm(ents[i].Index, ents[i].Term) {
			return // the log changed while reading
		}
	}
	prevTerm, ok := e.log.term(lo - 1)
	if !ok {
		return
	}
	e.sendEntries(pr, lo-1, prevTerm, ents)
	e.sendApp(pr, false)
}

// handleAppend is a follower's AppendEntries receiver (Raft paper figure 2).
func (e *Engine) handleAppend(m Message) {
	if m.Index < e.log.committed {
		e.send(Message{Type: MsgAppResp, To: m.From, Index: e.log.committed})
		return
	}
	if !e.log.matchTerm(m.Index, m.LogTerm) {
		hint := e.log.findConflictByTerm(min(m.Index, e.log.last), m.LogTerm)
		hintTerm, _ := e.log.term(hint)
		e.send(Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true, Hint: hint, HintTerm: hintTerm})
		return
	}
	ents := m.Entries
	for len(ents) > 0 && e.log.matchTerm(ents[0].Index, ents[0].Term) {
		ents = ents[1:]
	}
	if len(ents) > 0 {
		if ents[0].Index <= e.log.committed {
			// Log matching makes this impossible with a correct leader.
			panic(fmt.Sprintf("engine: leader %d conflicts with committed entry %d", m.From, ents[0].Index))
		}
		e.appendFollower(ents)
	}
	lastNew := m.Index + uint64(len(m.Entries))
	e.log.commitTo(min(m.Commit, lastNew))
	e.send(Message{Type: MsgAppResp, To: m.From, Index: lastNew})
}

// appendFollower appends entries received from the leader, replacing a
// conflicting suffix, and tracks configuration entries (which take effect
// as soon as they are in the log, thesis §4.1).
func (e *Engine) appendFollower(ents []Entry) {
	from := ents[0].Index
	if from <= e.log.last {
		e.dropConfigsFrom(from)
	}
	e.log.append(ents)
	for i := range ents {
		if ents[i].Type == EntryConfig {
			e.addConfigEntry(ents[i])
		}
	}
}

func (e *Engine) stepLeader(m Message) {
	pr := e.prs[m.From]
	if pr == nil {
		return
	}
	switch m.Type {
	case MsgAppResp:
		if m.Reject {
			hint := m.Hint
			if m.HintTerm > 0 {
				hint = e.log.findConflictByTerm(m.Hint, m.HintTerm)
			}
			if pr.maybeDecrTo(m.Index, hint) {
				if pr.state == stateReplicate {
					pr.becomeProbe()
				}
				e.sendApp(pr, true)
			}
			return
		}
		if pr.maybeUpdate(m.Index) {
			if pr.state == stateProbe {
				pr.becomeReplicate()
			}
			e.commitDirty = true
			if pr.departed() {
				e.syncProgress() // it knows it was removed: stop tracking it
				return
			}
		}
		e.sendApp(pr, false)
		if m.From == e.transferee && pr.match == e.log.last {
			e.send(Message{Type: MsgTimeoutNow, To: m.From})
		}
	case MsgHeartbeatResp:
		pr.probeSent = false
		if pr.state == stateReplicate && len(pr.inflights) >= e.cfg.MaxInflightMsgs {
			// The window is full and the peer is alive: appends were lost.
			// Free one slot so that the next append goes out; the peer
			// rejects it if it has a gap, and probing repairs the rest.
			pr.freeFirstInflight()
		}
		e.reads.ack(pr, m.Context)
		if pr.departed() {
			e.syncProgress() // it heard that its removal committed: stop tracking it
			return
		}
		if pr.match < e.log.last {
			// The peer lags. Appends may have been lost with nothing new
			// to send after them, so send one even if empty: the peer
			// either acknowledges it or rejects it, and a rejection turns
			// on probing, which repairs the gap.
			e.sendApp(pr, true)
		}
	case MsgSnapResp:
		e.handleSnapResp(pr, m)
	}
}

// maybeCommit advances the commit index to the highest index a quorum
// holds, but only through an entry of the current term (Raft paper §5.4.2,
// figure 8): an entry of an earlier term is never committed by counting.
func (e *Engine) maybeCommit() {
	idx := e.quorum.CommittedIndex(e.matchOf)
	if idx <= e.log.committed {
		return
	}
	if t, _ := e.log.term(idx); t != e.term {
		return
	}
	e.log.commitTo(idx)
}

func (e *Engine) matchOf(id uint64) uint64 {
	if NodeID(id) == e.id {
		return e.log.persisted
	}
	if pr := e.prs[NodeID(id)]; pr != nil {
		return pr.match
	}
	return 0
}

// flushCommit tells followers about a commit index that no append carried
// yet, with an empty append to each one that is caught up.
func (e *Engine) flushCommit() {
	if e.sentCommitMax >= e.log.committed {
		return
	}
	for _, pr := range e.peers {
		if pr.state == stateReplicate && pr.next > e.log.last {
			e.sendApp(pr, true)
		}
	}
	e.sentCommitMax = e.log.committed
}

func (e *Engine) bcastHeartbeat() {
	seq := e.reads.startRound(e.now, e.wallLead)
	for _, pr := range e.peers {
		c := min(pr.match, e.log.committed)
		e.send(Message{Type: MsgHeartbeat, To: pr.id, Commit: c, Context: seq})
		pr.commitSent = max(pr.commitSent, c)
	}
}
