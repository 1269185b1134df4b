// Package quorum computes what a set of voters agrees on: the highest index
// a majority has acknowledged, and the outcome of an election. A joint
// configuration (Raft paper §6) needs separate majorities of both halves.
package quorum

import "slices"

// VoteResult is the state of an election.
type VoteResult uint8

const (
	// VotePending means the outcome is not decided yet.
	VotePending VoteResult = iota
	// VoteLost means a majority denied the vote.
	VoteLost
	// VoteWon means a majority granted the vote.
	VoteWon
)

// Majority is a set of voter IDs deciding by simple majority.
type Majority []uint64

// CommittedIndex returns the largest index acknowledged by a majority, given
// each voter's acknowledged index. A voter missing from acked counts as 0. An
// empty majority commits nothing it is asked about: it returns MaxUint64 so
// that it never restricts a joint configuration's other half.
func (m Majority) CommittedIndex(acked func(id uint64) uint64) uint64 {
	n := len(m)
	if n == 0 {
		return ^uint64(0)
	}
	var stack [7]uint64
	idx := stack[:0]
	if n > len(stack) {
		idx = make([]uint64, 0, n)
	}
	for _, id := range m {
		idx = append(idx, acked(id))
	}
	slices.Sort(idx)
	// With n voters sorted ascending, the entry at position n-(n/2+1) is
	// acknowledged by at least n/2+1 voters.
	return idx[n-(n/2+1)]
}

// Vote tallies votes: granted(id) reports (vote, voted) for each voter.
func (m Majority) Vote(votes map[uint64]bool) VoteResult {
	if len(m) == 0 {
		return VoteWon
	}
	yes, no := 0, 0
	for _, id := range m {
		v, ok := votes[id]
		switch {
		case !ok:
		case v:
			yes++
		default:
			no++
		}
	}
	q := len(m)/2 + 1
	switch {
	case yes >= q:
		return VoteWon
	case len(m)-no < q:
		return VoteLost
	}
	return VotePending
}

// Joint is a configuration of one or two majorities: Incoming (C_new) and,
// during a change, Outgoing (C_old). Outgoing is empty outside a change.
type Joint struct {
	Incoming Majority
	Outgoing Majority
}

// CommittedIndex returns the largest index acknowledged by majorities of
// both halves.
func (j Joint) CommittedIndex(acked func(id uint64) uint64) uint64 {
	a := j.Incoming.CommittedIndex(acked)
	if len(j.Outgoing) == 0 {
		if a == ^uint64(0) {
			return 0
		}
		return a
	}
	b := j.Outgoing.CommittedIndex(acked)
	c := min(a, b)
	if c == ^uint64(0) {
		return 0
	}
	return c
}

// Vote returns the outcome of an election that needs both halves.
func (j Joint) Vote(votes map[uint64]bool) VoteResult {
	a := j.Incoming.Vote(votes)
	if len(j.Outgoing) == 0 {
		return a
	}
	b := j.Outgoing.Vote(votes)
	switch {
	case a == VoteLost || b == VoteLost:
		return VoteLost
	case a == VoteWon && b == VoteWon:
		return VoteWon
	}
	return VotePending
}

// Contains reports whether id votes in either half.
func (j Joint) Contains(id uint64) bool {
	return slices.Contains(j.Incoming, id) || slices.Contains(j.Outgoing, id)
}

// IDs returns every voter once.
func (j Joint) IDs() []uint64 {
	ids := slices.Clone(j.Incoming)
	for _, id := range j.Outgoing {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
