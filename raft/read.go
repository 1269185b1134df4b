package raft

import (
	"context"
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raft/internal/engine"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// readRequest is a linearizable read waiting for leadership confirmation
// and then for the state machine to catch up.
type readRequest struct {
	lease bool
	// leased is set when the lease served the read (no quorum round).
	leased bool
	index  uint64
	err    error
	done   chan struct{}
}

func (r *readRequest) finish(index uint64, err error) {
	r.index, r.err = index, err
	close(r.done)
}

// ReadIndex makes a linearizable read possible: it confirms with a quorum
// that this node is still the leader (Raft thesis §6.4), then waits until
// the state machine has applied every entry committed when the read began.
// When it returns nil, reading the state machine directly observes every
// write acknowledged before ReadIndex was called. It returns the index the
// read is served at. Only the leader serves it; a follower returns a
// *NotLeaderError naming the leader: send the read there (examples/kv
// redirects it), or serve a stale read from local state.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	return n.read(ctx, false)
}

// LeaseRead is ReadIndex without the quorum round while the leader's lease
// holds (Raft thesis §6.4.1), which saves a round trip per read. It
// requires Config.LeaseReads and falls back to ReadIndex when the lease is
// not known to hold: just elected, a leadership transfer under way, or a
// transfer started in this term (even if abandoned). A lease lasts
// ElectionTimeout × (1 − MaxClockDrift) minus one heartbeat from when the
// acknowledged heartbeat was sent, measured on the monotonic clock when the
// read is answered. Clock assumption: no node's clock runs slower than
// another's by more than MaxClockDrift (a bound on rate, not on offset).
// Process pauses (GC, VM stalls, SIGSTOP) need no bound: the paused time
// counts, and a leader that resumes after its lease ran out falls back to
// a quorum round.
func (n *Node) LeaseRead(ctx context.Context) (uint64, error) {
	return n.read(ctx, n.cfg.LeaseReads)
}

func (n *Node) read(ctx context.Context, lease bool) (uint64, error) {
	if n.view.Load().role != raftdata.RoleLeader {
		return 0, n.notLeader()
	}
	r := &readRequest{lease: lease, done: make(chan struct{})}
	if !n.post(loopEvent{read: r}) {
		return 0, ErrStopped
	}
	select {
	case <-r.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("raft: waiting for read: %w", ctx.Err())
	}
}

// startRead runs on the loop.
func (n *Node) startRead(r *readRequest) {
	if r.lease {
		// The lease is judged now, on the clock as it reads now: a read
		// taken from the inbox after a pause finds the lease expired.
		n.syncClock()
		if idx, ok := n.eng.LeaseRead(); ok {
			r.index, r.leased = idx, true
			n.applier.waitRead(r)
			return
		}
	}
	n.readSeq++
	if err := n.eng.ReadIndex(n.readSeq); err != nil {
		if errors.Is(err, engine.ErrNotLeader) {
			r.finish(0, &NotLeaderError{LeaderID: n.eng.Leader(), LeaderAddr: n.lastView.leaderAddr})
			return
		}
		r.finish(0, err)
		return
	}
	n.reads[n.readSeq] = r
}

// transferWaiter is a TransferLeadership call waiting for the outcome.
type transferWaiter struct {
	done chan error
}

func (t *transferWaiter) finish(err error) {
	t.done <- err
}

// TransferLeadership hands leadership to the voter to, or to the most
// up-to-date voter when to is 0 (Raft thesis §3.10). The leader stops
// accepting proposals, brings the target up to date and tells it to
// campaign at once. It returns nil once another node leads, an error
// wrapping ErrTransferFailed if that did not happen within an election
// timeout, or ErrUnknownPeer for a target that is not a voter.
func (n *Node) TransferLeadership(ctx context.Context, to raftdata.NodeID) error {
	w := &transferWaiter{done: make(chan error, 1)}
	var startErr error
	if err := n.control(ctx, func() {
		if n.transfer != nil {
			startErr = ErrTransferInProgress
			return
		}
		if err := n.eng.TransferLeadership(to); err != nil {
			switch {
			case errors.Is(err, engine.ErrNotLeader):
				startErr = &NotLeaderError{LeaderID: n.eng.Leader(), LeaderAddr: n.lastView.leaderAddr}
			case errors.Is(err, engine.ErrUnknownPeer):
				startErr = fmt.Errorf("%w: %d is not a voter", ErrUnknownPeer, to)
			case errors.Is(err, engine.ErrTransferring):
				startErr = ErrTransferInProgress
			default:
				startErr = err
			}
			return
		}
		if to == n.cfg.ID {
			w.finish(nil)
			return
		}
		n.transfer = w
	}); err != nil {
		return err
	}
	if startErr != nil {
		return startErr
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("raft: waiting for leadership transfer: %w", ctx.Err())
	}
}
