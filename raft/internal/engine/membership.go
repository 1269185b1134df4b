package engine

// Membership changes by joint consensus (Raft paper §6).
//
// A change is proposed as C_old,new: OutgoingVoters holds C_old's voters
// and Voters C_new's, and every election and commit needs a majority of
// each. Once the leader commits C_old,new it appends C_new by itself. A
// leader that is not a voter of C_new keeps leading until C_new commits,
// then hands over to an up-to-date voter of C_new and steps down.
//
// Nodes removed by a change are kept in the leader's progress until they
// hold the entry that removed them, so that they learn of their removal
// and stop campaigning.

// maybeLeaveJoint appends C_new once C_old,new is committed.
func (e *Engine) maybeLeaveJoint() {
	if e.role != Leader || !e.membership.IsJoint() || e.pendingConfIndex > e.log.committed || e.transferee != 0 {
		return
	}
	next := Membership{Voters: e.membership.Voters, NonVoters: e.membership.NonVoters, Removed: e.membership.Removed}
	e.appendLeader([]Entry{{Type: EntryConfig, Data: EncodeMembership(next)}})
}

// maybeStepDownRemoved makes a leader that is no longer a voter step down
// once the configuration that removed it is committed, after telling the
// most up-to-date remaining voter to campaign at once.
func (e *Engine) maybeStepDownRemoved() {
	if e.role != Leader || e.membership.IsJoint() || e.membership.IsVoter(e.id) || e.pendingConfIndex > e.log.committed {
		return
	}
	var best *progress
	for _, pr := range e.peers {
		if pr.voter && pr.match == e.log.last && (best == nil || pr.id < best.id) {
			best = pr
		}
	}
	if best != nil {
		e.send(Message{Type: MsgTimeoutNow, To: best.id})
	}
	e.becomeFollower(e.term, 0)
}

// Removed reports whether this node's newest configuration leaves it out.
func (e *Engine) Removed() bool {
	return !e.membership.IsEmpty() && !e.membership.Contains(e.id)
}

// PhasingOut reports whether this node leads a joint configuration whose
// new half does not include it: it will step down once C_new commits.
func (e *Engine) PhasingOut() bool {
	return e.role == Leader && e.membership.IsJoint() && !contains(e.membership.Voters, e.id)
}

// PeerMatch returns the leader's view of a peer's replicated index.
func (e *Engine) PeerMatch(id NodeID) (uint64, bool) {
	if pr := e.prs[id]; pr != nil {
		return pr.match, true
	}
	return 0, false
}

// ConfigPending reports whether a configuration entry is not yet committed
// (or, on a leader, whether a joint configuration still has to be left).
func (e *Engine) ConfigPending() bool {
	return e.pendingConfIndex > e.log.committed || e.membership.IsJoint()
}

// PendingJoint reports whether the configuration in force is joint: a
// change is under way until its C_new is appended and committed.
func (e *Engine) PendingJoint() bool { return e.membership.IsJoint() }

// StepDown makes a leader give up leadership at once, for a reason outside
// the protocol: its storage can no longer make the log durable. It tells the
// voter holding the most of its log to campaign now (MsgTimeoutNow, thesis
// §3.10), so that the others need not wait out an election timeout, and
// becomes a follower with no leader in the same term. The chosen voter may
// lack entries the leader accepted: the election decides (any voter that
// wins holds every committed entry, Raft paper §5.4.1), so nothing committed
// is lost. It reports whether the node was the leader.
func (e *Engine) StepDown() bool {
	if e.role != Leader {
		return false
	}
	var best *progress
	for _, pr := range e.peers {
		if pr.voter && (best == nil || pr.match > best.match || pr.match == best.match && pr.id < best.id) {
			best = pr
		}
	}
	if best != nil {
		e.send(Message{Type: MsgTimeoutNow, To: best.id}) // also ends lease reads for the term
	}
	e.becomeFollower(e.term, 0)
	return true
}
