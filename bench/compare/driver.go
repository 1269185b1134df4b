package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkit/raftkit/bench/internal/latency"
)

// result is one measurement of one library, configuration and client count.
type result struct {
	ops       int64   // writes completed in the measured interval
	opsPerSec float64 // ops over the measured interval
	p50, p99  uint64  // latency percentiles in microseconds
	acked     uint64  // writes acknowledged over the whole run, warm-up included
	applied   uint64  // commands the leader's state machine applied by the end
}

// stuckGrace bounds how long after the end of the measured interval a
// client may still wait for its write before the run is declared stuck.
const stuckGrace = 30 * time.Second

// drive runs clients goroutines, each looping on c.propose with the same
// 128-byte payload, for warmup and then duration, and measures the writes
// completed within duration. The first failed write stops every client
// and is returned. At the end it checks that the leader's state machine has
// applied at least as many commands as were acknowledged.
func drive(c cluster, clients int, warmup, duration time.Duration) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), warmup+duration+stuckGrace)
	defer cancel()
	payload := make([]byte, payloadSize)
	for i := range payload {
		payload[i] = byte(i)
	}
	var measuring, stop atomic.Bool
	var ops atomic.Int64
	var failOnce sync.Once
	var failure error
	hists := make([]*latency.Histogram, clients)
	acks := make([]uint64, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Each client has its own context, as a request handler would:
			// a context shared by every client would make every library's
			// wait contend on its one Done channel.
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			h := &latency.Histogram{}
			var acked uint64
			defer func() { hists[i], acks[i] = h, acked }()
			for !stop.Load() {
				start := time.Now()
				if err := c.propose(ctx, payload); err != nil {
					failOnce.Do(func() {
						failure = err
						stop.Store(true)
						cancel()
					})
					return
				}
				acked++
				if measuring.Load() {
					h.Add(uint64(time.Since(start) / time.Microsecond))
					ops.Add(1)
				}
			}
		}(i)
	}
	time.Sleep(warmup)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if failure != nil {
		return result{}, fmt.Errorf("a write failed: %w", failure)
	}
	var res result
	var merged latency.Histogram
	for i := range clients {
		merged.Merge(hists[i])
		res.acked += acks[i]
	}
	res.ops = ops.Load()
	res.opsPerSec = float64(res.ops) / elapsed.Seconds()
	res.p50, res.p99 = merged.Percentile(0.50), merged.Percentile(0.99)
	res.applied = c.applied()
	if res.applied < res.acked {
		return result{}, fmt.Errorf("the leader's state machine applied %d commands, fewer than the %d acknowledged", res.applied, res.acked)
	}
	if res.ops == 0 {
		return result{}, fmt.Errorf("no write completed in %v", duration)
	}
	return res, nil
}
