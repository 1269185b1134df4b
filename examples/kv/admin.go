package main

import (
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
)

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
			cmd, _ := json.Marshal(op{Kind: "addr", Node: uint64(m.ID), Value: []byte(m.HTTP)}) // cannot fail: strings, bytes and numbers
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

// decode reads the JSON request body into v, answering 400 if it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(v); err != nil {
		fail(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

// handleAddNonVoter adds a non-voter, once its HTTP address is in the log.
// A follower redirects to the leader.
func (k *kvNode) handleAddNonVoter(w http.ResponseWriter, r *http.Request) {
	var m adminMember
	if !decode(w, r, &m) || k.redirectToLeader(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	if _, err := k.learn(ctx, m); err != nil {
		fail(w, statusOf(err), err)
		return
	}
	if err := k.node.AddNonVoter(ctx, m.ID, m.Raft); err != nil {
		k.failOrRedirect(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// handleMembership moves to exactly the members given. A follower
// redirects to the leader.
func (k *kvNode) handleMembership(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Voters    []adminMember `json:"voters"`
		NonVoters []adminMember `json:"nonVoters"`
	}
	if !decode(w, r, &req) || k.redirectToLeader(w, r) {
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
		k.failOrRedirect(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// handleTransfer hands leadership to voter ?to= (0: the most up-to-date).
// A follower redirects to the leader; a target that is not a voter is 400.
func (k *kvNode) handleTransfer(w http.ResponseWriter, r *http.Request) {
	to, err := strconv.ParseUint(r.URL.Query().Get("to"), 10, 64)
	if err != nil {
		fail(w, http.StatusBadRequest, fmt.Errorf("to=%q: want a node ID (0: the most up-to-date voter)", r.URL.Query().Get("to")))
		return
	}
	if k.redirectToLeader(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := k.node.TransferLeadership(ctx, raftdata.NodeID(to)); err != nil {
		if errors.Is(err, raft.ErrUnknownPeer) {
			fail(w, http.StatusBadRequest, fmt.Errorf("to=%d: %w", to, err))
			return
		}
		k.failOrRedirect(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// handleSnapshot snapshots this node, leader or not.
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
