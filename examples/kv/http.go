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
	"github.com/raftkit/raftkit/raft/session"
)

const maxBody = 1 << 20

func (k *kvNode) routes(mux *http.ServeMux) {
	mux.HandleFunc("PUT /kv/{key}", k.handleWrite("put"))
	mux.HandleFunc("DELETE /kv/{key}", k.handleWrite("delete"))
	mux.HandleFunc("POST /kv/{key}/cas", k.handleWrite("cas"))
	mux.HandleFunc("GET /kv/{key}", k.handleGet)
	mux.HandleFunc("GET /status", k.handleStatus)
	mux.HandleFunc("POST /admin/nonvoter", k.handleAddNonVoter)
	mux.HandleFunc("POST /admin/membership", k.handleMembership)
	mux.HandleFunc("POST /admin/transfer", k.handleTransfer)
	mux.HandleFunc("POST /admin/snapshot", k.handleSnapshot)
	mux.HandleFunc("POST /internal/propose", k.handlePropose)
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
func (k *kvNode) forward(ctx context.Context, leader raft.Member, cmd []byte) (any, error) {
	addr := k.httpAddr(leader.ID)
	if addr == "" {
		return nil, fmt.Errorf("no HTTP address for leader %d", leader.ID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/internal/propose", bytes.NewReader(cmd))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("forwarding to leader %d: %w", leader.ID, err)
	}
	defer resp.Body.Close()
	var rep proposeReply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return nil, fmt.Errorf("forwarding to leader %d: %w", leader.ID, err)
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
			http.Redirect(w, r, "http://"+k.httpAddr(id)+r.URL.RequestURI(), http.StatusTemporaryRedirect)
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

func (k *kvNode) handleStatus(w http.ResponseWriter, _ *http.Request) {
	m := k.node.Metrics()
	writeJSON(w, http.StatusOK, map[string]any{
		"id": m.ID, "role": m.Role.String(), "term": m.Term, "leader": m.Leader,
		"commit": m.CommitIndex, "applied": m.AppliedIndex, "last": m.LastIndex, "first": m.FirstIndex,
		"snapshot": m.SnapshotIndex, "membership": m.Membership, "peers": m.Peers,
	})
}

// adminMember is a member in admin requests.
type adminMember struct {
	ID   raft.NodeID `json:"id"`
	Raft string      `json:"raft"`
	HTTP string      `json:"http"`
}

func (k *kvNode) learn(ms ...adminMember) []raft.Member {
	var out []raft.Member
	for _, m := range ms {
		if m.HTTP != "" {
			k.hmu.Lock()
			k.http[m.ID] = m.HTTP
			k.hmu.Unlock()
		}
		out = append(out, raft.Member{ID: m.ID, Addr: m.Raft})
	}
	return out
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
	k.learn(m)
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
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
	if err := k.node.ChangeMembership(ctx, k.learn(req.Voters...), k.learn(req.NonVoters...)); err != nil {
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
	if err := k.node.TransferLeadership(ctx, raft.NodeID(to)); err != nil {
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

// httpAddr returns node id's HTTP address, "" if unknown.
func (k *kvNode) httpAddr(id raft.NodeID) string {
	k.hmu.RLock()
	defer k.hmu.RUnlock()
	return k.http[id]
}
