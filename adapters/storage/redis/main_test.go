package redis_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/raftkit/raftkit/adapters/storage/redis"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/storagetest"
)

// shared is the durable server most tests use, started once per process.
var shared struct{ srv *redisServer }

// nextNode hands each store of the process its own node ID.
var nextNode atomic.Uint64

// exitFatal reports a failure outside any test and exits.
type exitFatal struct{}

func (exitFatal) Helper() {}

func (exitFatal) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "redis tests: "+format+"\n", args...)
	os.Exit(1)
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "raftkit-redis-")
	if err != nil {
		exitFatal{}.Fatalf("%v", err)
	}
	shared.srv = newRedis(exitFatal{}, dir, durableSettings...)
	code := m.Run()
	shared.srv.stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t testing.TB, opts redis.Config) *redis.Storage {
	t.Helper()
	if opts.Client == nil && opts.Redis == nil {
		opts.Redis = &goredis.UniversalOptions{Addrs: []string{shared.srv.addr()}}
	}
	s, err := redis.Open(ctxT(t), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// factory gives every store a fresh node ID in group 7; Reopen opens the
// same node again.
var factory = storagetest.FactoryFuncs{
	NewFunc: func(t testing.TB) raft.Storage {
		return openStore(t, redis.Config{Group: 7, Node: raftdata.NodeID(nextNode.Add(1)), ChunkBytes: 4096})
	},
	ReopenFunc: func(t testing.TB, s raft.Storage) raft.Storage {
		rs := s.(*redis.Storage)
		if err := rs.Close(); err != nil {
			t.Fatal(err)
		}
		return openStore(t, redis.Config{Group: rs.Group(), Node: rs.Node(), ChunkBytes: 4096})
	},
}

func TestConformance(t *testing.T) { storagetest.Run(t, factory) }

func BenchmarkConformance(b *testing.B) { storagetest.Bench(b, factory) }
