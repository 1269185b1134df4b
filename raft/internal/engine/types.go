// Package engine is raftkit's pure Raft state machine: inputs (ticks, received
// messages, proposals, completed writes) produce outputs (entries and hard state
// to persist, messages to send, entries to apply) and nothing else. It starts no
// goroutines, reads no clock, draws no randomness of its own and does no I/O, so
// every scenario can be replayed step by step in a test.
//
// The public package raft re-exports the types declared here; their
// documentation lives on these declarations.
package engine

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

// Entry is one record of the replicated log.
type Entry struct {
	Index uint64
	Term  uint64
	Type  EntryType
	Data  []byte
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
	Term   uint64
	Vote   NodeID
	Commit uint64
}

// IsZero reports whether hs is the state of a node that never ran.
func (hs HardState) IsZero() bool { return hs == HardState{} }

// Member is one node of a configuration and the address at which the network
// reaches it. The address is opaque to raftkit; each Network interprets it.
type Member struct {
	ID   NodeID
	Addr string
}

// Membership is a cluster configuration. Outside a change, Voters alone
// decide elections and commitment. During joint consensus (Raft paper §6),
// OutgoingVoters holds C_old and Voters holds C_new, and every decision needs
// a majority of each. NonVoters receive the log but never vote and never
// count toward a quorum.
type Membership struct {
	Voters         []Member
	OutgoingVoters []Member
	NonVoters      []Member
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

// SnapshotMeta describes a snapshot: the last log entry it covers and the
// configuration in force at that entry.
type SnapshotMeta struct {
	Index      uint64
	Term       uint64
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
	Meta   SnapshotMeta
	Offset uint64
	Data   []byte
	Done   bool
}

// Message is what Raft nodes exchange. Fields a type does not use are zero.
//
// The small fields come first, so that they share one word (every message
// is copied several times on its way, and fewer bytes are cheaper).
type Message struct {
	Type     MessageType
	Reject   bool
	Transfer bool
	Group    GroupID
	From     NodeID
	To       NodeID
	Term     uint64
	LogTerm  uint64
	Index    uint64
	Commit   uint64
	Entries  []Entry
	Hint     uint64
	HintTerm uint64
	Context  uint64
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
