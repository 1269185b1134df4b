package engine

import (
	"bytes"
	"fmt"

	"github.com/raftkit/raftkit/raft/internal/quorum"
)

// A configuration takes effect on a node as soon as its entry is in the
// node's log, committed or not; if the entry is truncated away the node
// reverts to the previous configuration (Raft thesis §4.1). The engine
// therefore keeps every configuration entry after the snapshot.

func (e *Engine) addConfigEntry(ent Entry) {
	m, err := DecodeMembership(ent.Data)
	if err != nil {
		// The entry was checked when proposed; a corrupt one from the
		// network or disk must not silently change the cluster.
		panic(fmt.Sprintf("engine: undecodable config entry %d: %v", ent.Index, err))
	}
	e.configs = append(e.configs, ConfigEntry{Index: ent.Index, Membership: m})
	e.refreshConfig()
}

// dropConfigsFrom forgets configuration entries at or after index, which is
// about to be truncated.
func (e *Engine) dropConfigsFrom(index uint64) {
	k := len(e.configs)
	for k > 0 && e.configs[k-1].Index >= index {
		k--
	}
	if k != len(e.configs) {
		e.configs = e.configs[:k]
		e.refreshConfig()
	}
}

// refreshConfig puts the newest configuration in force.
func (e *Engine) refreshConfig() {
	m := e.snapConfig
	e.pendingConfIndex = 0
	if n := len(e.configs); n > 0 {
		m = e.configs[n-1].Membership
		e.pendingConfIndex = e.configs[n-1].Index
	}
	e.membership = m
	e.quorum = quorum.Joint{Incoming: memberIDs(m.Voters), Outgoing: memberIDs(m.OutgoingVoters)}
	e.configChanged = true
	if e.role == Leader {
		e.syncProgress()
	} else if e.role == Follower || e.role == NonVoter {
		e.role = Follower
		if !e.promotable() && e.membership.Contains(e.id) {
			e.role = NonVoter
		}
	}
}

func memberIDs(ms []Member) quorum.Majority {
	ids := make(quorum.Majority, len(ms))
	for i, m := range ms {
		ids[i] = uint64(m.ID)
	}
	return ids
}

// Bootstrap gives a brand-new node its first configuration: an entry at
// index 1, term 1, identical on every node that bootstraps with the same
// members. On a node that already holds state it changes nothing: it
// returns nil if the entry at index 1 is this configuration, or if a
// snapshot has compacted index 1 away (the node was initialized, and what
// with can no longer be checked); else ErrInitialized.
func (e *Engine) Bootstrap(m Membership) error {
	if len(m.Voters) == 0 {
		return fmt.Errorf("engine: bootstrap needs at least one voter")
	}
	data := EncodeMembership(m)
	// A brand-new node may already have a term (a message from a running
	// cluster reached it before Initialize): what counts is its log.
	if e.log.last > 0 || e.log.snapIndex > 0 {
		if ents, ok := e.log.cached(1, 2, 0); ok && len(ents) == 1 {
			if ents[0].Type == EntryConfig && bytes.Equal(ents[0].Data, data) {
				return nil
			}
			return ErrInitialized
		}
		if len(e.configs) > 0 && e.configs[0].Index == 1 {
			if bytes.Equal(EncodeMembership(e.configs[0].Membership), data) {
				return nil
			}
			return ErrInitialized
		}
		if e.log.snapIndex >= 1 {
			return nil
		}
		return ErrInitialized
	}
	e.term = max(e.term, 1)
	ent := Entry{Index: 1, Term: 1, Type: EntryConfig, Data: data}
	e.log.append([]Entry{ent})
	e.addConfigEntry(ent)
	e.becomeFollower(e.term, 0)
	return nil
}

// ProposeConfig proposes a new membership. Only one change may be in flight:
// the previous configuration entry must be committed first. The new
// membership must follow from the one in force (see checkNextConfig);
// anything else is refused with an error wrapping ErrBadConfigChange.
func (e *Engine) ProposeConfig(m Membership) (uint64, error) {
	if e.role != Leader {
		return 0, ErrNotLeader
	}
	if e.transferee != 0 {
		return 0, ErrTransferring
	}
	if e.ConfigPending() {
		return 0, ErrConfigPending
	}
	if err := checkNextConfig(&e.membership, &m); err != nil {
		return 0, err
	}
	ents := []Entry{{Type: EntryConfig, Data: EncodeMembership(m)}}
	e.appendLeader(ents)
	return ents[0].Index, nil
}

// checkNextConfig reports whether next may follow cur, a configuration not
// joint. Voters change only by joint consensus (Raft paper §6): next is
// either joint with cur's voters as its outgoing half (C_old,new), or keeps
// cur's voters and changes only non-voters. A direct change of voters,
// even of one server (thesis §4.1), is refused: it is safe only under
// conditions (a new leader's first commit, thesis §4.1's correction) that
// the joint path does not need. A node once removed stays removed: its ID
// is never reused (a stale process with it could rejoin), and a member may
// not appear twice.
func checkNextConfig(cur, next *Membership) error {
	if len(next.Voters) == 0 {
		return fmt.Errorf("%w: no voters", ErrBadConfigChange)
	}
	seen := map[NodeID]bool{}
	for _, set := range [][]Member{next.Voters, next.NonVoters} {
		for _, x := range set {
			if x.ID == 0 || seen[x.ID] {
				return fmt.Errorf("%w: node %d is zero or listed twice", ErrBadConfigChange, x.ID)
			}
			if contains(next.Removed, x.ID) {
				return fmt.Errorf("%w: node %d is both a member and removed", ErrBadConfigChange, x.ID)
			}
			seen[x.ID] = true
		}
	}
	for _, r := range cur.Removed {
		if !contains(next.Removed, r.ID) {
			return fmt.Errorf("%w: removed node %d would be forgotten", ErrBadConfigChange, r.ID)
		}
	}
	if next.IsJoint() {
		if !sameMemberIDs(next.OutgoingVoters, cur.Voters) {
			return fmt.Errorf("%w: the outgoing voters of a joint configuration must be the voters in force", ErrBadConfigChange)
		}
		return nil
	}
	if !sameMemberIDs(next.Voters, cur.Voters) {
		return fmt.Errorf("%w: voters change only through a joint configuration", ErrBadConfigChange)
	}
	return nil
}

// sameMemberIDs reports whether a and b hold the same IDs, each once.
func sameMemberIDs(a, b []Member) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !contains(b, x.ID) {
			return false
		}
	}
	for i := range a {
		for j := i + 1; j < len(a); j++ {
			if a[i].ID == a[j].ID {
				return false
			}
		}
	}
	return true
}
