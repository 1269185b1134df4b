package postgres_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/raftkit/raftkit/adapters/storage/postgres"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/storagetest"
)

// testDSN is the machine's shared PostgreSQL server (trust auth, database
// test); RAFTKIT_POSTGRES_DSN overrides it.
func testDSN() string {
	if d := os.Getenv("RAFTKIT_POSTGRES_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// testSchema is this test process's own schema, dropped at the end, so
// concurrent runs and earlier runs never meet.
var testSchema = fmt.Sprintf("raftkit_test_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000)

// nextNode hands each store of the process its own node ID.
var nextNode atomic.Uint64

func TestMain(m *testing.M) {
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if c, err := pgx.Connect(ctx, testDSN()); err == nil {
		_, _ = c.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{testSchema}.Sanitize()+` CASCADE`)
		_ = c.Close(ctx)
	}
	cancel()
	os.Exit(code)
}

// sharedPool returns a pool on the shared server, failing the test loudly
// when the server is not there: these tests never skip.
func sharedPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, testDSN())
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		t.Fatalf("PostgreSQL is required at %s (set RAFTKIT_POSTGRES_DSN to use another): %v", testDSN(), err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func openStore(t testing.TB, opts postgres.Config) *postgres.Storage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if opts.DSN == "" && opts.Pool == nil {
		opts.DSN = testDSN()
	}
	if opts.Schema == "" {
		opts.Schema = testSchema
	}
	s, err := postgres.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// factory gives every store a fresh node ID in group 7 of the test schema;
// Reopen opens the same node again.
var factory = storagetest.FactoryFuncs{
	NewFunc: func(t testing.TB) raft.Storage {
		return openStore(t, postgres.Config{Group: 7, Node: raftdata.NodeID(nextNode.Add(1)), ChunkBytes: 4096})
	},
	ReopenFunc: func(t testing.TB, s raft.Storage) raft.Storage {
		ps := s.(*postgres.Storage)
		if err := ps.Close(); err != nil {
			t.Fatal(err)
		}
		return openStore(t, postgres.Config{Group: ps.Group(), Node: ps.Node(), ChunkBytes: 4096})
	},
}

func TestConformance(t *testing.T) { storagetest.Run(t, factory) }

func BenchmarkConformance(b *testing.B) { storagetest.Bench(b, factory) }
