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
// goes to, and the address of its HTTP API.
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
}

func (c *nodeConfig) self() member {
	for _, m := range c.members {
		if m.id == c.id {
			return m
		}
	}
	return member{}
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
		return disk.Open(filepath.Join(c.dataDir, fmt.Sprintf("node-%d", c.id)), disk.Options{Logger: log})
	case "postgres":
		return postgres.Open(ctx, postgres.Options{DSN: c.pgDSN, Group: raftdata.GroupID(c.clusterID), Node: c.id, Logger: log})
	case "redis":
		return redisstore.Open(ctx, redisstore.Options{Redis: &goredis.UniversalOptions{Addrs: []string{c.redisAddr}},
			Group: raftdata.GroupID(c.clusterID), Node: c.id, Logger: log})
	}
	return nil, fmt.Errorf("unknown storage %q (memory, disk, postgres, redis)", c.storage)
}

func openNetwork(c nodeConfig) (raft.Network, error) {
	switch c.network {
	case "tcp":
		cfg := tcp.Config{ClusterID: c.clusterID, ID: c.id, Listen: c.self().raft, Logger: c.log}
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
		return rknats.New(cfg)
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
	if k.net, err = openNetwork(c); err != nil {
		k.st.Close()
		return nil, fmt.Errorf("node %d network: %w", c.id, err)
	}
	k.node, err = raft.NewNode(ctx, raft.Config{
		ID: c.id, Group: raftdata.GroupID(c.clusterID), Storage: k.st, Network: k.net,
		// Sessions make a client's retried write apply once.
		StateMachine:      session.Wrap(k.store, session.Config{}),
		HeartbeatInterval: 100 * time.Millisecond, ElectionTimeout: time.Second,
		LeaseReads: true, Logger: c.log, TracerProvider: c.tracer,
	})
	if err != nil {
		k.net.Close()
		k.st.Close()
		return nil, fmt.Errorf("node %d: %w", c.id, err)
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
		// Wait to be added: the leader's first append or snapshot brings
		// the configuration.
	} else if err := k.node.Initialize(ctx, members); err != nil && !errors.Is(err, raft.ErrBadConfig) {
		k.close(ctx)
		return nil, fmt.Errorf("node %d: initialize: %w", c.id, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(raftprom.NewCollector(k.node))
	mux := http.NewServeMux()
	k.routes(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if k.ln, err = net.Listen("tcp", c.self().http); err != nil {
		k.close(ctx)
		return nil, fmt.Errorf("node %d: HTTP: %w", c.id, err)
	}
	k.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if c.tls != nil {
		k.srv.TLSConfig = c.tls.http
		go func() { _ = k.srv.ServeTLS(k.ln, "", "") }()
	} else {
		go func() { _ = k.srv.Serve(k.ln) }()
	}
	return k, nil
}

// close stops HTTP, then Raft, then the adapters.
func (k *kvNode) close(ctx context.Context) {
	if k.srv != nil {
		_ = k.srv.Shutdown(ctx)
	}
	_ = k.node.Stop(ctx)
	_ = k.net.Close()
	_ = k.st.Close()
}
