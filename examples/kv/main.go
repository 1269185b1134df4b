// Command kv is a replicated key-value service on raftkit, and the
// reference for wiring a Node to storage, network, HTTP and metrics.
//
// With no flags it runs a local 3-node cluster in one process, on the
// embedded defaults (disk storage under ./kv-data, TCP between the nodes),
// and serves each node's HTTP API until interrupted:
//
//	go run ./examples/kv
//
// With -id it runs one node of a cluster whose members -members lists,
// one process (or machine) per node:
//
//	kv -id 1 -members 1=10.0.0.1:7001/10.0.0.1:8001,2=10.0.0.2:7001/10.0.0.2:8001,3=10.0.0.3:7001/10.0.0.3:8001
//
// -members holds the addresses the nodes dial; behind NAT or a proxy, a node
// listens elsewhere with -listen-raft and -listen-http.
//
// "kv bench" writes to a running cluster and prints throughput and latency:
//
//	go run ./examples/kv bench -clients 64 -duration 10s
//
// -tls-cert, -tls-key and -tls-ca secure it: mutual TLS between the nodes,
// HTTPS for the API, and client certificates for its admin endpoints.
//
// See examples/kv/README.md for the HTTP API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// errUsage marks a command-line error that the flag package has already
// printed, with the usage: main exits with status 2 without repeating it.
var errUsage = errors.New("usage error")

func main() {
	err := run(os.Args[1:])
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "kv:", err)
		os.Exit(1)
	}
}

// parseFlags parses args into fs, which must be flag.ContinueOnError. A
// bad flag or a stray argument is printed once with the usage and comes
// back wrapped in errUsage; -h comes back as flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "bench" {
		return runBench(args[1:])
	}
	fs := flag.NewFlagSet("kv", flag.ContinueOnError)
	id := fs.Uint64("id", 0, "this node's ID, with -members; 0 runs a local 3-node cluster in this process")
	membersFlag := fs.String("members", "", "the initial cluster: id=raftaddr/httpaddr,..., the addresses the nodes dial (default with -id 0: three nodes on 127.0.0.1, Raft on 7001-7003, HTTP on 8001-8003)")
	listenRaft := fs.String("listen-raft", "", "with -id and -network tcp: the address Raft listens on, such as 0.0.0.0:7001, when peers reach this node at another one (NAT, proxy) (default: this node's Raft address in -members)")
	listenHTTP := fs.String("listen-http", "", "with -id: the address the HTTP API listens on, such as 0.0.0.0:8001, when clients and peers reach it at another one (default: this node's HTTP address in -members)")
	clusterID := fs.Uint64("cluster-id", 1, "the cluster's ID: the same on every node, different between clusters")
	storage := fs.String("storage", "disk", "storage: memory, disk, postgres or redis")
	dataDir := fs.String("data", "kv-data", "with -storage disk, the directory holding each node's data")
	pgDSN := fs.String("pg-dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "with -storage postgres, the database")
	redisAddr := fs.String("redis-addr", "127.0.0.1:6379", "with -storage redis, the server (it must run with appendonly yes and appendfsync always)")
	network := fs.String("network", "tcp", "network: tcp or nats")
	natsURL := fs.String("nats-url", "nats://127.0.0.1:4222", "with -network nats, the server")
	join := fs.Bool("join", false, "with -id: a new node joining a running cluster (add it with POST /admin/nonvoter on the leader); -members lists the running members and this one")
	otlp := fs.String("otlp", "", "send OpenTelemetry spans (propose, storage writes, network sends, apply) to this OTLP/HTTP collector, such as 127.0.0.1:4318")
	level := fs.String("log", "info", "log level: debug, info, warn or error")
	var tf tlsFiles
	fs.StringVar(&tf.cert, "tls-cert", "", "this node's certificate (PEM): with -tls-key and -tls-ca, Raft traffic uses mutual TLS and the HTTP API serves HTTPS")
	fs.StringVar(&tf.key, "tls-key", "", "the private key (PEM) of -tls-cert")
	fs.StringVar(&tf.ca, "tls-ca", "", "the CA (PEM) that signed every node's certificate; /admin and /internal then need a client certificate it signed")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("-log: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	spec := *membersFlag
	if spec == "" {
		if *id != 0 {
			return errors.New("-id needs -members")
		}
		spec = "1=127.0.0.1:7001/127.0.0.1:8001,2=127.0.0.1:7002/127.0.0.1:8002,3=127.0.0.1:7003/127.0.0.1:8003"
	}
	members, err := parseMembers(spec)
	if err != nil {
		return err
	}
	base := nodeConfig{clusterID: *clusterID, members: members, storage: *storage, dataDir: *dataDir,
		pgDSN: *pgDSN, redisAddr: *redisAddr, network: *network, natsURL: *natsURL, join: *join,
		listenRaft: *listenRaft, listenHTTP: *listenHTTP}
	if tf.enabled() {
		if base.tls, err = tf.load(); err != nil {
			return err
		}
	}
	if *join && *id == 0 {
		return errors.New("-join needs -id")
	}
	if (*listenRaft != "" || *listenHTTP != "") && *id == 0 {
		return errors.New("-listen-raft and -listen-http need -id")
	}
	if *listenRaft != "" && *network != "tcp" {
		return errors.New("-listen-raft is for -network tcp")
	}
	var ids []raftdata.NodeID
	if *id != 0 {
		ids = []raftdata.NodeID{raftdata.NodeID(*id)}
	} else {
		for _, m := range members {
			ids = append(ids, m.id)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *otlp != "" {
		tp, err := newTracerProvider(ctx, *otlp)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(sctx); err != nil { // flushes the last spans
				log.Warn("flushing the last spans", "otlp", *otlp, "err", err)
			}
		}()
		base.tracer = tp
	}
	var nodes []*kvNode
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, n := range nodes {
			n.close(sctx)
		}
	}()
	for _, nid := range ids {
		c := base
		c.id = nid
		c.log = log // raft and the networks name the node in their records; storeLog adds it
		if c.self().id == 0 {
			return fmt.Errorf("-id %d is not in -members", nid)
		}
		startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := startNode(startCtx, c)
		cancel()
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		fmt.Printf("node %d: HTTP API on %s%s (Raft on %s, storage %s, network %s)\n", nid, n.scheme(), n.ln.Addr(), n.raftAddr(), c.storage, c.network)
	}
	fmt.Println("serving; interrupt (Ctrl-C) to stop")
	<-ctx.Done()
	fmt.Println("stopping")
	return nil
}

// parseMembers reads id=raftaddr/httpaddr,...
func parseMembers(s string) ([]member, error) {
	var out []member
	seen := map[raftdata.NodeID]bool{}
	for _, part := range strings.Split(s, ",") {
		idStr, addrs, ok := strings.Cut(strings.TrimSpace(part), "=")
		raftAddr, httpAddr, ok2 := strings.Cut(addrs, "/")
		id, err := strconv.ParseUint(idStr, 10, 64)
		if !ok || !ok2 || err != nil || id == 0 || raftAddr == "" || httpAddr == "" {
			return nil, fmt.Errorf("-members: %q is not id=raftaddr/httpaddr", part)
		}
		if seen[raftdata.NodeID(id)] {
			return nil, fmt.Errorf("-members: node %d twice", id)
		}
		seen[raftdata.NodeID(id)] = true
		out = append(out, member{id: raftdata.NodeID(id), raft: raftAddr, http: httpAddr})
	}
	return out, nil
}
