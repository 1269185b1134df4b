package nats_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"

	rknats "github.com/raftkit/raftkit/adapters/network/nats"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// natsCluster runs three KV nodes of cluster clusterID over the server at
// url.
func natsCluster(t *testing.T, url string, clusterID uint64) *rafttest.Cluster {
	return rafttest.NewCluster(t, 3, rafttest.ClusterConfig{
		KV:                true,
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   300 * time.Millisecond,
		Transport: func(id raftdata.NodeID, _ string) (raft.Network, string, error) {
			tr, err := rknats.New(context.Background(), rknats.Config{ClusterID: clusterID, ID: id, URL: url, Prefix: testPrefix,
				Options: []natsgo.Option{natsgo.ReconnectWait(50 * time.Millisecond)}})
			if err != nil {
				return nil, "", err
			}
			return tr, tr.Address(), nil
		},
	})
}

// TestClusterSurvivesLeaderCrashAndServerRestart: under write load, the
// leader crashes and comes back, then the NATS server restarts; no
// acknowledged write is lost and the cluster keeps going.
func TestClusterSurvivesLeaderCrashAndServerRestart(t *testing.T) {
	srv := embedded(t, 0)
	url := srv.ClientURL()
	c := natsCluster(t, url, 11)
	c.WaitLeader(10 * time.Second)
	load := rafttest.StartLoad(c, 8)
	defer load.Stop()
	load.WaitAcked(t, 200, 20*time.Second)

	l := c.Leader()
	c.Crash(l)
	before := load.Acked()
	load.WaitAcked(t, before+200, 30*time.Second)
	c.Restart(l)
	t.Logf("leader %d crashed: %d writes acknowledged before, %d after", l, before, load.Acked())

	before = load.Acked()
	srv.Shutdown()
	srv.WaitForShutdown()
	time.Sleep(300 * time.Millisecond) // writes fail meanwhile
	restartOn(t, url)
	load.WaitAcked(t, before+200, 30*time.Second)
	t.Logf("server restarted: %d writes acknowledged before, %d after", before, load.Acked())
	load.Stop()
	c.WaitConverged(30 * time.Second)
	load.Check(t)
	var reconnects uint64
	for _, id := range c.IDs() {
		reconnects += c.Node(id).Metrics().Network.Reconnects
	}
	if reconnects == 0 {
		t.Fatal("no node counted a reconnect after the server restart")
	}
}

// restartOn starts a server again on url's port.
func restartOn(t *testing.T, url string) *server.Server {
	t.Helper()
	var port int
	if _, err := fmt.Sscanf(url, "nats://127.0.0.1:%d", &port); err != nil {
		t.Fatalf("url %s: %v", url, err)
	}
	return embedded(t, port)
}

// TestClustersWithSameIDsStayIndependent runs two clusters with node IDs
// 1, 2 and 3 on one server: each applies only its own writes.
func TestClustersWithSameIDsStayIndependent(t *testing.T) {
	url := embedded(t, 0).ClientURL()
	a, b := natsCluster(t, url, 21), natsCluster(t, url, 22)
	for i, c := range []*rafttest.Cluster{a, b} {
		l := c.WaitLeader(10 * time.Second)
		for k := 0; k < 50; k++ {
			op := rafttest.KVOp{Kind: rafttest.KVPut, Key: fmt.Sprintf("c%d-k%d", i, k), Value: "v"}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := c.Node(l).Propose(ctx, op.Encode())
			cancel()
			if err != nil {
				t.Fatalf("cluster %d write %d: %v", i, k, err)
			}
		}
	}
	for i, c := range []*rafttest.Cluster{a, b} {
		c.WaitConverged(20 * time.Second)
		for _, id := range c.IDs() {
			kv := c.KV(id)
			for k := 0; k < 50; k++ {
				if kv.Get(fmt.Sprintf("c%d-k%d", i, k)) != "v" || kv.Get(fmt.Sprintf("c%d-k%d", 1-i, k)) != "" {
					t.Fatalf("cluster %d node %d: own key %d missing or the other cluster's present", i, id, k)
				}
			}
			if m := c.Node(id).Metrics(); m.Network.Rejected != 0 {
				t.Errorf("cluster %d node %d rejected %d messages: the clusters met", i, id, m.Network.Rejected)
			}
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	url := embedded(t, 0).ClientURL()
	for name, cfg := range map[string]rknats.Config{
		"no cluster ID":        {ID: 1, URL: url},
		"no node ID":           {ClusterID: 1, URL: url},
		"neither Conn nor URL": {ClusterID: 1, ID: 1},
		"wildcard prefix":      {ClusterID: 1, ID: 1, URL: url, Prefix: "raft.*"},
		"empty token":          {ClusterID: 1, ID: 1, URL: url, Prefix: "raft..x"},
	} {
		if _, err := rknats.New(context.Background(), cfg); !errors.Is(err, rknats.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	// A server whose max_payload cannot hold a snapshot chunk.
	small, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	go small.Start()
	defer small.Shutdown()
	if !small.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	if _, err := rknats.New(context.Background(), rknats.Config{ClusterID: 1, ID: 1, URL: small.ClientURL()}); !errors.Is(err, rknats.ErrConfig) {
		t.Errorf("max_payload of 256 KiB: %v, want ErrConfig", err)
	}
}
