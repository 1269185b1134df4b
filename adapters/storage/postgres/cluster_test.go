package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/postgres"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// acked records the writes a cluster acknowledged.
type acked struct {
	mu   sync.Mutex
	keys map[string]string
}

// writeLoad proposes unique puts through whichever node leads until stop
// is closed, recording those acknowledged. Failures (no leader, the
// database down) are expected while the test breaks things.
func writeLoad(c *rafttest.Cluster, workers int, stop <-chan struct{}, a *acked, attempts *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				l := c.Leader()
				if l == 0 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				n := c.Node(l)
				if n == nil {
					continue
				}
				key, val := fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("v%d", i)
				attempts.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := n.Propose(ctx, rafttest.KVOp{Kind: rafttest.KVPut, Key: key, Value: val}.Encode())
				cancel()
				if err == nil {
					a.mu.Lock()
					a.keys[key] = val
					a.mu.Unlock()
				} else if !errors.Is(err, context.DeadlineExceeded) {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}(w)
	}
	return &wg
}

// failCounter counts the Saves that failed, to show the crashes hit writes.
type failCounter struct {
	raft.Storage
	failed *atomic.Int64
}

func (f failCounter) Save(ctx context.Context, hs *raft.HardState, ents []raft.Entry) error {
	err := f.Storage.Save(ctx, hs, ents)
	if err != nil {
		f.failed.Add(1)
	}
	return err
}

// TestClusterSurvivesDatabaseCrash runs three nodes on a private server,
// crashes the server (immediate shutdown: no checkpoint, WAL replay on the
// next start) under write load, starts it again, and checks that every
// acknowledged write is on every node and that the cluster resumes.
func TestClusterSurvivesDatabaseCrash(t *testing.T) {
	srv := startServer(t)
	var failed atomic.Int64
	c := rafttest.NewCluster(t, 3, rafttest.ClusterOptions{
		KV:                true,
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   300 * time.Millisecond,
		// Snapshot and compact often, so that crashes meet those too.
		Configure: func(c *raft.Config) { c.SnapshotEntries, c.SnapshotTrailingEntries = 150, 50 },
		Storage: func(id raft.NodeID) (raft.Storage, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := postgres.Open(ctx, postgres.Options{DSN: srv.dsn(), Group: 1, Node: id})
			if err != nil {
				return nil, err
			}
			return failCounter{s, &failed}, nil
		},
	})
	c.WaitLeader(10 * time.Second)
	a := &acked{keys: map[string]string{}}
	var attempts atomic.Int64
	stop := make(chan struct{})
	wg := writeLoad(c, 8, stop, a, &attempts)

	count := func() int {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.keys)
	}
	waitMore := func(n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for count() < n {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("only %d writes acknowledged, want %d, within %v (%d attempts)", count(), n, within, attempts.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitMore(200, 20*time.Second)
	for round := 0; round < 2; round++ {
		before := count()
		srv.crash()
		time.Sleep(500 * time.Millisecond) // writes fail meanwhile
		srv.start()
		waitMore(before+200, 30*time.Second)
		t.Logf("round %d: %d writes acknowledged before the crash, %d after the restart", round, before, count())
	}
	close(stop)
	wg.Wait()

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
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range c.IDs() {
		kv := c.KV(id)
		for k, v := range a.keys {
			if got := kv.Get(k); got != v {
				t.Fatalf("node %d: acknowledged write %s=%s reads %q", id, k, v, got)
			}
		}
	}
	var taken uint64
	for _, id := range c.IDs() {
		taken += c.Node(id).Metrics().SnapshotIndex
	}
	if failed.Load() == 0 {
		t.Fatal("no Save failed: the crashes did not meet a write")
	}
	if taken == 0 {
		t.Fatal("no node restarted from a snapshot: the test did not exercise them")
	}
	t.Logf("%d acknowledged writes of %d attempts present on all 3 nodes after restarting them; %d Saves failed during the crashes",
		len(a.keys), attempts.Load(), failed.Load())
}
