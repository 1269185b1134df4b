package raft

import (
	"context"

	"github.com/raftkit/raftkit/raft/raftdata"
)

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
	// change; a member whose address changed is reached at the new one.
	// A network must also reach a node that reached it first, although
	// SetPeers did not name it (by learning its address in a handshake,
	// for example): a joining node answers the leader before it knows
	// the membership.
	SetPeers(members []raftdata.Member)

	// Send queues msgs for delivery to their To nodes and returns without
	// waiting for the peers. It must not block for long on an unreachable
	// or slow peer: drop instead, and count the drop in the network's
	// metrics. Send takes ownership of msgs and of everything they point
	// to; the caller does not modify them afterwards.
	Send(msgs []raftdata.Message)

	// Close stops delivery and releases every goroutine and connection.
	Close() error
}

// Handler receives inbound messages. *Node is a Handler.
type Handler interface {
	// Step hands inbound messages to the node. It may block while the
	// node's inbox is full, until ctx ends. The handler takes ownership of
	// msgs. It returns an error wrapping ErrStopped once the node stopped,
	// or ErrWrongGroup for a message of another group.
	Step(ctx context.Context, msgs []raftdata.Message) error
}

// NetworkStats counts one node's network traffic since its Network was
// created. Fields a network cannot observe stay zero.
type NetworkStats struct {
	// Sent counts messages handed to the transport toward their peer (for
	// a stream transport: written to the peer's connection).
	Sent uint64
	// BytesSent counts the encoded bytes written, framing included.
	BytesSent uint64
	// Received counts inbound messages handed to the Handler.
	Received uint64
	// BytesReceived counts the encoded bytes read, framing included.
	BytesReceived uint64
	// Dropped counts messages given to Send that were not sent: no route
	// or address for the peer, peer unreachable, queue full, message over
	// the size limit, network closed.
	Dropped uint64
	// Rejected counts inbound data refused: corrupt or truncated frames,
	// frames over the size limit, another cluster's ID, failed handshakes.
	Rejected uint64
	// Reconnects counts connections to a peer established after an
	// earlier one to the same peer was lost.
	Reconnects uint64
}

// MeasuredNetwork is a Network that counts its traffic. Every network
// adapter of raftkit implements it, and Node.Metrics reports the counts of
// a Network that does.
type MeasuredNetwork interface {
	Network
	// Stats returns the counters; safe to call concurrently with traffic.
	Stats() NetworkStats
}

// BoundedNetwork is a Network that cannot carry a message above a size,
// such as a broker's payload limit (NATS's max_payload). NewNode sizes the
// node's messages to fit: MaxEntryBytes, MaxAppendBytes and
// SnapshotChunkBytes left at their defaults are lowered so that an append
// and a snapshot chunk fit, and values set explicitly that would not fit
// make NewNode fail with ErrBadConfig. A message that still does not fit is
// the network's to refuse: it drops it, logs it and counts it in Dropped.
type BoundedNetwork interface {
	Network
	// MaxMessageBytes is the largest encoded Message the network carries.
	MaxMessageBytes() int
}
