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

// apiCall is one HTTP exchange with a node, its body decoded as JSON.
type apiCall struct {
	code   int
	header http.Header
	body   map[string]any
}

// errText is the body's "error", "" if none.
func (a apiCall) errText() string {
	s, _ := a.body["error"].(string)
	return s
}

// call sends method path to node i with hc (c.client when nil) and
// headers as key, value pairs, and checks that the answer is a JSON object
// and, for any status but 200, that it holds an "error".
func (c *cluster) call(hc *http.Client, method string, i int, path, body string, headers ...string) apiCall {
	c.t.Helper()
	if hc == nil {
		hc = c.client
	}
	req, err := http.NewRequest(method, c.scheme+c.https[i]+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body == "" {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	}
	for j := 0; j+1 < len(headers); j += 2 {
		req.Header.Set(headers[j], headers[j+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s on node %d: %v", method, path, i+1, err)
	}
	defer resp.Body.Close()
	a := apiCall{code: resp.StatusCode, header: resp.Header}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		c.t.Fatalf("%s %s on node %d: %s with Content-Type %q, want JSON", method, path, i+1, resp.Status, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		c.t.Fatalf("%s %s on node %d: %s, body not a JSON object: %v", method, path, i+1, resp.Status, err)
	}
	if a.code != http.StatusOK && a.errText() == "" && a.body["found"] != false {
		c.t.Fatalf("%s %s on node %d: %s without an error: %v", method, path, i+1, resp.Status, a.body)
	}
	return a
}

// noRedirects is a client that returns redirects instead of following them.
var noRedirects = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestEndToEndAPI checks, on three node processes, that every error and
// redirect is JSON (unknown paths, wrong methods, an empty key, reads and
// admin requests on a follower), the conditions of a compare-and-set, the
// answers of /admin/transfer for an unknown node and on a follower, session
// errors through a follower (each said once), and a node restarted with
// -members in another order (it warns and keeps the configuration in its
// log).
func TestEndToEndAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	c := startCluster(t, nil)
	l := c.leader()
	f := (l + 1) % 3
	leaderURL := c.scheme + c.https[l]

	t.Run("errors and redirects are JSON", func(t *testing.T) {
		if a := c.call(nil, http.MethodGet, l, "/kv/", ""); a.code != http.StatusNotFound || !strings.Contains(a.errText(), "/kv/") {
			t.Errorf("GET /kv/: %d %v", a.code, a.body)
		}
		if a := c.call(nil, http.MethodGet, l, "/nope", ""); a.code != http.StatusNotFound || !strings.Contains(a.errText(), "/nope") {
			t.Errorf("GET /nope: %d %v", a.code, a.body)
		}
		a := c.call(nil, http.MethodPost, l, "/kv/x", "v")
		if a.code != http.StatusMethodNotAllowed || !strings.Contains(a.errText(), "POST") || !strings.Contains(a.header.Get("Allow"), "PUT") {
			t.Errorf("POST /kv/x: %d %v, Allow %q", a.code, a.body, a.header.Get("Allow"))
		}
		if a := c.call(nil, http.MethodPatch, l, "/status", ""); a.code != http.StatusMethodNotAllowed {
			t.Errorf("PATCH /status: %d %v", a.code, a.body)
		}
		// net/http's redirect to the clean path.
		if a := c.call(noRedirects, http.MethodGet, l, "/kv//x", ""); a.code/100 != 3 || a.body["location"] != "/kv/x" {
			t.Errorf("GET /kv//x: %d %v", a.code, a.body)
		}
		// A follower sends a linearizable read to the leader.
		a = c.call(noRedirects, http.MethodGet, f, "/kv/x?read=lease", "")
		if a.code != http.StatusTemporaryRedirect || a.header.Get("Location") != leaderURL+"/kv/x?read=lease" ||
			a.errText() != "not the leader" || a.body["leader"] != leaderURL {
			t.Errorf("GET /kv/x on a follower: %d %v, Location %q", a.code, a.body, a.header.Get("Location"))
		}
		if a := c.call(nil, http.MethodGet, f, "/kv/x", ""); a.code != http.StatusNotFound || a.body["found"] != false {
			t.Errorf("GET /kv/x through a follower, redirects followed: %d %v", a.code, a.body)
		}
		if a := c.call(nil, http.MethodGet, f, "/kv/x?read=bogus", ""); a.code != http.StatusBadRequest {
			t.Errorf("GET /kv/x?read=bogus: %d %v", a.code, a.body)
		}
	})

	t.Run("cas conditions", func(t *testing.T) {
		cas := func(query, value string, wantCode int, wantSwapped bool) {
			t.Helper()
			a := c.call(nil, http.MethodPost, f, "/kv/c1/cas"+query, value)
			if a.code != wantCode || (wantCode == http.StatusOK && a.body["swapped"] != wantSwapped) {
				t.Errorf("cas%s: %d %v, want %d swapped=%v", query, a.code, a.body, wantCode, wantSwapped)
			}
		}
		cas("", "a", http.StatusBadRequest, false) // no condition: not "swap if absent"
		cas("?old=x&absent=true", "a", http.StatusBadRequest, false)
		cas("?absent=maybe", "a", http.StatusBadRequest, false)
		cas("?old=", "a", http.StatusOK, false) // the key does not hold ""
		cas("?absent=true", "a", http.StatusOK, true)
		cas("?absent=true", "b", http.StatusOK, false)
		cas("?old=z", "b", http.StatusOK, false)
		cas("?old=a", "b", http.StatusOK, true)
		if a := c.call(nil, http.MethodGet, f, "/kv/c1", ""); a.body["value"] != "b" {
			t.Errorf("c1 reads %v, want b", a.body)
		}
		c.call(nil, http.MethodPut, f, "/kv/c2", "")
		if a := c.call(nil, http.MethodPost, f, "/kv/c2/cas?old=", "z"); a.body["swapped"] != true {
			t.Errorf("cas?old= on a key holding \"\": %v", a.body)
		}
	})

	t.Run("transfer", func(t *testing.T) {
		a := c.call(nil, http.MethodPost, l, "/admin/transfer?to=999", "")
		if a.code != http.StatusBadRequest || !strings.Contains(a.errText(), "999") {
			t.Errorf("transfer to 999 on the leader: %d %v", a.code, a.body)
		}
		if a := c.call(nil, http.MethodPost, l, "/admin/transfer?to=x", ""); a.code != http.StatusBadRequest {
			t.Errorf("transfer to x: %d %v", a.code, a.body)
		}
		a = c.call(noRedirects, http.MethodPost, f, "/admin/transfer?to=999", "")
		if a.code != http.StatusTemporaryRedirect || a.header.Get("Location") != leaderURL+"/admin/transfer?to=999" || a.body["leader"] != leaderURL {
			t.Errorf("transfer on a follower: %d %v, Location %q", a.code, a.body, a.header.Get("Location"))
		}
		if a := c.call(nil, http.MethodPost, f, "/admin/transfer?to=999", ""); a.code != http.StatusBadRequest {
			t.Errorf("transfer to 999 on a follower, redirect followed: %d %v", a.code, a.body)
		}
		// Through the follower, redirected: leadership moves to it.
		if a := c.call(nil, http.MethodPost, f, fmt.Sprintf("/admin/transfer?to=%d", f+1), ""); a.code != http.StatusOK {
			t.Fatalf("transfer to node %d through it: %d %v", f+1, a.code, a.body)
		}
		if got := c.leader(); got != f {
			t.Errorf("leader is node %d after the transfer to node %d", got+1, f+1)
		}
	})

	t.Run("session errors are said once", func(t *testing.T) {
		l := c.leader()
		g := (l + 1) % 3
		client := fmt.Sprintf("%x", rand.Uint64()|1)
		for _, node := range []int{g, l} { // forwarded, then on the leader
			a := c.call(nil, http.MethodPut, node, "/kv/s", "v", "Raft-Client", client, "Raft-Serial", "5")
			if a.code != http.StatusConflict || strings.Count(a.errText(), "session: unknown or expired session") != 1 {
				t.Errorf("serial 5 of a new client on node %d: %d %q", node+1, a.code, a.errText())
			}
		}
		for serial := 1; serial <= 2; serial++ {
			if a := c.call(nil, http.MethodPut, g, "/kv/s", "v", "Raft-Client", client, "Raft-Serial", fmt.Sprint(serial)); a.code != http.StatusOK {
				t.Fatalf("serial %d: %d %v", serial, a.code, a.body)
			}
		}
		a := c.call(nil, http.MethodPut, g, "/kv/s", "v", "Raft-Client", client, "Raft-Serial", "1")
		if a.code != http.StatusConflict || strings.Count(a.errText(), "session: serial older") != 1 {
			t.Errorf("a stale serial through a follower: %d %q", a.code, a.errText())
		}
	})

	t.Run("restart with -members in another order", func(t *testing.T) {
		l := c.leader()
		g := (l + 2) % 3
		parts := strings.Split(c.members, ",")
		reordered := strings.Join([]string{parts[2], parts[0], parts[1]}, ",")
		c.kill(g)
		c.start(g, "-members", reordered)
		waitFor(t, 20*time.Second, "the restarted node warns that -members differs from its log", func() bool {
			return strings.Contains(c.logs[g].String(), "-members differs from the configuration")
		})
		// It still takes part: it serves the state it replicates.
		if a := c.call(nil, http.MethodPut, l, "/kv/after", "restart"); a.code != http.StatusOK {
			t.Fatalf("PUT /kv/after: %d %v", a.code, a.body)
		}
		waitFor(t, 20*time.Second, "the restarted node has the write", func() bool {
			resp, err := c.client.Get(c.scheme + c.https[g] + "/kv/after?read=stale")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var out map[string]any
			return json.NewDecoder(resp.Body).Decode(&out) == nil && out["value"] == "restart"
		})
	})
}
