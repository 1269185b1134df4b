package raft

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raftkit/raftkit/raft/internal/engine"
	"github.com/raftkit/raftkit/raft/internal/simhook"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Manual mode: a node without goroutines whose units of work (a step of
// the main loop, one storage write, one apply pass) are run by a
// deterministic simulator. The code paths are the production ones; only
// the scheduling differs.

func init() {
	simhook.NewNode = func(ctx context.Context, cfg any, clock func() (mono, wall time.Duration)) (simhook.Node, error) {
		c, ok := cfg.(Config)
		if !ok {
			return nil, fmt.Errorf("%w: simhook wants a raft.Config, got %T", ErrBadConfig, cfg)
		}
		if clock == nil {
			return nil, fmt.Errorf("%w: a manual node needs a clock", ErrBadConfig)
		}
		n, err := newNode(ctx, c, clock)
		if err != nil {
			return nil, err
		}
		return (*manualNode)(n), nil
	}
	simhook.Hold = func(node any) func() {
		n := node.(*Node)
		c := make(chan struct{})
		n.held.Store(&c)
		return func() {
			n.held.Store(nil)
			close(c)
		}
	}
}

// fetchNow reads entries for a lagging follower synchronously (manual mode)
// and queues the result for the next loop step.
func (n *Node) fetchNow(f engine.Fetch) {
	ents, err := n.store.Entries(context.Background(), f.Lo, f.Hi, f.MaxBytes)
	if err != nil {
		ents = nil
	}
	n.post(loopEvent{fetched: &fetchResult{peer: f.Peer, lo: f.Lo, ents: ents, compacted: errors.Is(err, ErrCompacted)}})
}

type manualNode Node

func (m *manualNode) node() *Node { return (*Node)(m) }

func (m *manualNode) Bootstrap(members []raftdata.Member) error {
	n := m.node()
	if err := n.eng.Bootstrap(raftdata.Membership{Voters: members}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	n.process()
	return nil
}

func (m *manualNode) Tick() {
	n := m.node()
	n.syncClock()
	n.process()
}

func (m *manualNode) Deliver(msgs []raftdata.Message) {
	n := m.node()
	n.advanceClock() // as drain does before stepping what it took
	for _, msg := range msgs {
		if msg.Group != n.cfg.Group || msg.To != n.cfg.ID {
			continue
		}
		if err := n.eng.Step(msg); err != nil {
			n.log.Warn("dropping message", "type", msg.Type.String(), "err", err)
		}
	}
	n.process()
}

func (m *manualNode) HasWrite() bool { return m.node().persister.hasWork() }

func (m *manualNode) Write() {
	n := m.node()
	n.persister.writeQueued(nil)
	n.process() // take the persisted report
}

func (m *manualNode) HasApply() bool { return m.node().applier.hasWork() }

func (m *manualNode) Apply() {
	n := m.node()
	if _, err := n.applier.applyQueued(nil); err != nil {
		return
	}
	n.process() // take what the apply pass posted (snapshots)
}

func (m *manualNode) Propose(cmd []byte) (simhook.Op, error) {
	n := m.node()
	f, err := n.submit(context.Background(), cmd, true, nil)
	if err != nil {
		return nil, err
	}
	n.process()
	if f.index == 0 {
		<-f.done // failed while appending; the outcome is already set
		return nil, f.err
	}
	return f, nil
}

func (m *manualNode) Read(lease bool) (simhook.Op, error) {
	n := m.node()
	if n.view.Load().role != raftdata.RoleLeader {
		return nil, n.notLeader()
	}
	r := &readRequest{lease: lease && n.cfg.LeaseReads, done: make(chan struct{})}
	n.startRead(r)
	n.process()
	return r, nil
}

func (m *manualNode) TakeSnapshot() {
	m.node().applier.enqueue(applyTask{snapshot: make(chan snapshotResult, 1)})
}

func (m *manualNode) ProposeConfig(ms raftdata.Membership) error {
	n := m.node()
	_, err := n.eng.ProposeConfig(ms)
	n.process()
	return err
}

func (m *manualNode) Membership() (raftdata.Membership, bool) {
	n := m.node()
	return n.eng.Membership().Clone(), n.eng.ConfigPending()
}

func (m *manualNode) PeerMatch(id raftdata.NodeID) (uint64, bool) { return m.node().eng.PeerMatch(id) }

func (m *manualNode) Transfer(to raftdata.NodeID) error {
	n := m.node()
	err := n.eng.TransferLeadership(to)
	n.process()
	if errors.Is(err, engine.ErrNotLeader) {
		return n.notLeader()
	}
	return err
}

func (m *manualNode) Status() simhook.Status {
	n := m.node()
	return simhook.Status{
		Role: n.eng.Role(), Term: n.eng.Term(), Leader: n.eng.Leader(),
		Commit: n.eng.Committed(), Applied: n.applier.applied.Load(),
		LastIndex: n.eng.LastIndex(), Failed: n.Err(),
		FirstIndex: n.eng.Status().FirstIndex, SnapshotIndex: n.eng.SnapshotIndex(),
		Taken: n.snaps.taken.Load(), Installed: n.snaps.received.Load(),
		Receiving: n.persister.recv != nil,
		Removed:   n.eng.Removed(),
	}
}

func (m *manualNode) Describe() string {
	st := m.node().eng.Status()
	out := fmt.Sprintf("%v term %d last %d commit %d persisted %d", st.Role, st.Term, st.LastIndex, st.Committed, st.Persisted)
	for _, p := range st.Peers {
		out += fmt.Sprintf(" {peer %d match %d next %d %s %s}", p.ID, p.Match, p.Next, p.State, p.Detail)
	}
	return out
}

func (m *manualNode) TermAt(index uint64) (uint64, bool) { return m.node().eng.TermAt(index) }

// Done and Result make a read request a simhook.Op.
func (r *readRequest) Done() <-chan struct{} { return r.done }

// Result returns the read's index once confirmed and applied.
func (r *readRequest) Result() (any, error) {
	select {
	case <-r.done:
		return r.index, r.err
	default:
		return nil, errors.New("raft: read still pending")
	}
}

// Index returns the read index.
func (r *readRequest) Index() uint64 { return r.index }

// Leased reports whether the leader's lease served the read.
func (r *readRequest) Leased() bool { return r.leased }
