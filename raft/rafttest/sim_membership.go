package rafttest

import (
	"slices"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// simChange is a membership change the simulator drives to completion the
// way Node.ChangeMembership does: newcomers join as non-voters, catch up,
// then the leader commits C_old,new, and the engine appends C_new.
type simChange struct {
	target []raftdata.NodeID // the voters wanted
	adds   []raftdata.NodeID // nodes started for this change
}

// startChange begins growing, shrinking or replacing, when no change runs.
func (s *sim) startChange() {
	if s.change != nil {
		return
	}
	_, _, voters, ok := s.settledConfig()
	if !ok {
		return
	}
	r := s.rng
	ch := &simChange{target: slices.Clone(voters)}
	switch k := r.IntN(3); {
	case k == 0 && len(voters) < 5 && len(s.nodes) < 9: // grow
		id := s.addNode()
		ch.adds = append(ch.adds, id)
		ch.target = append(ch.target, id)
	case k == 1 && len(voters) > 3: // shrink
		i := r.IntN(len(voters))
		ch.target = slices.Delete(ch.target, i, i+1)
	default: // replace one voter by a new node
		if len(s.nodes) >= 9 {
			return
		}
		id := s.addNode()
		ch.adds = append(ch.adds, id)
		i := r.IntN(len(voters))
		ch.target[i] = id
	}
	s.change = ch
	s.res.Changes++
	s.logf("membership change: voters %v -> %v", voters, ch.target)
}

// addNode starts a new, empty node that waits to be added.
func (s *sim) addNode() raftdata.NodeID {
	id := raftdata.NodeID(len(s.nodes) + 1)
	n := &simNode{
		id:        id,
		tickEvery: simTick + int64(s.rng.IntN(int(simTick*8/100))) - simTick*4/100,
		disk:      s.diskLatency(),
	}
	n.store = &simStore{Storage: memory.New(), s: s, id: id, chain: []uint64{0}}
	s.nodes = append(s.nodes, n)
	s.net.group = append(s.net.group, 0)
	s.members = append(s.members, raftdata.Member{ID: id, Addr: "sim-new"})
	s.start(n)
	s.after(n)
	return id
}

// driveChange takes the next step of the change in progress, if it can.
func (s *sim) driveChange() {
	ch := s.change
	if ch == nil {
		return
	}
	l, m, cur, ok := s.settledConfig()
	if !ok {
		return
	}
	if sameSet(cur, ch.target) {
		s.logf("membership change done: voters %v", cur)
		s.change = nil
		return
	}
	member := func(id raftdata.NodeID) raftdata.Member { return raftdata.Member{ID: id, Addr: s.members[id-1].Addr} }
	// Newcomers first join as non-voters.
	var missing []raftdata.Member
	for _, id := range ch.target {
		if !m.Contains(id) {
			missing = append(missing, member(id))
		}
	}
	if len(missing) > 0 {
		next := m.Clone()
		next.NonVoters = append(next.NonVoters, missing...)
		s.proposeConfig(l, next)
		return
	}
	// Then wait until every future voter has caught up.
	for _, id := range ch.target {
		if m.IsVoter(id) {
			continue
		}
		match, ok := l.node.PeerMatch(id)
		if !ok || match == 0 || l.node.Status().LastIndex > match+50 {
			return
		}
	}
	joint := raftdata.Membership{OutgoingVoters: m.Voters, Removed: m.Removed}
	for _, id := range ch.target {
		joint.Voters = append(joint.Voters, member(id))
	}
	for _, nv := range m.NonVoters {
		if !slices.Contains(ch.target, nv.ID) {
			joint.NonVoters = append(joint.NonVoters, nv)
		}
	}
	for _, x := range m.Members() {
		if !slices.Contains(ch.target, x.ID) {
			joint.Removed = append(joint.Removed, x)
		}
	}
	s.proposeConfig(l, joint)
}

func (s *sim) proposeConfig(l *simNode, m raftdata.Membership) {
	if err := l.node.ProposeConfig(m); err != nil {
		s.logf("propose config on %d: %v", l.id, err)
	}
	s.after(l)
}

// settledConfig returns the leader, its configuration and voter IDs, when
// a leader exists and no configuration change is pending on it.
func (s *sim) settledConfig() (*simNode, raftdata.Membership, []raftdata.NodeID, bool) {
	l := s.leader()
	if l == nil {
		return nil, raftdata.Membership{}, nil, false
	}
	m, pending := l.node.Membership()
	if pending {
		return nil, raftdata.Membership{}, nil, false
	}
	var voters []raftdata.NodeID
	for _, v := range m.Voters {
		voters = append(voters, v.ID)
	}
	return l, m, voters, true
}

// leader returns the up node that leads with the highest term, or nil.
func (s *sim) leader() *simNode {
	var best *simNode
	var term uint64
	for _, n := range s.nodes {
		if !n.up || s.paused(n) {
			continue
		}
		if st := n.node.Status(); st.Role == raftdata.RoleLeader && st.Term >= term {
			best, term = n, st.Term
		}
	}
	return best
}

func sameSet(a, b []raftdata.NodeID) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
