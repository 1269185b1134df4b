package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
	"github.com/raftkit/raftkit/raft/session"
)

// ledger is the application's state machine: each command is an amount
// (a decimal integer) added to a balance, and its result is the new
// balance. It knows nothing of sessions.
type ledger struct {
	mu      sync.Mutex // guards balance against readers outside Apply
	balance int64
}

// Apply adds each amount to the balance. A command that does not parse
// fails alone: its result is the error.
func (l *ledger) Apply(entries []raftdata.Entry, results []any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range entries {
		v, err := strconv.ParseInt(string(e.Data), 10, 64)
		if err != nil {
			results[i] = err
			continue
		}
		l.balance += v
		results[i] = l.balance // an int64: session.DefaultCodec can record it
	}
	return nil
}

// Snapshot captures the balance.
func (l *ledger) Snapshot() (raft.Snapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ledgerSnapshot(l.balance), nil
}

// Restore replaces the balance with a snapshot's.
func (l *ledger) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.balance = v
	l.mu.Unlock()
	return nil
}

// Balance reads the state, as the application's read path would.
func (l *ledger) Balance() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.balance
}

// ledgerSnapshot is a point-in-time copy of the balance.
type ledgerSnapshot int64

func (s ledgerSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := io.WriteString(w, strconv.FormatInt(int64(s), 10))
	return int64(n), err
}

func (ledgerSnapshot) Release() {}

// Example retries a command whose answer was lost. Without sessions the
// retry would deposit twice; with them the Machine applies the command
// once and answers the retry with the result it recorded (Raft paper §8).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The node's state machine is the application's, wrapped.
	app := &ledger{}
	node, stop, err := startNode(ctx, session.Wrap(app, session.Config{}))
	if err != nil {
		fmt.Println("start:", err)
		return
	}
	defer stop()

	// A client has an ID unique among the machine's clients (a random
	// 64-bit number will do) and numbers its commands.
	client := session.NewClient(0x9e3779b97f4a7c15)
	cmd := client.Next([]byte("100"))

	res, err := node.Propose(ctx, cmd)
	fmt.Println("first attempt:", res, err)

	// Suppose the answer never reached the client (a timeout, a leader
	// crash): it cannot tell whether the deposit happened, so it sends
	// the same bytes again. It must not call Next for a retry.
	res, err = node.Propose(ctx, cmd)
	fmt.Println("retry:", res, err)
	fmt.Println("balance:", app.Balance())

	// The next command gets the next serial.
	res, err = node.Propose(ctx, client.Next([]byte("50")))
	fmt.Println("next command:", res, err)

	// Once a newer command was sent, the old one's result is gone: a
	// late retry of it is refused, not applied.
	res, _ = node.Propose(ctx, cmd)
	resErr, _ := res.(error)
	fmt.Println("stale retry refused:", errors.Is(resErr, session.ErrStale))
	fmt.Println("balance:", app.Balance())

	// Output:
	// first attempt: 100 <nil>
	// retry: 100 <nil>
	// balance: 100
	// next command: 150 <nil>
	// stale retry refused: true
	// balance: 150
}

// startNode starts a one-node cluster running sm and waits until it leads.
func startNode(ctx context.Context, sm raft.StateMachine) (*raft.Node, func(), error) {
	net := rafttest.NewNetwork()
	store := memory.New()
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
		return nil, nil, err
	}
	stop := func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = node.Stop(sctx)
		net.Close()
		_ = store.Close()
	}
	if err := node.Initialize(ctx, []raftdata.Member{{ID: 1, Addr: "node-1"}}); err != nil {
		stop()
		return nil, nil, err
	}
	for node.Role() != raftdata.RoleLeader {
		select {
		case <-ctx.Done():
			stop()
			return nil, nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return node, stop, nil
}
