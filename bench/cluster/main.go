// Command cluster measures raftkit end to end: a cluster of nodes in one
// process on memory storage (or, with -storage disk, the durable disk store,
// one directory per node) and the in-memory network (or, with -network tcp,
// the TCP transport over loopback), with concurrent clients proposing
// fixed-size writes to the leader. It prints one line:
//
//	raftkit nodes=3 storage=memory network=memory clients=256 size=128 ops=N ops_per_s=N p50_us=N p99_us=N
//
// With -storage disk the line ends with fsyncs_per_s (all nodes together)
// and entries_per_fsync, measured over the same interval.
//
// Every write is acknowledged only once it is committed by a quorum and
// applied on the leader, exactly as in production.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	rknats "github.com/raftkit/raftkit/adapters/network/nats"
	"github.com/raftkit/raftkit/adapters/network/tcp"
	"github.com/raftkit/raftkit/adapters/storage/disk"
	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/adapters/storage/postgres"
	redisstore "github.com/raftkit/raftkit/adapters/storage/redis"
	"github.com/raftkit/raftkit/bench/internal/latency"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

func main() {
	nodes := flag.Int("nodes", 3, "cluster size")
	clients := flag.Int("clients", 256, "concurrent clients")
	size := flag.Int("size", 128, "payload bytes per write")
	duration := flag.Duration("duration", 10*time.Second, "measured duration")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	memprofile := flag.String("memprofile", "", "write an allocation profile (all allocations since the start) to this file at the end")
	snapEvery := flag.Int("snapshot-entries", 0, "snapshot every N entries (0: the library default, -1: never)")
	reportEvery := flag.Duration("report-every", 0, "print throughput and resident memory to stderr at this interval")
	storage := flag.String("storage", "memory", "storage: memory, disk, postgres or redis")
	pgDSN := flag.String("pg-dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "with -storage postgres, the server (the run uses a schema of its own and drops it at the end)")
	redisAddr := flag.String("redis-addr", "", "with -storage redis, a server with appendonly yes, appendfsync always and noeviction (default: start a private redis-server so configured in a temporary directory)")
	network := flag.String("network", "memory", "network: memory (in process), tcp (loopback) or nats")
	natsURL := flag.String("nats-url", "", "with -network nats, the server (default: one started in the process on loopback)")
	data := flag.String("data", "", "with -storage disk, the directory for the nodes' data (default: a temporary directory, removed at the end)")
	flag.Parse()
	if *storage != "memory" && *storage != "disk" && *storage != "postgres" && *storage != "redis" {
		fmt.Fprintf(os.Stderr, "cluster: unknown -storage %q (want memory, disk, postgres or redis)\n", *storage)
		os.Exit(2)
	}
	if *network != "memory" && *network != "tcp" && *network != "nats" {
		fmt.Fprintf(os.Stderr, "cluster: unknown -network %q (want memory, tcp or nats)\n", *network)
		os.Exit(2)
	}
	if err := run(*nodes, *clients, *size, *warmup, *duration, *cpuprofile, *snapEvery, *reportEvery, *storage, *data, *network, *pgDSN, *redisAddr, *natsURL); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err == nil {
			err = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster: -memprofile:", err)
			os.Exit(1)
		}
	}
}

// counter is the cheapest useful state machine: it counts bytes applied.
type counter struct{ n atomic.Uint64 }

func (c *counter) Apply(ents []raftdata.Entry, results []any) error {
	for i := range ents {
		c.n.Add(uint64(len(ents[i].Data)))
		results[i] = nil
	}
	return nil
}

func (c *counter) Snapshot() (raft.Snapshot, error) { return counterSnapshot(c.n.Load()), nil }

func (c *counter) Restore(r io.Reader) error {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	c.n.Store(binary.BigEndian.Uint64(b[:]))
	return nil
}

type counterSnapshot uint64

func (s counterSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(binary.BigEndian.AppendUint64(nil, uint64(s)))
	return int64(n), err
}

func (counterSnapshot) Release() {}

// stores opens each node's storage and, for disk stores, sums their fsync
// counters.
type stores struct {
	kind string
	dir  string
	disk []*disk.Storage
	dsn  string
	pg   []*postgres.Storage
	// redisAddr is the -redis-addr server, or the private one started.
	redisAddr string
	redisSrv  *exec.Cmd
	redisDir  string
	rs        []*redisstore.Storage
}

// pgSchema is the run's own schema on the -pg-dsn server.
var pgSchema = fmt.Sprintf("raftkit_bench_%d", os.Getpid())

