// Package simhook connects raft.Node's manual mode to the deterministic
// simulator in package rafttest without adding to raft's public API: only
// packages under raft/ can import it.
package simhook

import (
	"context"
	"time"

	"github.com/raftkit/raftkit/raft/internal/engine"
)

// Op is a pending proposal or read of a manual node.
type Op interface {
	// Done is closed once the outcome is known.
	Done() <-chan struct{}
	// Result returns the outcome once Done is closed: the state machine's
	// result of a proposal, or the index of a read.
	Result() (any, error)
	// Index is a proposal's log index, or a read's index once confirmed.
	Index() uint64
}

// Status is what the simulator observes of a node after each step.
type Status struct {
	Role      engine.Role
	Term      uint64
	Leader    engine.NodeID
	Commit    uint64
	Applied   uint64
	LastIndex uint64
	Failed    error
	// FirstIndex is the first index still in the log; SnapshotIndex the
	// latest snapshot's. Snapshots counts snapshots taken and installed
	// since this incarnation started.
	FirstIndex    uint64
	SnapshotIndex uint64
	Taken         uint64
	Installed     uint64
	// Receiving is set while a snapshot from the leader is partly written.
	Receiving bool
	// Removed is set once the node's configuration leaves it out.
	Removed bool
}

// Node is a raft.Node whose units of work run only when called. Each call
// runs the same code the node's goroutines run in production.
type Node interface {
	// Bootstrap gives a new node its initial configuration.
	Bootstrap(members []engine.Member) error
	// Tick wakes the node as its ticker would: it takes the time elapsed
	// on its clock (the clock given to NewNode) and does what is due.
	Tick()
	// Deliver hands received messages to the node.
	Deliver(msgs []engine.Message)
	// HasWrite reports whether writes are queued for storage; Write
	// performs one write of all of them (group commit), then sends the
	// messages that waited on it.
	HasWrite() bool
	Write()
	// HasApply reports whether committed entries or releasable reads are
	// waiting; Apply applies them in order.
	HasApply() bool
	Apply()
	// Propose submits a command without blocking.
	Propose(cmd []byte) (Op, error)
	// Read starts a linearizable read (ReadIndex, or a lease read when
	// lease is set) without blocking.
	Read(lease bool) (Op, error)
	// TakeSnapshot asks for a snapshot and compaction now; the work runs
	// in the following Apply and Write steps.
	TakeSnapshot()
	// ProposeConfig appends a configuration entry (the engine completes a
	// joint configuration by itself).
	ProposeConfig(m engine.Membership) error
	// Membership returns the configuration in force and whether a change
	// is pending.
	Membership() (engine.Membership, bool)
	// PeerMatch returns the leader's replicated index for a peer.
	PeerMatch(id engine.NodeID) (uint64, bool)
	// Transfer starts a leadership transfer.
	Transfer(to engine.NodeID) error
	// Status reports the node's state.
	Status() Status
	// Describe returns the engine's state, with a leader's view of each
	// peer, for failure reports.
	Describe() string
	// TermAt returns the term of the entry at index in the node's log.
	TermAt(index uint64) (uint64, bool)
}

// NewNode builds a manual node from a raft.Config. clock returns the time
// elapsed since the node was built on its monotonic clock and on its wall
// clock (the simulator's time, at the node's clock rate; the monotonic
// clock misses time the host spends suspended, and the wall clock may be
// stepped). Package raft sets it.
var NewNode func(ctx context.Context, cfg any, clock func() (mono, wall time.Duration)) (Node, error)

// Hold freezes a running raft.Node (not a manual one) as SIGSTOP would,
// for tests of the real runtime: its main loop, write and apply goroutines
// stop at their next unit of work while time goes on, its ticker drops
// ticks, and received messages and calls queue up. release lets it run
// again. Package raft sets it.
var Hold func(node any) (release func())
