package engine

// Linearizable reads (Raft thesis §6.4) and leadership transfer (§3.10).
//
// A read is confirmed by a heartbeat round: the leader notes its commit
// index, sends heartbeats stamped with a round number, and once a quorum has
// answered that round (or a later one) it knows it was still the leader when
// the read arrived. The read may then be served when the state machine has
// applied the noted index. Many reads share one round.
//
// Leases (§6.4.1) reuse the rounds: the leader remembers when it sent each
// round; once a quorum answered a round sent at tick t, no other leader can
// be elected before t + ElectionTicks, because every node that answered
// refuses votes for that long after hearing from the leader.

const roundHistory = 256

type pendingRead struct {
	ctx   uint64
	index uint64
	seq   uint64 // round that confirms it; 0 until assigned
}

type readState struct {
	seq    uint64 // last round started
	sentAt [roundHistory]uint64
	// sentLead is the engine's wallLead when each round was sent.
	sentLead  [roundHistory]uint64
	pending   []pendingRead
	ready     []ReadState
	failed    []uint64
	needRound bool
	// timeoutNowSent is set once this leader sent MsgTimeoutNow in its
	// term: no lease reads for the rest of the term (see LeaseRead).
	timeoutNowSent bool
	// quietUntil is the tick before which a restarted node grants no vote.
	quietUntil uint64
}

// reset starts a new leadership term.
func (r *readState) reset() {
	r.pending = r.pending[:0]
	r.needRound = false
	r.timeoutNowSent = false
}

func (r *readState) startRound(now, wallLead uint64) uint64 {
	r.seq++
	r.sentAt[r.seq%roundHistory] = now
	r.sentLead[r.seq%roundHistory] = wallLead
	r.needRound = false
	return r.seq
}

func (r *readState) ack(pr *progress, seq uint64) {
	if seq > pr.ackedSeq && seq <= r.seq {
		pr.ackedSeq = seq
	}
}

// ReadIndex asks to confirm leadership for read request ctx. The answer
// comes in a later Ready: a ReadState once confirmed, or ctx in FailedReads
// if this node stops leading first.
func (e *Engine) ReadIndex(ctx uint64) error {
	if e.role != Leader {
		return ErrNotLeader
	}
	e.reads.pending = append(e.reads.pending, pendingRead{ctx: ctx})
	return nil
}

// committedInTerm reports whether the leader has committed an entry of its
// own term, which it must before its commit index can serve reads (§6.4).
func (e *Engine) committedInTerm() bool {
	t, _ := e.log.term(e.log.committed)
	return t == e.term
}

// flushReads assigns read indexes to new reads, starts a round for them,
// and releases reads whose round a quorum answered.
func (e *Engine) flushReads() {
	r := &e.reads
	if len(r.pending) == 0 || !e.committedInTerm() {
		return
	}
	var next uint64
	for i := range r.pending {
		p := &r.pending[i]
		if p.seq == 0 {
			if next == 0 {
				next = r.seq + 1
				r.needRound = true
			}
			p.seq, p.index = next, e.log.committed
		}
	}
	if r.needRound {
		e.bcastHeartbeat()
	}
	acked := e.quorum.CommittedIndex(e.ackedSeqOf)
	k := 0
	for _, p := range r.pending {
		if p.seq <= acked {
			r.ready = append(r.ready, ReadState{Ctx: p.ctx, Index: p.index})
		} else {
			r.pending[k] = p
			k++
		}
	}
	r.pending = r.pending[:k]
}

// ackedSeqOf returns the newest round voter id answered; the leader has
// answered every round it started.
func (e *Engine) ackedSeqOf(id uint64) uint64 {
	if NodeID(id) == e.id {
		return e.reads.seq
	}
	if pr := e.prs[NodeID(id)]; pr != nil {
		return pr.ackedSeq
	}
	return 0
}

func (e *Engine) failReads() {
	for _, p := range e.reads.pending {
		e.reads.failed = append(e.reads.failed, p.ctx)
	}
	e.reads.pending = e.reads.pending[:0]
}

// LeaseRead returns the index a read may be served at without a round, when
// the leader's lease holds: a quorum answered a heartbeat round sent less
// than LeaseTicks ago, the leader has committed an entry of its term, and
// it has sent no MsgTimeoutNow in this term. The clock must have been
// advanced to the current time first (Advance): the lease is judged at the
// moment the read is answered, so a leader that was paused finds it
// expired.
//
// Correct if no node's clock runs slower than another's by more than the
// margin between LeaseTicks and ElectionTicks (a bound on clock rate, not
// on offset: only elapsed times are compared, each on one node's clock).
//
// Why MsgTimeoutNow ends the lease for the whole term: a transfer campaign
// asks voters to disregard their leader (thesis §3.10), so once the target
// may campaign, the lease no longer keeps other leaders out. Abandoning the
// transfer does not help: the MsgTimeoutNow may still be in flight, or the
// target's vote for itself may still be being written, and the target can
// win and commit at any time. Only a new term of this node's leadership
// (which the target's election would end anyway) restores leases.
func (e *Engine) LeaseRead() (uint64, bool) {
	if e.role != Leader || e.cfg.LeaseTicks == 0 || e.transferee != 0 || e.reads.timeoutNowSent || !e.committedInTerm() {
		return 0, false
	}
	acked := e.quorum.CommittedIndex(e.ackedSeqOf)
	if acked == 0 || e.reads.seq-acked >= roundHistory {
		return 0, false
	}
	// Elapsed since the round was sent: on the monotonic clock, plus
	// whatever the wall clock has gained on it meanwhile (SetWallLead).
	slot := acked % roundHistory
	elapsed := e.now - e.reads.sentAt[slot] + e.wallLead - e.reads.sentLead[slot]
	if elapsed < uint64(e.cfg.LeaseTicks) {
		return e.log.committed, true
	}
	return 0, false
}

// TransferLeadership starts handing leadership to voter to, or to the most
// up-to-date voter when to is 0. The leader stops accepting proposals,
// brings the target up to date and sends it MsgTimeoutNow. The transfer is
// abandoned (Ready.TransferAborted) after an election timeout.
func (e *Engine) TransferLeadership(to NodeID) error {
	if e.role != Leader {
		return ErrNotLeader
	}
	if to == 0 {
		var best *progress
		for _, pr := range e.peers {
			if pr.voter && (best == nil || pr.match > best.match || pr.match == best.match && pr.id < best.id) {
				best = pr
			}
		}
		if best == nil {
			return ErrUnknownPeer
		}
		to = best.id
	}
	if to == e.id {
		return nil
	}
	pr := e.prs[to]
	if pr == nil || !pr.voter {
		return ErrUnknownPeer
	}
	if e.transferee != 0 {
		if e.transferee == to {
			return nil
		}
		return ErrTransferring
	}
	e.transferee = to
	e.electionElapsed = 0
	if pr.match == e.log.last {
		e.send(Message{Type: MsgTimeoutNow, To: to})
	} else {
		e.sendApp(pr, true)
	}
	return nil
}
