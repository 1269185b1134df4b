package prometheus_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	raftprom "github.com/raftkit/raftkit/adapters/metrics/prometheus"
	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// Example registers a node's collector on a registry and gathers it, as a
// scrape would. A server exposes the registry with
// promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	node, stop, err := startLeader(ctx)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer stop()

	// Every series carries the node's group and ID as labels, so one
	// registry can hold the collectors of many nodes and groups.
	reg := prometheus.NewRegistry()
	reg.MustRegister(raftprom.NewCollector(node))

	families, err := reg.Gather()
	if err != nil {
		fmt.Println("gather:", err)
		return
	}
	for _, f := range families {
		switch f.GetName() {
		case "raft_is_leader", "raft_voters", "raft_role":
		default:
			continue // indexes, terms and traffic vary from run to run
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			fmt.Printf("%s{%s} %v\n", f.GetName(), strings.Join(labels, ","), m.GetGauge().GetValue())
		}
	}

	// Output:
	// raft_is_leader{group="7",node="1"} 1
	// raft_role{group="7",node="1",role="candidate"} 0
	// raft_role{group="7",node="1",role="follower"} 0
	// raft_role{group="7",node="1",role="leader"} 1
	// raft_role{group="7",node="1",role="non-voter"} 0
	// raft_role{group="7",node="1",role="pre-candidate"} 0
	// raft_voters{group="7",node="1"} 1
}

// startLeader starts node 1 of group 7 as a one-node cluster and waits
// until its published metrics show it leading.
func startLeader(ctx context.Context) (*raft.Node, func(), error) {
	net := rafttest.NewNetwork()
	store := memory.New()
	node, err := raft.NewNode(ctx, raft.Config{
		ID:                1,
		Group:             7,
		Storage:           store,
		Network:           net.Endpoint(1),
		StateMachine:      rafttest.NewRecorder(),
		HeartbeatInterval: 10 * time.Millisecond,
		ElectionTimeout:   100 * time.Millisecond,
	})
	if err != nil {
		net.Close()
		return nil, nil, err
	}
	stop := func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = node.Stop(sctx)
		net.Close()
		_ = store.Close()
	}
	if err := node.Initialize(ctx, []raftdata.Member{{ID: 1, Addr: "node-1"}}); err != nil {
		stop()
		return nil, nil, err
	}
	for node.Metrics().Role != raftdata.RoleLeader {
		select {
		case <-ctx.Done():
			stop()
			return nil, nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return node, stop, nil
}
