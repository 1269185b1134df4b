package raft_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/internal/simhook"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// TestLeaseReadAfterPauseIsNotStale holds a leader's goroutines (as SIGSTOP
// would) and cuts it off while the others elect a leader and acknowledge a
// write; then a lease read reaches it and it resumes. Its ticker dropped
// the ticks of the pause, so a leader that counted ticker wake-ups believed
// its lease still held and served the old value. It must not: the engine's
// time comes from the monotonic clock.
func TestLeaseReadAfterPauseIsNotStale(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{KV: true, Configure: func(cfg *raft.Config) { cfg.LeaseReads = true }})
	l := c.WaitLeader(waitLong)
	put := func(id raftdata.NodeID, v string) uint64 {
		t.Helper()
		f, err := c.Node(id).ProposeAsync(ctxT(t, waitLong), rafttest.KVOp{Kind: rafttest.KVPut, Key: "k", Value: v}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Wait(ctxT(t, waitLong)); err != nil {
			t.Fatalf("put %s on %d: %v", v, id, err)
		}
		return f.Index()
	}
	put(l, "old")
	if _, err := c.Node(l).LeaseRead(ctxT(t, waitLong)); err != nil {
		t.Fatalf("lease read before the pause: %v", err)
	}

	release := simhook.Hold(c.Node(l))
	defer func() {
		if release != nil {
			release()
		}
	}()
	c.Net.Isolate(l)
	var others []raftdata.NodeID
	for _, id := range c.IDs() {
		if id != l {
			others = append(others, id)
		}
	}
	nl := c.WaitLeader(waitLong, others...)
	newIdx := put(nl, "new")

	// A client's lease read arrives while the old leader is stopped; the
	// old leader resumes still cut off from the others.
	type answer struct {
		idx uint64
		err error
	}
	got := make(chan answer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		idx, err := c.Node(l).LeaseRead(ctx)
		got <- answer{idx, err}
	}()
	time.Sleep(20 * time.Millisecond) // lets the read reach the held node (either order is tested: a read after the release must fail too)
	release()
	release = nil
	a := <-got
	if a.err == nil {
		v := c.KV(l).Get("k")
		t.Fatalf("resumed leader served a lease read at index %d (value %q) after node %d acknowledged %q at index %d", a.idx, v, nl, "new", newIdx)
	}
	if !errors.Is(a.err, raft.ErrLeadershipLost) && !errors.Is(a.err, context.DeadlineExceeded) && !errors.Is(a.err, raft.ErrNotLeader) {
		t.Fatalf("lease read on the resumed, cut-off leader: %v", a.err)
	}
	c.Net.Heal()
	c.WaitConverged(waitLong)
}

// TestInitializeReturnsOnceDurable: Initialize promises that the first
// configuration is durable when it returns. Its notification used to be
// queued before the write that carries entry 1, and the persister could
// answer it alone, with nothing saved (about 8 runs in 100).
func TestInitializeReturnsOnceDurable(t *testing.T) {
	for i := range 100 {
		store := memory.New()
		net := rafttest.NewNetwork()
		n, err := raft.NewNode(context.Background(), raft.Config{
			ID: 1, Storage: store, Network: net.Endpoint(1), StateMachine: rafttest.NewRecorder(),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Initialize(ctxT(t, waitLong), []raftdata.Member{{ID: 1, Addr: "n1"}}); err != nil {
			t.Fatalf("run %d: Initialize: %v", i, err)
		}
		st, err := store.InitialState(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.LastIndex < 1 {
			t.Fatalf("run %d: Initialize returned with the configuration entry not stored (last index %d)", i, st.LastIndex)
		}
		if err := n.Stop(ctxT(t, waitLong)); err != nil {
			t.Fatal(err)
		}
		net.Close()
	}
}
