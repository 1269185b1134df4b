package raft

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raftkit/raftkit/raft/internal/engine"
	"github.com/raftkit/raftkit/raft/raftdata"
)

var (
	// ErrConfigChangeInProgress is returned for a membership change made
	// while another one is not finished.
	ErrConfigChangeInProgress = errors.New("raft: a membership change is already in progress")
	// ErrReusedID is returned for adding a node under the ID of a node
	// removed earlier: a stale process with that ID could be mistaken for
	// the new member. Give the new node a new ID.
	ErrReusedID = errors.New("raft: node ID belonged to a removed node")
)

// AddNonVoter adds node id, reachable at addr, as a non-voter: it receives
// the log but does not vote or count toward any quorum. It returns once the
// node has caught up to within Config.CatchUpEntries of the leader, or when
// ctx ends (the node stays a non-voter and keeps catching up). Only the
// leader accepts it.
func (n *Node) AddNonVoter(ctx context.Context, id raftdata.NodeID, addr string) error {
	if !n.changing.CompareAndSwap(false, true) {
		return ErrConfigChangeInProgress
	}
	defer n.changing.Store(false)
	m, term, err := n.changeableMembership(ctx)
	if err != nil {
		return err
	}
	switch {
	case id == 0:
		return fmt.Errorf("%w: node ID 0", ErrBadConfig)
	case m.WasRemoved(id):
		return fmt.Errorf("%w: %d", ErrReusedID, id)
	case m.IsVoter(id):
		return fmt.Errorf("%w: %d is already a voter", ErrBadConfig, id)
	}
	if !m.Contains(id) {
		next := m.Clone()
		next.NonVoters = append(next.NonVoters, raftdata.Member{ID: id, Addr: addr})
		if err := n.proposeConfig(ctx, m, term, next); err != nil {
			return err
		}
	}
	return n.waitCaughtUp(ctx, id)
}

// ChangeMembership moves the cluster to exactly these voters and
// non-voters, by joint consensus (Raft paper §6): nodes new to the cluster
// first join as non-voters and catch up; then the leader commits C_old,new,
// which needs separate majorities of the old and the new voters, and then
// C_new. It returns once C_new is committed. Nodes left out are removed; a
// removed leader keeps leading until C_new commits, then hands over. Only
// the leader accepts it, one change at a time (ErrConfigChangeInProgress).
//
// If leadership moves during the change, it returns ErrNotLeader or
// ErrLeadershipLost; a committed C_old,new is still completed by the next
// leader. In one rare case a node being removed leads for a while: when the
// leader that appended C_new dies before C_new reaches any other node, a
// node of C_old can win an election under C_old,new; it then appends and
// commits C_new itself and steps down.
func (n *Node) ChangeMembership(ctx context.Context, voters, nonVoters []raftdata.Member) error {
	if !n.changing.CompareAndSwap(false, true) {
		return ErrConfigChangeInProgress
	}
	defer n.changing.Store(false)
	return n.changeMembership(ctx, voters, nonVoters)
}

func (n *Node) changeMembership(ctx context.Context, voters, nonVoters []raftdata.Member) error {
	if len(voters) == 0 {
		return fmt.Errorf("%w: a configuration needs at least one voter", ErrBadConfig)
	}
	seen := map[raftdata.NodeID]bool{}
	for _, x := range append(append([]raftdata.Member(nil), voters...), nonVoters...) {
		if x.ID == 0 || seen[x.ID] {
			return fmt.Errorf("%w: node ID %d is zero or listed twice", ErrBadConfig, x.ID)
		}
		seen[x.ID] = true
	}
	m, term, err := n.changeableMembership(ctx)
	if err != nil {
		return err
	}
	for id := range seen {
		if m.WasRemoved(id) {
			return fmt.Errorf("%w: %d", ErrReusedID, id)
		}
	}
	// Stage 1: newcomers join as non-voters and catch up, and so must
	// non-voters about to become voters.
	var newcomers []raftdata.Member
	for _, x := range append(append([]raftdata.Member(nil), voters...), nonVoters...) {
		if !m.Contains(x.ID) {
			newcomers = append(newcomers, x)
		}
	}
	if len(newcomers) > 0 {
		next := m.Clone()
		next.NonVoters = append(next.NonVoters, newcomers...)
		if err := n.proposeConfig(ctx, m, term, next); err != nil {
			return err
		}
		m = next
	}
	for _, x := range voters {
		if !m.IsVoter(x.ID) {
			if err := n.waitCaughtUp(ctx, x.ID); err != nil {
				return err
			}
		}
	}
	// Stage 2: the joint configuration (or a plain one when the voters
	// do not change), then C_new, which the engine appends by itself.
	target := raftdata.Membership{Voters: voters, NonVoters: nonVoters, Removed: m.Removed}
	for _, x := range m.Members() {
		if !seen[x.ID] {
			target.Removed = append(target.Removed, x)
		}
	}
	if !sameIDs(voters, m.Voters) {
		target.OutgoingVoters = m.Voters
	}
	return n.proposeConfig(ctx, m, term, target)
}

