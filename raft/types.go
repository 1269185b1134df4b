package raft

import "github.com/raftkit/raftkit/raft/internal/engine"

// NodeID identifies a node within a Raft group. Zero means "no node".
type NodeID = engine.NodeID

// GroupID identifies a Raft group. Every Message carries one; adapters key
// their data by group and node so that many groups can share a process, a
// connection and a database.
type GroupID = engine.GroupID

// Entry is one record of the replicated log: Index, Term, Type and Data.
type Entry = engine.Entry

// EntryType tells what an Entry carries.
type EntryType = engine.EntryType

// Entry types.
const (
	// EntryNormal carries a user command; only these reach StateMachine.Apply.
	EntryNormal = engine.EntryNormal
	// EntryNoop is the empty entry each new leader appends (Raft paper §5.4.2).
	EntryNoop = engine.EntryNoop
	// EntryConfig carries an encoded Membership (Raft paper §6).
	EntryConfig = engine.EntryConfig
)

// HardState is the per-node state that must be durable before any message
// depending on it is sent: current term, vote in that term, commit index.
type HardState = engine.HardState

// Member is a node of a configuration and the address its Network uses.
type Member = engine.Member

// Membership is a cluster configuration: voters, the outgoing voters of a
// joint configuration (C_old during joint consensus), and non-voters.
type Membership = engine.Membership

// SnapshotMeta describes a snapshot: the index and term of the last entry it
// covers and the membership in force at that index.
type SnapshotMeta = engine.SnapshotMeta

// Message is a Raft protocol message exchanged between nodes. Networks carry
// it opaquely; only its Group, From and To fields concern them.
type Message = engine.Message

// MessageType names a Raft message.
type MessageType = engine.MessageType

// SnapshotChunk is one piece of a snapshot carried by a MsgSnap message.
type SnapshotChunk = engine.SnapshotChunk

// Message types. Networks do not need to interpret them.
const (
	MsgApp           = engine.MsgApp
	MsgAppResp       = engine.MsgAppResp
	MsgVote          = engine.MsgVote
	MsgVoteResp      = engine.MsgVoteResp
	MsgPreVote       = engine.MsgPreVote
	MsgPreVoteResp   = engine.MsgPreVoteResp
	MsgHeartbeat     = engine.MsgHeartbeat
	MsgHeartbeatResp = engine.MsgHeartbeatResp
	MsgTimeoutNow    = engine.MsgTimeoutNow
	MsgSnap          = engine.MsgSnap
	MsgSnapResp      = engine.MsgSnapResp
)

// EncodeMembership returns the byte form of m stored in EntryConfig entries.
func EncodeMembership(m Membership) []byte { return engine.EncodeMembership(m) }

// DecodeMembership parses the Data of an EntryConfig entry. Malformed input
// yields an error wrapping ErrCorrupt.
func DecodeMembership(b []byte) (Membership, error) {
	m, err := engine.DecodeMembership(b)
	if err != nil {
		return Membership{}, wrapCorrupt(err)
	}
	return m, nil
}
