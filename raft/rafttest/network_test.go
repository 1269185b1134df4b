package rafttest

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// netRecorder is a Handler that records what it receives.
type netRecorder struct {
	mu    sync.Mutex
	msgs  []raftdata.Message
	at    []time.Time
	calls int
}

func (r *netRecorder) Step(_ context.Context, msgs []raftdata.Message) error {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for _, m := range msgs {
		r.msgs = append(r.msgs, m)
		r.at = append(r.at, now)
	}
	return nil
}

func (r *netRecorder) received() []raftdata.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]raftdata.Message(nil), r.msgs...)
}

func (r *netRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// netStepFunc adapts a function to raft.Handler.
type netStepFunc func(ctx context.Context, msgs []raftdata.Message) error

func (f netStepFunc) Step(ctx context.Context, msgs []raftdata.Message) error { return f(ctx, msgs) }

// netTestCluster creates and starts endpoints 1..n with recorders.
func netTestCluster(t *testing.T, net *Network, n int) ([]raft.Network, []*netRecorder) {
	t.Helper()
	eps := make([]raft.Network, n+1)
	recs := make([]*netRecorder, n+1)
	for i := 1; i <= n; i++ {
		recs[i] = &netRecorder{}
		eps[i] = net.Endpoint(raftdata.NodeID(i))
		if err := eps[i].Start(recs[i]); err != nil {
			t.Fatalf("Start(%d): %v", i, err)
		}
	}
	return eps, recs
}

func netMsg(from, to raftdata.NodeID, seq uint64) raftdata.Message {
	return raftdata.Message{Type: raftdata.MsgHeartbeat, Group: 7, From: from, To: to, Term: 3, Context: seq}
}

// netWaitQuiet waits until every sent message was delivered or dropped.
func netWaitQuiet(t *testing.T, net *Network) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := net.Stats()
		if s.Sent+s.Duplicated == s.Delivered+s.Dropped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("network not quiet: %+v", s)
		}
		time.Sleep(time.Millisecond)
	}
}

// netSendAll sends one message on every ordered pair of endpoints, tagged
// with seq, and waits for the network to go quiet.
func netSendAll(t *testing.T, net *Network, eps []raft.Network, seq uint64) {
	t.Helper()
	for from := 1; from < len(eps); from++ {
		var msgs []raftdata.Message
		for to := 1; to < len(eps); to++ {
			if to != from {
				msgs = append(msgs, netMsg(raftdata.NodeID(from), raftdata.NodeID(to), seq))
			}
		}
		eps[from].Send(msgs)
	}
	netWaitQuiet(t, net)
}

// netReachable reports, for the messages tagged seq, which (from, to) pairs
// got through.
func netReachable(recs []*netRecorder, seq uint64) map[[2]raftdata.NodeID]bool {
	got := make(map[[2]raftdata.NodeID]bool)
	for to := 1; to < len(recs); to++ {
		for _, m := range recs[to].received() {
			if m.Context == seq {
				if m.To != raftdata.NodeID(to) {
					panic("message delivered to the wrong node")
				}
				got[[2]raftdata.NodeID{m.From, m.To}] = true
			}
		}
	}
	return got
}

func netCheckReach(t *testing.T, name string, got map[[2]raftdata.NodeID]bool, n int, want func(from, to raftdata.NodeID) bool) {
	t.Helper()
	for from := raftdata.NodeID(1); from <= raftdata.NodeID(n); from++ {
		for to := raftdata.NodeID(1); to <= raftdata.NodeID(n); to++ {
			if from == to {
				continue
			}
			if w := want(from, to); got[[2]raftdata.NodeID{from, to}] != w {
				t.Errorf("%s: %d→%d delivered=%v, want %v", name, from, to, !w, w)
			}
		}
	}
}

