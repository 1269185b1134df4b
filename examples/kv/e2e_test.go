package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// cluster runs the example as three processes.
type cluster struct {
	t       *testing.T
	otlp    string // the test's OTLP collector
	spans   *spanLog
	tls     *testPKI // nil: plain HTTP
	client  *http.Client
	scheme  string
	bin     string
	data    string
	members string
	https   []string   // the nodes' HTTP addresses, as clients reach them
	args    [][]string // node i's flags beyond the common ones
	procs   []*exec.Cmd
	logs    []*syncBuffer // node i's stderr, over all its runs
}

// startCluster builds the example and starts three node processes, with
// TLS when pki is not nil.
func startCluster(t *testing.T, pki *testPKI) *cluster {
	t.Helper()
	c := newCluster(t, pki)
	var parts []string
	for i := 1; i <= 3; i++ {
		h := freeAddr(t)
		c.https = append(c.https, h)
		parts = append(parts, fmt.Sprintf("%d=%s/%s", i, freeAddr(t), h))
	}
	c.members = strings.Join(parts, ",")
	c.startAll()
	return c
}

// newCluster builds the example and prepares a cluster of three nodes
// without starting them: the caller sets members and https (and args),
// then calls startAll.
func newCluster(t *testing.T, pki *testPKI) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: buildKV(t), data: filepath.Join(t.TempDir(), "data"), procs: make([]*exec.Cmd, 3), spans: newSpanLog(t),
		tls: pki, client: http.DefaultClient, scheme: "http://"}
	if pki != nil {
		c.client, c.scheme = pki.client(false), "https://"
	}
	c.otlp = c.spans.addr
	t.Cleanup(func() {
		for i := range c.procs {
			c.kill(i)
		}
		if t.Failed() {
			for i, l := range c.logs {
				if l != nil {
					t.Logf("node %d's stderr:\n%s", i+1, l)
				}
			}
		}
	})
	return c
}

// startAll starts the three nodes.
func (c *cluster) startAll() {
	for i := range 3 {
		c.start(i)
	}
}

// start starts node i with the common flags, c.args[i], then extra (later
// flags win).
func (c *cluster) start(i int, extra ...string) {
	args := []string{"-id", fmt.Sprint(i + 1), "-members", c.members, "-data", c.data, "-log", "warn", "-otlp", c.otlp}
	if c.tls != nil {
		args = append(args, "-tls-cert", c.tls.certFile, "-tls-key", c.tls.keyFile, "-tls-ca", c.tls.caFile)
	}
	if i < len(c.args) {
		args = append(args, c.args[i]...)
	}
	args = append(args, extra...)
	for len(c.procs) <= i {
		c.procs = append(c.procs, nil)
	}
	for len(c.logs) <= i {
		c.logs = append(c.logs, &syncBuffer{})
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, c.logs[i]
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
}

// kill ends node i's process with SIGKILL: a crash.
func (c *cluster) kill(i int) {
	if p := c.procs[i]; p != nil {
		_ = p.Process.Signal(syscall.SIGKILL)
		_ = p.Wait()
		c.procs[i] = nil
	}
}

func (c *cluster) status(i int) map[string]any {
	resp, err := c.client.Get(c.scheme + c.https[i] + "/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var s map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&s)
	return s
}

// leader waits for a node that says it leads and returns its index.
func (c *cluster) leader() int {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i := range c.https {
			if c.procs[i] != nil {
				if s := c.status(i); s != nil && s["role"] == "leader" {
					return i
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("no leader within 30s")
	return -1
}

// put writes key=value through node i with a session, retrying the same
// serial (on any live node) until the write is acknowledged or attempts
// run out.
func (c *cluster) put(client uint64, serial uint64, path, value string, attempts int) (map[string]any, bool) {
	return c.putAt(-1, client, serial, path, value, attempts)
}

// putAt is put through node i only (any node when i < 0).
func (c *cluster) putAt(at int, client uint64, serial uint64, path, value string, attempts int) (map[string]any, bool) {
	for a := 0; a < attempts; a++ {
		i := at
		if i < 0 {
			i = rand.IntN(len(c.https))
		}
		method := http.MethodPut
		if strings.Contains(path, "/cas") {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, c.scheme+c.https[i]+path, strings.NewReader(value))
		req.Header.Set("Raft-Client", fmt.Sprintf("%x", client))
		req.Header.Set("Raft-Serial", fmt.Sprint(serial))
		resp, err := c.client.Do(req)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return out, true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, false
}

// TestEndToEnd runs three node processes, writes through all of them while
// the leader process is killed and restarted, and checks every
// acknowledged write, exactly-once retries and the /metrics format.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	c := startCluster(t, nil)
	c.leader()
	client := rand.Uint64() | 1
	var mu sync.Mutex
	acked := map[string]string{}
	var serial uint64
	write := func(n int) {
		for k := 0; k < n; k++ {
			serial++
			key, val := fmt.Sprintf("k%d", serial), fmt.Sprintf("v%d", serial)
			if _, ok := c.put(client, serial, "/kv/"+key, val, 200); !ok {
				t.Fatalf("write %s never acknowledged", key)
			}
			mu.Lock()
			acked[key] = val
			mu.Unlock()
		}
	}
	write(50)
	l := c.leader()
	c.kill(l)
	write(50) // a new leader takes over; writes to the dead node's address fail and are retried
	c.start(l)
	write(50)

	// A retried compare-and-set with the same session serial applies once:
	// the retry answers with the first result (swapped), though running it
	// again would now fail.
	serial++
	first, ok := c.put(client, serial, "/kv/once/cas?absent=true", "x", 100)
	if !ok || first["swapped"] != true {
		t.Fatalf("first cas: %v", first)
	}
	again, ok := c.put(client, serial, "/kv/once/cas?absent=true", "x", 100)
	if !ok || again["swapped"] != true {
		t.Fatalf("the retried cas answered %v, want the recorded swapped=true", again)
	}

	// Every acknowledged write reads back, linearizably, through each node.
	for i := range c.https {
		for k, v := range acked {
			resp, err := c.client.Get(c.scheme + c.https[i] + "/kv/" + k)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if out["value"] != v {
				t.Fatalf("node %d: %s reads %v, want %s", i+1, k, out, v)
			}
		}
	}

	resp, err := c.client.Get(c.scheme + c.https[l] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text format: %v", err)
	}
	if fams["raft_commit_index"] == nil || fams["raft_is_leader"] == nil {
		t.Fatalf("/metrics lacks the node's series: %d families", len(fams))
	}
	// Spans reach the collector (the exporter sends every few seconds),
	// and a write forwarded to the leader is one trace across processes:
	// the follower's forward, then the leader's request and proposal.
	c.spans.waitForwardedTrace(20 * time.Second)
}
