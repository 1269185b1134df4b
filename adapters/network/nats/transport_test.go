package nats_test

import (
	"context"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	rknats "github.com/raftkit/raftkit/adapters/network/nats"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// inbox is a raft.Handler that keeps what it receives.
type inbox struct {
	mu   sync.Mutex
	msgs []raftdata.Message
}

func (in *inbox) Step(_ context.Context, msgs []raftdata.Message) error {
	in.mu.Lock()
	in.msgs = append(in.msgs, msgs...)
	in.mu.Unlock()
	return nil
}

func (in *inbox) has(index uint64) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range in.msgs {
		if m.Index == index {
			return true
		}
	}
	return false
}

func startTransport(t *testing.T, url string, id raftdata.NodeID, h raft.Handler) *rknats.Transport {
	t.Helper()
	tr, err := rknats.New(context.Background(), rknats.Config{ClusterID: 5, ID: id, URL: url, Prefix: testPrefix,
		Options: []natsgo.Option{natsgo.ReconnectWait(20 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	return tr
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func heartbeat(from, to raftdata.NodeID, index uint64) raftdata.Message {
	return raftdata.Message{Type: raftdata.MsgApp, From: from, To: to, Term: 1, Index: index}
}

// TestOversizedMessageIsDroppedAndCounted: a Raft message that cannot fit
// one NATS message is dropped, counted and logged, never silently lost,
// and the rest of the batch goes through.
func TestOversizedMessageIsDroppedAndCounted(t *testing.T) {
	url := embedded(t, 0).ClientURL()
	in := &inbox{}
	a := startTransport(t, url, 1, &inbox{})
	startTransport(t, url, 2, in)
	huge := heartbeat(1, 2, 7)
	huge.Entries = []raftdata.Entry{{Index: 8, Term: 1, Data: make([]byte, a.MaxMessageBytes()+1)}}
	before := a.Stats().Dropped
	a.Send([]raftdata.Message{heartbeat(1, 2, 1), huge, heartbeat(1, 2, 2)})
	if !waitFor(5*time.Second, func() bool { return in.has(1) && in.has(2) }) {
		t.Fatal("the messages around the oversized one did not arrive")
	}
	if in.has(7) {
		t.Fatal("the oversized message arrived")
	}
	if got := a.Stats().Dropped - before; got != 1 {
		t.Fatalf("Dropped grew by %d, want 1", got)
	}
}

// TestNoStaleMessagesAfterReconnect: what is sent while the server is down
// is dropped and counted, not buffered and delivered late.
func TestNoStaleMessagesAfterReconnect(t *testing.T) {
	srv := embedded(t, 0)
	url := srv.ClientURL()
	in := &inbox{}
	a := startTransport(t, url, 1, &inbox{})
	startTransport(t, url, 2, in)
	a.Send([]raftdata.Message{heartbeat(1, 2, 1)})
	if !waitFor(5*time.Second, func() bool { return in.has(1) }) {
		t.Fatal("first message did not arrive")
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	// The client notices the loss when a write to the dead socket fails;
	// until then publishes go into its buffer, which the reconnect then
	// discards. Probe until a publish fails.
	probe := uint64(100)
	if !waitFor(10*time.Second, func() bool {
		before := a.Stats().Dropped
		a.Send([]raftdata.Message{heartbeat(1, 2, probe)})
		probe++
		return waitFor(50*time.Millisecond, func() bool { return a.Stats().Dropped > before })
	}) {
		t.Fatal("no publish failed while the server was down")
	}
	before := a.Stats().Dropped
	for i := uint64(1000); i < 1010; i++ {
		a.Send([]raftdata.Message{heartbeat(1, 2, i)})
	}
	if !waitFor(5*time.Second, func() bool { return a.Stats().Dropped-before == 10 }) {
		t.Fatalf("Dropped grew by %d while the client knew the server was down, want 10", a.Stats().Dropped-before)
	}
	restartOn(t, url)
	// Keep sending a marker until it arrives: both clients reconnected.
	if !waitFor(10*time.Second, func() bool { a.Send([]raftdata.Message{heartbeat(1, 2, 5000)}); return in.has(5000) }) {
		t.Fatal("no message arrived after the server came back")
	}
	time.Sleep(200 * time.Millisecond)
	for i := uint64(100); i < 1010; i++ {
		if in.has(i) {
			t.Fatalf("message %d sent while the server was down arrived after the reconnect", i)
		}
	}
	if a.Stats().Reconnects == 0 {
		t.Fatal("no reconnect counted")
	}
}
