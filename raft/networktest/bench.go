package networktest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/wire"
)

// Bench measures one-way throughput between two endpoints f opens: small
// heartbeats, appends of one 128-byte entry, and appends of 64 KiB. Each
// reports msgs/s and, through b.SetBytes, the encoded MB/s. The sender keeps
// at most a window of messages unreceived, as a Raft leader's pipeline does,
// so that a network that queues without bound is not flattered.
func Bench(b *testing.B, f Factory) {
	cases := []struct {
		name string
		msg  func(i int) raftdata.Message
	}{
		{"Heartbeat", func(i int) raftdata.Message {
			return raftdata.Message{Type: raftdata.MsgHeartbeat, From: 1, To: 2, Term: 5, Commit: uint64(i), Context: uint64(i)}
		}},
		{"Append128B", benchAppend(128)},
		{"Append64KiB", benchAppend(64 << 10)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { benchOne(b, f, c.msg) })
	}
}

func benchAppend(size int) func(int) raftdata.Message {
	data := make([]byte, size)
	return func(i int) raftdata.Message {
		return raftdata.Message{Type: raftdata.MsgApp, From: 1, To: 2, Term: 5, Index: uint64(i), LogTerm: 5, Commit: uint64(i),
			Entries: []raftdata.Entry{{Index: uint64(i + 1), Term: 5, Data: data}}}
	}
}

// counter is a Handler that only counts.
type counter struct {
	n      atomic.Int64
	notify chan struct{}
}

func (c *counter) Step(_ context.Context, msgs []raftdata.Message) error {
	c.n.Add(int64(len(msgs)))
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

func benchOne(b *testing.B, f Factory, mk func(int) raftdata.Message) {
	open := f(b)
	var nets []raft.Network
	defer func() {
		for _, n := range nets {
			_ = n.Close()
		}
	}()
	start := func(id raftdata.NodeID, h raft.Handler) (raft.Network, string) {
		n, addr, err := open(Config{ClusterID: 1, ID: id})
		if err != nil {
			b.Fatal(err)
		}
		nets = append(nets, n)
		if err := n.Start(h); err != nil {
			b.Fatal(err)
		}
		return n, addr
	}
	recv := &counter{notify: make(chan struct{}, 1)}
	a, addrA := start(1, &counter{notify: make(chan struct{}, 1)})
	bn, addrB := start(2, recv)
	peers := []raftdata.Member{{ID: 1, Addr: addrA}, {ID: 2, Addr: addrB}}
	a.SetPeers(peers)
	bn.SetPeers(peers)

	// Wait until the link is up.
	deadline := time.Now().Add(ReconnectBound)
	for recv.n.Load() == 0 {
		if time.Now().After(deadline) {
			b.Fatal("no delivery")
		}
		a.Send([]raftdata.Message{mk(0)})
		time.Sleep(10 * time.Millisecond)
	}
	proto := mk(0)
	b.SetBytes(int64(wire.MessageSize(&proto)))
	// At most 4096 messages or 8 MiB unreceived, as a leader's pipeline
	// bounds its in-flight appends.
	window := min(4096, max(2*64, (8<<20)/wire.MessageSize(&proto)))
	batch := min(64, window/2)
	base := recv.n.Load()
	b.ResetTimer()
	t0 := time.Now()
	sent := 0
	for sent < b.N {
		for int64(sent)-(recv.n.Load()-base) > int64(window-batch) {
			select {
			case <-recv.notify:
			case <-time.After(time.Second):
				b.Fatalf("stalled: %d sent, %d received", sent, recv.n.Load()-base)
			}
		}
		k := min(batch, b.N-sent)
		msgs := make([]raftdata.Message, k)
		for i := range msgs {
			msgs[i] = mk(sent + i)
		}
		a.Send(msgs)
		sent += k
	}
	for recv.n.Load()-base < int64(b.N) {
		select {
		case <-recv.notify:
		case <-time.After(5 * time.Second):
			b.Fatalf("%d of %d messages lost (dropped: %v)", int64(b.N)-(recv.n.Load()-base), b.N, stats(a))
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "msgs/s")
}

func stats(n raft.Network) any {
	if m, ok := n.(raft.MeasuredNetwork); ok {
		return m.Stats().Dropped
	}
	return "unknown"
}
