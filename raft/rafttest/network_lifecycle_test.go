package rafttest

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

func TestNetworkEndpointLifecycle(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	eps, recs := netTestCluster(t, net, 2)

	if ep := net.Endpoint(1); ep != eps[1] {
		t.Fatal("Endpoint of an open node returned a new endpoint")
	}
	if err := eps[1].Start(&netRecorder{}); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := eps[1].Start(nil); err == nil {
		t.Fatal("Start(nil) succeeded")
	}

	// A Step blocked on node 3 returns when node 3's endpoint closes.
	ep3 := net.Endpoint(3)
	stepDone := make(chan error, 1)
	entered := make(chan struct{})
	if err := ep3.Start(netStepFunc(func(ctx context.Context, msgs []raftdata.Message) error {
		close(entered)
		<-ctx.Done()
		stepDone <- ctx.Err()
		return raft.ErrStopped
	})); err != nil {
		t.Fatal(err)
	}
	eps[1].Send([]raftdata.Message{netMsg(1, 3, 0)})
	<-entered
	eps[1].Send([]raftdata.Message{netMsg(1, 3, 1), netMsg(1, 3, 2)}) // queued behind the blocked Step
	if err := ep3.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stepDone:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Step context error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Step still blocked after endpoint Close")
	}
	if err := ep3.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := ep3.Start(&netRecorder{}); err == nil {
		t.Fatal("Start on a closed endpoint succeeded")
	}
	netWaitQuiet(t, net)
	if s := net.Stats(); s.Dropped != 3 {
		t.Fatalf("stats %+v, want 3 dropped (1 by Step error, 2 discarded on Close)", s)
	}

	// Sends on a closed endpoint are no-ops; sends to it are dropped.
	if err := eps[2].Close(); err != nil {
		t.Fatal(err)
	}
	sent := net.Stats().Sent
	eps[2].Send([]raftdata.Message{netMsg(2, 1, 0)})
	eps[1].Send([]raftdata.Message{netMsg(1, 2, 0)})
	netWaitQuiet(t, net)
	if s := net.Stats(); s.Sent != sent+1 || s.Dropped != 4 || recs[1].count() != 0 {
		t.Fatalf("stats %+v after closing node 2", s)
	}

	// Reopen node 2: a fresh endpoint that works again.
	ep2 := net.Endpoint(2)
	if ep2 == eps[2] {
		t.Fatal("Endpoint after Close returned the closed endpoint")
	}
	rec2 := &netRecorder{}
	if err := ep2.Start(rec2); err != nil {
		t.Fatalf("Start after reopen: %v", err)
	}
	eps[1].Send([]raftdata.Message{netMsg(1, 2, 10)})
	ep2.Send([]raftdata.Message{netMsg(2, 1, 11)})
	netWaitQuiet(t, net)
	if rec2.count() != 1 || recs[1].count() != 1 || recs[2].count() != 0 {
		t.Fatalf("after reopen: new node 2 got %d, node 1 got %d, old node 2 got %d",
			rec2.count(), recs[1].count(), recs[2].count())
	}
}

// TestNetworkEndpointCloseDiscardsDelayed checks that a restarted node does
// not receive messages delayed before its restart.
func TestNetworkEndpointCloseDiscardsDelayed(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	eps, _ := netTestCluster(t, net, 2)
	net.SetLinkFaults(1, 2, LinkFaults{MinDelay: 50 * time.Millisecond, MaxDelay: 50 * time.Millisecond})
	eps[1].Send([]raftdata.Message{netMsg(1, 2, 0), netMsg(1, 2, 1)})
	time.Sleep(10 * time.Millisecond) // let the link goroutine hold them
	eps[2].Close()
	rec := &netRecorder{}
	if err := net.Endpoint(2).Start(rec); err != nil {
		t.Fatal(err)
	}
	netWaitQuiet(t, net)
	if rec.count() != 0 {
		t.Fatalf("restarted node got %d messages sent to its previous incarnation", rec.count())
	}
	if s := net.Stats(); s.Dropped != 2 {
		t.Fatalf("stats %+v, want 2 dropped", s)
	}
}

