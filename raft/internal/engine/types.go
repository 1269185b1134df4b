package engine

import "github.com/raftkit/raftkit/raft/raftdata"

// The engine works on the public data types of package raftdata; these
// aliases keep its code short. Their documentation lives in raftdata.
type (
	NodeID        = raftdata.NodeID
	GroupID       = raftdata.GroupID
	EntryType     = raftdata.EntryType
	Entry         = raftdata.Entry
	HardState     = raftdata.HardState
	Member        = raftdata.Member
	Membership    = raftdata.Membership
	SnapshotMeta  = raftdata.SnapshotMeta
	SnapshotChunk = raftdata.SnapshotChunk
	MessageType   = raftdata.MessageType
	Message       = raftdata.Message
	Role          = raftdata.Role
)

// Entry types, message types and roles, under the engine's short names.
const (
	EntryNormal = raftdata.EntryNormal
	EntryNoop   = raftdata.EntryNoop
	EntryConfig = raftdata.EntryConfig

	MsgApp           = raftdata.MsgApp
	MsgAppResp       = raftdata.MsgAppResp
	MsgVote          = raftdata.MsgVote
	MsgVoteResp      = raftdata.MsgVoteResp
	MsgPreVote       = raftdata.MsgPreVote
	MsgPreVoteResp   = raftdata.MsgPreVoteResp
	MsgHeartbeat     = raftdata.MsgHeartbeat
	MsgHeartbeatResp = raftdata.MsgHeartbeatResp
	MsgTimeoutNow    = raftdata.MsgTimeoutNow
	MsgSnap          = raftdata.MsgSnap
	MsgSnapResp      = raftdata.MsgSnapResp

	Follower     = raftdata.RoleFollower
	PreCandidate = raftdata.RolePreCandidate
	Candidate    = raftdata.RoleCandidate
	Leader       = raftdata.RoleLeader
	NonVoter     = raftdata.RoleNonVoter
)

// ErrMalformed reports bytes that do not decode as the expected structure; it
// is raftdata.ErrCorrupt.
var ErrMalformed = raftdata.ErrCorrupt

// EncodeMembership is raftdata.EncodeMembership.
func EncodeMembership(m Membership) []byte { return raftdata.EncodeMembership(m) }

// DecodeMembership is raftdata.DecodeMembership.
func DecodeMembership(b []byte) (Membership, error) { return raftdata.DecodeMembership(b) }
