package raftdata

import "fmt"

// NodeID identifies a node within a Raft group. Zero means "no node".
type NodeID uint64

// GroupID identifies a Raft group. Every message carries one so that many
// groups can later share a transport connection and a storage batch.
type GroupID uint64

// EntryType tells what a log entry carries.
type EntryType uint8

const (
	// EntryNormal carries a user command, handed to StateMachine.Apply.
	EntryNormal EntryType = iota
	// EntryNoop is the empty entry a new leader appends to commit entries of
	// earlier terms (Raft paper §5.4.2, thesis §6.4). It is not applied.
	EntryNoop
	// EntryConfig carries an encoded Membership. It takes effect as soon as
	// it is in a node's log, not when committed (thesis §4.1).
	EntryConfig
)

// String returns the type's name ("normal", "noop", "config").
func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "normal"
	case EntryNoop:
		return "noop"
	case EntryConfig:
		return "config"
	}
	return fmt.Sprintf("EntryType(%d)", uint8(t))
}

// Entry is one record of the replicated log. Storage keeps entries exactly as
// given (Index, Term, Type and Data byte for byte) and returns them in index
// order.
type Entry struct {
	// Index is the entry's position in the log, from 1, with no gaps.
	Index uint64
	// Term is the leader's term when the entry was created (Raft paper
	// §5.3): two logs that hold an entry with the same Index and Term are
	// identical up to it.
	Term uint64
	// Type tells what Data holds.
	Type EntryType
	// Data is the command for EntryNormal, an encoded Membership for
	// EntryConfig, empty for EntryNoop. The engine never modifies it; a
	// Storage must not keep a reference to it past Save unless it copies.
	Data []byte
}

// Size is the number of bytes the entry counts against byte limits: its
// payload plus a fixed allowance for its header.
func (e *Entry) Size() int { return len(e.Data) + entryOverhead }

// entryOverhead is what an entry costs beyond its payload in byte limits.
const entryOverhead = 24

// HardState is the state a node must persist before answering any message
// that depends on it (Raft paper figure 2): the current term, the vote cast in
// it, and the highest index known committed.
type HardState struct {
	// Term is the latest term the node has seen; it never goes back.
	Term uint64
	// Vote is the candidate the node voted for in Term, or 0.
	Vote NodeID
	// Commit is the highest log index the node knows to be committed. It
	// may be saved lazily (a node re-learns it from the leader), but it
	// never goes back.
	Commit uint64
}

// IsZero reports whether hs is the state of a node that never ran.
func (hs HardState) IsZero() bool { return hs == HardState{} }

// SnapshotMeta describes a snapshot: the last log entry it covers and the
// configuration in force at that entry.
type SnapshotMeta struct {
	// Index is the index of the last entry the snapshot covers.
	Index uint64
	// Term is the term of that entry.
	Term uint64
	// Membership is the configuration in force at Index (the latest one
	// among the entries up to Index, committed or not; thesis §4.1).
	Membership Membership
}

// MessageType names a Raft message.
type MessageType uint8

const (
	// MsgApp is AppendEntries (Raft paper figure 2): Index and LogTerm name
	// the entry preceding Entries; Commit is the leader's commit index.
	MsgApp MessageType = iota + 1
	// MsgAppResp answers MsgApp. On success Index is the last index the
	// follower now durably holds matching the leader. On rejection, Index is
	// the rejected prev index and Hint/HintTerm let the leader skip a whole
	// conflicting term at once (Raft paper §5.3, "fast back-off").
	MsgAppResp
	// MsgVote is RequestVote: Index and LogTerm describe the candidate's last
	// entry. Transfer marks a campaign started by leadership transfer.
	MsgVote
	// MsgVoteResp answers MsgVote; Reject tells whether the vote was denied.
	MsgVoteResp
	// MsgPreVote asks whether a vote would be granted at Term, without
	// anyone changing term (thesis §9.6).
	MsgPreVote
	// MsgPreVoteResp answers MsgPreVote.
	MsgPreVoteResp
	// MsgHeartbeat asserts leadership and carries Commit (capped at what the
	// follower is known to hold) and a Context sequence number echoed back.
	MsgHeartbeat
	// MsgHeartbeatResp answers MsgHeartbeat and echoes its Context.
	MsgHeartbeatResp
	// MsgTimeoutNow tells its target to campaign at once (thesis §3.10).
	MsgTimeoutNow
	// MsgSnap carries one chunk of a snapshot (InstallSnapshot) in
	// Snapshot; Context is the sender's sequence number for this send,
	// unique for the sending node's lifetime.
	MsgSnap
	// MsgSnapResp acknowledges a snapshot chunk or rejects the transfer. A
	// chunk acknowledgement carries the offset the follower expects next in
	// Context and echoes the chunk's sequence number in HintTerm. Hint=1
	// instead reports a snapshot installed up to Index.
	MsgSnapResp
)

