package raft_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

var errSaveFailed = errors.New("injected save failure")

// flakySaves is a memory store whose Saves can be made to fail and which
// says whether the node may call Save on its loop (raft.InlineSaver).
type flakySaves struct {
	*memory.Storage
	inline bool
	fail   atomic.Int32 // Saves still to fail
	saves  atomic.Int64
}

func (s *flakySaves) SaveInline() bool { return s.inline }

func (s *flakySaves) Save(ctx context.Context, hs *raftdata.HardState, ents []raftdata.Entry) error {
	s.saves.Add(1)
	if s.fail.Add(-1) >= 0 {
		return errSaveFailed
	}
	return s.Storage.Save(ctx, hs, ents)
}

// TestFailedSavesAreRetriedInOrder checks both write paths (on the loop for
// an InlineSaver, on the write goroutine otherwise): a Save that fails is
// retried until it succeeds, every command is applied once and in order,
// and the log holds each exactly once.
func TestFailedSavesAreRetriedInOrder(t *testing.T) {
	for _, inline := range []bool{true, false} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			ctx := ctxT(t, waitLong)
			store := &flakySaves{Storage: memory.New(), inline: inline}
			nw := rafttest.NewNetwork()
			defer nw.Close()
			sm := &counter{}
			node, err := raft.NewNode(ctx, raft.Config{
				ID: 1, Storage: store, Network: nw.Endpoint(1), StateMachine: sm,
				HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = node.Stop(ctxT(t, waitLong)) }()
			if err := node.Initialize(ctx, []raftdata.Member{{ID: 1, Addr: "node-1"}}); err != nil {
				t.Fatal(err)
			}
			for node.Role() != raftdata.RoleLeader {
				if ctx.Err() != nil {
					t.Fatal("no leader")
				}
				time.Sleep(5 * time.Millisecond)
			}
			const n = 30
			for i := 1; i <= n; i++ {
				if i == 10 || i == 20 {
					store.fail.Store(3)
				}
				res, err := node.Propose(ctx, []byte("1"))
				if err != nil {
					t.Fatalf("propose %d: %v", i, err)
				}
				if res != int64(i) {
					t.Fatalf("propose %d: total %v, want %d (a command applied twice or lost)", i, res, i)
				}
			}
			if got := store.fail.Load(); got >= 0 {
				t.Fatalf("%d injected failures left unused", got+1)
			}
			var cmds int
			var last uint64
			for _, e := range store.AllEntries() {
				if e.Index != last+1 && last != 0 {
					t.Fatalf("log has a gap: %d after %d", e.Index, last)
				}
				last = e.Index
				if e.Type == raftdata.EntryNormal && string(e.Data) == "1" {
					cmds++
				}
			}
			if cmds != n {
				t.Fatalf("log holds %d commands, want %d", cmds, n)
			}
		})
	}
}
