package tcp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/raftkit/raftkit/adapters/network/tcp"
	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// ExampleNew forms a three-node cluster over loopback TCP. Each transport
// listens on a free port ("127.0.0.1:0"), and the members' addresses are
// the ones the transports bound. Across machines, each node listens on a
// fixed port and the members list the hosts' addresses.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Listen first, to learn every node's address.
	var transports []*tcp.Transport
	var members []raftdata.Member
	for id := raftdata.NodeID(1); id <= 3; id++ {
		tr, err := tcp.New(tcp.Config{
			ClusterID: 0x5ca1ab1e, // the same on every node, never 0
			ID:        id,         // equal to raft.Config.ID
			Listen:    "127.0.0.1:0",
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			fmt.Println("listen:", err)
			return
		}
		defer tr.Close() // after the node stops: a node never closes its Network
		transports = append(transports, tr)
		members = append(members, raftdata.Member{ID: id, Addr: tr.Addr()})
	}

	var nodes []*raft.Node
	var machines []*rafttest.Recorder
	for i, tr := range transports {
		store := memory.New() // adapters/storage/disk in production
		defer store.Close()
		sm := rafttest.NewRecorder() // records the commands it applies
		node, err := raft.NewNode(ctx, raft.Config{
			ID:           members[i].ID,
			Storage:      store,
			Network:      tr,
			StateMachine: sm,
			// Short timers for a demo on loopback; the defaults (100ms,
			// 1s) suit a real network.
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

	// Propose on whichever node leads; the others answer ErrNotLeader
	// until one does.
	var leader *raft.Node
	for leader == nil {
		for _, n := range nodes {
			if _, err := n.Propose(ctx, []byte("hello")); err == nil {
				leader = n
				break
			} else if !errors.Is(err, raft.ErrNotLeader) {
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
	fmt.Println("committed through a leader")

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

	// The transport's counters reach the node's metrics.
	fmt.Println("bytes sent by the leader:", leader.Metrics().Network.BytesSent > 0)

	// Output:
	// committed through a leader
	// node 1 applied "hello"
	// node 2 applied "hello"
	// node 3 applied "hello"
	// bytes sent by the leader: true
}

// ExampleNew_mutualTLS configures mutual TLS: every node holds a
// certificate signed by the cluster's CA, presents it both when it dials
// and when it accepts, and refuses peers whose certificate the CA did not
// sign. A certificate serves as server and client certificate, so it needs
// both extended key usages (or none), and must name the host that other
// nodes put in this node's Member.Addr (an IP SAN for an IP address).
func ExampleNew_mutualTLS() {
	cert, err := tls.LoadX509KeyPair("/etc/myapp/tls/node1.crt", "/etc/myapp/tls/node1.key")
	if err != nil {
		fmt.Println(err)
		return
	}
	caPEM, err := os.ReadFile("/etc/myapp/tls/ca.crt")
	if err != nil {
		fmt.Println(err)
		return
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(caPEM) {
		fmt.Println("no CA certificate in ca.crt")
		return
	}

	tr, err := tcp.New(tcp.Config{
		ClusterID: 0x5ca1ab1e,
		ID:        1,
		Listen:    ":7000",
		Advertise: "10.0.0.1:7000", // what peers dial, when Listen is a wildcard
		TLS: &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      ca, // checks the nodes this one dials
			ClientCAs:    ca, // checks the nodes that dial this one
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS13,
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	// Give tr to raft.Config.Network; the members list each node at the
	// address its certificate names, such as {ID: 1, Addr: "10.0.0.1:7000"}.
}
