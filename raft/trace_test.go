package raft_test

import (
	"strings"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// TestTracingSpans checks that a node given a TracerProvider records the
// spans of a proposal's path: propose, storage write, network send, apply.
func TestTracingSpans(t *testing.T) {
	rec := &spanRecorder{}
	tp := rec
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{Configure: func(cfg *raft.Config) { cfg.TracerProvider = tp }})
	l := c.WaitLeader(waitLong)
	if _, err := c.Node(l).Propose(ctxT(t, waitLong), []byte("traced")); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(waitLong)
	deadline := time.Now().Add(waitLong)
	for {
		seen := map[string]int{}
		var propose *recordedSpan
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

// TestTracingReplicateAndCommit checks a proposal's path on its own spans:
// raft.Propose carries the events appended, committed and applied in that
// order, and its child raft.replicate runs from the append to the commit.
// An asynchronous proposal's span ends with its outcome.
func TestTracingReplicateAndCommit(t *testing.T) {
	rec := &spanRecorder{}
	tp := rec
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{Configure: func(cfg *raft.Config) { cfg.TracerProvider = tp }})
	l := c.WaitLeader(waitLong)
	if _, err := c.Node(l).Propose(ctxT(t, waitLong), []byte("sync")); err != nil {
		t.Fatal(err)
	}
	f, err := c.Node(l).ProposeAsync(ctxT(t, waitLong), []byte("async"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Wait(ctxT(t, waitLong)); err != nil {
		t.Fatal(err)
	}
	var proposes, repls []*recordedSpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "raft.Propose":
			proposes = append(proposes, s)
		case "raft.replicate":
			repls = append(repls, s)
		}
	}
	if len(proposes) != 2 || len(repls) != 2 {
		t.Fatalf("ended: %d raft.Propose, %d raft.replicate spans; want 2 each", len(proposes), len(repls))
	}
	for _, p := range proposes {
		var names []string
		at := map[string]time.Time{}
		for _, e := range p.Events() {
			names = append(names, e.Name)
			at[e.Name] = e.Time
		}
		if got := strings.Join(names, ","); got != "raft.appended,raft.committed,raft.applied" {
			t.Errorf("raft.Propose events = %s", got)
		}
		var repl *recordedSpan
		for _, r := range repls {
			if r.Parent().SpanID() == p.SpanContext().SpanID() {
				repl = r
			}
		}
		if repl == nil {
			t.Fatal("a raft.Propose span has no raft.replicate child")
		}
		if !repl.EndTime().Equal(at["raft.committed"]) || repl.StartTime().Before(p.StartTime()) || repl.EndTime().After(p.EndTime()) {
			t.Errorf("raft.replicate [%v, %v] not within its proposal [%v, %v] ending at the commit %v",
				repl.StartTime(), repl.EndTime(), p.StartTime(), p.EndTime(), at["raft.committed"])
		}
	}
}

// TestTracingSnapshots checks the snapshot spans: raft.snapshot.write on
// every node taking one, and raft.snapshot.restore on a follower that
// catches up from the leader's snapshot.
func TestTracingSnapshots(t *testing.T) {
	rec := &spanRecorder{}
	tp := rec
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{KV: true, Configure: func(cfg *raft.Config) {
		cfg.SnapshotEntries, cfg.SnapshotTrailingEntries, cfg.TracerProvider = 50, 5, tp
	}})
	l := c.WaitLeader(waitLong)
	f := otherThan(c, l)
	c.Crash(f)
	writeN(t, c, 200, "x")
	metricsOf(t, c, c.Leader(), func(m raft.Metrics) bool { return m.FirstIndex > 50 })
	c.Restart(f)
	metricsOf(t, c, f, func(m raft.Metrics) bool { return m.SnapshotsReceived > 0 })
	deadline := time.Now().Add(waitLong)
	for {
		var writes, restores int
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "raft.snapshot.write":
				writes++
			case "raft.snapshot.restore":
				for _, a := range s.Attributes() {
					if a.Key == "raft.node" && a.Value.AsInt64() == int64(f) {
						restores++
					}
				}
			}
		}
		if writes > 0 && restores > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d raft.snapshot.write spans, %d raft.snapshot.restore on node %d", writes, restores, f)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
