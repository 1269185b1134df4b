package networktest

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// allTypes returns one message of every type from → to, every field a type
// may carry set to a distinct value; Context is tag+i.
func allTypes(from, to raftdata.NodeID, tag uint64) []raftdata.Message {
	types := []raftdata.MessageType{raftdata.MsgApp, raftdata.MsgAppResp, raftdata.MsgVote, raftdata.MsgVoteResp,
		raftdata.MsgPreVote, raftdata.MsgPreVoteResp, raftdata.MsgHeartbeat, raftdata.MsgHeartbeatResp,
		raftdata.MsgTimeoutNow, raftdata.MsgSnap, raftdata.MsgSnapResp}
	out := make([]raftdata.Message, len(types))
	for i, typ := range types {
		k := uint64(i + 1)
		m := raftdata.Message{Type: typ, Group: 7, From: from, To: to, Term: 1<<40 + k, LogTerm: 3 * k,
			Index: 1<<33 + k, Commit: 5 * k, Hint: 6 * k, HintTerm: 7 * k, Context: tag + uint64(i),
			Reject: i%2 == 1, Transfer: typ == raftdata.MsgVote || typ == raftdata.MsgPreVote}
		switch typ {
		case raftdata.MsgApp:
			m.Entries = []raftdata.Entry{
				{Index: m.Index + 1, Term: m.Term, Type: raftdata.EntryNormal, Data: []byte("hello")},
				{Index: m.Index + 2, Term: m.Term, Type: raftdata.EntryNoop},
				{Index: m.Index + 3, Term: m.Term, Type: raftdata.EntryConfig, Data: raftdata.EncodeMembership(testMembership())},
			}
		case raftdata.MsgSnap:
			m.Snapshot = &raftdata.SnapshotChunk{
				Meta:   raftdata.SnapshotMeta{Index: 99, Term: 4, Membership: testMembership()},
				Offset: 1 << 20, Data: []byte("snapshot bytes"), Done: true,
			}
		}
		out[i] = m
	}
	return out
}

func testMembership() raftdata.Membership {
	return raftdata.Membership{
		Voters:         []raftdata.Member{{ID: 1, Addr: "a:1"}, {ID: 2, Addr: "b:2"}},
		OutgoingVoters: []raftdata.Member{{ID: 1, Addr: "a:1"}, {ID: 3, Addr: "c:3"}},
		NonVoters:      []raftdata.Member{{ID: 4, Addr: "d:4"}},
		Removed:        []raftdata.Member{{ID: 5, Addr: "e:5"}},
	}
}

// expectIntact waits for every message of want at n (matched by Context)
// and checks each arrived unchanged.
func expectIntact(t *testing.T, n *node, want []raftdata.Message) {
	t.Helper()
	tags := map[uint64]*raftdata.Message{}
	for i := range want {
		tags[want[i].Context] = &want[i]
	}
	ok := n.in.waitFor(DeliveryBound, func(ms []raftdata.Message) bool {
		seen := 0
		for i := range ms {
			if tags[ms[i].Context] != nil {
				seen++
			}
		}
		return seen >= len(want)
	})
	got := map[uint64]bool{}
	for _, m := range n.in.snapshot() {
		w := tags[m.Context]
		if w == nil {
			continue
		}
		got[m.Context] = true
		if !sameMessage(&m, w) {
			t.Errorf("message changed in transit:\n sent %s\n  got %s", describe(w), describe(&m))
		}
	}
	if !ok {
		for i := range want {
			if !got[want[i].Context] {
				t.Errorf("not delivered within %v: %s", DeliveryBound, describe(&want[i]))
			}
		}
	}
}

func testAllTypes(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(2)
	want := allTypes(1, 2, 1000)
	send(t, ns[0], allTypes(1, 2, 1000))
	expectIntact(t, ns[1], want)
	back := allTypes(2, 1, 2000)
	send(t, ns[1], allTypes(2, 1, 2000))
	expectIntact(t, ns[0], back)
	s, ok := waitStats(ns[0], DeliveryBound, func(s raft.NetworkStats) bool {
		return s.Sent >= uint64(len(want)) && s.Received >= uint64(len(back))
	})
	if !ok {
		t.Errorf("Stats: sent %d received %d, want at least %d and %d", s.Sent, s.Received, len(want), len(back))
	}
}

