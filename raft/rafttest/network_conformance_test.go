package rafttest_test

import (
	"sync"
	"testing"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/networktest"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// memoryFactory opens endpoints of in-memory Networks, one per cluster ID.
func memoryFactory(t testing.TB) networktest.Opener {
	var mu sync.Mutex
	nets := map[uint64]*rafttest.Network{}
	t.Cleanup(func() {
		for _, n := range nets {
			n.Close()
		}
	})
	return func(o networktest.Config) (raft.Network, string, error) {
		mu.Lock()
		defer mu.Unlock()
		n := nets[o.ClusterID]
		if n == nil {
			n = rafttest.NewNetwork()
			nets[o.ClusterID] = n
		}
		return n.Endpoint(o.ID), "mem", nil
	}
}

func TestNetworkConformance(t *testing.T) { networktest.Run(t, memoryFactory) }

func BenchmarkNetwork(b *testing.B) { networktest.Bench(b, memoryFactory) }
