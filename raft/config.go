package raft

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/raftkit/raftkit/raft/raftdata"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Node. ID, Storage, Network and StateMachine are
// required; every other field has a default suited to a production cluster
// on one network.
type Config struct {
	// ID is this node's ID within the group; it must not be 0.
	ID raftdata.NodeID
	// Group is the Raft group this node belongs to. Messages of other
	// groups are refused.
	Group raftdata.GroupID

	// Storage keeps the log, hard state and snapshots.
	Storage Storage
	// Network carries messages to the other nodes.
	Network Network
	// StateMachine is the replicated application.
	StateMachine StateMachine

	// HeartbeatInterval is how often a leader asserts itself, and the
	// granularity of every timer. Default 100ms.
	HeartbeatInterval time.Duration
	// ElectionTimeout is the minimum time without hearing from a leader
	// before a follower campaigns; each wait is drawn at random from
	// [ElectionTimeout, 2*ElectionTimeout). It must be at least twice
	// HeartbeatInterval. Default 1s.
	ElectionTimeout time.Duration

	// LeaseReads lets LeaseRead serve reads from a leader's lease without a
	// quorum round. A lease is safe only if no node's clock runs slower
	// than another's by more than MaxClockDrift (a fraction of elapsed
	// time); see LeaseRead.
	LeaseReads bool
	// MaxClockDrift is the bound on relative clock rate error that leases
	// assume. Default 0.1 (10%).
	MaxClockDrift float64

	// MaxEntryBytes is the largest command Propose accepts; larger ones
	// fail with ErrProposalTooLarge. Default 1 MiB.
	MaxEntryBytes int
	// MaxAppendBytes caps the entries carried by one append message (one
	// entry is always sent, however large). Default 1 MiB.
	MaxAppendBytes int
	// MaxInflightAppends and MaxInflightBytes bound the unacknowledged
	// append messages per follower (the replication pipeline's window).
	// Defaults 256 and 32 MiB.
	MaxInflightAppends int
	MaxInflightBytes   int
	// EntryCacheBytes bounds the in-memory cache of recent entries from
	// which replication and apply read, beyond entries not yet durable.
	// Default 64 MiB.
	EntryCacheBytes int
	// MaxProposalBatch caps the commands appended as one batch (one write,
	// one fsync). Default 4096.
	MaxProposalBatch int

	// SnapshotEntries is how many entries past the last snapshot the
	// applied index may run before a snapshot is taken automatically and
	// the log compacted. Default 16384; negative disables automatic
	// snapshots (Node.Snapshot still works).
	SnapshotEntries int
	// SnapshotTrailingEntries is how many entries before a snapshot's index
	// stay in the log after compaction, so that followers a little behind
	// catch up from the log rather than by snapshot. Default 4096; set
	// NoTrailingEntries to keep none.
	SnapshotTrailingEntries int
	// SnapshotChunkBytes is the size of the chunks a snapshot is sent to a
	// follower in. Default and maximum 512 KiB, so that a chunk fits within
	// any transport's message limit.
	SnapshotChunkBytes int

	// CatchUpEntries is how close (in entries) to the leader's log a new
	// member must be before AddNonVoter returns and before
	// ChangeMembership makes it a voter. Default 1024.
	CatchUpEntries int

	// StorageTimeout bounds how long a write to Storage may keep failing
	// with transient errors, or stay unanswered, before the node stops with
	// an error wrapping ErrStorageStalled (see Storage, "Failures"). Zero
	// means 30 election timeouts (30 s with the default timeouts), enough
	// to ride out a database restart; a negative value retries forever.
	// A leader hands leadership over after one election timeout of failed
	// or stalled writes, whatever this bound.
	StorageTimeout time.Duration
	// MetricsInterval is how often metrics are published when nothing
	// changes. Default 1s.
	MetricsInterval time.Duration
	// Logger receives structured logs. Nil means silent.
	Logger *slog.Logger
	// TracerProvider, when set, receives OpenTelemetry spans: raft.Propose
	// (with events raft.appended, raft.committed, raft.applied) and its
	// child raft.replicate, raft.storage.Save, raft.apply,
	// raft.network.Send, raft.snapshot.write and raft.snapshot.restore (pass
	// otel.GetTracerProvider() to use the global one). Nil records none,
	// at no cost.
	TracerProvider trace.TracerProvider
	// RandSeed seeds election timeouts. Zero picks a seed from the clock.
	RandSeed uint64
}

// NoTrailingEntries, as Config.SnapshotTrailingEntries, compacts the log
// right up to each snapshot.
const NoTrailingEntries = -1

// MaxSnapshotChunkBytes is the largest snapshot chunk a node sends.
const MaxSnapshotChunkBytes = 512 << 10