// largeMessages returns a maximum snapshot chunk and an append message of
// LargeAppendBytes, from → to.
func largeMessages(from, to raftdata.NodeID, tag uint64) []raftdata.Message {
	chunk := make([]byte, raft.MaxSnapshotChunkBytes)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	snap := raftdata.Message{Type: raftdata.MsgSnap, From: from, To: to, Term: 3, Context: tag,
		Snapshot: &raftdata.SnapshotChunk{Meta: raftdata.SnapshotMeta{Index: 1000, Term: 3, Membership: testMembership()}, Data: chunk}}
	app := raftdata.Message{Type: raftdata.MsgApp, From: from, To: to, Term: 3, Index: 10, LogTerm: 3, Context: tag + 1}
	const per = 16 << 10
	for i := 0; i < LargeAppendBytes/per; i++ {
		d := make([]byte, per)
		for j := range d {
			d[j] = byte(i + j)
		}
		app.Entries = append(app.Entries, raftdata.Entry{Index: uint64(11 + i), Term: 3, Type: raftdata.EntryNormal, Data: d})
	}
	return []raftdata.Message{snap, app}
}

func testLargeMessages(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(2)
	want := largeMessages(1, 2, 10)
	send(t, ns[0], largeMessages(1, 2, 10))
	expectIntact(t, ns[1], want)
}

// batch returns k heartbeats from → to tagged base.. base+k-1.
func batch(from, to raftdata.NodeID, base uint64, k int) []raftdata.Message {
	out := make([]raftdata.Message, k)
	for i := range out {
		out[i] = raftdata.Message{Type: raftdata.MsgHeartbeat, From: from, To: to, Term: 2, Commit: uint64(i), Context: base + uint64(i)}
	}
	return out
}

// appends returns k small append messages from → to tagged base...
func appends(from, to raftdata.NodeID, base uint64, k, size int) []raftdata.Message {
	out := make([]raftdata.Message, k)
	for i := range out {
		d := make([]byte, size)
		for j := range d {
			d[j] = byte(i ^ j)
		}
		out[i] = raftdata.Message{Type: raftdata.MsgApp, From: from, To: to, Term: 2, Index: uint64(i), LogTerm: 2,
			Commit: uint64(i), Context: base + uint64(i), Entries: []raftdata.Entry{{Index: uint64(i + 1), Term: 2, Data: d}}}
	}
	return out
}

func testLargeBatch(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(3)
	// One Send carrying 1000 messages for two peers, interleaved.
	var msgs, to2, to3 []raftdata.Message
	a, b := appends(1, 2, 1, 500, 1024), appends(1, 3, 1, 500, 1024)
	for i := range a {
		msgs = append(msgs, a[i], b[i])
	}
	to2, to3 = appends(1, 2, 1, 500, 1024), appends(1, 3, 1, 500, 1024)
	send(t, ns[0], msgs)
	expectIntact(t, ns[1], to2)
	expectIntact(t, ns[2], to3)
}

