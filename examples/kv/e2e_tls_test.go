package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEndToEndTLS runs the cluster with -tls-*: Raft over mutual TLS and
// the API over HTTPS, with the admin endpoints refused without a client
// certificate. It then adds a fourth node with -join (which logs that it
// waits, how to add it, and that it was added), promotes it, moves
// leadership to it, and checks that the original nodes, started without
// its address, forward writes and redirect reads to it: its HTTP address
// reached them through the log.
func TestEndToEndTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	pki := newTestPKI(t)
	c := startCluster(t, pki)
	l := c.leader()
	admin := pki.client(true)

	// Plain HTTP is not served.
	if resp, err := http.Get("http://" + c.https[0] + "/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to an HTTPS node: %s", resp.Status)
		}
	}
	// Admin endpoints need a certificate the cluster's CA signed.
	post := func(hc *http.Client, node int, path, body string) int {
		t.Helper()
		resp, err := hc.Post(c.scheme+c.https[node]+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var e map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&e)
			t.Logf("POST %s on node %d: %s %v", path, node+1, resp.Status, e)
		}
		return resp.StatusCode
	}
	if code := post(c.client, l, "/admin/snapshot", ""); code != http.StatusForbidden {
		t.Fatalf("/admin/snapshot without a client certificate: %d, want 403", code)
	}
	if code := post(admin, l, "/admin/snapshot", ""); code != http.StatusOK {
		t.Fatalf("/admin/snapshot with a client certificate: %d", code)
	}

	client := rand.Uint64() | 1
	serial := uint64(0)
	acked := map[string]string{}
	write := func(at int, n int) {
		t.Helper()
		for range n {
			serial++
			key, val := fmt.Sprintf("k%d", serial), fmt.Sprintf("v%d", serial)
			if _, ok := c.putAt(at, client, serial, "/kv/"+key, val, 200); !ok {
				t.Fatalf("write %s through node %d never acknowledged", key, at+1)
			}
			acked[key] = val
		}
	}
	write((l+1)%3, 10) // forwarded to the leader over HTTPS with the node's certificate

	// Node 4 joins: started with -join, added as a non-voter, promoted.
	old, err := parseMembers(c.members)
	if err != nil {
		t.Fatal(err)
	}
	raft4, http4 := freeAddr(t), freeAddr(t)
	c.members += fmt.Sprintf(",4=%s/%s", raft4, http4)
	c.https = append(c.https, http4)
	c.start(3, "-join", "-log", "info")
	// It says it waits, and how to add it; then that it was added.
	waitFor(t, 10*time.Second, "node 4 logs that it waits to be added", func() bool {
		return strings.Contains(c.logs[3].String(), "-join: waiting to be added")
	})
	if log := c.logs[3].String(); !strings.Contains(log, `/admin/nonvoter`) || !strings.Contains(log, raft4) {
		t.Fatalf("node 4 does not say how to add it:\n%s", log)
	}
	if code := post(admin, l, "/admin/nonvoter", fmt.Sprintf(`{"id":4,"raft":%q,"http":%q}`, raft4, http4)); code != http.StatusOK {
		t.Fatalf("/admin/nonvoter: %d", code)
	}
	waitFor(t, 10*time.Second, "node 4 logs that it was added", func() bool {
		return strings.Contains(c.logs[3].String(), "-join: added to the cluster")
	})
	var voters []string
	for _, m := range old {
		voters = append(voters, fmt.Sprintf(`{"id":%d,"raft":%q,"http":%q}`, m.id, m.raft, m.http))
	}
	voters = append(voters, fmt.Sprintf(`{"id":4,"raft":%q,"http":%q}`, raft4, http4))
	if code := post(admin, l, "/admin/membership", `{"voters":[`+strings.Join(voters, ",")+`]}`); code != http.StatusOK {
		t.Fatalf("/admin/membership: %d", code)
	}
	if code := post(admin, l, "/admin/transfer?to=4", ""); code != http.StatusOK {
		t.Fatalf("/admin/transfer: %d", code)
	}
	if got := c.leader(); got != 3 {
		t.Fatalf("leader is node %d after the transfer to node 4", got+1)
	}

	// Nodes 1-3 never had node 4's address on their command line.
	for i := range 3 {
		write(i, 5)
	}
	for i := range c.https {
		for k, v := range acked {
			resp, err := c.client.Get(c.scheme + c.https[i] + "/kv/" + k) // a follower redirects to node 4
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
}
