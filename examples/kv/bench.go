package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// runBench is "kv bench": clients write 128-byte values through the given
// nodes' HTTP APIs, with a live progress line, then a summary of throughput
// and latency percentiles.
func runBench(args []string) error {
	fs := flag.NewFlagSet("kv bench", flag.ContinueOnError)
	urls := fs.String("urls", "http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003", "the nodes' HTTP APIs, comma-separated; client i writes through node i mod n")
	clients := fs.Int("clients", 16, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "how long to write")
	size := fs.Int("size", 128, "value bytes")
	caFile := fs.String("tls-ca", "", "with https:// URLs, the CA (PEM) that signed the nodes' certificates")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	targets := strings.Split(*urls, ",")
	value := strings.Repeat("x", *size)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	transport := &http.Transport{MaxIdleConnsPerHost: *clients}
	if *caFile != "" {
		pool, err := loadCA(*caFile)
		if err != nil {
			return err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	hc := &http.Client{Transport: transport, Timeout: 15 * time.Second}
	var ok, failed atomic.Int64
	lats := make([][]time.Duration, *clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			base := strings.TrimRight(targets[c%len(targets)], "/")
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/kv/bench-%d-%d", base, c, i%1000), strings.NewReader(value))
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				lats[c] = append(lats[c], time.Since(t0))
				ok.Add(1)
			}
		}(c)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastN := start, int64(0)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			n := ok.Load()
			fmt.Fprintf(os.Stderr, "\r%5.0fs  %8.0f writes/s  %9d acknowledged  %6d failed", now.Sub(start).Seconds(),
				float64(n-lastN)/now.Sub(last).Seconds(), n, failed.Load())
			last, lastN = now, n
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintln(os.Stderr)
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return fmt.Errorf("no write was acknowledged (%d failed): is the cluster running at %s?", failed.Load(), *urls)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	fmt.Printf("kv bench clients=%d size=%d writes=%d failed=%d writes_per_s=%.0f p50=%v p90=%v p99=%v max=%v\n",
		*clients, *size, len(all), failed.Load(), float64(len(all))/elapsed.Seconds(),
		pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), all[len(all)-1].Round(time.Microsecond))
	return nil
}