func testConcurrentSenders(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(3)
	const senders, calls, per = 8, 50, 10
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < calls; c++ {
				base := uint64(s*calls*per + c*per)
				msgs := append(appends(1, 2, base, per, 100), appends(1, 3, base, per, 100)...)
				start := time.Now()
				ns[0].net.Send(msgs)
				if d := time.Since(start); d > SendBound {
					errs <- fmt.Errorf("concurrent Send blocked for %v", d)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, n := range ns[1:] {
		var want []raftdata.Message
		for s := 0; s < senders; s++ {
			for c := 0; c < calls; c++ {
				want = append(want, appends(1, n.key.id, uint64(s*calls*per+c*per), per, 100)...)
			}
		}
		expectIntact(t, n, want)
	}
}

func testUnreachable(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(2)
	gone := h.start(1, 3, "")
	members := membersOf(ns[0], ns[1], gone)
	h.stop(gone)                                                       // its address now leads nowhere
	members = append(members, raftdata.Member{ID: 4, Addr: gone.addr}) // never opened
	ns[0].net.SetPeers(members)
	before := ns[0].net.Stats()
	const calls, per = 200, 10
	for c := 0; c < calls; c++ {
		msgs := append(batch(1, 3, uint64(c*per), per), batch(1, 4, uint64(c*per), per)...)
		send(t, ns[0], msgs)
	}
	want := before.Dropped + 2*calls*per
	if s, ok := waitStats(ns[0], DeliveryBound, func(s raft.NetworkStats) bool { return s.Dropped >= want }); !ok {
		t.Errorf("Stats().Dropped = %d after %d messages to unreachable peers, want at least %d", s.Dropped, 2*calls*per, want)
	}
	// The healthy peer is unaffected.
	send(t, ns[0], batch(1, 2, 1<<20, 1))
	if !ns[1].in.waitFor(DeliveryBound, count(1, tagged(1<<20))) {
		t.Errorf("a healthy peer stopped receiving while another was unreachable")
	}
}

func testSlowPeer(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(3)
	release := ns[1].in.block() // node 2 stops taking messages
	defer release()
	// Far more than any buffer: Send must keep returning promptly.
	for c := 0; c < 400; c++ {
		send(t, ns[0], appends(1, 2, uint64(c*50), 50, 1024))
	}
	send(t, ns[0], batch(1, 3, 1<<20, 1))
	if !ns[2].in.waitFor(DeliveryBound, count(1, tagged(1<<20))) {
		t.Errorf("a slow peer stalled messages to another peer")
	}
	release()
	// Once the peer drains, new messages reach it again.
	if !retryUntilDelivered(t, ns[0], ns[1], 1<<21, DeliveryBound) {
		t.Errorf("messages never reached the peer again after it recovered")
	}
}

// retryUntilDelivered sends a tagged heartbeat every 50ms until to receives
// one, up to bound.
func retryUntilDelivered(t *testing.T, from, to *node, tag uint64, bound time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		send(t, from, batch(from.key.id, to.key.id, tag, 1))
		if to.in.waitFor(50*time.Millisecond, count(1, tagged(tag))) {
			return true
		}
	}
	return false
}

func testPeerRestart(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(2)
	if !retryUntilDelivered(t, ns[0], ns[1], 1, DeliveryBound) {
		t.Fatal("no delivery before the restart")
	}
	h.stop(ns[1])
	for c := 0; c < 20; c++ { // while it is down
		send(t, ns[0], batch(1, 2, uint64(100+c), 1))
		time.Sleep(5 * time.Millisecond)
	}
	again := h.start(1, 2, ns[1].addr)
	again.net.SetPeers(membersOf(ns[0], again))
	if !retryUntilDelivered(t, ns[0], again, 1<<20, ReconnectBound) {
		t.Fatalf("restarted peer not reached again within %v", ReconnectBound)
	}
	send(t, again, batch(2, 1, 1<<21, 1))
	if !ns[0].in.waitFor(DeliveryBound, count(1, tagged(1<<21))) {
		t.Errorf("restarted peer cannot send")
	}
}

func testSenderRestart(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(2)
	if !retryUntilDelivered(t, ns[0], ns[1], 1, DeliveryBound) {
		t.Fatal("no delivery before the restart")
	}
	h.stop(ns[0])
	again := h.start(1, 1, ns[0].addr)
	again.net.SetPeers(membersOf(again, ns[1]))
	if !retryUntilDelivered(t, again, ns[1], 1<<20, ReconnectBound) {
		t.Fatalf("restarted sender does not reach its peer within %v", ReconnectBound)
	}
	if !retryUntilDelivered(t, ns[1], again, 1<<21, ReconnectBound) {
		t.Fatalf("peer does not reach the restarted node within %v", ReconnectBound)
	}
}

func testMembershipChange(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(2)
	late := h.start(1, 3, "")
	late.net.SetPeers(membersOf(ns[0], ns[1], late))
	ns[0].net.SetPeers(membersOf(ns[0], ns[1], late)) // node 3 joins
	if !retryUntilDelivered(t, ns[0], late, 1, DeliveryBound) {
		t.Fatal("a peer added by SetPeers is not reached")
	}
	// Node 3 is replaced by a machine at another address.
	h.stop(late)
	moved := h.start(1, 3, "")
	moved.net.SetPeers(membersOf(ns[0], ns[1], moved))
	ns[0].net.SetPeers(membersOf(ns[0], ns[1], moved))
	if !retryUntilDelivered(t, ns[0], moved, 1<<20, ReconnectBound) {
		t.Errorf("a peer whose address changed in SetPeers is not reached at the new address")
	}
	if !retryUntilDelivered(t, ns[0], ns[1], 1<<21, DeliveryBound) {
		t.Errorf("a remaining peer is no longer reached after a membership change")
	}
}

func testUnknownSender(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(2)
	stranger := h.start(1, 3, "")
	stranger.net.SetPeers(membersOf(ns[0], stranger)) // node 1 does not know it
	want := allTypes(3, 1, 500)
	send(t, stranger, allTypes(3, 1, 500))
	expectIntact(t, ns[0], want)
}

// testReplyToUnknown: a joining node, which knows no members yet, answers
// a leader that reached it.
func testReplyToUnknown(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(2)
	joining := h.start(1, 3, "")
	ns[0].net.SetPeers(membersOf(ns[0], ns[1], joining))
	if !retryUntilDelivered(t, ns[0], joining, 1, DeliveryBound) {
		t.Fatal("the joining node is not reached")
	}
	if !retryUntilDelivered(t, joining, ns[0], 1<<20, DeliveryBound) {
		t.Errorf("a node that knows no members cannot answer a peer that reached it")
	}
}

func testOtherCluster(t *testing.T, f Factory) {
	h := newHarness(t, f)
	ns := h.cluster(2)
	alien := h.start(2, 2, "") // same node ID, another cluster
	alien.net.SetPeers([]raftdata.Member{{ID: 1, Addr: ns[0].addr}, {ID: 2, Addr: alien.addr}})
	for c := 0; c < 20; c++ {
		send(t, alien, batch(2, 1, uint64(5000+c), 1))
		time.Sleep(10 * time.Millisecond)
	}
	if !retryUntilDelivered(t, ns[1], ns[0], 1<<20, DeliveryBound) {
		t.Fatal("no delivery within the cluster")
	}
	for _, m := range ns[0].in.snapshot() {
		if m.Context >= 5000 && m.Context < 5020 {
			t.Fatalf("delivered a message from another cluster: %s", describe(&m))
		}
	}
	ok := func() bool { return alien.net.Stats().Dropped > 0 || ns[0].net.Stats().Rejected > 0 }
	deadline := time.Now().Add(DeliveryBound)
	for !ok() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !ok() {
		t.Errorf("messages to another cluster were neither counted Dropped by the sender nor Rejected by the receiver")
	}
}

func testClose(t *testing.T, f Factory) {
	h := newHarness(t, f)
	base := runtime.NumGoroutine()
	ns := h.cluster(3)
	for _, from := range ns {
		for _, to := range ns {
			if from != to && !retryUntilDelivered(t, from, to, uint64(from.key.id)<<8|uint64(to.key.id), DeliveryBound) {
				t.Fatalf("no delivery %d -> %d", from.key.id, to.key.id)
			}
		}
	}
	release := ns[2].in.block() // a Step in progress must not hold Close up
	send(t, ns[0], batch(1, 3, 1<<20, 10))
	time.Sleep(50 * time.Millisecond)
	for _, n := range ns {
		start := time.Now()
		h.stop(n)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Close of node %d took %v", n.key.id, d)
		}
		if err := n.net.Close(); err != nil {
			t.Errorf("second Close of node %d: %v", n.key.id, err)
		}
		send(t, n, batch(n.key.id, 1, 1<<21, 1)) // after Close: a no-op, never a panic
	}
	release()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > base {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines before opening, %d after closing every endpoint:\n%s", base, g, buf)
	}
}
