package nats_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	rknats "github.com/raftkit/raftkit/adapters/network/nats"
	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// ExampleNew forms a three-node cluster whose nodes reach each other
// through a NATS server, here one embedded in the process on a free port.
// Nodes need no ports or addresses of their own: a node's subject follows
// from the cluster and node IDs.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		fmt.Println("nats server:", err)
		return
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(5 * time.Second) {
		fmt.Println("nats server not ready")
		return
	}

	var transports []*rknats.Transport
	var members []raftdata.Member
	for id := raftdata.NodeID(1); id <= 3; id++ {
		tr, err := rknats.New(ctx, rknats.Config{
			ClusterID: 0x5ca1ab1e,      // the same on every node, never 0
			ID:        id,              // equal to raft.Config.ID
			URL:       srv.ClientURL(), // comma-separated for a NATS cluster
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			fmt.Println("connect:", err)
			return
		}
		defer tr.Close() // after the node stops: a node never closes its Network
		transports = append(transports, tr)
		// The transport ignores Member.Addr; its subject is a natural value,
		// which NotLeaderError.LeaderAddr then reports.
		members = append(members, raftdata.Member{ID: id, Addr: tr.Address()})
	}
	fmt.Println("node 1 listens on", members[0].Addr)

	var nodes []*raft.Node
	var machines []*rafttest.Recorder
	for i, tr := range transports {
		store := memory.New()
		defer store.Close()
		sm := rafttest.NewRecorder() // records the commands it applies
		node, err := raft.NewNode(ctx, raft.Config{
			ID:           members[i].ID,
			Storage:      store,
			Network:      tr,
			StateMachine: sm,
			// Short timers for a demo in one process; the defaults
			// (100ms, 1s) suit a real network.
			HeartbeatInterval: 20 * time.Millisecond,
			ElectionTimeout:   200 * time.Millisecond,
		})
		if err != nil {
			fmt.Println("new node:", err)
			return
		}
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = node.Stop(sctx)
		}()
		if err := node.Initialize(ctx, members); err != nil {
			fmt.Println("initialize:", err)
			return
		}
		nodes, machines = append(nodes, node), append(machines, sm)
	}

	// Propose on whichever node leads; the others answer ErrNotLeader.
	committed := false
	for !committed {
		for _, n := range nodes {
			_, err := n.Propose(ctx, []byte("hello"))
			if err == nil {
				committed = true
				break
			}
			if !errors.Is(err, raft.ErrNotLeader) {
				fmt.Println("propose:", err)
				return
			}
		}
		if ctx.Err() != nil {
			fmt.Println("no leader:", ctx.Err())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The followers apply it once they learn it is committed.
	for i, sm := range machines {
		for len(sm.Applied()) == 0 {
			if ctx.Err() != nil {
				fmt.Println("not applied:", ctx.Err())
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Printf("node %d applied %q\n", members[i].ID, sm.Applied()[0].Data)
	}

	// Output:
	// node 1 listens on raftkit.1554098974.1
	// node 1 applied "hello"
	// node 2 applied "hello"
	// node 3 applied "hello"
}
