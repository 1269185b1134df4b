package main

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	rknats "github.com/raftkit/raftkit/adapters/network/nats"
)

// startNATS starts a NATS server in the process on a free loopback port and
// returns its URL and a function that shuts it down.
func startNATS() (string, func(), error) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		return "", nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return "", nil, fmt.Errorf("embedded NATS server not ready")
	}
	return s.ClientURL(), s.Shutdown, nil
}

// rawNATS is the server's own performance with a given payload size.
type rawNATS struct {
	pubPerSec        float64       // one publisher to one subscriber
	reqPerSec        float64       // request-reply, with the cluster's concurrency
	rttP50, rttP99   time.Duration // of those requests
	requesters, size int
}

// natsRaw measures the server at url with payloads of size bytes, as a
// baseline for the cluster's figures: the rate at which one connection's
// published messages reach a subscriber on another, and request-reply from
// clients concurrent requesters to a responder (a replicated write needs at
// least one such round trip between leader and follower).
func natsRaw(url string, size, clients int, d time.Duration) (rawNATS, error) {
	r := rawNATS{requesters: clients, size: size}
	pub, err := natsgo.Connect(url)
	if err != nil {
		return r, err
	}
	defer pub.Close()
	sub, err := natsgo.Connect(url)
	if err != nil {
		return r, err
	}
	defer sub.Close()
	var got atomic.Int64
	s, err := sub.Subscribe("raw.rate", func(*natsgo.Msg) { got.Add(1) })
	if err != nil {
		return r, err
	}
	_ = s.SetPendingLimits(-1, -1)
	if _, err := sub.Subscribe("raw.echo", func(m *natsgo.Msg) { _ = m.Respond(m.Data) }); err != nil {
		return r, err
	}
	if err := sub.Flush(); err != nil {
		return r, err
	}
	data := make([]byte, size)
	start := time.Now()
	for time.Since(start) < d {
		for i := 0; i < 1000; i++ {
			if err := pub.Publish("raw.rate", data); err != nil {
				return r, err
			}
		}
		// Stay within what the subscriber takes: measure delivery, not
		// the publisher's buffer.
		for pub.Stats().OutMsgs-uint64(got.Load()) > 100_000 {
			time.Sleep(time.Millisecond)
		}
	}
	_ = pub.Flush()
	for deadline := time.Now().Add(5 * time.Second); uint64(got.Load()) < pub.Stats().OutMsgs && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	r.pubPerSec = float64(got.Load()) / time.Since(start).Seconds()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var rtts []time.Duration
	var failed atomic.Value
	start = time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Since(start) < d {
				t0 := time.Now()
				if _, err := pub.Request("raw.echo", data, 5*time.Second); err != nil {
					failed.Store(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			rtts = append(rtts, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return r, err
	}
	r.reqPerSec = float64(len(rtts)) / time.Since(start).Seconds()
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	r.rttP50, r.rttP99 = rtts[len(rtts)/2], rtts[len(rtts)*99/100]
	return r, nil
}

// natsTotals sums the Raft messages and bytes the transports published.
func natsTotals(ts []*rknats.Transport) (sent, bytes uint64) {
	for _, t := range ts {
		st := t.Stats()
		sent, bytes = sent+st.Sent, bytes+st.BytesSent
	}
	return sent, bytes
}
