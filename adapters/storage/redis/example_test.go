package redis_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/raftkit/raftkit/adapters/storage/redis"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// ExampleOpen opens node 3's log of group 1 in Redis and gives it to a
// node. It needs a server, so it is compiled but not run.
//
// Redis acknowledges a write before it is on disk unless the server runs
// with
//
//	appendonly yes
//	appendfsync always
//	maxmemory-policy noeviction
//
// and Open refuses a server without them (ErrUnsafeDurability), or whose
// settings it cannot read because CONFIG is disabled. A Raft node that
// forgets a vote or an entry it acknowledged can elect two leaders in one
// term or lose a committed write (Raft paper §5.2, §5.4). AllowUnsafeDurability
// skips the check: for tests only.
func ExampleOpen() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	store, err := redis.Open(ctx, redis.Config{
		// Config for a client the store creates and closes; every go-redis
		// option applies (two or more addresses mean Redis Cluster).
		Redis: &goredis.UniversalOptions{
			Addrs:     []string{"redis1.internal:6379"},
			Username:  "raft",
			Password:  os.Getenv("REDIS_PASSWORD"),
			TLSConfig: &tls.Config{ServerName: "redis1.internal"},
		},
		// Keys carry the group and node under one hash tag, so any number
		// of groups and nodes share one Redis. Node must equal
		// raft.Config.ID.
		Group: 1,
		Node:  3,
	})
	switch {
	case errors.Is(err, redis.ErrUnsafeDurability):
		log.Fatalf("fix the server's settings: %v", err)
	case err != nil:
		log.Fatal(err) // ErrLayoutVersion, raft.ErrInvalidArgument or the go-redis error
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

// ExampleOpen_client shares one go-redis client between the stores of
// several Raft groups. The stores do not close a client they were given.
// A *goredis.Ring is refused: it moves a shard's keys elsewhere while the
// shard is down.
func ExampleOpen_client() {
	ctx := context.Background()
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs: []string{"redis1.internal:6379", "redis2.internal:6379", "redis3.internal:6379"},
	})
	defer rdb.Close()

	for group := raftdata.GroupID(1); group <= 3; group++ {
		store, err := redis.Open(ctx, redis.Config{Client: rdb, Group: group, Node: 3, Prefix: "payments"})
		if err != nil {
			log.Fatal(err)
		}
		defer store.Close()
		// ... one raft.Node per group, each with Group: group.
	}
}
