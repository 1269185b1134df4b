package rafttest

import (
	"hash/fnv"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// simChecks holds what the invariants are checked against, built up over
// the whole run (entries are identified across nodes and incarnations by
// index and term, which Raft makes unique).
type simChecks struct {
	leaders    map[uint64]raftdata.NodeID // term -> its leader
	maxTerm    uint64                     // newest term with a leader
	applied    map[uint64]appliedRec      // index -> command applied there
	appliedMax uint64                     // highest index in applied
	acked      map[uint64]uint64          // index -> hash of an acknowledged write
	chain      map[[2]uint64]uint64       // (index, term) -> hash of the log up to it
}

type appliedRec struct {
	term uint64
	hash uint64
	node raftdata.NodeID
}

func (c *simChecks) init() {
	c.leaders = map[uint64]raftdata.NodeID{}
	c.applied = map[uint64]appliedRec{}
	c.acked = map[uint64]uint64{}
	c.chain = map[[2]uint64]uint64{}
}

func hashBytes(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// node checks, after every step of node n: the node has not failed; at most
// one leader per term (election safety); a new leader holds every entry
// applied anywhere so far (leader completeness); commit and applied never
// go back within an incarnation; and every command it applied matches what
// every other node applied at that index (state machine safety) and any
// write acknowledged at that index.
func (c *simChecks) node(s *sim, n *simNode) {
	st := n.node.Status()
	if st.Failed != nil {
		s.violate("node %d failed: %v", n.id, st.Failed)
		return
	}
	if st.Role == raftdata.RoleLeader {
		if l, ok := c.leaders[st.Term]; ok && l != n.id {
			s.violate("two leaders in term %d: %d and %d", st.Term, l, n.id)
			return
		}
		c.leaders[st.Term] = n.id
		c.maxTerm = max(c.maxTerm, st.Term)
		if n.lastRole != raftdata.RoleLeader || n.lastTerm != st.Term {
			s.res.Elections++
			s.logf("node %d leads term %d", n.id, st.Term)
			c.leaderComplete(s, n, st.Term)
		}
	}
	if st.Commit < n.lastCommit {
		s.violate("node %d commit index went back from %d to %d", n.id, n.lastCommit, st.Commit)
	}
	if st.Applied < n.lastApplied {
		s.violate("node %d applied index went back from %d to %d", n.id, n.lastApplied, st.Applied)
	}
	if st.Applied > st.Commit {
		s.violate("node %d applied %d beyond commit %d", n.id, st.Applied, st.Commit)
	}
	n.lastRole, n.lastTerm, n.lastCommit, n.lastApplied = st.Role, st.Term, st.Commit, st.Applied
	s.res.SnapshotsTaken += int(st.Taken - n.lastTaken)
	s.res.SnapshotsInstalled += int(st.Installed - n.lastInstalled)
	n.lastTaken, n.lastInstalled = st.Taken, st.Installed
	if v := n.kv.Violations(); len(v) > 0 {
		s.violate("node %d apply contract: %v", n.id, v[0])
	}
	if gen, restored := n.kv.restoreMark(); gen != n.restoreGen {
		// The state machine was replaced by a snapshot: its history is
		// the snapshotting node's (checked there); check from its end.
		n.restoreGen, n.seenApplied, n.lastSeenIndex = gen, restored, 0
		if restored > 0 {
			n.lastSeenIndex = n.kv.AppliedSince(restored - 1)[0].Index
		}
	}
	for _, e := range n.kv.AppliedSince(n.seenApplied) {
		n.seenApplied++
		// Completeness: every command committed between the last one
		// this node applied and this one was applied here too. Only
		// normal entries are recorded, so a gap holds no-ops and
		// configurations, never a command another node applied.
		for j := n.lastSeenIndex + 1; j < e.Index; j++ {
			if rec, ok := c.applied[j]; ok {
				s.violate("completeness: node %d applied index %d after %d, skipping the command committed at %d (applied by node %d)",
					n.id, e.Index, n.lastSeenIndex, j, rec.node)
				return
			}
		}
		n.lastSeenIndex = max(n.lastSeenIndex, e.Index)
		rec := appliedRec{term: e.Term, hash: hashBytes(e.Data), node: n.id}
		if prev, ok := c.applied[e.Index]; ok && (prev.term != rec.term || prev.hash != rec.hash) {
			s.violate("state machine safety: node %d applied term %d at index %d, node %d applied term %d there",
				n.id, e.Term, e.Index, prev.node, prev.term)
			return
		}
		c.applied[e.Index] = rec
		c.appliedMax = max(c.appliedMax, e.Index)
		if h, ok := c.acked[e.Index]; ok && h != rec.hash {
			s.violate("acknowledged write at index %d lost: node %d applied another command there", e.Index, n.id)
			return
		}
	}
}

// leaseRead checks a read that node n served from its lease: a lease in
// term t means no node has been elected in a later term, since every node
// that acknowledged the lease's heartbeat refuses to vote until it would
// have expired (clocks in the simulation drift within the bound leases
// assume). This sees a stale lease at once, where linearizability needs a
// newer leader's acknowledged write and a read that misses it.
func (c *simChecks) leaseRead(s *sim, n *simNode) {
	if t := n.node.Status().Term; c.maxTerm > t {
		s.violate("stale lease: node %d served a lease read in term %d after node %d was elected in term %d",
			n.id, t, c.leaders[c.maxTerm], c.maxTerm)
	}
}

// leaderComplete checks that a new leader's log holds every entry applied
// (hence committed) anywhere, with the same term (Raft paper §5.4).
func (c *simChecks) leaderComplete(s *sim, n *simNode, term uint64) {
	for i := uint64(1); i <= c.appliedMax; i++ {
		rec, ok := c.applied[i]
		if !ok {
			continue
		}
		if st := n.node.Status(); i < st.FirstIndex && i <= st.SnapshotIndex {
			continue // compacted into the leader's snapshot
		}
		if t, ok := n.node.TermAt(i); !ok || t != rec.term {
			s.violate("leader completeness: node %d leads term %d without committed entry %d (term %d; it has %d, %v)",
				n.id, term, i, rec.term, t, ok)
			return
		}
	}
}

// acked records a write acknowledged to a client at index.
func (c *simChecks) ack(s *sim, index uint64, cmd []byte) {
	h := hashBytes(cmd)
	if prev, ok := c.acked[index]; ok && prev != h {
		s.violate("two different writes acknowledged at index %d", index)
	}
	if rec, ok := c.applied[index]; ok && rec.hash != h {
		s.violate("write acknowledged at index %d, but node %d applied another command there", index, rec.node)
	}
	c.acked[index] = h
}

// final checks, once the cluster converged, that every acknowledged write
// was applied, at its index, on every node.
func (c *simChecks) final(s *sim) {
	for _, n := range s.nodes {
		c.node(s, n)
	}
	for idx, h := range c.acked {
		rec, ok := c.applied[idx]
		if !ok || rec.hash != h {
			s.violate("acknowledged write at index %d was never applied", idx)
			return
		}
	}
	var last uint64
	for _, n := range s.nodes {
		st := n.node.Status()
		ents := n.kv.Applied()
		if len(ents) > 0 && ents[len(ents)-1].Index > st.Applied {
			s.violate("node %d state machine is ahead of its applied index", n.id)
		}
		// Completeness, whatever the order in which nodes applied: every
		// command applied anywhere at or below this node's last one was
		// applied here, exactly once (the Recorder flags repeats).
		if len(ents) > 0 {
			have := make(map[uint64]bool, len(ents))
			for _, e := range ents {
				have[e.Index] = true
			}
			top := ents[len(ents)-1].Index
			for idx, rec := range c.applied {
				if idx <= top && !have[idx] {
					s.violate("completeness: node %d never applied the command committed at %d (applied by node %d)", n.id, idx, rec.node)
					return
				}
			}
		}
		if !st.Removed {
			last = max(last, st.Applied) // members converged on one index
		}
	}
	for idx := range c.acked {
		if idx > last {
			s.violate("acknowledged write at index %d beyond the converged log (%d)", idx, last)
			return
		}
	}
}
