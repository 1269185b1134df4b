package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	raftprom "github.com/raftkit/raftkit/adapters/metrics/prometheus"
	rknats "github.com/raftkit/raftkit/adapters/network/nats"
	"github.com/raftkit/raftkit/adapters/network/tcp"
	"github.com/raftkit/raftkit/adapters/storage/disk"
	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/adapters/storage/postgres"
	redisstore "github.com/raftkit/raftkit/adapters/storage/redis"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/session"
)

// member is one node of the cluster: its ID, the address its Raft traffic
// goes to, and the address of its HTTP API. Both are the addresses others
// dial, which the node listens on unless -listen-raft or -listen-http says
// otherwise (NAT, a proxy).
type member struct {
	id         raftdata.NodeID
	raft, http string
}

// nodeConfig is everything one node needs.
type nodeConfig struct {
	id        raftdata.NodeID
	clusterID uint64
	members   []member // the initial cluster, this node included
	storage   string   // memory, disk, postgres, redis
	dataDir   string   // disk: the node's directory is dataDir/node-<id>
	pgDSN     string
	redisAddr string
	network   string // tcp, nats
	natsURL   string
	tracer    trace.TracerProvider // nil: no spans
	tls       *tlsConfigs          // nil: plain TCP and HTTP
	// join: a new node to be added to a running cluster (through
	// /admin/nonvoter on the leader): it must not form a cluster of its own.
	join bool
	log  *slog.Logger

	// listenRaft and listenHTTP are where the node listens, "" for its
	// addresses in members (-listen-raft, -listen-http).
	listenRaft, listenHTTP string
}

func (c *nodeConfig) self() member {
	for _, m := range c.members {
		if m.id == c.id {
			return m
		}
	}
	return member{}
}

// raftListen is the address the TCP transport listens on.
func (c *nodeConfig) raftListen() string {
	if c.listenRaft != "" {
		return c.listenRaft
	}
	return c.self().raft
}

// httpListen is the address the HTTP API listens on.
func (c *nodeConfig) httpListen() string {
	if c.listenHTTP != "" {
		return c.listenHTTP
	}
	return c.self().http
}

// kvNode is a running node: Raft, the store and the HTTP API.
type kvNode struct {
	cfg   nodeConfig
	node  *raft.Node
	store *store
	st    raft.Storage
	net   raft.Network
	srv   *http.Server
	ln    net.Listener
	tls   *tlsConfigs // nil: plain HTTP
	// client calls other nodes' APIs (forwarded writes).
	client *http.Client
	// http holds the HTTP addresses -members gave; the log's (store.http)
	// take precedence.
	http map[raftdata.NodeID]string
}

func openStorage(ctx context.Context, c nodeConfig) (raft.Storage, error) {
	log := c.log.With("node", uint64(c.id))
	switch c.storage {
	case "memory":
		return memory.New(), nil
	case "disk":
		return disk.Open(ctx, filepath.Join(c.dataDir, fmt.Sprintf("node-%d", c.id)), disk.Config{Logger: log})
	case "postgres":
		return postgres.Open(ctx, postgres.Config{DSN: c.pgDSN, Group: raftdata.GroupID(c.clusterID), Node: c.id, Logger: log})
	case "redis":
		return redisstore.Open(ctx, redisstore.Config{Redis: &goredis.UniversalOptions{Addrs: []string{c.redisAddr}},
			Group: raftdata.GroupID(c.clusterID), Node: c.id, Logger: log})
	}
	return nil, fmt.Errorf("unknown storage %q (memory, disk, postgres, redis)", c.storage)
}

func openNetwork(ctx context.Context, c nodeConfig) (raft.Network, error) {
	switch c.network {
	case "tcp":
		// Peers dial the address in -members, which the node announces in
		// its handshakes; it listens on -listen-raft if given.
		cfg := tcp.Config{ClusterID: c.clusterID, ID: c.id, Listen: c.raftListen(), Advertise: c.self().raft, Logger: c.log}
		if c.tls != nil {
			cfg.TLS = c.tls.raft // mutual TLS between the nodes
		}
		return tcp.New(cfg)
	case "nats":
		cfg := rknats.Config{ClusterID: c.clusterID, ID: c.id, URL: c.natsURL, Prefix: "raftkit-kv", Logger: c.log}
		if c.tls != nil {
			// TLS to the NATS server, presenting the node's certificate.
			cfg.Options = append(cfg.Options, natsgo.Secure(c.tls.client))
		}
		return rknats.New(ctx, cfg)
	}
	return nil, fmt.Errorf("unknown network %q (tcp, nats)", c.network)
}

