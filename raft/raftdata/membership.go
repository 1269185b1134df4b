package raftdata

// Member is one node of a configuration and the address at which the network
// reaches it. The address is opaque to raftkit; each Network interprets it.
type Member struct {
	// ID is the node's ID, unique in the group for the cluster's lifetime.
	ID NodeID
	// Addr is where the Network reaches the node, in the Network's own
	// format ("host:port" for TCP, a subject prefix for NATS, ...).
	Addr string
}

// Membership is a cluster configuration. Outside a change, Voters alone
// decide elections and commitment. During joint consensus (Raft paper §6),
// OutgoingVoters holds C_old and Voters holds C_new, and every decision needs
// a majority of each. NonVoters receive the log but never vote and never
// count toward a quorum.
type Membership struct {
	// Voters are the voting members (C_new during a joint change).
	Voters []Member
	// OutgoingVoters are the voters of C_old during a joint change, and
	// empty otherwise.
	OutgoingVoters []Member
	// NonVoters receive the log but do not vote (learners, thesis §4.2.1).
	NonVoters []Member
	// Removed lists the nodes removed by earlier changes. They may not
	// join again under the same ID (a stale process with that ID could be
	// mistaken for the new member), and a leader keeps telling them of
	// their removal until they know.
	Removed []Member
}

// IsJoint reports whether m is a joint configuration (C_old,new).
func (m *Membership) IsJoint() bool { return len(m.OutgoingVoters) > 0 }

// IsEmpty reports whether m has no members at all.
func (m *Membership) IsEmpty() bool {
	return len(m.Voters) == 0 && len(m.OutgoingVoters) == 0 && len(m.NonVoters) == 0
}

// Lookup returns the member with the given ID, searching every set.
func (m *Membership) Lookup(id NodeID) (Member, bool) {
	for _, set := range [][]Member{m.Voters, m.OutgoingVoters, m.NonVoters} {
		for _, x := range set {
			if x.ID == id {
				return x, true
			}
		}
	}
	return Member{}, false
}

// IsVoter reports whether id votes in either half of the configuration.
func (m *Membership) IsVoter(id NodeID) bool {
	return contains(m.Voters, id) || contains(m.OutgoingVoters, id)
}

// Contains reports whether id is a member in any role.
func (m *Membership) Contains(id NodeID) bool {
	_, ok := m.Lookup(id)
	return ok
}

// IDs returns every member's ID once, in ascending order.
func (m *Membership) IDs() []NodeID {
	var ids []NodeID
	for _, set := range [][]Member{m.Voters, m.OutgoingVoters, m.NonVoters} {
		for _, x := range set {
			if !containsID(ids, x.ID) {
				ids = append(ids, x.ID)
			}
		}
	}
	sortIDs(ids)
	return ids
}

// Members returns every member once (voters, then outgoing voters not also
// in Voters, then non-voters).
func (m *Membership) Members() []Member {
	var out []Member
	for _, set := range [][]Member{m.Voters, m.OutgoingVoters, m.NonVoters} {
		for _, x := range set {
			if !contains(out, x.ID) {
				out = append(out, x)
			}
		}
	}
	return out
}

// Equal reports whether m and o list the same members in the same order.
func (m *Membership) Equal(o *Membership) bool {
	eq := func(a, b []Member) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	return eq(m.Voters, o.Voters) && eq(m.OutgoingVoters, o.OutgoingVoters) && eq(m.NonVoters, o.NonVoters) &&
		eq(m.Removed, o.Removed)
}

// WasRemoved reports whether id was removed by an earlier change.
func (m *Membership) WasRemoved(id NodeID) bool { return contains(m.Removed, id) }

// Clone returns a deep copy of m.
func (m Membership) Clone() Membership {
	return Membership{
		Voters:         append([]Member(nil), m.Voters...),
		OutgoingVoters: append([]Member(nil), m.OutgoingVoters...),
		NonVoters:      append([]Member(nil), m.NonVoters...),
		Removed:        append([]Member(nil), m.Removed...),
	}
}

func contains(set []Member, id NodeID) bool {
	for _, x := range set {
		if x.ID == id {
			return true
		}
	}
	return false
}

func containsID(ids []NodeID, id NodeID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func sortIDs(ids []NodeID) {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}
