package rafttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Load writes unique keys to a KV cluster (ClusterConfig.KV) from several
// goroutines, through whichever node leads, and records the writes the
// cluster acknowledged: the ones that must survive whatever the test does
// to the cluster meanwhile. Failed writes (no leader, a storage or network
// outage) are expected and not recorded.
type Load struct {
	c        *Cluster
	stop     chan struct{}
	wg       sync.WaitGroup
	attempts atomic.Int64
	mu       sync.Mutex
	acked    map[string]string
}

// StartLoad starts workers writers on c.
func StartLoad(c *Cluster, workers int) *Load {
	l := &Load{c: c, stop: make(chan struct{}), acked: map[string]string{}}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go l.run(w)
	}
	return l
}

func (l *Load) run(w int) {
	defer l.wg.Done()
	for i := 0; ; i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		var n *raft.Node
		if id := l.c.Leader(); id != 0 {
			n = l.c.Node(id)
		}
		if n == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		key, val := fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("v%d", i)
		l.attempts.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := n.Propose(ctx, KVOp{Kind: KVPut, Key: key, Value: val}.Encode())
		cancel()
		if err == nil {
			l.mu.Lock()
			l.acked[key] = val
			l.mu.Unlock()
		} else if !errors.Is(err, context.DeadlineExceeded) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Acked returns how many writes were acknowledged so far.
func (l *Load) Acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// Attempts returns how many writes were tried so far.
func (l *Load) Attempts() int64 { return l.attempts.Load() }

// WaitAcked waits until at least n writes were acknowledged, failing the
// test (after stopping the load) if that takes longer than within.
func (l *Load) WaitAcked(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for l.Acked() < n {
		if time.Now().After(deadline) {
			l.Stop()
			t.Fatalf("only %d writes acknowledged, want %d, within %v (%d attempts)", l.Acked(), n, within, l.Attempts())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the writers and waits for them. It is safe to call twice.
func (l *Load) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// Check fails the test unless every acknowledged write reads back on every
// live node's KV. Call it after Stop and Cluster.WaitConverged.
func (l *Load) Check(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range l.c.Live() {
		kv := l.c.KV(id)
		for k, v := range l.acked {
			if got := kv.Get(k); got != v {
				t.Fatalf("node %d: acknowledged write %s=%s reads %q", id, k, v, got)
			}
		}
	}
}

// SaveFailures wraps a Storage and counts the Saves that failed, so that a
// test can show its outage really met writes.
type SaveFailures struct {
	raft.Storage
	Failed *atomic.Int64
}

// Save calls the wrapped Save and counts a failure.
func (s SaveFailures) Save(ctx context.Context, hs *raftdata.HardState, ents []raftdata.Entry) error {
	err := s.Storage.Save(ctx, hs, ents)
	if err != nil {
		s.Failed.Add(1)
	}
	return err
}
