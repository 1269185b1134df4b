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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// statusOf maps an error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout // outcome unknown: retry with the same session serial
	case errors.Is(err, session.ErrExpired), errors.Is(err, session.ErrStale):
		return http.StatusConflict
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrStopped):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// handleWrite proposes a put, delete or compare-and-set through the
// leader. With the headers Raft-Client (a hex ID) and Raft-Serial, the write
// belongs to a client session: a retry with the same serial is applied once
// and answered with the first result.
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
			o.Old = []byte(r.URL.Query().Get("old"))
		}
		cmd, _ := json.Marshal(o)
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
		return nil, fmt.Errorf("%w: %s", session.ErrStale, rep.Error)
	case rep.Error != "" && rep.Status == http.StatusConflict:
		return nil, fmt.Errorf("%w: %s", session.ErrExpired, rep.Error)
	case rep.Error != "":
		return nil, errors.New(rep.Error)
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
	if errors.Is(err, raft.ErrNotLeader) {
		if id, _ := k.node.Leader(); id != 0 && k.httpAddr(id) != "" {
			http.Redirect(w, r, k.scheme()+k.httpAddr(id)+r.URL.RequestURI(), http.StatusTemporaryRedirect)
			return
		}
	}
	if err != nil {
		fail(w, statusOf(err), err)
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

// adminMember is a member in admin requests.
type adminMember struct {
	ID   raftdata.NodeID `json:"id"`
	Raft string          `json:"raft"`
	HTTP string          `json:"http"`
}

// learn makes the members' HTTP addresses known to every node, before
// they join: each address is a command in the log (so nodes that restart,
// or join later, learn it too) proposed through the leader.
func (k *kvNode) learn(ctx context.Context, ms ...adminMember) ([]raftdata.Member, error) {
	var out []raftdata.Member
	for _, m := range ms {
		if m.ID == 0 {
			return nil, errors.New("member without an id")
		}
		if m.HTTP != "" && k.httpAddr(m.ID) != m.HTTP {
			cmd, _ := json.Marshal(op{Kind: "addr", Node: uint64(m.ID), Value: []byte(m.HTTP)})
			res, err := k.node.ProposeOrForward(ctx, cmd, k.forward)
			if err == nil {
				err, _ = res.(error)
			}
			if err != nil {
				return nil, fmt.Errorf("recording node %d's HTTP address: %w", m.ID, err)
			}
		}
		out = append(out, raftdata.Member{ID: m.ID, Addr: m.Raft})
	}
	return out, nil
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v); err != nil {
		fail(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

func (k *kvNode) handleAddNonVoter(w http.ResponseWriter, r *http.Request) {
	var m adminMember
	if !decode(w, r, &m) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	if _, err := k.learn(ctx, m); err != nil {
		fail(w, statusOf(err), err)
		return
	}
	if err := k.node.AddNonVoter(ctx, m.ID, m.Raft); err != nil {
		fail(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (k *kvNode) handleMembership(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Voters    []adminMember `json:"voters"`
		NonVoters []adminMember `json:"nonVoters"`
	}
	if !decode(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	voters, err := k.learn(ctx, req.Voters...)
	if err != nil {
		fail(w, statusOf(err), err)
		return
	}
	nonVoters, err := k.learn(ctx, req.NonVoters...)
	if err != nil {
		fail(w, statusOf(err), err)
		return
	}
	if err := k.node.ChangeMembership(ctx, voters, nonVoters); err != nil {
		fail(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (k *kvNode) handleTransfer(w http.ResponseWriter, r *http.Request) {
	to, err := strconv.ParseUint(r.URL.Query().Get("to"), 10, 64)
	if err != nil {
		fail(w, http.StatusBadRequest, errors.New("to must be a node ID"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := k.node.TransferLeadership(ctx, raftdata.NodeID(to)); err != nil {
		fail(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (k *kvNode) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	idx, err := k.node.Snapshot(ctx)
	if err != nil {
		fail(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "index": idx})
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
