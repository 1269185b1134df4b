package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/postgres"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// TestClusterSurvivesDatabaseCrash runs three nodes on a private server,
// crashes the server (immediate shutdown: no checkpoint, WAL replay on the
// next start) under write load, starts it again, and checks that every
// acknowledged write is on every node and that the cluster resumes.
func TestClusterSurvivesDatabaseCrash(t *testing.T) {
	srv := startServer(t)
	var failed atomic.Int64
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{
		KV:                true,
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   300 * time.Millisecond,
		// Snapshot and compact often, so that crashes meet those too.
		Configure: func(c *raft.Config) { c.SnapshotEntries, c.SnapshotTrailingEntries = 150, 50 },
		Storage: func(id raftdata.NodeID) (raft.Storage, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := postgres.Open(ctx, postgres.Config{DSN: srv.dsn(), Group: 1, Node: id})
			if err != nil {
				return nil, err
			}
			return rafttest.SaveFailures{Storage: s, Failed: &failed}, nil
		},
	})
	c.WaitLeader(10 * time.Second)
	load := rafttest.StartLoad(c, 8)
	defer load.Stop()
	load.WaitAcked(t, 200, 20*time.Second)
	for round := 0; round < 2; round++ {
		before := load.Acked()
		srv.crash()
		time.Sleep(500 * time.Millisecond) // writes fail meanwhile
		srv.start()
		load.WaitAcked(t, before+200, 30*time.Second)
		t.Logf("round %d: %d writes acknowledged before the crash, %d after the restart", round, before, load.Acked())
	}
	load.Stop()

	// Restart every node: state machines rebuilt from what PostgreSQL
	// kept (snapshot and log) must hold every acknowledged write.
	for _, id := range c.IDs() {
		c.Crash(id)
	}
	for _, id := range c.IDs() {
		c.Restart(id)
	}
	c.WaitLeader(10 * time.Second)
	c.WaitConverged(30 * time.Second)
	load.Check(t)
	var snapshots uint64
	for _, id := range c.IDs() {
		snapshots += c.Node(id).Metrics().SnapshotIndex
	}
	if failed.Load() == 0 {
		t.Fatal("no Save failed: the crashes did not meet a write")
	}
	if snapshots == 0 {
		t.Fatal("no node restarted from a snapshot: the test did not exercise them")
	}
	t.Logf("%d acknowledged writes of %d attempts present on all 3 nodes after restarting them; %d Saves failed during the crashes",
		load.Acked(), load.Attempts(), failed.Load())
}