// startNode opens the node's storage and network, starts Raft, joins the
// initial cluster (a no-op after the first start) and serves HTTP.
func startNode(ctx context.Context, c nodeConfig) (*kvNode, error) {
	k := &kvNode{cfg: c, store: newStore(), http: map[raftdata.NodeID]string{}, tls: c.tls, client: http.DefaultClient}
	if c.tls != nil {
		k.client = &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls.client}}
	}
	for _, m := range c.members {
		k.http[m.id] = m.http
	}
	var err error
	if k.st, err = openStorage(ctx, c); err != nil {
		return nil, fmt.Errorf("node %d storage: %w", c.id, err)
	}
	if k.net, err = openNetwork(ctx, c); err != nil {
		return nil, fmt.Errorf("node %d network: %w", c.id, errors.Join(err, k.st.Close()))
	}
	k.node, err = raft.NewNode(ctx, raft.Config{
		ID: c.id, Group: raftdata.GroupID(c.clusterID), Storage: k.st, Network: k.net,
		// Sessions make a client's retried write apply once.
		StateMachine:      session.Wrap(k.store, session.Config{}),
		HeartbeatInterval: 100 * time.Millisecond, ElectionTimeout: time.Second,
		LeaseReads: true, Logger: c.log, TracerProvider: c.tracer,
	})
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", c.id, errors.Join(err, k.net.Close(), k.st.Close()))
	}
	var members []raftdata.Member
	for _, m := range c.members {
		addr := m.raft
		if c.network == "nats" {
			addr = fmt.Sprintf("nats:%d", m.id)
		}
		members = append(members, raftdata.Member{ID: m.id, Addr: addr})
	}
	if c.join {
		if err := k.awaitJoin(ctx); err != nil {
			k.close(ctx)
			return nil, fmt.Errorf("node %d: %w", c.id, err)
		}
	} else if err := k.initialize(ctx, members); err != nil {
		k.close(ctx)
		return nil, fmt.Errorf("node %d: initialize: %w", c.id, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(raftprom.NewCollector(k.node))
	mux := http.NewServeMux()
	k.routes(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if k.ln, err = net.Listen("tcp", c.httpListen()); err != nil {
		k.close(ctx)
		return nil, fmt.Errorf("node %d: HTTP: %w", c.id, err)
	}
	k.srv = &http.Server{Handler: jsonErrors(mux), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(k.log().Handler(), slog.LevelWarn)}
	if c.tls != nil {
		k.srv.TLSConfig = c.tls.http
	}
	go func() {
		var err error
		if c.tls != nil {
			err = k.srv.ServeTLS(k.ln, "", "")
		} else {
			err = k.srv.Serve(k.ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			k.log().Error("HTTP server stopped", "err", err)
		}
	}()
	return k, nil
}

// log is the node's logger, naming it.
func (k *kvNode) log() *slog.Logger { return k.cfg.log.With("node", uint64(k.cfg.id)) }

// raftAddr describes where the node's Raft traffic arrives.
func (k *kvNode) raftAddr() string {
	if t, ok := k.net.(*tcp.Transport); ok && t.Addr() != k.cfg.self().raft {
		return fmt.Sprintf("%s, advertised as %s", t.Addr(), k.cfg.self().raft)
	}
	return k.cfg.self().raft
}

// initialize forms the initial cluster of -members, a no-op on a node that
// was initialized with them before. A node whose log starts with another
// configuration (it was started with other -members, or joined with -join)
// keeps that one: -members then only gives the members' HTTP addresses, and
// the node says so. Any other error is returned.
func (k *kvNode) initialize(ctx context.Context, members []raftdata.Member) error {
	err := k.node.Initialize(ctx, members)
	if errors.Is(err, raft.ErrBadConfig) {
		k.log().Warn("-members differs from the configuration this node's log starts with (it was first started with "+
			"other -members, or joined with -join): keeping the configuration in its log", "err", err)
		return nil
	}
	return err
}

// awaitJoin is the start of a node run with -join: it must not form a
// cluster of its own, but waits for the leader to add it. A node already
// holding a configuration (a restart) just resumes. Otherwise it logs how
// to add it and, in the background, when it has been added.
func (k *kvNode) awaitJoin(ctx context.Context) error {
	m, err := k.node.CurrentMetrics(ctx)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if !m.Membership.IsEmpty() {
		k.log().Info("-join: this node already holds a configuration; resuming", "voters", len(m.Membership.Voters))
		return nil
	}
	self := k.cfg.self()
	k.log().Info("-join: waiting to be added; ask the leader", "request", "POST /admin/nonvoter",
		"body", fmt.Sprintf(`{"id":%d,"raft":%q,"http":%q}`, self.id, self.raft, self.http))
	ch, cancel := k.node.Subscribe()
	go func() {
		defer cancel()
		for m := range ch { // closed when the node stops
			if m.Membership.Contains(k.cfg.id) {
				k.log().Info("-join: added to the cluster", "voter", m.Membership.IsVoter(k.cfg.id), "leader", uint64(m.Leader))
				return
			}
		}
	}()
	return nil
}

// close stops HTTP, then Raft, then the adapters, and logs what failed.
func (k *kvNode) close(ctx context.Context) {
	report := func(what string, err error) {
		if err != nil && !errors.Is(err, raft.ErrStopped) {
			k.log().Warn("closing: "+what, "err", err)
		}
	}
	if k.srv != nil {
		report("HTTP server", k.srv.Shutdown(ctx))
	}
	report("node", k.node.Stop(ctx))
	report("network", k.net.Close())
	report("storage", k.st.Close())
}