// open returns node id's storage.
func (s *stores) open(id int) (raft.Storage, error) {
	switch s.kind {
	case "memory":
		return memory.New(), nil
	case "postgres":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p, err := postgres.Open(ctx, postgres.Config{DSN: s.dsn, Schema: pgSchema, Group: 1, Node: raftdata.NodeID(id)})
		if err != nil {
			return nil, err
		}
		s.pg = append(s.pg, p)
		return p, nil
	case "redis":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, err := redisstore.Open(ctx, redisstore.Config{
			Redis:  &goredis.UniversalOptions{Addrs: []string{s.redisAddr}, PoolSize: 64},
			Prefix: fmt.Sprintf("raftkit-bench-%d", os.Getpid()), Group: 1, Node: raftdata.NodeID(id),
		})
		if err != nil {
			return nil, err
		}
		s.rs = append(s.rs, r)
		return r, nil
	}
	d, err := disk.Open(context.Background(), filepath.Join(s.dir, fmt.Sprint("node", id)), disk.Config{})
	if err != nil {
		return nil, err
	}
	s.disk = append(s.disk, d)
	return d, nil
}

// close closes the disk and PostgreSQL stores, dropping the run's schema.
func (s *stores) close() {
	for _, d := range s.disk {
		if err := d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "cluster: closing storage:", err)
		}
	}
	for _, p := range s.pg {
		_ = p.Close()
	}
	for _, r := range s.rs {
		_ = r.Close()
	}
	if s.redisSrv != nil {
		_ = s.redisSrv.Process.Kill()
		_ = s.redisSrv.Wait()
		_ = os.RemoveAll(s.redisDir)
	}
	if s.kind == "postgres" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, s.dsn); err == nil {
			_, _ = c.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{pgSchema}.Sanitize()+` CASCADE`)
			_ = c.Close(ctx)
		}
	}
}

// counters returns the fsyncs and saved entries of every disk store.
func (s *stores) counters() (syncs, entries uint64) {
	for _, d := range s.disk {
		syncs += d.Syncs()
		entries += d.SavedEntries()
	}
	return syncs, entries
}

