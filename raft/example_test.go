package raft_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// counter is a tiny replicated state machine: each command is a decimal
// integer added to a running total, and each command's result is the new
// total.
type counter struct {
	mu    sync.Mutex // guards total against readers outside the apply goroutine
	total int64
}

// Apply adds each command to the total. A command that does not parse is a
// per-command failure: its result is the error, and the machine goes on.
func (c *counter) Apply(entries []raft.Entry, results []any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range entries {
		v, err := strconv.ParseInt(string(e.Data), 10, 64)
		if err != nil {
			results[i] = fmt.Errorf("bad command %q: %w", e.Data, err)
			continue
		}
		c.total += v
		results[i] = c.total
	}
	return nil
}

// Snapshot captures the total; the value is copied, so Apply may go on
// while the snapshot is written out.
func (c *counter) Snapshot() (raft.Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return counterSnapshot{total: c.total}, nil
}

// Restore replaces the total with the one a snapshot wrote.
func (c *counter) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("counter snapshot: %w", err)
	}
	c.mu.Lock()
	c.total = v
	c.mu.Unlock()
	return nil
}

// Total reads the state, as an application's read path would.
func (c *counter) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// counterSnapshot is a point-in-time view of a counter.
type counterSnapshot struct{ total int64 }

func (s counterSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := io.WriteString(w, strconv.FormatInt(s.total, 10))
	return int64(n), err
}

func (s counterSnapshot) Release() {}

// startSingleNode starts node 1 alone as a one-member cluster, waits until
// it leads, and returns it with its state machine and a function that stops
// it and releases its storage and network.
func startSingleNode(ctx context.Context) (*raft.Node, *counter, func(), error) {
	net := rafttest.NewNetwork()
	store := memory.New()
	sm := &counter{}
	node, err := raft.NewNode(ctx, raft.Config{
		ID:                1,
		Storage:           store,
		Network:           net.Endpoint(1),
		StateMachine:      sm,
		HeartbeatInterval: 10 * time.Millisecond,
		ElectionTimeout:   100 * time.Millisecond,
	})
	if err != nil {
		net.Close()
		return nil, nil, nil, err
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = node.Stop(sctx) // Stop leaves the Storage and Network to their owner.
		net.Close()
		_ = store.Close()
	}
	// A brand-new node has no configuration: form a cluster of one.
	if err := node.Initialize(ctx, []raft.Member{{ID: 1, Addr: "node-1"}}); err != nil {
		stop()
		return nil, nil, nil, err
	}
	// The node elects itself after one election timeout.
	deadline := time.Now().Add(5 * time.Second)
	for node.Role() != raft.RoleLeader {
		if time.Now().After(deadline) {
			stop()
			return nil, nil, nil, errors.New("no leader within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return node, sm, stop, nil
}

// Example embeds a Node in a program: a one-node cluster on memory storage
// and the in-memory test network, driving a counter state machine.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	node, sm, stop, err := startSingleNode(ctx)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer stop()

	// Propose returns once the command is committed and applied, with the
	// state machine's result for it.
	for _, cmd := range []string{"5", "10", "-3", "oops"} {
		res, err := node.Propose(ctx, []byte(cmd))
		if err != nil {
			fmt.Println("propose:", err)
			return
		}
		fmt.Printf("add %s -> %v\n", cmd, res)
	}

	// A linearizable read: confirm leadership, wait until the state machine
	// has caught up, then read it directly.
	if _, err := node.ReadIndex(ctx); err != nil {
		fmt.Println("read:", err)
		return
	}
	fmt.Println("total:", sm.Total())

	// Output:
	// add 5 -> 5
	// add 10 -> 15
	// add -3 -> 12
	// add oops -> bad command "oops": strconv.ParseInt: parsing "oops": invalid syntax
	// total: 12
}

// ExampleNode_ProposeOrForward shows the shape of a ForwardFunc. On the
// leader, ProposeOrForward proposes locally and forward is not called; on a
// follower it is called with the leader this node knows of, and would send
// the command through the application's own RPC.
func ExampleNode_ProposeOrForward() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	node, _, stop, err := startSingleNode(ctx)
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer stop()

	forwarded := false
	forward := func(ctx context.Context, leader raft.Member, cmd []byte) (any, error) {
		forwarded = true
		// A real application calls the leader's service at leader.Addr here
		// and returns its result, and its error as is (so that a
		// raft.ErrNotLeader from a deposed leader is retried).
		return nil, fmt.Errorf("no RPC in this example (leader %d at %q)", leader.ID, leader.Addr)
	}

	res, err := node.ProposeOrForward(ctx, []byte("42"), forward)
	if err != nil {
		fmt.Println("propose:", err)
		return
	}
	fmt.Println("result:", res)
	fmt.Println("forwarded:", forwarded)

	// Output:
	// result: 42
	// forwarded: false
}

// ExampleNotLeaderError shows how a caller finds the leader to retry with
// when a call reaches a node that does not lead.
func ExampleNotLeaderError() {
	// Calls such as Propose and ReadIndex on a follower return an error
	// like this one, possibly wrapped by the application.
	err := fmt.Errorf("put x: %w", &raft.NotLeaderError{LeaderID: 2, LeaderAddr: "10.0.0.2:7000"})

	fmt.Println(err)
	fmt.Println("not leader:", errors.Is(err, raft.ErrNotLeader))

	var nl *raft.NotLeaderError
	if errors.As(err, &nl) && nl.LeaderID != 0 {
		fmt.Printf("retry on node %d at %s\n", nl.LeaderID, nl.LeaderAddr)
	}

	// Output:
	// put x: raft: not the leader (leader is 2 at "10.0.0.2:7000")
	// not leader: true
	// retry on node 2 at 10.0.0.2:7000
}