// RemoveServer removes node id from the cluster, whatever its role.
func (n *Node) RemoveServer(ctx context.Context, id raftdata.NodeID) error {
	if !n.changing.CompareAndSwap(false, true) {
		return ErrConfigChangeInProgress
	}
	defer n.changing.Store(false)
	m, _, err := n.changeableMembership(ctx)
	if err != nil {
		return err
	}
	if !m.Contains(id) {
		return fmt.Errorf("%w: %d", ErrUnknownPeer, id)
	}
	return n.changeMembership(ctx, without(m.Voters, id), without(m.NonVoters, id))
}

// changeableMembership returns the configuration if this node leads and no
// change is in progress. A configuration entry that is merely committing (a
// new leader's first one, or the C_new a completed change appended) is
// waited for: it ends by itself, and failing the caller for it would be a
// spurious error. A joint configuration is a change in progress. It also
// returns the term, which proposeConfig checks with the membership.
func (n *Node) changeableMembership(ctx context.Context) (raftdata.Membership, uint64, error) {
	var m raftdata.Membership
	var term uint64
	err := n.poll(ctx, func() (bool, error) {
		switch {
		case n.eng.Role() != raftdata.RoleLeader:
			return false, n.notLeaderLocked()
		case n.eng.PendingJoint():
			return false, ErrConfigChangeInProgress
		case n.eng.ConfigPending():
			return false, nil
		}
		m, term = n.eng.Membership().Clone(), n.eng.Term()
		return true, nil
	})
	return m, term, err
}

// proposeConfig appends configuration m, built from base (the membership
// in force in term), and waits until it, and the C_new that follows a joint
// one, are committed. A change is prepared over many heartbeats (newcomers
// catch up first), so on the loop it checks that this node still leads in
// the same term with base in force: a target built from a configuration
// that has since changed would undo that change, and the engine accepts
// only configurations that follow from the one in force.
func (n *Node) proposeConfig(ctx context.Context, base raftdata.Membership, term uint64, m raftdata.Membership) error {
	var err error
	if cerr := n.control(ctx, func() {
		switch cur := n.eng.Membership(); {
		case n.eng.Role() != raftdata.RoleLeader:
			err = engine.ErrNotLeader
		case n.eng.Term() != term:
			err = fmt.Errorf("%w: this node was re-elected (term %d, then %d) while the change was prepared; retry it", ErrLeadershipLost, term, n.eng.Term())
		case !cur.Equal(&base):
			err = fmt.Errorf("%w: the configuration changed while the change was prepared; retry it", ErrConfigChangeInProgress)
		default:
			_, err = n.eng.ProposeConfig(m)
		}
	}); cerr != nil {
		return cerr
	}
	switch {
	case errors.Is(err, engine.ErrNotLeader):
		return n.notLeader()
	case errors.Is(err, engine.ErrConfigPending):
		return ErrConfigChangeInProgress
	case errors.Is(err, engine.ErrTransferring):
		return ErrTransferInProgress
	case errors.Is(err, engine.ErrBadConfigChange):
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	case err != nil:
		return err
	}
	return n.poll(ctx, func() (bool, error) {
		if !n.eng.ConfigPending() {
			return true, nil // committed (a removed leader then steps down)
		}
		if n.eng.Role() != raftdata.RoleLeader {
			return false, fmt.Errorf("%w: the change may still complete under the next leader", ErrLeadershipLost)
		}
		return false, nil
	})
}

// waitCaughtUp waits until the leader has replicated to id within
// CatchUpEntries of its last index.
func (n *Node) waitCaughtUp(ctx context.Context, id raftdata.NodeID) error {
	return n.poll(ctx, func() (bool, error) {
		if n.eng.Role() != raftdata.RoleLeader {
			return false, n.notLeaderLocked()
		}
		// A node that never acknowledged anything is not caught up, however
		// short the log.
		match, ok := n.eng.PeerMatch(id)
		return ok && match > 0 && n.eng.LastIndex() <= match+uint64(n.cfg.CatchUpEntries), nil
	})
}

// poll evaluates cond on the main loop every heartbeat until it holds,
// fails, or ctx ends.
func (n *Node) poll(ctx context.Context, cond func() (bool, error)) error {
	for {
		var done bool
		var err error
		if cerr := n.control(ctx, func() { done, err = cond() }); cerr != nil {
			return cerr
		}
		if err != nil || done {
			return err
		}
		select {
		case <-time.After(n.cfg.HeartbeatInterval):
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stopping:
			return ErrStopped
		}
	}
}

// notLeaderLocked builds ErrNotLeader on the main loop.
func (n *Node) notLeaderLocked() error {
	return &NotLeaderError{LeaderID: n.eng.Leader(), LeaderAddr: n.lastView.leaderAddr}
}

func sameIDs(a, b []raftdata.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x.ID == y.ID
		}
		if !found {
			return false
		}
	}
	return true
}

func without(ms []raftdata.Member, id raftdata.NodeID) []raftdata.Member {
	var out []raftdata.Member
	for _, x := range ms {
		if x.ID != id {
			out = append(out, x)
		}
	}
	return out
}
