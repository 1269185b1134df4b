package engine

// Snapshots (Raft paper §7). The engine decides when a follower needs one
// and tracks the transfer; the runtime reads and writes the bytes.
//
// Leader: a follower whose next entry precedes the log (compacted away)
// enters the snapshot state; Ready.SendSnapshots asks the runtime to stream
// the latest stored snapshot to it in MsgSnap chunks. Chunk acknowledgements
// come back as MsgSnapResp and are passed to the runtime's sender through
// Ready.SnapshotAcks. A final MsgSnapResp with Hint=1 says the follower
// installed a snapshot up to Index: replication resumes from there.
//
// Follower: MsgSnap chunks from the current leader are passed to the
// runtime (Ready.SnapshotChunks), which writes them to storage and
// acknowledges them. Once the snapshot is durable and the state machine is
// restored, SnapshotInstalled updates the log and answers the leader.

// SnapshotAck is a chunk acknowledgement for the runtime's snapshot sender.
type SnapshotAck struct {
	Peer NodeID
	// Next is the offset the follower expects next.
	Next uint64
	// Seq echoes the sequence number of the chunk acknowledged.
	Seq uint64
	// Stop ends the transfer: it finished, failed, or is no longer wanted.
	Stop bool
}

// snapshotInstalledHint marks a MsgSnapResp reporting an installed snapshot.
const snapshotInstalledHint = 1

// startSnapshot moves pr to the snapshot state and asks the runtime to
// stream the latest snapshot to it.
func (e *Engine) startSnapshot(pr *progress) {
	if pr.state == stateSnapshot {
		return
	}
	if e.log.snapIndex == 0 {
		return // nothing was compacted, so there is nothing to send
	}
	pr.state = stateSnapshot
	pr.pendingSnapshot = e.log.snapIndex
	pr.snapshotProgress = e.now
	pr.resetInflights()
	e.sendSnapshots = append(e.sendSnapshots, pr.id)
}

// handleSnapResp is the leader's side of MsgSnapResp.
func (e *Engine) handleSnapResp(pr *progress, m Message) {
	if pr.state != stateSnapshot {
		if m.Hint == snapshotInstalledHint {
			pr.maybeUpdate(m.Index)
		}
		e.snapshotAcks = append(e.snapshotAcks, SnapshotAck{Peer: pr.id, Stop: true})
		return
	}
	pr.snapshotProgress = e.now
	switch {
	case m.Reject:
		pr.becomeProbe()
		e.snapshotAcks = append(e.snapshotAcks, SnapshotAck{Peer: pr.id, Stop: true})
	case m.Hint == snapshotInstalledHint:
		pr.match = max(pr.match, m.Index)
		pr.pendingSnapshot = 0
		pr.state = stateProbe
		pr.next = pr.match + 1
		pr.probeSent = false
		e.snapshotAcks = append(e.snapshotAcks, SnapshotAck{Peer: pr.id, Stop: true})
		e.commitDirty = true
		e.sendApp(pr, true)
	default:
		e.snapshotAcks = append(e.snapshotAcks, SnapshotAck{Peer: pr.id, Next: m.Context, Seq: m.HintTerm})
	}
}

// tickSnapshots abandons transfers that made no progress for two election
// timeouts (the follower may be gone, or its final answer was lost): the
// peer goes back to probing, which starts a new transfer if still needed.
func (e *Engine) tickSnapshots() {
	for _, pr := range e.peers {
		if pr.state == stateSnapshot && e.now-pr.snapshotProgress > uint64(2*e.cfg.ElectionTicks) {
			pr.becomeProbe()
			e.snapshotAcks = append(e.snapshotAcks, SnapshotAck{Peer: pr.id, Stop: true})
		}
	}
}

// handleSnapshotChunk is the follower's side of MsgSnap.
func (e *Engine) handleSnapshotChunk(m Message) {
	c := m.Snapshot
	if c == nil {
		return
	}
	if c.Meta.Index <= e.log.committed {
		// We already hold everything it covers: say how far we are.
		e.send(Message{Type: MsgSnapResp, To: m.From, Index: e.log.committed, Hint: snapshotInstalledHint})
		return
	}
	e.snapshotChunks = append(e.snapshotChunks, m)
}

// SnapshotInstalled reports that a snapshot received from leader is
// durable and the state machine restored from it.
func (e *Engine) SnapshotInstalled(leader NodeID, meta SnapshotMeta) {
	if meta.Index <= e.log.snapIndex {
		return
	}
	e.log.installSnapshot(meta)
	e.snapConfig = meta.Membership.Clone()
	e.dropConfigsThrough(meta.Index)
	if e.log.last == meta.Index {
		e.configs = e.configs[:0]
	}
	e.refreshConfig()
	e.send(Message{Type: MsgSnapResp, To: leader, Index: meta.Index, Hint: snapshotInstalledHint})
}

// SnapshotTaken reports that this node stored a snapshot of its own state
// machine, described by meta.
func (e *Engine) SnapshotTaken(meta SnapshotMeta) {
	if meta.Index <= e.log.snapIndex {
		return
	}
	e.log.snapIndex, e.log.snapTerm = meta.Index, meta.Term
	e.snapConfig = meta.Membership.Clone()
	e.dropConfigsThrough(meta.Index)
}

// Compacted reports that storage dropped the log up to index.
func (e *Engine) Compacted(index uint64) { e.log.compactTo(index) }

// SnapshotIndex returns the index of the latest snapshot.
func (e *Engine) SnapshotIndex() uint64 { return e.log.snapIndex }

// dropConfigsThrough forgets configuration entries at or before index,
// which a snapshot now covers (its membership is snapConfig).
func (e *Engine) dropConfigsThrough(index uint64) {
	k := 0
	for k < len(e.configs) && e.configs[k].Index <= index {
		k++
	}
	if k > 0 {
		e.configs = append(e.configs[:0], e.configs[k:]...)
	}
}
