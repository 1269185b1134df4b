package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runKV runs the built example with args and returns its exit status and
// stderr.
func runKV(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildKV(t), args...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kv %s still running after %v; stderr:\n%s", strings.Join(args, " "), timeout, stderr.String())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	}
	t.Fatal(err)
	return 0, ""
}

// TestFlagErrors runs the binary with bad command lines: each is said once,
// with the usage once, and exits with status 2; -h exits 0.
func TestFlagErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, tc := range []struct {
		args  []string
		say   string
		usage string
	}{
		{[]string{"-bogus"}, "flag provided but not defined: -bogus", "Usage of kv:"},
		{[]string{"-id", "x"}, `invalid value "x" for flag -id`, "Usage of kv:"},
		{[]string{"stray"}, `unexpected argument "stray"`, "Usage of kv:"},
		{[]string{"bench", "-bogus"}, "flag provided but not defined: -bogus", "Usage of kv bench:"},
	} {
		code, stderr := runKV(t, 30*time.Second, tc.args...)
		if code != 2 {
			t.Errorf("kv %s: exit status %d, want 2; stderr:\n%s", strings.Join(tc.args, " "), code, stderr)
		}
		if n := strings.Count(stderr, tc.say); n != 1 {
			t.Errorf("kv %s: %q said %d times, want once; stderr:\n%s", strings.Join(tc.args, " "), tc.say, n, stderr)
		}
		if n := strings.Count(stderr, tc.usage); n != 1 {
			t.Errorf("kv %s: usage printed %d times, want once; stderr:\n%s", strings.Join(tc.args, " "), n, stderr)
		}
	}
	if code, stderr := runKV(t, 30*time.Second, "-h"); code != 0 || !strings.Contains(stderr, "-listen-raft") {
		t.Errorf("kv -h: exit status %d; stderr:\n%s", code, stderr)
	}
}

// TestBenchUnreachable runs kv bench where nothing listens, and against a
// server that refuses every write: it must back off and stop within
// -give-up (plus some slack), non-zero, saying the cluster is unreachable,
// after a modest number of attempts (without backoff a client retried
// every 10ms: some 200 attempts each in 2s).
func TestBenchUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fail(w, http.StatusServiceUnavailable, errors.New("raft: not the leader"))
	}))
	defer srv.Close()
	const clients, giveUp = 4, 2 * time.Second
	const maxAttempts = clients * 15 // 10ms doubling to 1s: about 10 each in 2s
	attemptsRE := regexp.MustCompile(`\((\d+) attempts failed`)
	for _, tc := range []struct {
		name, urls string
		hits       *atomic.Int64
	}{
		{"nothing listens", "http://" + freeAddr(t) + ",http://" + freeAddr(t), nil},
		{"every write refused", srv.URL, &hits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, stderr := runKV(t, time.Minute, "bench", "-urls", tc.urls, "-clients", fmt.Sprint(clients),
				"-duration", "1m", "-give-up", giveUp.String())
			elapsed := time.Since(start)
			if code == 0 {
				t.Fatalf("exit status 0; stderr:\n%s", stderr)
			}
			if elapsed > giveUp+5*time.Second {
				t.Errorf("gave up after %v, want about %v", elapsed, giveUp)
			}
			if n := strings.Count(stderr, "cluster unreachable: "); n != 1 {
				t.Fatalf(`"cluster unreachable: " said %d times; stderr:\n%s`, n, stderr)
			}
			m := attemptsRE.FindStringSubmatch(stderr)
			if m == nil {
				t.Fatalf("no attempt count in:\n%s", stderr)
			}
			attempts, _ := strconv.Atoi(m[1])
			if attempts < clients || attempts > maxAttempts {
				t.Errorf("%d attempts failed, want %d to %d", attempts, clients, maxAttempts)
			}
			if tc.hits != nil {
				if n := tc.hits.Load(); n < clients || n > maxAttempts {
					t.Errorf("the server got %d writes, want %d to %d", n, clients, maxAttempts)
				}
				if !strings.Contains(stderr, "raft: not the leader") {
					t.Errorf("the last error is not the server's; stderr:\n%s", stderr)
				}
			}
		})
	}
}

// TestEndToEndAdvertise runs the three nodes behind TCP proxies, as behind
// NAT: -members names the proxies' addresses (the same on every node), and
// each node listens elsewhere (-listen-raft, -listen-http), where only its
// proxy reaches it. Raft, forwarded writes and redirects all go through
// the advertised addresses.
func TestEndToEndAdvertise(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	c := newCluster(t, nil)
	var parts, listens []string
	for i := range 3 {
		raftL, httpL := freeAddr(t), freeAddr(t)
		raftA, httpA := tcpProxy(t, raftL), tcpProxy(t, httpL)
		parts = append(parts, fmt.Sprintf("%d=%s/%s", i+1, raftA, httpA))
		c.https = append(c.https, httpA)
		listens = append(listens, httpL)
		c.args = append(c.args, []string{"-listen-raft", raftL, "-listen-http", httpL})
	}
	c.members = strings.Join(parts, ",")
	c.startAll()
	l := c.leader() // elected over the proxies: the nodes know no other address
	client := uint64(time.Now().UnixNano()) | 1
	for i := range 3 {
		if _, ok := c.putAt(i, client, uint64(i+1), fmt.Sprintf("/kv/k%d", i), "v", 100); !ok {
			t.Fatalf("write through node %d never acknowledged", i+1)
		}
	}
	f := (l + 1) % 3
	a := c.call(noRedirects, http.MethodGet, f, "/kv/k0", "")
	if want := "http://" + c.https[l] + "/kv/k0"; a.code != http.StatusTemporaryRedirect || a.header.Get("Location") != want {
		t.Errorf("read on a follower: %d, Location %q, want %q (the leader's advertised address)", a.code, a.header.Get("Location"), want)
	}
	for i := range 3 {
		if a := c.call(nil, http.MethodGet, i, "/kv/k2", ""); a.body["value"] != "v" {
			t.Errorf("node %d reads k2 %v", i+1, a.body)
		}
		// The listen address serves too.
		resp, err := http.Get("http://" + listens[i] + "/status")
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil || s["id"] != float64(i+1) {
			t.Errorf("/status on node %d's listen address: %v %v", i+1, s, err)
		}
	}
}
