package disk_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/disk"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// ExampleOpen runs a one-node cluster on a disk store, then restarts the
// node on the same directory: the log survived, and the node applies the
// committed commands again to a fresh state machine.
func ExampleOpen() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	base, err := os.MkdirTemp("", "raftkit-disk-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(base)
	dir := filepath.Join(base, "node-1") // Open creates it

	store, err := disk.Open(context.Background(), dir, disk.Config{})
	if err != nil {
		fmt.Println("open:", err)
		return
	}
	// The directory is locked while a store has it open, so that two
	// processes configured with the same directory cannot both write.
	_, err = disk.Open(context.Background(), dir, disk.Config{})
	fmt.Println("second open locked out:", errors.Is(err, disk.ErrLocked))

	// First run: form a cluster of one and commit two commands.
	// rafttest.Recorder is a state machine that records what it applies.
	first := rafttest.NewRecorder()
	if err := run(ctx, store, first, true, "a", "b"); err != nil {
		fmt.Println("first run:", err)
		return
	}
	_ = store.Close() // the node never closes its storage

	// Second run: the same directory, a new state machine.
	store, err = disk.Open(context.Background(), dir, disk.Config{})
	if err != nil {
		fmt.Println("reopen:", err)
		return
	}
	defer store.Close()
	st, err := store.InitialState(ctx)
	if err != nil {
		fmt.Println("initial state:", err)
		return
	}
	fmt.Println("log survived:", st.LastIndex > 0)

	again := rafttest.NewRecorder()
	if err := run(ctx, store, again, false); err != nil {
		fmt.Println("second run:", err)
		return
	}
	for _, e := range again.Applied() {
		fmt.Printf("applied again: %s\n", e.Data)
	}

	// Output:
	// second open locked out: true
	// log survived: true
	// applied again: a
	// applied again: b
}

// run starts node 1 on store, initializes it on its first run, waits until
// it leads and has applied every committed entry, proposes cmds, and stops
// it.
func run(ctx context.Context, store raft.Storage, sm *rafttest.Recorder, first bool, cmds ...string) error {
	net := rafttest.NewNetwork()
	defer net.Close()
	node, err := raft.NewNode(ctx, raft.Config{
		ID:                1,
		Storage:           store,
		Network:           net.Endpoint(1),
		StateMachine:      sm,
		HeartbeatInterval: 10 * time.Millisecond,
		ElectionTimeout:   100 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = node.Stop(sctx)
	}()
	if first {
		if err := node.Initialize(ctx, []raftdata.Member{{ID: 1, Addr: "node-1"}}); err != nil {
			return err
		}
	}
	// ReadIndex succeeds once the node leads and has applied everything
	// committed, including entries from before a restart.
	for {
		_, err := node.ReadIndex(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, raft.ErrNotLeader) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	for _, cmd := range cmds {
		if _, err := node.Propose(ctx, []byte(cmd)); err != nil {
			return err
		}
	}
	return nil
}
