package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Bench retry policy: a client that fails waits before its next attempt,
// doubling from benchMinBackoff to benchMaxBackoff (with jitter) while the
// failures last.
const (
	benchMinBackoff = 10 * time.Millisecond
	benchMaxBackoff = time.Second
)

// backoff is the wait after the n-th consecutive failure (n >= 1): doubling
// from benchMinBackoff, capped at benchMaxBackoff, less up to a quarter at
// random so that the clients do not retry in step.
func backoff(n int) time.Duration {
	d := benchMaxBackoff
	if n < 20 {
		d = min(benchMinBackoff<<(n-1), benchMaxBackoff)
	}
	return d - rand.N(d/4+1)
}

// runBench is "kv bench": clients write 128-byte values through the given
// nodes' HTTP APIs, with a live progress line, then a summary of throughput
// and latency percentiles. Failing clients back off; with no write
// acknowledged for -give-up it stops with an error.
func runBench(args []string) error {
	fs := flag.NewFlagSet("kv bench", flag.ContinueOnError)
	urls := fs.String("urls", "http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003", "the nodes' HTTP APIs, comma-separated; client i writes through node i mod n")
	clients := fs.Int("clients", 16, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "how long to write")
	size := fs.Int("size", 128, "value bytes")
	giveUp := fs.Duration("give-up", 15*time.Second, "stop with an error after this long without an acknowledged write (the cluster is unreachable)")
	caFile := fs.String("tls-ca", "", "with https:// URLs, the CA (PEM) that signed the nodes' certificates")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *clients < 1 || *size < 0 || *duration <= 0 || *giveUp <= 0 {
		return errors.New("bench: -clients must be positive, -size not negative, -duration and -give-up positive")
	}
	var targets []string
	for _, u := range strings.Split(*urls, ",") {
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("bench: -urls: %q is not an http:// or https:// URL", u)
		}
		targets = append(targets, u)
	}
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
	var lastErr atomic.Pointer[string]
	start := time.Now()
	var lastOK atomic.Int64 // the time of the latest acknowledged write, in ns since start
	lats := make([][]time.Duration, *clients)
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			base := targets[c%len(targets)]
			fails := 0 // consecutive
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				err := put(ctx, hc, fmt.Sprintf("%s/kv/bench-%d-%d", base, c, i%1000), value)
				if err == nil {
					lats[c] = append(lats[c], time.Since(t0))
					ok.Add(1)
					lastOK.Store(int64(time.Since(start)))
					fails = 0
					continue
				}
				if ctx.Err() != nil {
					return
				}
				failed.Add(1)
				msg := err.Error()
				lastErr.Store(&msg)
				fails++
				select {
				case <-time.After(backoff(fails)):
				case <-ctx.Done():
				}
			}
		}(c)
	}
	tick := time.NewTicker(time.Second / 4)
	defer tick.Stop()
	last, lastN, lastPrint := start, int64(0), start
	var unreachable error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			if quiet := now.Sub(start) - time.Duration(lastOK.Load()); quiet >= *giveUp {
				lastMsg := "none"
				if p := lastErr.Load(); p != nil {
					lastMsg = *p
				}
				unreachable = fmt.Errorf("cluster unreachable: no write acknowledged for %v through %s (%d attempts failed; last error: %s)",
					*giveUp, *urls, failed.Load(), lastMsg)
				cancel()
				break loop
			}
			if now.Sub(lastPrint) < time.Second {
				continue
			}
			n := ok.Load()
			fmt.Fprintf(os.Stderr, "\r%5.0fs  %8.0f writes/s  %9d acknowledged  %6d failed", now.Sub(start).Seconds(),
				float64(n-lastN)/now.Sub(last).Seconds(), n, failed.Load())
			last, lastN, lastPrint = now, n, now
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintln(os.Stderr)
	if unreachable != nil {
		return unreachable
	}
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

// put writes value at target; any answer but 200 is an error.
func put(ctx context.Context, hc *http.Client, target, value string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, target, strings.NewReader(value))
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e) != nil || e.Error == "" {
			return fmt.Errorf("HTTP %s", resp.Status) // not an error of ours: the status says enough
		}
		return fmt.Errorf("HTTP %s: %s", resp.Status, e.Error)
	}
	_, err = io.Copy(io.Discard, resp.Body) // to reuse the connection
	return err
}
