package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/session"
)

const maxBody = 1 << 20

func (k *kvNode) routes(mux *http.ServeMux) {
	handle := func(pattern string, h http.HandlerFunc) { mux.HandleFunc(pattern, k.traced(pattern, h)) }
	handle("PUT /kv/{key}", k.handleWrite("put"))
	handle("DELETE /kv/{key}", k.handleWrite("delete"))
	handle("POST /kv/{key}/cas", k.handleWrite("cas"))
	handle("GET /kv/{key}", k.handleGet)
	handle("GET /status", k.handleStatus)
	handle("POST /admin/nonvoter", k.requireClientCert(k.handleAddNonVoter))
	handle("POST /admin/membership", k.requireClientCert(k.handleMembership))
	handle("POST /admin/transfer", k.requireClientCert(k.handleTransfer))
	handle("POST /admin/snapshot", k.requireClientCert(k.handleSnapshot))
	handle("POST /internal/propose", k.requireClientCert(k.handlePropose))
}

// handleWrite proposes a put, delete or compare-and-set (see casCondition)
// through the leader. With the headers Raft-Client (a hex ID) and
// Raft-Serial, the write belongs to a client session: a retry with the same
// serial is applied once and answered with the first result.
func (k *kvNode) handleWrite(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o := op{Kind: kind, Key: r.PathValue("key")}
		if kind != "delete" {
			b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			if err != nil || len(b) > maxBody {
				fail(w, http.StatusRequestEntityTooLarge, fmt.Errorf("value over %d bytes", maxBody))
				return
			}
			o.Value = b
		}
		if kind == "cas" {
			if err := casCondition(r, &o); err != nil {
				fail(w, http.StatusBadRequest, err)
				return
			}
		}
		cmd, _ := json.Marshal(o) // cannot fail: strings, bytes and numbers
		if c := r.Header.Get("Raft-Client"); c != "" {
			client, err1 := strconv.ParseUint(c, 16, 64)
			serial, err2 := strconv.ParseUint(r.Header.Get("Raft-Serial"), 10, 64)
			if err1 != nil || err2 != nil || client == 0 || serial == 0 {
				fail(w, http.StatusBadRequest, errors.New("Raft-Client must be a non-zero hex ID and Raft-Serial a positive number"))
				return
			}
			cmd = session.Encode(client, serial, cmd)
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		res, err := k.node.ProposeOrForward(ctx, cmd, k.forward)
		if err == nil {
			if e, ok := res.(error); ok {
				err = e
			}
		}
		if err != nil {
			fail(w, statusOf(err), err)
			return
		}
		out := map[string]any{"ok": true}
		if kind == "cas" {
			out["swapped"] = res == true
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// casCondition reads the condition of a compare-and-set: ?old=V swaps if
// the key holds V (V may be empty: the key holds ""), ?absent=true if the
// key is absent. Exactly one is needed.
func casCondition(r *http.Request, o *op) error {
	q := r.URL.Query()
	old, hasOld := q["old"]
	absent := false
	if a := q.Get("absent"); a != "" {
		var err error
		if absent, err = strconv.ParseBool(a); err != nil {
			return fmt.Errorf("absent=%q: want true or false", a)
		}
	}
	switch {
	case hasOld && absent:
		return errors.New("cas takes ?old=V or ?absent=true, not both")
	case absent:
		o.If = casAbsent
	case hasOld:
		o.If, o.Old = casEqual, []byte(old[0])
	default:
		return errors.New("cas needs ?old=V (swap if the key holds V) or ?absent=true (swap if the key is absent)")
	}
	return nil
}

// proposeReply carries a forwarded proposal's outcome.
type proposeReply struct {
	Value     any    `json:"value,omitempty"`
	Error     string `json:"error,omitempty"`
	Status    int    `json:"status,omitempty"`
	NotLeader bool   `json:"notLeader,omitempty"`
	Stale     bool   `json:"stale,omitempty"` // a session.ErrStale
}

// forward hands cmd to the leader's HTTP API.
func (k *kvNode) forward(ctx context.Context, leader raftdata.Member, cmd []byte) (any, error) {
	addr := k.httpAddr(leader.ID)
	if addr == "" {
		return nil, fmt.Errorf("no HTTP address for leader %d", leader.ID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.scheme()+addr+"/internal/propose", bytes.NewReader(cmd))
	if err != nil {
		return nil, err
	}
	if span := k.startForwardSpan(req, uint64(leader.ID)); span != nil {
		defer span.End()
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("forwarding to leader %d: %w", leader.ID, err)
	}
	defer resp.Body.Close()
	var rep proposeReply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, fmt.Errorf("forwarding to leader %d (HTTP %s): %w", leader.ID, resp.Status, err)
	}
	switch {
	case rep.NotLeader:
		return nil, fmt.Errorf("%w (node %d)", raft.ErrNotLeader, leader.ID)
	case rep.Error != "" && rep.Stale:
		return nil, &remoteError{msg: rep.Error, status: rep.Status, is: session.ErrStale}
	case rep.Error != "" && rep.Status == http.StatusConflict:
		return nil, &remoteError{msg: rep.Error, status: rep.Status, is: session.ErrExpired}
	case rep.Error != "":
		return nil, &remoteError{msg: rep.Error, status: rep.Status}
	}
	return rep.Value, nil
}

// handlePropose is the leader's side of forward.
func (k *kvNode) handlePropose(w http.ResponseWriter, r *http.Request) {
	cmd, err := io.ReadAll(io.LimitReader(r.Body, 2*maxBody))
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	res, err := k.node.Propose(r.Context(), cmd)
	if err == nil {
		if e, ok := res.(error); ok {
			writeJSON(w, http.StatusOK, proposeReply{Error: e.Error(), Status: statusOf(e), Stale: errors.Is(e, session.ErrStale)})
			return
		}
		writeJSON(w, http.StatusOK, proposeReply{Value: res})
		return
	}
	writeJSON(w, http.StatusOK, proposeReply{Error: err.Error(), Status: statusOf(err), NotLeader: errors.Is(err, raft.ErrNotLeader)})
}

// handleGet reads a key: linearizable (default, through ReadIndex), lease
// (the leader's lease, no quorum round) or stale (this node's state as is).
// A read this node cannot serve is redirected to the leader.
func (k *kvNode) handleGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var err error
	switch mode := r.URL.Query().Get("read"); mode {
	case "", "linearizable":
		_, err = k.node.ReadIndex(ctx)
	case "lease":
		_, err = k.node.LeaseRead(ctx)
	case "stale":
	default:
		fail(w, http.StatusBadRequest, fmt.Errorf("read=%q: want linearizable, lease or stale", mode))
		return
	}
	if err != nil {
		k.failOrRedirect(w, r, err) // a follower redirects to the leader
		return
	}
	v, ok := k.store.get(key)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"key": key, "found": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": key, "value": v, "found": true})
}

// handleStatus shows the node's metrics as of now.
func (k *kvNode) handleStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	m, err := k.node.CurrentMetrics(ctx)
	if err != nil {
		fail(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": m.ID, "role": m.Role.String(), "term": m.Term, "leader": m.Leader,
		"commit": m.CommitIndex, "applied": m.AppliedIndex, "last": m.LastIndex, "first": m.FirstIndex,
		"snapshot": m.SnapshotIndex, "membership": m.Membership, "peers": m.Peers,
	})
}

// httpAddr returns node id's HTTP address, "" if unknown: the one recorded
// in the log (by an admin request) or else the one -members gave.
func (k *kvNode) httpAddr(id raftdata.NodeID) string {
	if a, ok := k.store.httpAddr(uint64(id)); ok {
		return a
	}
	return k.http[id]
}

// scheme is how to reach other nodes' APIs.
func (k *kvNode) scheme() string {
	if k.tls != nil {
		return "https://"
	}
	return "http://"
}