func run(n, clients, size int, warmup, duration time.Duration, cpuprofile string, snapEvery int, reportEvery time.Duration, storage, dataDir, netKind, pgDSN, redisAddr, natsURL string) error {
	ctx := context.Background()
	st := &stores{kind: storage, dir: dataDir, dsn: pgDSN, redisAddr: redisAddr}
	if storage == "disk" && dataDir == "" {
		tmp, err := os.MkdirTemp("", "raftkit-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		st.dir = tmp
	}
	defer st.close() // after the nodes stop, before the directory goes
	if storage == "redis" && redisAddr == "" {
		if err := st.startRedis(); err != nil {
			return err
		}
	}
	network := rafttest.NewNetwork()
	defer network.Close()
	var members []raftdata.Member
	nets := map[raftdata.NodeID]raft.Network{}
	var natsNets []*rknats.Transport
	for i := 1; i <= n; i++ {
		id := raftdata.NodeID(i)
		addr := fmt.Sprint("n", i)
		if netKind == "nats" {
			if natsURL == "" {
				url, shutdown, err := startNATS()
				if err != nil {
					return err
				}
				defer shutdown()
				natsURL = url
			}
			tr, err := rknats.New(ctx, rknats.Config{ClusterID: 1, ID: id, URL: natsURL, Prefix: fmt.Sprintf("raftkit-bench-%d", os.Getpid())})
			if err != nil {
				return err
			}
			defer tr.Close()
			nets[id], addr = tr, tr.Address()
			natsNets = append(natsNets, tr)
		} else if netKind == "tcp" {
			tr, err := tcp.New(tcp.Config{ClusterID: 1, ID: id, Listen: "127.0.0.1:0"})
			if err != nil {
				return err
			}
			defer tr.Close() // after the nodes stop
			nets[id], addr = tr, tr.Addr()
		} else {
			nets[id] = network.Endpoint(id)
		}
		members = append(members, raftdata.Member{ID: id, Addr: addr})
	}
	var all []*raft.Node
	for i := 1; i <= n; i++ {
		store, err := st.open(i)
		if err != nil {
			return err
		}
		node, err := raft.NewNode(ctx, raft.Config{
			ID: raftdata.NodeID(i), Storage: store, Network: nets[raftdata.NodeID(i)],
			StateMachine:      &counter{},
			HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
			SnapshotEntries: snapEvery,
		})
		if err != nil {
			return err
		}
		defer node.Stop(ctx)
		if err := node.Initialize(ctx, members); err != nil {
			return err
		}
		all = append(all, node)
	}
	leader := waitLeader(all, 10*time.Second)
	if leader == nil {
		return fmt.Errorf("no leader elected")
	}
	if os.Getenv("BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "leader=%d\n", leader.ID())
	}
	payload := make([]byte, size)
	var measuring, stop atomic.Bool
	var ops atomic.Int64
	lat := make([]*latency.Histogram, clients)
	var wg sync.WaitGroup
	var failure atomic.Value
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			h := &latency.Histogram{}
			for !stop.Load() {
				start := time.Now()
				if _, err := leader.Propose(ctx, payload); err != nil {
					failure.Store(err)
					return
				}
				if measuring.Load() {
					h.Add(uint64(time.Since(start) / time.Microsecond))
					ops.Add(1)
				}
			}
			lat[c] = h
		}(c)
	}
	time.Sleep(warmup)
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var ms0 runtime.MemStats
	if os.Getenv("BENCH_DEBUG") != "" {
		runtime.ReadMemStats(&ms0)
	}
	syncs0, entries0 := st.counters()
	natsSent0, natsBytes0 := natsTotals(natsNets)
	measuring.Store(true)
	start := time.Now()
	if reportEvery > 0 {
		done := time.After(duration)
		last, lastOps := start, int64(0)
	loop:
		for {
			select {
			case <-done:
				break loop
			case now := <-time.After(reportEvery):
				cur := ops.Load()
				fmt.Fprintf(os.Stderr, "t=%s ops_per_s=%.0f rss_mb=%d\n", now.Sub(start).Round(time.Second),
					float64(cur-lastOps)/now.Sub(last).Seconds(), rssMB())
				last, lastOps = now, cur
			}
		}
	} else {
		time.Sleep(duration)
	}
	measuring.Store(false)
	if os.Getenv("BENCH_DEBUG") != "" {
		var ms1 runtime.MemStats
		runtime.ReadMemStats(&ms1)
		n := max(1, ops.Load())
		fmt.Fprintf(os.Stderr, "allocs/op=%.1f bytes/op=%.0f gc=%d\n", float64(ms1.Mallocs-ms0.Mallocs)/float64(n),
			float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(n), ms1.NumGC-ms0.NumGC)
		for _, n := range all {
			m := n.Metrics()
			fmt.Fprintf(os.Stderr, "node %d role=%s last=%d applied=%d snapshots received=%d sent=%d peers=%+v\n", m.ID, m.Role, m.LastIndex, m.AppliedIndex, m.SnapshotsReceived, m.SnapshotsSent, m.Peers)
		}
	}
	elapsed := time.Since(start)
	syncs1, entries1 := st.counters()
	natsSent1, natsBytes1 := natsTotals(natsNets)
	stop.Store(true)
	wg.Wait()
	if err, ok := failure.Load().(error); ok {
		return fmt.Errorf("a client failed: %w", err)
	}
	var merged latency.Histogram
	for _, h := range lat {
		if h != nil {
			merged.Merge(h)
		}
	}
	pct := merged.Percentile
	total := ops.Load()
	line := fmt.Sprintf("raftkit nodes=%d storage=%s network=%s clients=%d size=%d ops=%d ops_per_s=%.0f p50_us=%d p99_us=%d",
		n, storage, netKind, clients, size, total, float64(total)/elapsed.Seconds(), pct(0.50), pct(0.99))
	if storage == "disk" {
		syncs, entries := syncs1-syncs0, entries1-entries0
		line += fmt.Sprintf(" fsyncs_per_s=%.0f entries_per_fsync=%.1f",
			float64(syncs)/elapsed.Seconds(), float64(entries)/float64(max(syncs, 1)))
	}
	fmt.Println(line)
	if netKind == "nats" {
		// Raft messages per second against the server's raw rate for
		// messages of the same average size, measured now.
		sent, bytes := natsSent1-natsSent0, natsBytes1-natsBytes0
		avg := int(bytes / max(sent, 1))
		raw, err := natsRaw(natsURL, avg, clients, 3*time.Second)
		if err != nil {
			return fmt.Errorf("raw NATS baseline: %w", err)
		}
		opsPerSec := float64(total) / elapsed.Seconds()
		fmt.Printf("nats raft_msgs_per_s=%.0f avg_msg_bytes=%d raw_pub_msgs_per_s=%.0f raw_req_per_s=%.0f raw_rtt_p50_us=%d raw_rtt_p99_us=%d ops_vs_raw_req=%.2f\n",
			float64(sent)/elapsed.Seconds(), avg, raw.pubPerSec, raw.reqPerSec, raw.rttP50.Microseconds(), raw.rttP99.Microseconds(), opsPerSec/raw.reqPerSec)
	}
	return nil
}

// rssMB returns the process's resident set size in MiB (Linux), or 0.
func rssMB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb / 1024
		}
	}
	return 0
}

func waitLeader(nodes []*raft.Node, timeout time.Duration) *raft.Node {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.Role() == raftdata.RoleLeader {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// startRedis starts a private redis-server configured as the Redis store
// requires (append-only file fsynced on every write, no eviction), in a
// temporary directory that close removes.
func (s *stores) startRedis() error {
	dir, err := os.MkdirTemp("", "raftkit-bench-redis-")
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server (install it, or pass -redis-addr): %w", err)
	}
	s.redisSrv, s.redisDir, s.redisAddr = cmd, dir, fmt.Sprintf("127.0.0.1:%d", port)
	c := goredis.NewClient(&goredis.Options{Addr: s.redisAddr})
	defer c.Close()
	for i := 0; ; i++ {
		if c.Ping(context.Background()).Err() == nil {
			return nil
		}
		if i == 200 {
			return fmt.Errorf("redis-server on %s did not answer", s.redisAddr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
