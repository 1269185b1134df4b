package rafttest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// TestRuntimeLinearizable runs the simulator's KV workload against real
// raft.Node runtimes (goroutines, timers) over the faulty in-memory network,
// with partitions, message loss, duplication and delay, crashes with
// restarts and leadership transfers, and checks the history with porcupine.
func TestRuntimeLinearizable(t *testing.T) {
	for _, seed := range []int64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runtimeLinearizable(t, seed) })
	}
}

func runtimeLinearizable(t *testing.T, seed int64) {
	c := NewCluster(t, 5, ClusterConfig{Seed: seed, KV: true, Configure: func(cfg *raft.Config) { cfg.LeaseReads = true }})
	c.WaitLeader(10 * time.Second)
	var h History
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for client := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtimeClient(c, &h, client, seed, now, stop)
		}()
	}
	faults := rand.New(rand.NewPCG(uint64(seed), 99))
	down := map[raftdata.NodeID]bool{}
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(150+faults.IntN(350)) * time.Millisecond)
		id := raftdata.NodeID(1 + faults.IntN(5))
		switch k := faults.IntN(10); {
		case k < 2:
			c.Net.Heal()
			c.Net.Isolate(id)
		case k < 3:
			c.Net.Partition([]raftdata.NodeID{1, 2}, []raftdata.NodeID{3, 4, 5})
		case k < 4:
			c.Net.SetLinkFaults(0, 0, LinkFaults{DropRate: 0.1, DuplicateRate: 0.1, MaxDelay: 5 * time.Millisecond})
		case k < 6:
			c.Net.Heal()
		case k < 7:
			if len(down) < 2 && !down[id] {
				c.Crash(id)
				down[id] = true
			}
		case k < 9:
			for d := range down {
				c.Restart(d)
				delete(down, d)
				break
			}
		default:
			if l := c.Leader(); l != 0 {
				if n := c.Node(l); n != nil {
					ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
					_ = n.TransferLeadership(ctx, 0)
					cancel()
				}
			}
		}
	}
	c.Net.Heal()
	for d := range down {
		c.Restart(d)
	}
	close(stop)
	wg.Wait()
	c.WaitConverged(20 * time.Second)
	res := h.Check(time.Minute)
	if !res.OK {
		t.Fatalf("history of %d operations is not linearizable (timed out: %v)", res.Ops, res.TimedOut)
	}
	t.Logf("%d operations linearizable", res.Ops)
	if res.Ops < 200 {
		t.Fatalf("only %d operations completed", res.Ops)
	}
}

func runtimeClient(c *Cluster, h *History, client int, seed int64, now func() int64, stop <-chan struct{}) {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(client)))
	for seq := 1; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		op := RandomKVOp(r, client, seq)
		id := c.Leader()
		if id == 0 {
			id = raftdata.NodeID(1 + r.IntN(5))
		}
		n, kv := c.Node(id), c.KV(id)
		if n == nil || kv == nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		call := now()
		var res any
		var err error
		if op.Kind == KVGet {
			if r.IntN(2) == 0 {
				_, err = n.ReadIndex(ctx)
			} else {
				_, err = n.LeaseRead(ctx)
			}
		} else {
			res, err = n.Propose(ctx, op.Encode())
		}
		cancel()
		switch {
		case err == nil:
			out := KVResult{}
			switch op.Kind {
			case KVGet:
				out.Value = kv.Get(op.Key)
			case KVCAS:
				out.Swapped = res.(bool)
			}
			h.Record(client, op, call, now(), out)
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrProposalDropped),
			errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrTransferInProgress),
			errors.Is(err, raft.ErrProposalTooLarge):
			// Not appended or not served: nothing happened.
		default:
			h.RecordUnknown(client, op, call)
		}
	}
}
