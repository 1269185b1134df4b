package engine

// progressState is how the leader replicates to one follower (as in
// etcd-io/raft's tracker): probing for the match point one message at a
// time, streaming optimistically, or waiting for a snapshot to be installed.
type progressState uint8

const (
	stateProbe progressState = iota
	stateReplicate
	stateSnapshot
)

func (s progressState) String() string {
	return [...]string{"probe", "replicate", "snapshot"}[s]
}

// inflight is one MsgApp awaiting acknowledgement.
type inflight struct {
	last  uint64
	bytes int
}

// progress is the leader's view of one peer.
type progress struct {
	id    NodeID
	match uint64 // highest index known replicated (durable) on the peer
	next  uint64 // next index to send
	state progressState

	// probeSent pauses a probing follower after one message until it
	// answers or a heartbeat response arrives.
	probeSent bool
	// fetching is set while the runtime reads entries from storage for
	// this peer; nothing more is sent until they arrive.
	fetching bool
	// pendingSnapshot is the index of the snapshot being sent, and
	// snapshotProgress the tick of the transfer's last sign of progress.
	pendingSnapshot  uint64
	snapshotProgress uint64

	inflights     []inflight
	inflightBytes int

	// ackedSeq is the highest heartbeat round the peer has answered.
	ackedSeq uint64
	// lastContact is the tick of the last message from the peer (the
	// check-quorum round reads it, Raft thesis §6.2).
	lastContact uint64

	voter bool
	// departAt is, for a peer removed from the configuration, the index of
	// the entry that removed it; the leader drops the peer once it holds it
	// and has been told it is committed (departed).
	departAt uint64
	// commitSent is the highest commit index sent to the peer.
	commitSent uint64
}

// departed reports whether a removed peer holds the entry that removed it
// and knows that entry committed: it then stops campaigning (mayCampaign)
// and needs nothing more from the leader.
func (p *progress) departed() bool {
	return p.departAt > 0 && p.match >= p.departAt && p.commitSent >= p.departAt
}

func (p *progress) becomeProbe() {
	if p.state == stateSnapshot {
		p.next = max(p.match+1, p.pendingSnapshot+1)
	} else {
		p.next = p.match + 1
	}
	p.state = stateProbe
	p.probeSent = false
	p.pendingSnapshot = 0
	p.resetInflights()
}

func (p *progress) becomeReplicate() {
	p.state = stateReplicate
	p.next = p.match + 1
	p.probeSent = false
	p.resetInflights()
}

func (p *progress) resetInflights() {
	p.inflights = p.inflights[:0]
	p.inflightBytes = 0
}

// maybeUpdate records that the peer holds entries up to n. It returns false
// for a stale acknowledgement.
func (p *progress) maybeUpdate(n uint64) bool {
	updated := false
	if p.match < n {
		p.match = n
		updated = true
		p.probeSent = false
	}
	p.next = max(p.next, n+1)
	p.freeInflights(n)
	return updated
}

// maybeDecrTo handles a rejection of the append whose previous index was
// rejected, with the leader's next guess hint. It returns false for a stale
// rejection.
func (p *progress) maybeDecrTo(rejected, hint uint64) bool {
	if p.state == stateReplicate {
		// Only a rejection of the entry right after match is current;
		// anything else answers a message sent before the last reset.
		if rejected <= p.match {
			return false
		}
		p.next = p.match + 1
		return true
	}
	if p.next-1 != rejected {
		return false
	}
	p.next = max(min(rejected, hint+1), p.match+1, 1)
	p.probeSent = false
	return true
}

func (p *progress) freeInflights(upTo uint64) {
	i := 0
	for i < len(p.inflights) && p.inflights[i].last <= upTo {
		p.inflightBytes -= p.inflights[i].bytes
		i++
	}
	if i > 0 {
		n := copy(p.inflights, p.inflights[i:])
		p.inflights = p.inflights[:n]
	}
}

func (p *progress) freeFirstInflight() {
	if len(p.inflights) > 0 {
		p.freeInflights(p.inflights[0].last)
	}
}

// paused reports whether the leader must not send the peer more entries now.
func (p *progress) paused(maxMsgs, maxBytes int) bool {
	if p.fetching {
		return true
	}
	switch p.state {
	case stateProbe:
		return p.probeSent
	case stateReplicate:
		return len(p.inflights) >= maxMsgs || maxBytes > 0 && p.inflightBytes >= maxBytes
	}
	return true
}

// sentEntries records an append ending at last carrying bytes bytes.
func (p *progress) sentEntries(last uint64, bytes int) {
	switch p.state {
	case stateReplicate:
		if last >= p.next {
			p.next = last + 1
			p.inflights = append(p.inflights, inflight{last: last, bytes: bytes})
			p.inflightBytes += bytes
		}
	case stateProbe:
		p.probeSent = true
	}
}
