package raft

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raft/raftdata"
)

var (
	// ErrNotLeader is returned by calls only the leader can serve. The error
	// is a *NotLeaderError that names the leader when it is known.
	ErrNotLeader = errors.New("raft: not the leader")
	// ErrStopped is returned by calls on a node that has stopped. A
	// proposal already appended when the node stopped also ends with it:
	// its outcome is then unknown (it may commit through another leader),
	// as with ErrOutcomeUnknown.
	ErrStopped = errors.New("raft: node stopped")
	// ErrProposalTooLarge is returned for a command over Config.MaxEntryBytes.
	ErrProposalTooLarge = errors.New("raft: proposal too large")
	// ErrProposalDropped is returned when another leader's entry was
	// committed at the proposal's index: the command was not applied and
	// never will be, so it may be retried.
	ErrProposalDropped = errors.New("raft: proposal dropped")
	// ErrLeadershipLost is returned for a read whose leader stepped down
	// before it could confirm leadership.
	ErrLeadershipLost = errors.New("raft: leadership lost")
	// ErrTransferInProgress is returned for proposals made while the leader
	// hands leadership over, and for a second concurrent transfer.
	ErrTransferInProgress = errors.New("raft: leadership transfer in progress")
	// ErrTransferFailed is returned when a leadership transfer did not
	// complete within an election timeout.
	ErrTransferFailed = errors.New("raft: leadership transfer failed")
	// ErrUnknownPeer is returned for a node ID that is not a member.
	ErrUnknownPeer = errors.New("raft: unknown peer")
	// ErrWrongGroup is returned for a message addressed to another group or
	// node.
	ErrWrongGroup = errors.New("raft: message for another group or node")
	// ErrRemoved is returned by a node that is no longer a member.
	ErrRemoved = errors.New("raft: node removed from the cluster")
	// ErrNoCluster is returned by a node with no configuration yet.
	ErrNoCluster = errors.New("raft: node has no cluster configuration")
	// ErrBadConfig is returned for an invalid Config.
	ErrBadConfig = errors.New("raft: invalid config")

	// ErrCompacted is returned by Storage for indexes compacted away.
	ErrCompacted = errors.New("raft: index compacted")
	// ErrUnavailable is returned by Storage for indexes not yet written.
	ErrUnavailable = errors.New("raft: index unavailable")
	// ErrNoSnapshot is returned by Storage.OpenSnapshot when there is none.
	ErrNoSnapshot = errors.New("raft: no snapshot")
	// ErrPermanent marks a storage error that retrying cannot cure: a disk
	// that failed a write and refuses further ones, a store fenced off by
	// another owner, a store closed. A Storage wraps it
	// (fmt.Errorf("...: %w", raft.ErrPermanent)); the node then stops at
	// once instead of retrying (see Storage, "Failures"). Errors wrapping
	// ErrCorrupt are treated the same way.
	ErrPermanent = errors.New("raft: permanent storage failure")
	// ErrStorageStalled is wrapped by the error that stops a node whose
	// writes kept failing, or went unanswered, for Config.StorageTimeout.
	ErrStorageStalled = errors.New("raft: storage stalled")
	// ErrClosed is returned by a Storage (every raftkit adapter's) used
	// after its Close, and by its snapshot writers and readers. It wraps
	// ErrPermanent: a node whose store was closed under it stops.
	ErrClosed = fmt.Errorf("raft: storage closed: %w", ErrPermanent)
	// ErrInvalidArgument is returned by a Storage for a malformed request:
	// a Save batch whose indexes are not contiguous and ascending or whose
	// terms decrease, a Save that would leave a gap, an Entries call with
	// lo > hi, a snapshot at index 0, or bad options. It wraps ErrPermanent:
	// the node does not retry a request the store refuses as malformed.
	ErrInvalidArgument = fmt.Errorf("raft: invalid argument: %w", ErrPermanent)
	// ErrStaleSnapshot is returned by SnapshotWriter.Commit when the
	// snapshot has a lower index than the latest committed one. The store
	// is left unchanged.
	ErrStaleSnapshot = errors.New("raft: snapshot older than the latest one")
	// ErrSnapshotFinished is returned by SnapshotWriter.Write and Commit
	// on a writer that was already committed or aborted.
	ErrSnapshotFinished = errors.New("raft: snapshot writer already finished")
	// ErrCorrupt is returned for stored or received bytes that do not
	// decode. It is the same value as raftdata.ErrCorrupt, which Storage and
	// Network implementations wrap.
	ErrCorrupt = raftdata.ErrCorrupt
)

// NotLeaderError is the error returned to calls made on a node that is not
// the leader. errors.Is(err, ErrNotLeader) reports true for it.
type NotLeaderError struct {
	// LeaderID is the leader this node knows of, or 0.
	LeaderID raftdata.NodeID
	// LeaderAddr is that leader's address, or "".
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == 0 {
		return "raft: not the leader (leader unknown)"
	}
	return fmt.Sprintf("raft: not the leader (leader is %d at %q)", e.LeaderID, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

func wrapCorrupt(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}
