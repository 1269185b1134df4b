package raft_test

import (
	"errors"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// bounded is a network that carries messages of at most limit bytes.
type bounded struct {
	raft.Network
	limit int
}

func (b bounded) MaxMessageBytes() int { return b.limit }

// TestBoundedNetworkSizesMessages: defaults shrink to fit the network's
// limit, explicit values that do not fit are refused.
func TestBoundedNetworkSizesMessages(t *testing.T) {
	const limit = 600 << 10
	nw := rafttest.NewNetwork()
	defer nw.Close()
	cfg := func() raft.Config {
		return raft.Config{
			ID: 1, Storage: memory.New(), Network: bounded{nw.Endpoint(1), limit}, StateMachine: &counter{},
			HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		}
	}
	for name, set := range map[string]func(*raft.Config){
		"MaxAppendBytes":     func(c *raft.Config) { c.MaxAppendBytes = limit },
		"MaxEntryBytes":      func(c *raft.Config) { c.MaxEntryBytes = limit - 100 },
		"SnapshotChunkBytes": func(c *raft.Config) { c.SnapshotChunkBytes = limit - 1000 },
	} {
		c := cfg()
		c.SnapshotChunkBytes = min(c.SnapshotChunkBytes, raft.MaxSnapshotChunkBytes)
		set(&c)
		if c.SnapshotChunkBytes > raft.MaxSnapshotChunkBytes {
			continue // refused for another reason
		}
		if _, err := raft.NewNode(ctxT(t, waitLong), c); !errors.Is(err, raft.ErrBadConfig) {
			t.Errorf("explicit %s over the network's limit: %v, want ErrBadConfig", name, err)
		}
	}

	node, err := raft.NewNode(ctxT(t, waitLong), cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = node.Stop(ctxT(t, waitLong)) }()
	if err := node.Initialize(ctxT(t, waitLong), []raftdata.Member{{ID: 1, Addr: "node-1"}}); err != nil {
		t.Fatal(err)
	}
	for node.Role() != raftdata.RoleLeader {
		time.Sleep(5 * time.Millisecond)
	}
	// The default MaxEntryBytes (1 MiB) shrank below the limit.
	if _, err := node.Propose(ctxT(t, waitLong), make([]byte, limit-1000)); !errors.Is(err, raft.ErrProposalTooLarge) {
		t.Fatalf("proposal near the network's limit: %v, want ErrProposalTooLarge", err)
	}
	if _, err := node.Propose(ctxT(t, waitLong), []byte("7")); err != nil {
		t.Fatalf("small proposal: %v", err)
	}
}