var messageTypeNames = [...]string{
	MsgApp: "MsgApp", MsgAppResp: "MsgAppResp", MsgVote: "MsgVote",
	MsgVoteResp: "MsgVoteResp", MsgPreVote: "MsgPreVote",
	MsgPreVoteResp: "MsgPreVoteResp", MsgHeartbeat: "MsgHeartbeat",
	MsgHeartbeatResp: "MsgHeartbeatResp", MsgTimeoutNow: "MsgTimeoutNow",
	MsgSnap: "MsgSnap", MsgSnapResp: "MsgSnapResp",
}

// String returns the constant's name ("MsgApp").
func (t MessageType) String() string {
	if int(t) < len(messageTypeNames) && messageTypeNames[t] != "" {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// IsResponse reports whether t answers another message.
func (t MessageType) IsResponse() bool {
	switch t {
	case MsgAppResp, MsgVoteResp, MsgPreVoteResp, MsgHeartbeatResp, MsgSnapResp:
		return true
	}
	return false
}

// SnapshotChunk is one piece of a snapshot in flight. Offset is the byte
// position of Data within the snapshot stream; Done marks the last chunk.
// Meta travels with every chunk so that a receiver can validate any of them.
type SnapshotChunk struct {
	// Meta describes the whole snapshot.
	Meta SnapshotMeta
	// Offset is the position of Data's first byte in the snapshot stream.
	Offset uint64
	// Data is this chunk's bytes.
	Data []byte
	// Done marks the last chunk: the stream ends at Offset+len(Data).
	Done bool
}

// Message is what Raft nodes exchange. Fields a type does not use are zero.
//
// The small fields come first, so that they share one word (every message
// is copied several times on its way, and fewer bytes are cheaper).
type Message struct {
	// Type names the message; the meaning of the other fields depends on
	// it (see the MessageType constants).
	Type MessageType
	// Reject marks a negative answer (vote denied, append rejected,
	// snapshot refused).
	Reject bool
	// Transfer marks a vote requested because of a leadership transfer,
	// which voters grant even while they hear from a leader (thesis §3.10).
	Transfer bool
	// Group is the Raft group the message belongs to. Networks route by
	// Group and To; a node refuses messages for another group.
	Group GroupID
	// From is the sending node.
	From NodeID
	// To is the receiving node.
	To NodeID
	// Term is the sender's current term (Raft paper figure 2).
	Term uint64
	// LogTerm is the term of the entry at Index (MsgApp: the entry before
	// Entries; MsgVote/MsgPreVote: the candidate's last entry).
	LogTerm uint64
	// Index is a log index whose meaning depends on Type.
	Index uint64
	// Commit is the sender's commit index (MsgApp, MsgHeartbeat).
	Commit uint64
	// Entries are the log entries carried by MsgApp, in index order.
	Entries []Entry
	// Hint is a rejection hint: the index the leader may retry from
	// (MsgAppResp), or 1 for a snapshot installed (MsgSnapResp).
	Hint uint64
	// HintTerm is the term of the follower's entry at Hint (MsgAppResp),
	// or an echoed chunk sequence number (MsgSnapResp).
	HintTerm uint64
	// Context is a sequence number echoed in the answer (heartbeats,
	// snapshot chunks), so that answers are matched to their request.
	Context uint64
	// Snapshot is the snapshot chunk carried by MsgSnap, or nil.
	Snapshot *SnapshotChunk
}

// Size approximates the message's encoded size, for byte limits.
func (m *Message) Size() int {
	n := 64
	for i := range m.Entries {
		n += m.Entries[i].Size()
	}
	if m.Snapshot != nil {
		n += len(m.Snapshot.Data) + 64
	}
	return n
}
