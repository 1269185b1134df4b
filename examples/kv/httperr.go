package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/session"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to tell it
}

// fail answers {"error": err}.
func fail(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// statusOf maps an error to an HTTP status.
func statusOf(err error) int {
	var re *remoteError
	switch {
	case errors.As(err, &re) && re.status != 0:
		return re.status // the leader's, for a forwarded write
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout // outcome unknown: retry with the same session serial
	case errors.Is(err, session.ErrExpired), errors.Is(err, session.ErrStale):
		return http.StatusConflict
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrStopped):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// remoteError is the error the leader answered a forwarded write with: its
// text as the leader wrote it (which already names the sentinel it wraps,
// so wrapping it again would repeat that), its status, and the sentinel's
// identity for errors.Is.
type remoteError struct {
	msg    string
	status int   // the leader's HTTP status for it, 0 if unknown
	is     error // session.ErrStale, session.ErrExpired or nil
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.is }

// failOrRedirect answers err: a not-the-leader error with a redirect to the
// leader when this node knows it (see redirectToLeader), anything else, and
// a not-the-leader error with no leader known, as fail with statusOf.
func (k *kvNode) failOrRedirect(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, raft.ErrNotLeader) {
		id, _ := k.node.Leader()
		var nl *raft.NotLeaderError
		if errors.As(err, &nl) && nl.LeaderID != 0 {
			id = nl.LeaderID
		}
		if k.redirectTo(w, r, id) {
			return
		}
	}
	fail(w, statusOf(err), err)
}

// redirectToLeader answers a request that only the leader serves, on a node
// that does not lead: 307 to the same request on the leader's HTTP API
// (clients follow it with the same method and body, as curl -L does), with
// the body {"error":"not the leader","leader":URL,"leaderId":ID}. It
// returns false, having written nothing, when this node leads or knows no
// leader, or no HTTP address for it.
func (k *kvNode) redirectToLeader(w http.ResponseWriter, r *http.Request) bool {
	if k.node.Role() == raftdata.RoleLeader {
		return false
	}
	id, _ := k.node.Leader()
	return k.redirectTo(w, r, id)
}

// redirectTo is redirectToLeader to node id.
func (k *kvNode) redirectTo(w http.ResponseWriter, r *http.Request, id raftdata.NodeID) bool {
	if id == 0 || id == k.cfg.id {
		return false
	}
	addr := k.httpAddr(id)
	if addr == "" {
		return false
	}
	base := k.scheme() + addr
	w.Header().Set("Location", base+r.URL.RequestURI())
	writeJSON(w, http.StatusTemporaryRedirect, map[string]any{"error": "not the leader", "leader": base, "leaderId": id})
	return true
}

// jsonErrors makes every error and redirect the API answers JSON, like the
// handlers' own {"error": ...}: it replaces the plain-text or HTML bodies
// that net/http writes itself, for an unknown path (404), a method the path
// does not take (405, with its Allow header) and a path to clean, such as
// /kv//x (a redirect, with "location" in the body too).
func jsonErrors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jw := &jsonErrorWriter{ResponseWriter: w}
		h.ServeHTTP(jw, r)
		jw.finish(r)
	})
}

// heldBodyBytes is how much of a replaced body jsonErrorWriter keeps for
// the message.
const heldBodyBytes = 1024

// jsonErrorWriter holds back a response of status 300 or more whose
// Content-Type is not JSON, so that finish can answer it in JSON.
type jsonErrorWriter struct {
	http.ResponseWriter
	wroteHeader bool
	held        int    // the status held back, 0 if none
	body        []byte // the start of the body held back
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if w.wroteHeader {
		w.ResponseWriter.WriteHeader(code) // superfluous: net/http logs it
		return
	}
	w.wroteHeader = true
	if code >= 300 && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		w.held = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.held != 0 {
		if room := heldBodyBytes - len(w.body); room > 0 {
			w.body = append(w.body, b[:min(len(b), room)]...)
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish writes the JSON answer of a held-back response.
func (w *jsonErrorWriter) finish(r *http.Request) {
	if w.held == 0 {
		return
	}
	h := w.Header()
	h.Del("Content-Length")
	out := map[string]any{}
	msg := strings.TrimSpace(string(w.body))
	switch code := w.held; {
	case code == http.StatusNotFound:
		msg = fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)
		if strings.HasPrefix(r.URL.Path, "/kv/") {
			msg += " (a key is one non-empty path segment: /kv/{key})"
		}
	case code == http.StatusMethodNotAllowed:
		msg = fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, h.Get("Allow"))
	case code >= 300 && code < 400 && h.Get("Location") != "":
		out["location"] = h.Get("Location")
		msg = "moved to " + h.Get("Location")
	}
	if msg == "" || strings.HasPrefix(msg, "<") { // an HTML body
		msg = http.StatusText(w.held)
	}
	out["error"] = msg
	writeJSON(w.ResponseWriter, w.held, out)
}