func (c *Config) withDefaults() (Config, error) {
	out := *c
	if out.ID == 0 {
		return out, fmt.Errorf("%w: ID must not be 0", ErrBadConfig)
	}
	if out.Storage == nil || out.Network == nil || out.StateMachine == nil {
		return out, fmt.Errorf("%w: Storage, Network and StateMachine are required", ErrBadConfig)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if out.HeartbeatInterval <= 0 {
		out.HeartbeatInterval = 100 * time.Millisecond
	}
	if out.ElectionTimeout <= 0 {
		out.ElectionTimeout = 10 * out.HeartbeatInterval
	}
	if out.ElectionTimeout < 2*out.HeartbeatInterval {
		return out, fmt.Errorf("%w: ElectionTimeout %v must be at least twice HeartbeatInterval %v", ErrBadConfig, out.ElectionTimeout, out.HeartbeatInterval)
	}
	if out.MaxClockDrift <= 0 {
		out.MaxClockDrift = 0.1
	}
	if out.MaxClockDrift >= 0.5 {
		return out, fmt.Errorf("%w: MaxClockDrift %v must be below 0.5", ErrBadConfig, out.MaxClockDrift)
	}
	def(&out.MaxEntryBytes, 1<<20)
	def(&out.MaxAppendBytes, 1<<20)
	def(&out.MaxInflightAppends, 256)
	def(&out.MaxInflightBytes, 32<<20)
	def(&out.EntryCacheBytes, 64<<20)
	def(&out.MaxProposalBatch, 4096)
	def(&out.CatchUpEntries, 1024)
	if out.SnapshotEntries == 0 {
		out.SnapshotEntries = 16384
	}
	def(&out.SnapshotChunkBytes, MaxSnapshotChunkBytes)
	if out.SnapshotChunkBytes > MaxSnapshotChunkBytes {
		return out, fmt.Errorf("%w: SnapshotChunkBytes %d above %d", ErrBadConfig, out.SnapshotChunkBytes, MaxSnapshotChunkBytes)
	}
	switch {
	case out.SnapshotTrailingEntries == 0:
		out.SnapshotTrailingEntries = 4096
	case out.SnapshotTrailingEntries < 0:
		out.SnapshotTrailingEntries = 0
	}
	if out.StorageTimeout == 0 {
		out.StorageTimeout = 30 * out.ElectionTimeout
	}
	if out.MetricsInterval <= 0 {
		out.MetricsInterval = time.Second
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.RandSeed == 0 {
		out.RandSeed = uint64(time.Now().UnixNano())
	}
	return out, nil
}

// ticks returns the election and lease timeouts in heartbeat ticks.
func (c *Config) ticks() (election, lease int) {
	election = int(c.ElectionTimeout / c.HeartbeatInterval)
	if c.LeaseReads {
		// The lease runs from when the acknowledged heartbeat was sent and
		// must end before any follower's election timer could, even if
		// the leader's clock is slow: shorten it by the drift bound and by
		// one tick of timer granularity.
		lease = int(float64(election)*(1-c.MaxClockDrift)) - 1
		if lease < 1 {
			lease = 0
		}
	}
	return election, lease
}

// Size of an encoded message relative to what byte limits count: the wire
// codec spends at most 26 bytes of framing on an entry that Entry.Size counts
// as 24, and at most a few KiB on a message's header and a snapshot's
// membership.
const (
	wireEntryRatioNum, wireEntryRatioDen = 26, 24
	wireMessageHeadroom                  = 4 << 10
	wireSnapshotHeadroom                 = 64 << 10
)

// fitNetwork sizes appends and snapshot chunks to a network's message limit
// (BoundedNetwork). set is the Config as the user gave it, to tell values
// set explicitly from defaults.
func (c *Config) fitNetwork(set Config, limit int) error {
	budget := (limit - wireMessageHeadroom) * wireEntryRatioDen / wireEntryRatioNum // in Entry.Size bytes
	overhead := (&raftdata.Entry{}).Size()
	if budget <= overhead {
		return fmt.Errorf("%w: the network carries messages of at most %d bytes, too small for an append", ErrBadConfig, limit)
	}
	if c.MaxAppendBytes > budget {
		if set.MaxAppendBytes > 0 {
			return fmt.Errorf("%w: MaxAppendBytes %d does not fit the network's %d-byte messages (at most %d)", ErrBadConfig, c.MaxAppendBytes, limit, budget)
		}
		c.MaxAppendBytes = budget
	}
	if c.MaxEntryBytes+overhead > budget {
		if set.MaxEntryBytes > 0 {
			return fmt.Errorf("%w: MaxEntryBytes %d does not fit the network's %d-byte messages (at most %d)", ErrBadConfig, c.MaxEntryBytes, limit, budget-overhead)
		}
		c.MaxEntryBytes = budget - overhead
	}
	if chunk := limit - wireSnapshotHeadroom; c.SnapshotChunkBytes > chunk {
		if set.SnapshotChunkBytes > 0 || chunk <= 0 {
			return fmt.Errorf("%w: SnapshotChunkBytes %d does not fit the network's %d-byte messages (at most %d)", ErrBadConfig, c.SnapshotChunkBytes, limit, max(chunk, 0))
		}
		c.SnapshotChunkBytes = chunk
	}
	return nil
}