func TestNetworkDelivery(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	eps, recs := netTestCluster(t, net, 3)
	eps[1].SetPeers([]raftdata.Member{{ID: 1, Addr: "a"}, {ID: 2, Addr: "b"}, {ID: 3, Addr: "c"}})

	const perLink = 1000
	for seq := uint64(0); seq < perLink; seq += 10 {
		for from := 1; from <= 3; from++ {
			var msgs []raftdata.Message
			for s := seq; s < seq+10; s++ {
				for to := 1; to <= 3; to++ {
					if to != from {
						msgs = append(msgs, netMsg(raftdata.NodeID(from), raftdata.NodeID(to), s))
					}
				}
			}
			eps[from].Send(msgs)
		}
	}
	netWaitQuiet(t, net)

	s := net.Stats()
	if want := uint64(3 * 2 * perLink); s.Sent != want || s.Delivered != want || s.Dropped != 0 || s.Duplicated != 0 {
		t.Fatalf("stats = %+v, want %d sent and delivered", s, want)
	}
	for to := 1; to <= 3; to++ {
		next := map[raftdata.NodeID]uint64{}
		for _, m := range recs[to].received() {
			if m.To != raftdata.NodeID(to) || m.Group != 7 || m.Type != raftdata.MsgHeartbeat || m.Term != 3 {
				t.Fatalf("node %d got %+v", to, m)
			}
			if m.Context != next[m.From] {
				t.Fatalf("node %d: from %d got seq %d, want %d (FIFO per link)", to, m.From, m.Context, next[m.From])
			}
			next[m.From]++
		}
		for from := raftdata.NodeID(1); from <= 3; from++ {
			if from != raftdata.NodeID(to) && next[from] != perLink {
				t.Errorf("node %d got %d messages from %d, want %d", to, next[from], from, perLink)
			}
		}
	}
	// Batching: far fewer Step calls than messages.
	recs[1].mu.Lock()
	calls := recs[1].calls
	recs[1].mu.Unlock()
	if calls >= 2*perLink {
		t.Errorf("node 1 had %d Step calls for %d messages; want batching", calls, 2*perLink)
	}
}

func TestNetworkSelfAndEntries(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	eps, recs := netTestCluster(t, net, 2)
	data := []byte("payload")
	m := raftdata.Message{Type: raftdata.MsgApp, From: 1, To: 2, Entries: []raftdata.Entry{{Index: 1, Term: 1, Data: data}}}
	eps[1].Send([]raftdata.Message{m, netMsg(1, 1, 5)})
	netWaitQuiet(t, net)
	got := recs[2].received()
	if len(got) != 1 || len(got[0].Entries) != 1 || &got[0].Entries[0].Data[0] != &data[0] {
		t.Fatalf("node 2 got %+v; want the message with its entries, not copied", got)
	}
	if got := recs[1].received(); len(got) != 1 || got[0].Context != 5 {
		t.Fatalf("node 1 got %+v; want its message to itself", got)
	}
}

func TestNetworkPartition(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	eps, recs := netTestCluster(t, net, 4)

	netSendAll(t, net, eps, 1)
	netCheckReach(t, "healthy", netReachable(recs, 1), 4, func(_, _ raftdata.NodeID) bool { return true })

	// {1,2} | {3}; 4 named nowhere, so isolated.
	net.Partition([]raftdata.NodeID{1, 2}, []raftdata.NodeID{3})
	netSendAll(t, net, eps, 2)
	netCheckReach(t, "partition", netReachable(recs, 2), 4, func(a, b raftdata.NodeID) bool {
		return (a == 1 && b == 2) || (a == 2 && b == 1)
	})

	// A new partition replaces the old one.
	net.Partition([]raftdata.NodeID{1}, []raftdata.NodeID{2, 3, 4})
	netSendAll(t, net, eps, 3)
	netCheckReach(t, "repartition", netReachable(recs, 3), 4, func(a, b raftdata.NodeID) bool {
		return a != 1 && b != 1
	})

	net.Heal()
	netSendAll(t, net, eps, 4)
	netCheckReach(t, "healed", netReachable(recs, 4), 4, func(_, _ raftdata.NodeID) bool { return true })

	s := net.Stats()
	if want := uint64(10 + 6); s.Dropped != want { // 12-2 pairs blocked, then 12-6
		t.Fatalf("dropped = %d, want %d (%+v)", s.Dropped, want, s)
	}
}

