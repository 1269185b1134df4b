// Command hashicorp measures github.com/hashicorp/raft end to end in the same
// setup as bench/cluster measures raftkit, so the two can be compared: a
// cluster of -nodes nodes in one process, each with hashicorp/raft's real TCP
// NetworkTransport (raft.NewTCPTransport on 127.0.0.1, a random port, pool of
// 3 connections, 10s I/O timeout) over loopback, in-memory log, stable and
// snapshot stores, and a trivial state machine that counts the bytes applied.
// -clients goroutines each loop on leader.Apply(payload, 10s).Error() with a
// payload of -size bytes; a write is acknowledged only once it is committed
// by a quorum and applied to the leader's state machine. After -warmup, for
// -duration, it counts the completed writes and records the latency of each.
// It prints one line:
//
//	hashicorp-raft nodes=3 network=tcp clients=256 size=128 ops=N ops_per_s=N p50_us=N p99_us=N
//
// Run it with:
//
//	cd bench/hashicorp && go run . -clients 256 -duration 10s
//
// The configuration is raft.DefaultConfig() with these changes only:
//
//   - LocalID is the node's ID ("node1", "node2", ...);
//   - Logger writes errors only, to stderr (silenced during shutdown);
//   - HeartbeatTimeout and ElectionTimeout are 500ms instead of 1s, so a
//     leader is elected quickly. This also makes the leader's heartbeat
//     interval (HeartbeatTimeout/10) 50ms and the election timeout 500ms,
//     the values bench/cluster gives raftkit. LeaderLeaseTimeout keeps its
//     default, 500ms, which must not exceed HeartbeatTimeout.
//
// Everything else keeps its default, in particular MaxAppendEntries (64),
// CommitTimeout (50ms), the transport's pipelining (2 RPCs in flight),
// BatchApplyCh (false) and the snapshot policy (SnapshotInterval 120s,
// SnapshotThreshold 8192), under which no snapshot is taken in a run shorter
// than two minutes.
//
// The cluster is bootstrapped with all nodes as voters; the benchmark waits
// for a leader and a barrier on it before the clients start. A failed Apply
// (for example after a leadership change) makes the command exit non-zero.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const (
	electionTimeout = 500 * time.Millisecond
	applyTimeout    = 10 * time.Second
	transportPool   = 3
	transportIOTime = 10 * time.Second
)

func main() {
	nodes := flag.Int("nodes", 3, "cluster size")
	clients := flag.Int("clients", 256, "concurrent clients")
	size := flag.Int("size", 128, "payload bytes per write")
	duration := flag.Duration("duration", 10*time.Second, "measured duration")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up")
	flag.Parse()
	if *nodes < 1 || *clients < 1 || *size < 0 || *duration <= 0 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "hashicorp: -nodes and -clients must be positive, -size and -warmup not negative, -duration positive")
		os.Exit(2)
	}
	if err := run(*nodes, *clients, *size, *warmup, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "hashicorp:", err)
		os.Exit(1)
	}
}

// counter is the cheapest useful state machine: it counts bytes applied.
type counter struct{ n atomic.Uint64 }

func (c *counter) Apply(l *raft.Log) any {
	c.n.Add(uint64(len(l.Data)))
	return nil
}

func (c *counter) Snapshot() (raft.FSMSnapshot, error) { return counterSnapshot(c.n.Load()), nil }

func (c *counter) Restore(r io.ReadCloser) error {
	defer r.Close()
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	c.n.Store(binary.BigEndian.Uint64(b[:]))
	return nil
}

type counterSnapshot uint64