func netWaitGoroutines(t *testing.T, max int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= max {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines remain, want at most %d:\n%s", n, max, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNetworkCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	net := NewNetwork()
	eps, _ := netTestCluster(t, net, 4)

	// A handler that blocks until its context ends.
	blocked := make(chan struct{}, 1)
	ep5 := net.Endpoint(5)
	if err := ep5.Start(netStepFunc(func(ctx context.Context, msgs []raftdata.Message) error {
		select {
		case blocked <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		netSendAll(t, net, eps, uint64(i))
		ep5.Send([]raftdata.Message{netMsg(5, 1, 0)})
	}
	net.SetLinkFaults(3, 0, LinkFaults{MinDelay: time.Hour, MaxDelay: time.Hour})
	eps[3].Send([]raftdata.Message{netMsg(3, 1, 0), netMsg(3, 2, 0)}) // held for an hour
	eps[1].Send([]raftdata.Message{netMsg(1, 5, 0), netMsg(1, 5, 1)})
	<-blocked
	if runtime.NumGoroutine() < before+4*3 {
		t.Fatalf("expected link goroutines to be running, have %d (before %d)", runtime.NumGoroutine(), before)
	}

	done := make(chan struct{})
	go func() { net.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
	net.Close() // idempotent
	netWaitGoroutines(t, before+2)

	// After Close: no-ops and errors, no new goroutines.
	eps[1].Send([]raftdata.Message{netMsg(1, 2, 0)})
	if err := net.Endpoint(9).Start(&netRecorder{}); !errors.Is(err, ErrNetworkClosed) {
		t.Fatalf("Start after Close = %v, want ErrNetworkClosed", err)
	}
	net.Endpoint(9).Send([]raftdata.Message{netMsg(9, 1, 0)})
	netWaitGoroutines(t, before+2)
}

func TestNetworkConcurrentSenders(t *testing.T) {
	net := NewNetwork(WithSeed(11), WithQueueLimit(512))
	defer net.Close()
	const nodes = 4
	eps, recs := netTestCluster(t, net, nodes)

	stop := make(chan struct{})
	var faults sync.WaitGroup
	faults.Add(1)
	go func() { // flip faults while traffic flows
		defer faults.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			switch i % 6 {
			case 0:
				net.Partition([]raftdata.NodeID{1, 2}, []raftdata.NodeID{3, 4})
			case 1:
				net.SetLinkFaults(0, 0, LinkFaults{DropRate: 0.1, DuplicateRate: 0.1, MaxDelay: time.Millisecond})
			case 2:
				net.Isolate(raftdata.NodeID(i%nodes + 1))
			case 3:
				net.Cut(2, 0)
			case 4:
				_ = net.Stats()
			case 5:
				net.Heal()
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()

	var senders sync.WaitGroup
	for from := 1; from <= nodes; from++ {
		for g := 0; g < 2; g++ {
			senders.Add(1)
			go func(from, g int) {
				defer senders.Done()
				for i := 0; i < 300; i++ {
					var msgs []raftdata.Message
					for to := 1; to <= nodes; to++ {
						if to != from {
							msgs = append(msgs, netMsg(raftdata.NodeID(from), raftdata.NodeID(to), uint64(g*1000+i)))
						}
					}
					eps[from].Send(msgs)
					if i%50 == 0 {
						eps[from].SetPeers([]raftdata.Member{{ID: raftdata.NodeID(from)}})
					}
				}
			}(from, g)
		}
	}
	senders.Wait()
	close(stop)
	faults.Wait()
	net.Heal()
	netWaitQuiet(t, net)

	s := net.Stats()
	if want := uint64(nodes * 2 * 300 * (nodes - 1)); s.Sent != want {
		t.Fatalf("sent %d, want %d", s.Sent, want)
	}
	total := 0
	for i := 1; i <= nodes; i++ {
		for _, m := range recs[i].received() {
			if m.To != raftdata.NodeID(i) {
				t.Fatalf("node %d got a message for %d", i, m.To)
			}
		}
		total += recs[i].count()
	}
	if uint64(total) != s.Delivered {
		t.Fatalf("handlers got %d messages, Delivered = %d", total, s.Delivered)
	}
	t.Logf("stats %+v", s)
}

// BenchmarkNetworkThroughput pushes batches of 64 messages from one endpoint
// to another; b.N counts messages.
func BenchmarkNetworkThroughput(b *testing.B) {
	net := NewNetwork()
	defer net.Close()
	var got atomic.Uint64
	a, r := net.Endpoint(1), net.Endpoint(2)
	if err := r.Start(netStepFunc(func(_ context.Context, msgs []raftdata.Message) error {
		got.Add(uint64(len(msgs)))
		return nil
	})); err != nil {
		b.Fatal(err)
	}
	const batch = 64
	msgs := make([]raftdata.Message, batch)
	for i := range msgs {
		msgs[i] = raftdata.Message{Type: raftdata.MsgApp, Group: 1, From: 1, To: 2, Term: 1, Index: uint64(i)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for sent < b.N {
		// Send takes ownership; the network never modifies messages, so
		// resending the same (unmodified) slice is safe here.
		a.Send(msgs)
		sent += batch
		// Stay under the queue limit, as a flow-controlled sender would.
		for uint64(sent)-got.Load()-net.dropped.Load() > DefaultNetworkQueueLimit/2 {
			runtime.Gosched()
		}
	}
	for got.Load()+net.dropped.Load() < uint64(sent) {
		runtime.Gosched()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(net.dropped.Load())/float64(sent), "drop-frac")
}
