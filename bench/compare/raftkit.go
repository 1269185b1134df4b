// raftkit's setup, as bench/cluster runs it (-storage memory or disk,
// -network memory):
//
//   - Three raft.Node in this process, IDs 1 to 3, each made by
//     raft.NewNode with raft.Config{ID, Storage, Network, StateMachine,
//     HeartbeatInterval: 50ms, ElectionTimeout: 500ms}; every other field
//     keeps its default (MaxInflightAppends 256, MaxInflightBytes 32 MiB,
//     EntryCacheBytes 64 MiB, a snapshot every 16384 entries keeping 4096
//     behind it, silent logger, no tracing).
//   - Network: rafttest.NewNetwork(), the in-process test network with no
//     faults injected: one FIFO queue and one delivery goroutine per
//     directed link, messages handed over by reference, in batches of up to
//     256 per Step call, queues bounded at 8192 messages (beyond that a
//     message is dropped, as a real network may).
//   - Storage: "memory" is adapters/storage/memory (memory.New()), not
//     durable; "durable" is adapters/storage/disk, disk.Open(ctx, dir/nodeN,
//     disk.Config{}) with its defaults: a segmented write-ahead log, one
//     fdatasync per batch of writes, nothing acknowledged before it.
//   - State machine: a counter of applied commands.
//   - Each node is initialized with the three members (Node.Initialize); the
//     harness waits for a leader (polling Role every 10 ms) and commits one
//     write through it before the clients start.
//   - A write is leader.Propose(ctx, cmd), which returns once the command
//     is committed by a quorum and applied to the leader's state machine.

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/disk"
	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// rkCounter counts the commands it applies.
type rkCounter struct{ n atomic.Uint64 }

func (c *rkCounter) Apply(ents []raftdata.Entry, results []any) error {
	var n uint64
	for i := range ents {
		if len(ents[i].Data) > 0 {
			n++
		}
		results[i] = nil
	}
	c.n.Add(n)
	return nil
}

func (c *rkCounter) Snapshot() (raft.Snapshot, error) { return rkSnapshot(c.n.Load()), nil }

func (c *rkCounter) Restore(r io.Reader) error {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	c.n.Store(binary.BigEndian.Uint64(b[:]))
	return nil
}

type rkSnapshot uint64

func (s rkSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(binary.BigEndian.AppendUint64(nil, uint64(s)))
	return int64(n), err
}

func (rkSnapshot) Release() {}

type rkCluster struct {
	network *rafttest.Network
	nodes   []*raft.Node
	sms     []*rkCounter
	disks   []*disk.Storage
	leader  *raft.Node
	lsm     *rkCounter
}

func startRaftkit(cfg, dir string) (_ cluster, err error) {
	ctx := context.Background()
	c := &rkCluster{network: rafttest.NewNetwork()}
	defer func() {
		if err != nil {
			_ = c.stop()
		}
	}()
	var members []raftdata.Member
	for i := 1; i <= 3; i++ {
		members = append(members, raftdata.Member{ID: raftdata.NodeID(i), Addr: fmt.Sprint("n", i)})
	}
	for i := 1; i <= 3; i++ {
		var store raft.Storage
		if cfg == "durable" {
			d, err := disk.Open(context.Background(), filepath.Join(dir, fmt.Sprint("node", i)), disk.Config{})
			if err != nil {
				return nil, err
			}
			c.disks = append(c.disks, d)
			store = d
		} else {
			store = memory.New()
		}
		sm := &rkCounter{}
		node, err := raft.NewNode(ctx, raft.Config{
			ID: raftdata.NodeID(i), Storage: store, Network: c.network.Endpoint(raftdata.NodeID(i)),
			StateMachine:      sm,
			HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		})
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, node)
		c.sms = append(c.sms, sm)
		if err := node.Initialize(ctx, members); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.leader == nil {
		if time.Now().After(deadline) {
			return nil, errors.New("no leader elected in 10s")
		}
		for i, n := range c.nodes {
			if n.Role() == raftdata.RoleLeader {
				c.leader, c.lsm = n, c.sms[i]
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.leader.Propose(ctx, make([]byte, payloadSize)); err != nil {
		return nil, fmt.Errorf("first write: %w", err)
	}
	return c, nil
}

func (c *rkCluster) propose(ctx context.Context, cmd []byte) error {
	_, err := c.leader.Propose(ctx, cmd)
	return err
}

func (c *rkCluster) applied() uint64 { return c.lsm.n.Load() }

func (c *rkCluster) stop() error {
	var errs []error
	for _, n := range c.nodes {
		if err := n.Stop(context.Background()); err != nil && !errors.Is(err, raft.ErrStopped) {
			errs = append(errs, err)
		}
	}
	c.network.Close()
	for _, d := range c.disks {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}
