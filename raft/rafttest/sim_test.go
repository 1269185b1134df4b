package rafttest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var (
	simSeeds = flag.Int("seeds", 150, "number of simulation seeds TestSimulation runs")
	simFirst = flag.Int64("seed", 0, "run only this simulation seed (with a trace)")
	simViz   = flag.String("simviz", "", "write porcupine's HTML view of a failing seed's history into this directory")
)

// regressionSeeds are seeds that once failed, each named for what it
// found. They run on every test run.
var regressionSeeds = map[string]int64{}

// TestSimulation runs the deterministic simulator over many seeds. A
// failure prints the command that replays it:
//
//	go test ./raft/rafttest -run 'TestSimulation$' -seed N -v -simviz DIR
//
// Long soaks: go test ./raft/rafttest -run 'TestSimulation$' -seeds 100000 -timeout 0
func TestSimulation(t *testing.T) {
	if *simFirst != 0 {
		runSeed(t, *simFirst, true)
		return
	}
	start := time.Now()
	var ops, acked, crashes, parts, transfers, elections, events int
	for seed := int64(1); seed <= int64(*simSeeds); seed++ {
		r := runSeed(t, seed, false)
		if r == nil {
			return
		}
		ops += r.Ops
		acked += r.Acked
		crashes += r.Crashes
		parts += r.Partitions
		transfers += r.Transfers
		elections += r.Elections
		events += r.Events
	}
	t.Logf("%d seeds in %v: %d events, %d client ops (%d writes acknowledged), %d elections, %d crashes, %d partitions, %d transfers",
		*simSeeds, time.Since(start).Round(time.Millisecond), events, ops, acked, elections, crashes, parts, transfers)
}

func TestSimulationRegressions(t *testing.T) {
	for name, seed := range regressionSeeds {
		t.Run(name, func(t *testing.T) { runSeed(t, seed, false) })
	}
}

// TestSimulationIsDeterministic replays a seed and expects the same run.
func TestSimulationIsDeterministic(t *testing.T) {
	a := Simulate(SimOptions{Seed: 42})
	b := Simulate(SimOptions{Seed: 42})
	if a.Events != b.Events || a.Ops != b.Ops || a.Acked != b.Acked || a.SimTime != b.SimTime || a.Elections != b.Elections {
		t.Fatalf("seed 42 ran differently twice: %+v vs %+v", a, b)
	}
}

// TestSimulationCatchesStaleReads is the negative control: with a read path
// that lets a leader answer without confirming leadership, partitions make
// stale leaders serve stale values, and the checker must say so.
func TestSimulationCatchesStaleReads(t *testing.T) {
	for seed := int64(1); seed <= 60; seed++ {
		r := Simulate(SimOptions{Seed: seed, BrokenReads: true})
		if r.Violation != "" {
			t.Fatalf("seed %d: broken reads broke an invariant instead: %s", seed, r.Violation)
		}
		if !r.Check.OK && !r.Check.TimedOut {
			t.Logf("seed %d: stale read detected (%d ops)", seed, r.Ops)
			return
		}
	}
	t.Fatal("60 seeds with unconfirmed leader reads all passed the linearizability check: the checker does not bite")
}

func runSeed(t *testing.T, seed int64, trace bool) *SimResult {
	t.Helper()
	opts := SimOptions{Seed: seed}
	if trace {
		opts.Logf = t.Logf
	}
	r := Simulate(opts)
	if !r.Failed() {
		if trace {
			t.Logf("seed %d passed: %+v", seed, *r)
		}
		return r
	}
	what := r.Violation
	if what == "" {
		what = fmt.Sprintf("history of %d operations is not linearizable (checker timed out: %v)", r.Check.Ops, r.Check.TimedOut)
	}
	if *simViz != "" && r.Violation == "" {
		path := filepath.Join(*simViz, fmt.Sprintf("sim-seed-%d.html", seed))
		if err := os.MkdirAll(*simViz, 0o755); err == nil {
			if err := r.Check.Visualize(path); err == nil {
				t.Logf("history visualization: %s", path)
			}
		}
	}
	t.Errorf("simulation seed %d failed: %s\nreplay: go test ./raft/rafttest -run 'TestSimulation$' -seed %d -v -simviz /tmp/raftkit-sim", seed, what, seed)
	return nil
}
