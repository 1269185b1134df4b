package rafttest

import (
	"hash/fnv"

	"github.com/raftkit/raftkit/raft"
)

// simChecks holds what the invariants are checked against, built up over
// the whole run (entries are identified across nodes and incarnations by
// index and term, which Raft makes unique).
type simChecks struct {
	leaders    map[uint64]raft.NodeID // term -> its leader
	applied    map[uint64]appliedRec  // index -> command applied there
	appliedMax uint64                 // highest index in applied
	acked      map[uint64]uint64      // index -> hash of an acknowledged write
	chain      map[[2]uint64]uint64   // (index, term) -> hash of the log up to it
}

type appliedRec struct {
	term uint64
	hash uint64
	node raft.NodeID
}

func (c *simChecks) init() {
	c.leaders = map[uint64]raft.NodeID{}
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
	if st.Role == raft.RoleLeader {
		if l, ok := c.leaders[st.Term]; ok && l != n.id {
			s.violate("two leaders in term %d: %d and %d", st.Term, l, n.id)
			return
		}
		c.leaders[st.Term] = n.id
		if n.lastRole != raft.RoleLeader || n.lastTerm != st.Term {
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
	for _, e := range n.kv.AppliedSince(n.seenApplied) {
		n.seenApplied++
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
		if ents := n.kv.Applied(); len(ents) > 0 && ents[len(ents)-1].Index > st.Applied {
			s.violate("node %d state machine is ahead of its applied index", n.id)
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
