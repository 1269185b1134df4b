package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/raftkit/raftkit/adapters/storage/postgres"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// ExampleOpen opens node 3's log of group 1 in PostgreSQL and gives it to a
// node. It needs a server, so it is compiled but not run.
//
// Open refuses a server with fsync, synchronous_commit or
// full_page_writes off: with any of them PostgreSQL may acknowledge a
// commit that a crash undoes, and a Raft node that forgets a vote or an
// entry it acknowledged can elect two leaders in one term or lose a
// committed write (Raft paper §5.2, §5.4).
func ExampleOpen() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	store, err := postgres.Open(ctx, postgres.Config{
		// A pgx connection string: URL or key=value form. The store makes
		// a pool from it and closes it on Close.
		DSN: "postgres://raft@db1.internal:5432/raft?sslmode=verify-full",
		// Rows are keyed by group and node, so any number of groups and
		// nodes share one schema. Node must equal raft.Config.ID.
		Group: 1,
		Node:  3,
		// Schema defaults to "raftkit".
	})
	switch {
	case errors.Is(err, postgres.ErrUnsafeDurability):
		log.Fatalf("fix the server's settings: %v", err)
	case err != nil:
		log.Fatal(err) // ErrSchemaVersion, raft.ErrInvalidArgument or the pgx error
	}
	defer store.Close() // deferred first, so it runs after the node stops

	node, err := raft.NewNode(ctx, raft.Config{
		ID:      store.Node(),
		Group:   store.Group(),
		Storage: store,
		// Network and StateMachine (required) as for any node.
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Stop(context.Background())
	fmt.Println("node", node.ID(), "started")
}

// ExampleOpen_pool shares one pgx pool between the stores of several Raft
// groups in a process. The stores do not close a pool they were given.
func ExampleOpen_pool() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://raft@db1.internal:5432/raft?pool_max_conns=16")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	for group := raftdata.GroupID(1); group <= 3; group++ {
		store, err := postgres.Open(ctx, postgres.Config{Pool: pool, Group: group, Node: 3, Schema: "raft"})
		if err != nil {
			log.Fatal(err)
		}
		defer store.Close()
		// ... one raft.Node per group, each with Group: group.
	}
}
