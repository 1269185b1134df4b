package raftdata

import "fmt"

// Role is a node's part in the protocol, as reported by Node.Role and in
// metrics.
type Role uint8

const (
	// RoleFollower accepts entries from the leader and votes.
	RoleFollower Role = iota
	// RolePreCandidate is polling for a pre-vote before campaigning
	// (thesis §9.6), so that a node that was partitioned away does not
	// disrupt a working leader.
	RolePreCandidate
	// RoleCandidate is campaigning for votes (Raft paper §5.2).
	RoleCandidate
	// RoleLeader accepts proposals and replicates the log.
	RoleLeader
	// RoleNonVoter receives the log but never votes or campaigns.
	RoleNonVoter
)

// String returns the role's name in lower case ("leader", "non-voter").
func (r Role) String() string {
	switch r {
	case RoleFollower:
		return "follower"
	case RolePreCandidate:
		return "pre-candidate"
	case RoleCandidate:
		return "candidate"
	case RoleLeader:
		return "leader"
	case RoleNonVoter:
		return "non-voter"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}