func (s counterSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(binary.BigEndian.AppendUint64(nil, uint64(s))); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (counterSnapshot) Release() {}

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

// node is one member of the cluster with the resources it owns.
type node struct {
	raft      *raft.Raft
	transport *raft.NetworkTransport
}

func run(n, clients, size int, warmup, duration time.Duration) error {
	logOut := &gatedWriter{w: os.Stderr}
	var all []*node
	defer func() {
		logOut.muted.Store(true)
		shutdown(all)
	}()

	// Transports first: every node's address must be known to bootstrap.
	var servers []raft.Server
	for i := 1; i <= n; i++ {
		trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, transportPool, transportIOTime, logOut)
		if err != nil {
			return fmt.Errorf("transport %d: %w", i, err)
		}
		all = append(all, &node{transport: trans})
		servers = append(servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(fmt.Sprint("node", i)),
			Address:  trans.LocalAddr(),
		})
	}
	for i, nd := range all {
		conf := raft.DefaultConfig()
		conf.LocalID = servers[i].ID
		conf.HeartbeatTimeout = electionTimeout
		conf.ElectionTimeout = electionTimeout
		conf.Logger = hclog.New(&hclog.LoggerOptions{
			Name:   "raft-" + string(servers[i].ID),
			Level:  hclog.Error,
			Output: logOut,
		})
		r, err := raft.NewRaft(conf, &counter{}, raft.NewInmemStore(), raft.NewInmemStore(),
			raft.NewInmemSnapshotStore(), nd.transport)
		if err != nil {
			return fmt.Errorf("node %d: %w", i+1, err)
		}
		nd.raft = r
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			return fmt.Errorf("bootstrapping node %d: %w", i+1, err)
		}
	}
	leader := waitLeader(all, 10*time.Second)
	if leader == nil {
		return fmt.Errorf("no leader elected")
	}
	if err := leader.Barrier(applyTimeout).Error(); err != nil {
		return fmt.Errorf("barrier on the leader: %w", err)
	}

	payload := make([]byte, size)
	var measuring, stop atomic.Bool
	var failure atomic.Value
	lat := make([][]time.Duration, clients)
	perClient := max(1<<20/clients, 1024) // a guess; append grows it if short
	var wg sync.WaitGroup
	for c := range clients {
		lat[c] = make([]time.Duration, 0, perClient)
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for !stop.Load() {
				start := time.Now()
				if err := leader.Apply(payload, applyTimeout).Error(); err != nil {
					failure.Store(err)
					return
				}
				if measuring.Load() {
					lat[c] = append(lat[c], time.Since(start))
				}
			}
		}(c)
	}
	time.Sleep(warmup)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if err, ok := failure.Load().(error); ok {
		return fmt.Errorf("a client failed: %w", err)
	}

	var total int
	for _, l := range lat {
		total += len(l)
	}
	merged := make([]time.Duration, 0, total)
	for _, l := range lat {
		merged = append(merged, l...)
	}
	slices.Sort(merged)
	pct := func(p float64) int64 {
		if len(merged) == 0 {
			return 0
		}
		i := min(int(float64(len(merged))*p), len(merged)-1)
		return merged[i].Microseconds()
	}
	fmt.Printf("hashicorp-raft nodes=%d network=tcp clients=%d size=%d ops=%d ops_per_s=%.0f p50_us=%d p99_us=%d\n",
		n, clients, size, total, float64(total)/elapsed.Seconds(), pct(0.50), pct(0.99))
	return nil
}

// waitLeader returns the Raft of the node that is leader, or nil if none is
// within timeout.
func waitLeader(all []*node, timeout time.Duration) *raft.Raft {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, nd := range all {
			if nd.raft != nil && nd.raft.State() == raft.Leader {
				return nd.raft
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// shutdown stops every node, all at once so that none spends long trying to
// reach the others, then closes the transports.
func shutdown(all []*node) {
	var wg sync.WaitGroup
	for _, nd := range all {
		if nd.raft == nil {
			continue
		}
		wg.Add(1)
		go func(r *raft.Raft) {
			defer wg.Done()
			if err := r.Shutdown().Error(); err != nil {
				fmt.Fprintln(os.Stderr, "hashicorp: shutdown:", err)
			}
		}(nd.raft)
	}
	wg.Wait()
	for _, nd := range all {
		if err := nd.transport.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "hashicorp: closing transport:", err)
		}
	}
}