func TestNetworkIsolate(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	eps, recs := netTestCluster(t, net, 3)
	net.Isolate(2)
	netSendAll(t, net, eps, 1)
	netCheckReach(t, "isolate", netReachable(recs, 1), 3, func(a, b raftdata.NodeID) bool {
		return a != 2 && b != 2
	})
	net.Heal()
	netSendAll(t, net, eps, 2)
	netCheckReach(t, "healed", netReachable(recs, 2), 3, func(_, _ raftdata.NodeID) bool { return true })
}

func TestNetworkCut(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	eps, recs := netTestCluster(t, net, 3)
	net.Cut(1, 2)
	netSendAll(t, net, eps, 1)
	netCheckReach(t, "cut 1→2", netReachable(recs, 1), 3, func(a, b raftdata.NodeID) bool {
		return !(a == 1 && b == 2)
	})
	// Wildcard: nobody reaches 3.
	net.Cut(0, 3)
	netSendAll(t, net, eps, 2)
	netCheckReach(t, "cut *→3", netReachable(recs, 2), 3, func(a, b raftdata.NodeID) bool {
		return !(a == 1 && b == 2) && b != 3
	})
	net.Heal()
	netSendAll(t, net, eps, 3)
	netCheckReach(t, "healed", netReachable(recs, 3), 3, func(_, _ raftdata.NodeID) bool { return true })
}

