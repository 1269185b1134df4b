// hashicorp/raft's setup, with the library's own in-memory transport:
//
//   - Three raft.Raft in this process, IDs "node1" to "node3", each made by
//     raft.NewRaft with raft.DefaultConfig() changed only in:
//     LocalID; Logger (hclog at Error level, to stderr, silenced during
//     shutdown); HeartbeatTimeout and ElectionTimeout 500 ms instead of 1 s
//     (so the leader's heartbeat interval, HeartbeatTimeout/10, is 50 ms and
//     the election timeout 500 ms, the values raftkit gets). LeaderLeaseTimeout
//     keeps its default, 500 ms. Everything else keeps its default, in
//     particular MaxAppendEntries 64, CommitTimeout 50 ms, BatchApplyCh
//     false, SnapshotInterval 120 s and SnapshotThreshold 8192 (no snapshot
//     is taken in a run shorter than two minutes).
//   - Transport: raft.NewInmemTransport("") for each node (its default
//     500 ms timeout), connected pairwise with Connect, so every node
//     reaches the other two; it supports pipelined AppendEntries (up to 16
//     in flight per follower) and passes RPCs by reference over channels.
//   - "memory": raft.NewInmemStore() as LogStore and another as
//     StableStore, raft.NewInmemSnapshotStore() as SnapshotStore.
//   - "durable": one github.com/hashicorp/raft-wal WAL per node,
//     wal.Open(dir/nodeN/wal) with its defaults (64 MiB segments, one fsync
//     per StoreLogs call; the stable store inside it is a BoltDB file), used
//     as the StableStore and, wrapped in raft.NewLogCache(512, wal), as the
//     LogStore; raft.NewFileSnapshotStoreWithLogger(dir/nodeN, 2, logger)
//     as SnapshotStore. The LogCache is not a default of NewRaft, but it is
//     how HashiCorp's own servers (Consul, Nomad) and most users set up a
//     disk LogStore, with the same 512 entries. Without it the leader reads
//     every entry it replicates back from the WAL with a pread, the largest
//     CPU cost in a profile of the durable run. -hashicorp-log-cache 0
//     measures without it.
//   - FSM: a counter of applied commands.
//   - The cluster is bootstrapped (BootstrapCluster) with the three nodes as
//     voters on every node; the harness waits for a leader (polling State
//     every 10 ms) and then a Barrier on it.
//   - A write is leader.Apply(cmd, 10s).Error(), which returns once the
//     command is committed by a quorum and applied to the leader's FSM.

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// hcApplyTimeout is the timeout given to every Apply; a write that times out
// fails the run.
const hcApplyTimeout = 10 * time.Second

// hcCounter counts the commands it applies.
type hcCounter struct{ n atomic.Uint64 }

func (c *hcCounter) Apply(l *raft.Log) any {
	if len(l.Data) > 0 {
		c.n.Add(1)
	}
	return nil
}

func (c *hcCounter) Snapshot() (raft.FSMSnapshot, error) { return hcSnapshot(c.n.Load()), nil }

func (c *hcCounter) Restore(r io.ReadCloser) error {
	defer r.Close()
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	c.n.Store(binary.BigEndian.Uint64(b[:]))
	return nil
}

type hcSnapshot uint64

func (s hcSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(binary.BigEndian.AppendUint64(nil, uint64(s))); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (hcSnapshot) Release() {}

// gatedWriter passes writes to w until it is muted; it silences the errors
// nodes log about each other while the cluster shuts down.
type gatedWriter struct {
	w     io.Writer
	muted atomic.Bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if g.muted.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}

type hcCluster struct {
	logOut *gatedWriter
	rafts  []*raft.Raft
	fsms   []*hcCounter
	trans  []*raft.InmemTransport
	wals   []*wal.WAL
	leader *raft.Raft
	lfsm   *hcCounter
}

func startHashicorp(cfg, dir string) (_ cluster, err error) {
	c := &hcCluster{logOut: &gatedWriter{w: os.Stderr}}
	defer func() {
		if err != nil {
			_ = c.stop()
		}
	}()
	logger := func(name string) hclog.Logger {
		return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Error, Output: c.logOut})
	}
	var servers []raft.Server
	for i := 1; i <= 3; i++ {
		addr, t := raft.NewInmemTransport("")
		c.trans = append(c.trans, t)
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprint("node", i)), Address: addr})
	}
	for i, t := range c.trans {
		for j, u := range c.trans {
			if i != j {
				t.Connect(u.LocalAddr(), u)
			}
		}
	}
	for i, t := range c.trans {
		conf := raft.DefaultConfig()
		conf.LocalID = servers[i].ID
		conf.HeartbeatTimeout = 500 * time.Millisecond
		conf.ElectionTimeout = 500 * time.Millisecond
		conf.Logger = logger("raft-" + string(servers[i].ID))
		var logs raft.LogStore
		var stable raft.StableStore
		var snaps raft.SnapshotStore
		if cfg == "durable" {
			nodeDir := filepath.Join(dir, fmt.Sprint("node", i+1))
			walDir := filepath.Join(nodeDir, "wal")
			if err := os.MkdirAll(walDir, 0o755); err != nil {
				return nil, err
			}
			w, err := wal.Open(walDir, wal.WithLogger(logger("wal-"+string(servers[i].ID))))
			if err != nil {
				return nil, fmt.Errorf("raft-wal: %w", err)
			}
			c.wals = append(c.wals, w)
			logs, stable = w, w
			if hcLogCache > 0 {
				if logs, err = raft.NewLogCache(hcLogCache, w); err != nil {
					return nil, err
				}
			}
			if snaps, err = raft.NewFileSnapshotStoreWithLogger(nodeDir, 2, conf.Logger); err != nil {
				return nil, err
			}
		} else {
			logs, stable, snaps = raft.NewInmemStore(), raft.NewInmemStore(), raft.NewInmemSnapshotStore()
		}
		fsm := &hcCounter{}
		r, err := raft.NewRaft(conf, fsm, logs, stable, snaps, t)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		c.rafts = append(c.rafts, r)
		c.fsms = append(c.fsms, fsm)
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			return nil, fmt.Errorf("bootstrapping node %d: %w", i+1, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.leader == nil {
		if time.Now().After(deadline) {
			return nil, errors.New("no leader elected in 10s")
		}
		for i, r := range c.rafts {
			if r.State() == raft.Leader {
				c.leader, c.lfsm = r, c.fsms[i]
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.leader.Barrier(hcApplyTimeout).Error(); err != nil {
		return nil, fmt.Errorf("barrier on the leader: %w", err)
	}
	return c, nil
}

func (c *hcCluster) propose(_ context.Context, cmd []byte) error {
	return c.leader.Apply(cmd, hcApplyTimeout).Error()
}

func (c *hcCluster) applied() uint64 { return c.lfsm.n.Load() }

// stop shuts every node down at once, so that none spends long trying to
// reach the others, then closes the transports and the WALs.
func (c *hcCluster) stop() error {
	c.logOut.muted.Store(true)
	var wg sync.WaitGroup
	errs := make([]error, len(c.rafts))
	for i, r := range c.rafts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.Shutdown().Error()
		}()
	}
	wg.Wait()
	for _, t := range c.trans {
		errs = append(errs, t.Close())
	}
	for _, w := range c.wals {
		errs = append(errs, w.Close())
	}
	return errors.Join(errs...)
}
