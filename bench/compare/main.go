// Command compare runs the same workload on three Raft libraries for Go,
// side by side in one process and one run, so that their figures can be
// compared: raftkit (this repository), github.com/hashicorp/raft and
// go.etcd.io/raft/v3 (etcd-raft).
//
// Workload, identical for every library: a cluster of three nodes in this
// process, -clients goroutines each looping on one write of 128 bytes to the
// leader and waiting until the write is committed by a quorum and applied to
// the leader's state machine (a counter) before issuing the next. After
// -warmup, for -duration, every completed write is counted and its latency
// recorded. Each (library, configuration, clients) measurement starts a fresh
// cluster in a fresh directory and stops it afterwards.
//
// Configurations: "memory" (in-memory log storage and an in-process
// network) and "durable" (each library's on-disk log, every write synced
// before it counts, with the same in-process network). etcd-raft has no
// durable configuration here: it ships no durable log storage.
//
// Each library's exact setup is written at the top of its file (raftkit.go,
// hashicorp.go, etcd.go) and summarised in ../README.md. Every library runs
// with its defaults except the timers, which are shortened so that a leader
// is elected quickly (heartbeat 50 ms and election timeout 500 ms for
// raftkit and hashicorp/raft; for etcd-raft, ElectionTick 10 and
// HeartbeatTick 1 with a tick every -etcd-tick), and hashicorp/raft's
// durable log store is wrapped in a raft.LogCache, as HashiCorp's servers
// do (-hashicorp-log-cache).
//
// The measurements run in -rounds rounds. In each round every configuration
// and client count is measured on every library, one after the other, and
// the order of the libraries rotates from round to round, so that machine
// noise hits all of them alike. The reported figures are medians over the
// rounds, and the ratios are raftkit's median divided by the other
// library's median (throughput: above 1 means raftkit is faster; latency:
// below 1 means raftkit's is lower).
//
// Run it from this directory:
//
//	go run . -rounds 3 -duration 5s
//	go run . -libs raftkit,etcd -configs memory -clients 256 -json > results.jsonl
//
// A write that fails (for example after a leadership change) or a state
// machine that applied fewer writes than were acknowledged aborts the run
// with an error and a non-zero exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// payloadSize is the size of every write, for every library.
const payloadSize = 128

// cluster is a running three-node cluster of one library.
type cluster interface {
	// propose replicates cmd (which it must not modify or keep for
	// modification) and returns once it is committed and applied to the
	// leader's state machine. A non-nil error aborts the run.
	propose(ctx context.Context, cmd []byte) error
	// applied returns how many commands the leader's state machine has
	// applied so far.
	applied() uint64
	// stop stops the nodes and releases what they hold. dir, given to
	// start, is removed by the caller afterwards.
	stop() error
}

// library is one Raft library under test.
type library struct {
	name string
	// module is the Go module measured, for the report's version column.
	module string
	// configs are the configurations the library supports.
	configs []string
	// start starts a three-node cluster in configuration cfg with a
	// leader elected and ready for writes; durable configurations keep
	// their files under dir, an empty directory.
	start func(cfg, dir string) (cluster, error)
}

var libraries = map[string]*library{
	"raftkit":   {name: "raftkit", module: "github.com/raftkit/raftkit", configs: []string{"memory", "durable"}, start: startRaftkit},
	"hashicorp": {name: "hashicorp", module: "github.com/hashicorp/raft", configs: []string{"memory", "durable"}, start: startHashicorp},
	"etcd":      {name: "etcd", module: "go.etcd.io/raft/v3", configs: []string{"memory"}, start: startEtcd},
}

// etcdTick is etcd-raft's tick interval (-etcd-tick).
var etcdTick = 10 * time.Millisecond

// hcLogCache is the capacity of the raft.LogCache in front of hashicorp/raft's
// durable log store (-hashicorp-log-cache); 0 means none.
var hcLogCache = 512