// TestNetworkFaultAppliesToQueued checks that a partition also stops
// messages already queued on a link.
func TestNetworkFaultAppliesToQueued(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var got atomic.Int64
	a, b := net.Endpoint(1), net.Endpoint(2)
	if err := b.Start(netStepFunc(func(ctx context.Context, msgs []raftdata.Message) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		got.Add(int64(len(msgs)))
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	a.Send([]raftdata.Message{netMsg(1, 2, 0)})
	<-entered // the link goroutine is now blocked in Step
	a.Send([]raftdata.Message{netMsg(1, 2, 1), netMsg(1, 2, 2)})
	net.Isolate(2)
	close(release)
	netWaitQuiet(t, net)
	if s := net.Stats(); got.Load() != 1 || s.Delivered != 1 || s.Dropped != 2 {
		t.Fatalf("delivered %d, stats %+v; want the queued messages dropped", got.Load(), s)
	}
}

func TestNetworkDropRate(t *testing.T) {
	for _, rate := range []float64{0, 0.1, 0.5, 1} {
		net := NewNetwork(WithSeed(42), WithQueueLimit(1<<20)) // no overflow drops
		eps, recs := netTestCluster(t, net, 2)
		net.SetLinkFaults(1, 2, LinkFaults{DropRate: rate})
		const total = 20000
		for i := 0; i < total; i += 100 {
			msgs := make([]raftdata.Message, 100)
			for j := range msgs {
				msgs[j] = netMsg(1, 2, uint64(i+j))
			}
			eps[1].Send(msgs)
			eps[2].Send([]raftdata.Message{netMsg(2, 1, uint64(i))}) // reverse link has no faults
		}
		netWaitQuiet(t, net)
		got := recs[2].count()
		frac := 1 - float64(got)/total
		// 5 standard deviations of a binomial proportion, at least 0.001.
		tol := math.Max(5*math.Sqrt(rate*(1-rate)/total), 0.001)
		if math.Abs(frac-rate) > tol {
			t.Errorf("rate %v: dropped fraction %.4f, want within %.4f", rate, frac, tol)
		}
		if n := recs[1].count(); n != total/100 {
			t.Errorf("rate %v: reverse link delivered %d, want %d", rate, n, total/100)
		}
		s := net.Stats()
		if s.Dropped != uint64(total-got) || s.Delivered != uint64(got+total/100) {
			t.Errorf("rate %v: stats %+v, want %d dropped", rate, s, total-got)
		}
		net.Close()
	}
}

func TestNetworkLinkFaultWildcards(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	eps, recs := netTestCluster(t, net, 3)
	net.SetLinkFaults(0, 3, LinkFaults{DropRate: 1})
	net.SetLinkFaults(1, 3, LinkFaults{}) // zero removes only (1,3), which was not set
	netSendAll(t, net, eps, 1)
	netCheckReach(t, "drop *→3", netReachable(recs, 1), 3, func(a, b raftdata.NodeID) bool { return b != 3 })

	// The most specific pair wins: (2,3) is perfect again... only with
	// faults of its own, so give it a tiny delay.
	net.SetLinkFaults(2, 3, LinkFaults{MaxDelay: time.Microsecond})
	netSendAll(t, net, eps, 2)
	netCheckReach(t, "2→3 override", netReachable(recs, 2), 3, func(a, b raftdata.NodeID) bool {
		return b != 3 || a == 2
	})

	net.SetLinkFaults(0, 0, LinkFaults{DropRate: 1})
	netSendAll(t, net, eps, 3)
	netCheckReach(t, "drop all", netReachable(recs, 3), 3, func(a, b raftdata.NodeID) bool { return a == 2 && b == 3 })

	net.Heal()
	netSendAll(t, net, eps, 4)
	netCheckReach(t, "healed", netReachable(recs, 4), 3, func(_, _ raftdata.NodeID) bool { return true })
}

func TestNetworkDuplicate(t *testing.T) {
	net := NewNetwork(WithSeed(7), WithQueueLimit(1<<20)) // no overflow drops
	defer net.Close()
	eps, recs := netTestCluster(t, net, 2)

	net.SetLinkFaults(1, 2, LinkFaults{DuplicateRate: 1})
	const n = 500
	msgs := make([]raftdata.Message, n)
	for i := range msgs {
		msgs[i] = netMsg(1, 2, uint64(i))
	}
	eps[1].Send(msgs)
	netWaitQuiet(t, net)
	seen := make(map[uint64]int)
	for _, m := range recs[2].received() {
		seen[m.Context]++
	}
	for i := uint64(0); i < n; i++ {
		if seen[i] != 2 {
			t.Fatalf("message %d delivered %d times, want 2", i, seen[i])
		}
	}
	if s := net.Stats(); s.Duplicated != n || s.Delivered != 2*n || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}

	net.SetLinkFaults(1, 2, LinkFaults{DuplicateRate: 0.25})
	const m = 20000
	for i := 0; i < m; i += 200 {
		batch := make([]raftdata.Message, 200)
		for j := range batch {
			batch[j] = netMsg(1, 2, uint64(i+j))
		}
		eps[1].Send(batch)
	}
	netWaitQuiet(t, net)
	dups := net.Stats().Duplicated - n
	if frac := float64(dups) / m; math.Abs(frac-0.25) > 0.02 {
		t.Fatalf("duplicated fraction %.4f, want ≈0.25", frac)
	}
}

func TestNetworkDelayReorders(t *testing.T) {
	net := NewNetwork(WithSeed(3))
	defer net.Close()
	eps, recs := netTestCluster(t, net, 2)
	const minDelay, maxDelay = 20 * time.Millisecond, 60 * time.Millisecond
	net.SetLinkFaults(1, 2, LinkFaults{MinDelay: minDelay, MaxDelay: maxDelay})

	const n = 300
	start := time.Now()
	for i := 0; i < n; i++ {
		eps[1].Send([]raftdata.Message{netMsg(1, 2, uint64(i))})
	}
	sendDone := time.Now()
	netWaitQuiet(t, net)

	recs[2].mu.Lock()
	msgs, at := recs[2].msgs, recs[2].at
	recs[2].mu.Unlock()
	if len(msgs) != n {
		t.Fatalf("got %d messages, want %d", len(msgs), n)
	}
	inversions := 0
	for i := 1; i < len(msgs); i++ {
		if msgs[i].Context < msgs[i-1].Context {
			inversions++
		}
	}
	if inversions == 0 {
		t.Fatalf("no reordering among %d messages with delays in [%v, %v]", n, minDelay, maxDelay)
	}
	for i := range at {
		if d := at[i].Sub(start); d < minDelay {
			t.Fatalf("message %d arrived after %v, before MinDelay %v", msgs[i].Context, d, minDelay)
		}
	}
	if last := at[len(at)-1].Sub(sendDone); last > maxDelay+2*time.Second {
		t.Fatalf("last message arrived %v after the sends", last)
	}
	t.Logf("%d inversions among %d delayed messages", inversions, n)

	// Removing the delay brings back FIFO delivery.
	net.SetLinkFaults(1, 2, LinkFaults{})
	before := recs[2].count()
	for i := 0; i < 100; i++ {
		eps[1].Send([]raftdata.Message{netMsg(1, 2, uint64(1000+i))})
	}
	netWaitQuiet(t, net)
	for i, m := range recs[2].received()[before:] {
		if m.Context != uint64(1000+i) {
			t.Fatalf("after removing the delay got seq %d at %d", m.Context, i)
		}
	}
}

func TestNetworkQueueLimit(t *testing.T) {
	const limit = 10
	net := NewNetwork(WithQueueLimit(limit))
	defer net.Close()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var got atomic.Int64
	a, b := net.Endpoint(1), net.Endpoint(2)
	if err := b.Start(netStepFunc(func(ctx context.Context, msgs []raftdata.Message) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		got.Add(int64(len(msgs)))
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	a.Send([]raftdata.Message{netMsg(1, 2, 0)})
	<-entered // the link goroutine holds message 0 inside Step; it counts

	msgs := make([]raftdata.Message, 100)
	for i := range msgs {
		msgs[i] = netMsg(1, 2, uint64(i+1))
	}
	a.Send(msgs[:4])
	a.Send(msgs[4:])
	const queued = limit - 1
	if s := net.Stats(); s.Dropped != 100-queued {
		t.Fatalf("dropped %d with the queue full, want %d (%+v)", s.Dropped, 100-queued, s)
	}
	close(release)
	netWaitQuiet(t, net)
	if s := net.Stats(); got.Load() != limit || s.Delivered != limit || s.Dropped != 100-queued || s.Sent != 101 {
		t.Fatalf("handler got %d, stats %+v", got.Load(), s)
	}
}

func TestNetworkQueueLimitCountsDelayed(t *testing.T) {
	const limit = 50
	net := NewNetwork(WithQueueLimit(limit))
	defer net.Close()
	eps, recs := netTestCluster(t, net, 2)
	net.SetLinkFaults(1, 2, LinkFaults{MinDelay: 200 * time.Millisecond, MaxDelay: 200 * time.Millisecond})
	for i := 0; i < 200; i++ {
		eps[1].Send([]raftdata.Message{netMsg(1, 2, uint64(i))})
	}
	netWaitQuiet(t, net)
	if got := recs[2].count(); got > limit || got == 0 {
		t.Fatalf("delivered %d of 200 delayed messages, want at most the limit %d", got, limit)
	}
}

func TestNetworkUnknownDestination(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	eps, recs := netTestCluster(t, net, 2)
	eps[1].Send([]raftdata.Message{netMsg(1, 99, 0), netMsg(1, 0, 0), netMsg(1, 2, 0), netMsg(1, 99, 1)})
	netWaitQuiet(t, net)
	if s := net.Stats(); s.Sent != 4 || s.Dropped != 3 || s.Delivered != 1 {
		t.Fatalf("stats %+v, want 4 sent, 3 dropped, 1 delivered", s)
	}
	if recs[2].count() != 1 {
		t.Fatal("message to a known node lost")
	}

	// An endpoint that exists but has no handler yet: dropped and counted.
	net.Endpoint(5)
	eps[1].Send([]raftdata.Message{netMsg(1, 5, 0)})
	netWaitQuiet(t, net)
	if s := net.Stats(); s.Dropped != 4 {
		t.Fatalf("stats %+v, want the message to an unstarted node dropped", s)
	}
}

func TestNetworkStepErrorCountsDropped(t *testing.T) {
	net := NewNetwork()
	defer net.Close()
	a, b := net.Endpoint(1), net.Endpoint(2)
	if err := b.Start(netStepFunc(func(context.Context, []raftdata.Message) error { return raft.ErrStopped })); err != nil {
		t.Fatal(err)
	}
	a.Send([]raftdata.Message{netMsg(1, 2, 0), netMsg(1, 2, 1)})
	netWaitQuiet(t, net)
	if s := net.Stats(); s.Dropped != 2 || s.Delivered != 0 {
		t.Fatalf("stats %+v, want 2 dropped", s)
	}
}
