package raft_test

import (
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// TestTracingSpans checks that a node given a TracerProvider records the
// spans of a proposal's path: propose, storage write, network send, apply.
func TestTracingSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(ctxT(t, waitLong))
	c := rafttest.NewCluster(t, 3, rafttest.ClusterOptions{Configure: func(cfg *raft.Config) { cfg.TracerProvider = tp }})
	l := c.WaitLeader(waitLong)
	if _, err := c.Node(l).Propose(ctxT(t, waitLong), []byte("traced")); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(waitLong)
	deadline := time.Now().Add(waitLong)
	for {
		seen := map[string]int{}
		var propose sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			seen[s.Name()]++
			if s.Name() == "raft.Propose" {
				propose = s
			}
		}
		if propose != nil && seen["raft.storage.Save"] > 0 && seen["raft.apply"] > 0 && seen["raft.network.Send"] > 0 {
			attrs := map[string]bool{}
			for _, a := range propose.Attributes() {
				attrs[string(a.Key)] = true
			}
			for _, k := range []string{"raft.node", "raft.group", "raft.index", "raft.term", "raft.bytes"} {
				if !attrs[k] {
					t.Errorf("raft.Propose lacks attribute %s", k)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans seen: %v", seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
