package raft

import "context"

// Network carries Messages between the nodes of a group.
//
// Delivery is best effort: a Network may drop, duplicate, delay or reorder
// messages, and Raft stays correct. What it must never do is corrupt one, or
// block the node: Send returns promptly whatever the state of the peers.
type Network interface {
	// Start begins handing inbound messages addressed to this node to h.
	// The node calls it once, before its first Send. Messages from senders
	// the network does not know are delivered too, with their From set, so
	// that the node can refuse them.
	Start(h Handler) error

	// SetPeers tells the network every member the node may send to, with
	// its address. The node calls it on start and on every membership
	// change. A network may also learn addresses on its own (a handshake).
	SetPeers(members []Member)

	// Send queues msgs for delivery to their To nodes and returns without
	// waiting for the peers. It must not block for long on an unreachable
	// or slow peer: drop instead, and count the drop in the network's
	// metrics. Send takes ownership of msgs and of everything they point
	// to; the caller does not modify them afterwards.
	Send(msgs []Message)

	// Close stops delivery and releases every goroutine and connection.
	Close() error
}

// Handler receives inbound messages. *Node is a Handler.
type Handler interface {
	// Step hands inbound messages to the node. It may block while the
	// node's inbox is full, until ctx ends. The handler takes ownership of
	// msgs. It returns an error wrapping ErrStopped once the node stopped,
	// or ErrWrongGroup for a message of another group.
	Step(ctx context.Context, msgs []Message) error
}
