package raft_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// faultyStore wraps a Storage and fails its writes on demand. It holds the
// wrapped store in an interface field, so that it is no InlineSaver: every
// write goes through the node's storage goroutine, as with a real disk.
type faultyStore struct {
	raft.Storage
	mu        sync.Mutex
	transient int           // the next transient writes fail
	permanent bool          // every write fails with ErrPermanent
	stall     chan struct{} // non-nil: writes block, ignoring ctx, until closed
}

func (s *faultyStore) Save(ctx context.Context, hs *raftdata.HardState, ents []raftdata.Entry) error {
	s.mu.Lock()
	stall, permanent := s.stall, s.permanent
	transient := s.transient > 0
	if transient {
		s.transient--
	}
	s.mu.Unlock()
	switch {
	case permanent:
		return fmt.Errorf("injected: the disk failed a write: %w", raft.ErrPermanent)
	case transient:
		return errors.New("injected: connection reset")
	case stall != nil:
		<-stall // a store that ignores its context
	}
	return s.Storage.Save(ctx, hs, ents)
}

func (s *faultyStore) set(f func(*faultyStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// faultyCluster starts three nodes, each on a faultyStore over memory.
func faultyCluster(t *testing.T, storageTimeout time.Duration) (*rafttest.Cluster, map[raftdata.NodeID]*faultyStore) {
	stores := map[raftdata.NodeID]*faultyStore{}
	for id := raftdata.NodeID(1); id <= 3; id++ {
		stores[id] = &faultyStore{Storage: memory.New()}
	}
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{
		Storage:   func(id raftdata.NodeID) (raft.Storage, error) { return stores[id], nil },
		Configure: func(cfg *raft.Config) { cfg.StorageTimeout = storageTimeout },
	})
	return c, stores
}

// acked proposes n commands through whichever node leads, retrying until
// each is acknowledged, and returns them.
func acked(t *testing.T, c *rafttest.Cluster, n int, prefix string) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		cmd := fmt.Sprintf("%s-%d", prefix, i)
		deadline := time.Now().Add(waitLong)
		for {
			l := c.Leader()
			if l != 0 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := c.Node(l).Propose(ctx, []byte(cmd))
				cancel()
				if err == nil {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("command %s not acknowledged within %v", cmd, waitLong)
			}
			time.Sleep(5 * time.Millisecond)
		}
		out = append(out, cmd)
	}
	return out
}

// takeOver waits until a node other than old leads and commits a write, and
// returns how long it took.
func takeOver(t *testing.T, c *rafttest.Cluster, old raftdata.NodeID, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for time.Now().Before(deadline) {
		for _, id := range c.Live() {
			n := c.Node(id)
			if id == old || n.Role() != raftdata.RoleLeader {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_, err := n.Propose(ctx, []byte("resumed"))
			cancel()
			if err == nil {
				return time.Since(since)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no other node took writes within %v of the failure", waitLong)
	return 0
}

// checkAcked asserts that every acknowledged command is applied, once, on
// every live node.
func checkAcked(t *testing.T, c *rafttest.Cluster, cmds []string) {
	t.Helper()
	c.WaitConverged(waitLong)
	for _, id := range c.Live() {
		seen := map[string]int{}
		for _, e := range c.StateMachine(id).Applied() {
			seen[string(e.Data)]++
		}
		for _, cmd := range cmds {
			if seen[cmd] != 1 {
				t.Errorf("node %d applied acknowledged command %s %d times", id, cmd, seen[cmd])
			}
		}
	}
}

// waitStopped waits for a node to stop and returns its error.
func waitStopped(t *testing.T, n *raft.Node, within time.Duration) error {
	t.Helper()
	select {
	case <-n.Done():
		return n.Err()
	case <-time.After(within):
		t.Fatalf("the node did not stop within %v", within)
		return nil
	}
}

// TestPermanentStorageErrorStopsTheLeader: the leader's disk fails for
// good. The leader hands leadership over and stops with the error; another
// node takes writes within a few election timeouts (measured: the test
// logs it) and nothing acknowledged is lost.
func TestPermanentStorageErrorStopsTheLeader(t *testing.T) {
	c, stores := faultyCluster(t, 0)
	l := c.WaitLeader(waitLong)
	cmds := acked(t, c, 20, "before")
	node := c.Node(l)
	failedAt := time.Now()
	stores[l].set(func(s *faultyStore) { s.permanent = true })
	// A write makes the leader meet its failing disk.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = node.Propose(ctx, []byte("lost-or-not"))
	}()
	err := waitStopped(t, node, waitLong)
	if !errors.Is(err, raft.ErrPermanent) {
		t.Fatalf("the failed leader stopped with %v, want ErrPermanent", err)
	}
	took := takeOver(t, c, l, failedAt)
	t.Logf("writes resumed on another node %v after the failure (election timeout 100ms)", took)
	if m := node.Metrics(); m.StorageErrors == 0 {
		t.Errorf("StorageErrors = 0 after a failed write")
	}
	cmds = append(cmds, acked(t, c, 10, "after")...)
	checkAcked(t, c, cmds)
}

// TestStalledStorageHandsLeadershipOverThenStops: the leader's store stops
// answering (its writes block and ignore their context). Within about an
// election timeout the leader hands leadership over and another node takes
// writes; after Config.StorageTimeout the stalled node stops with
// ErrStorageStalled, without waiting for the write stuck in its store.
func TestStalledStorageHandsLeadershipOverThenStops(t *testing.T) {
	c, stores := faultyCluster(t, time.Second)
	l := c.WaitLeader(waitLong)
	cmds := acked(t, c, 20, "before")
	node := c.Node(l)
	stall := make(chan struct{})
	defer close(stall)
	stalledAt := time.Now()
	stores[l].set(func(s *faultyStore) { s.stall = stall })
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = node.Propose(ctx, []byte("stuck"))
	}()
	took := takeOver(t, c, l, stalledAt)
	t.Logf("writes resumed on another node %v after the stall (election timeout 100ms)", took)
	if r := node.Role(); r == raftdata.RoleLeader {
		t.Errorf("the stalled node still leads")
	}
	err := waitStopped(t, node, waitLong)
	if !errors.Is(err, raft.ErrStorageStalled) {
		t.Fatalf("the stalled node stopped with %v, want ErrStorageStalled", err)
	}
	if since := time.Since(stalledAt); since < time.Second {
		t.Errorf("the node stopped %v after the stall, before StorageTimeout (1s)", since)
	}
	cmds = append(cmds, acked(t, c, 10, "after")...)
	checkAcked(t, c, cmds)
}

// TestTransientStorageErrorsAreRetried: a few failed writes on the leader
// are retried; the node keeps running and leading, counts the errors, and
// every write is applied once.
func TestTransientStorageErrorsAreRetried(t *testing.T) {
	c, stores := faultyCluster(t, 0)
	l := c.WaitLeader(waitLong)
	stores[l].set(func(s *faultyStore) { s.transient = 3 })
	cmds := acked(t, c, 30, "x")
	// The followers' acknowledgements commit the writes while the leader
	// still retries its own: wait for the retries to be done.
	deadline := time.Now().Add(waitLong)
	for {
		m, err := c.Node(l).CurrentMetrics(ctxT(t, waitLong))
		if err != nil {
			t.Fatal(err)
		}
		if m.StorageErrors == 3 && m.StorageStall == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("StorageErrors = %d, StorageStall = %v; want 3 and 0", m.StorageErrors, m.StorageStall)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Node(l).Err(); err != nil {
		t.Fatalf("transient errors stopped the node: %v", err)
	}
	checkAcked(t, c, cmds)
}
