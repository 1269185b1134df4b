package redis_test

import (
	"context"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/raftkit/raftkit/adapters/storage/redis"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/storagetest"
)

// twice runs every script command two times and answers with the second
// run, as the server sees it when go-redis retries a command whose reply
// was lost with its connection.
type twice struct{}

func (twice) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (twice) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		name := strings.ToLower(cmd.Name())
		if name != "evalsha" && name != "eval" {
			return next(ctx, cmd)
		}
		if err := next(ctx, cmd); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			return err // go-redis falls back to EVAL
		}
		return next(ctx, cmd)
	}
}

func (twice) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestConformanceScriptsRunTwice runs the conformance suite with every
// script executed twice: each change must be idempotent.
func TestConformanceScriptsRunTwice(t *testing.T) {
	newClient := func(t testing.TB) goredis.UniversalClient {
		c := goredis.NewClient(&goredis.Options{Addr: shared.srv.addr()})
		c.AddHook(twice{})
		return c
	}
	f := storagetest.FactoryFuncs{
		NewFunc: func(t testing.TB) raft.Storage {
			c := newClient(t)
			t.Cleanup(func() { _ = c.Close() })
			return openStore(t, redis.Config{Client: c, Group: 8, Node: raftdata.NodeID(nextNode.Add(1)), ChunkBytes: 4096})
		},
		ReopenFunc: func(t testing.TB, s raft.Storage) raft.Storage {
			rs := s.(*redis.Storage)
			if err := rs.Close(); err != nil {
				t.Fatal(err)
			}
			c := newClient(t)
			t.Cleanup(func() { _ = c.Close() })
			return openStore(t, redis.Config{Client: c, Group: rs.Group(), Node: rs.Node(), ChunkBytes: 4096})
		},
	}
	storagetest.Run(t, f)
}
