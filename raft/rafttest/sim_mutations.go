package rafttest

import (
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// simMutation breaks the simulated system on purpose, so that a test can
// show the invariant meant to catch that kind of bug does catch it.
type simMutation uint8

const (
	// mutSkipApply makes node 1's state machine drop five consecutive
	// commands once it reaches index 20, in every incarnation: the shape
	// of a follower that skips committed entries.
	mutSkipApply simMutation = iota + 1
)

// stateMachine returns the state machine node n runs: its KV, or the
// KV behind a mutation.
func (s *sim) stateMachine(n *simNode) raft.StateMachine {
	if s.opts.mutation == mutSkipApply && n.id == 1 {
		return &skippingKV{KV: n.kv, from: 20, left: 5}
	}
	return n.kv
}

// skippingKV drops left commands from index from on.
type skippingKV struct {
	*KV
	from uint64
	left int
}

func (k *skippingKV) Apply(entries []raftdata.Entry, results []any) error {
	var keep []raftdata.Entry
	var at []int
	for i, e := range entries {
		if e.Index >= k.from && k.left > 0 {
			k.left--
			results[i] = nil
			continue
		}
		keep = append(keep, e)
		at = append(at, i)
	}
	if len(keep) == 0 {
		return nil
	}
	out := make([]any, len(keep))
	if err := k.KV.Apply(keep, out); err != nil {
		return err
	}
	for j, i := range at {
		results[i] = out[j]
	}
	return nil
}