func main() {
	libsFlag := flag.String("libs", "raftkit,hashicorp,etcd", "libraries to measure, comma-separated: raftkit, hashicorp, etcd")
	configsFlag := flag.String("configs", "memory,durable", "configurations, comma-separated: memory, durable")
	clientsFlag := flag.String("clients", "1,16,256", "client counts, comma-separated")
	rounds := flag.Int("rounds", 3, "rounds; figures are medians over the rounds")
	duration := flag.Duration("duration", 5*time.Second, "measured time per measurement")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up per measurement, after the leader is elected")
	jsonOut := flag.Bool("json", false, "print one JSON line per library, configuration and client count to stdout (the table goes to stderr)")
	dir := flag.String("dir", "", "directory under which durable configurations create their data (default: the system's temporary directory; it must be on the file system to measure)")
	flag.IntVar(&hcLogCache, "hashicorp-log-cache", hcLogCache, "entries of the raft.LogCache in front of hashicorp/raft's raft-wal log store in the durable configuration (0: none)")
	flag.DurationVar(&etcdTick, "etcd-tick", etcdTick, "etcd-raft's tick interval (ElectionTick 10, HeartbeatTick 1)")
	flag.Parse()

	libs, err := parseLibs(*libsFlag)
	if err == nil {
		err = checkList(*configsFlag, "memory", "durable")
	}
	var clients []int
	if err == nil {
		clients, err = parseInts(*clientsFlag)
	}
	if err == nil && (*rounds < 1 || *duration <= 0 || *warmup < 0 || etcdTick <= 0 || hcLogCache < 0) {
		err = fmt.Errorf("-rounds, -duration and -etcd-tick must be positive, -warmup and -hashicorp-log-cache not negative")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	configs := strings.Split(*configsFlag, ",")
	table := io.Writer(os.Stdout)
	if *jsonOut {
		table = os.Stderr
	}
	r := &runner{libs: libs, configs: configs, clients: clients, rounds: *rounds,
		warmup: *warmup, duration: *duration, dir: *dir, results: map[key][]result{}}
	started := time.Now()
	if err := r.run(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
	rep := r.report(started, strings.Join(os.Args[1:], " "))
	rep.printTable(table)
	if *jsonOut {
		if err := rep.printJSON(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
	}
}

func parseLibs(s string) ([]*library, error) {
	var out []*library
	seen := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		l, ok := libraries[name]
		if !ok {
			return nil, fmt.Errorf("unknown library %q in -libs (want raftkit, hashicorp, etcd)", name)
		}
		if !seen[name] {
			out = append(out, l)
			seen[name] = true
		}
	}
	return out, nil
}

func checkList(s string, allowed ...string) error {
	for _, v := range strings.Split(s, ",") {
		ok := false
		for _, a := range allowed {
			ok = ok || v == a
		}
		if !ok {
			return fmt.Errorf("unknown configuration %q in -configs (want %s)", v, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, v := range strings.Split(s, ",") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad client count %q in -clients", v)
		}
		out = append(out, n)
	}
	return out, nil
}

// key names one measured combination.
type key struct {
	lib     string
	config  string
	clients int
}

// runner runs every measurement, round after round.
type runner struct {
	libs             []*library
	configs          []string
	clients          []int
	rounds           int
	warmup, duration time.Duration
	dir              string
	results          map[key][]result
}

func (r *runner) run() error {
	for round := 0; round < r.rounds; round++ {
		// Rotate the order of the libraries from round to round.
		order := make([]*library, len(r.libs))
		for i := range r.libs {
			order[i] = r.libs[(i+round)%len(r.libs)]
		}
		for _, cfg := range r.configs {
			for _, n := range r.clients {
				for _, lib := range order {
					if !supports(lib, cfg) {
						continue
					}
					res, err := r.measure(lib, cfg, n)
					if err != nil {
						return fmt.Errorf("round %d, %s %s clients=%d: %w", round+1, lib.name, cfg, n, err)
					}
					fmt.Fprintf(os.Stderr, "round %d/%d %-9s %-7s clients=%-4d ops_per_s=%.0f p50_us=%d p99_us=%d\n",
						round+1, r.rounds, lib.name, cfg, n, res.opsPerSec, res.p50, res.p99)
					k := key{lib.name, cfg, n}
					r.results[k] = append(r.results[k], res)
				}
			}
		}
	}
	return nil
}

func supports(lib *library, cfg string) bool {
	for _, c := range lib.configs {
		if c == cfg {
			return true
		}
	}
	return false
}

// measure starts a fresh cluster, drives it and stops it.
func (r *runner) measure(lib *library, cfg string, clients int) (res result, err error) {
	// Start every measurement from the same, collected heap, so that one
	// library's garbage is not charged to the next.
	runtime.GC()
	debug.FreeOSMemory()
	dir, err := os.MkdirTemp(r.dir, "raft-compare-"+lib.name+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	c, err := lib.start(cfg, dir)
	if err != nil {
		return res, fmt.Errorf("starting the cluster: %w", err)
	}
	defer func() {
		if stopErr := c.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stopping the cluster: %w", stopErr)
		}
	}()
	return drive(c, clients, r.warmup, r.duration)
}
