package quorum

import "testing"

func TestMajorityCommittedIndex(t *testing.T) {
	cases := []struct {
		ids   Majority
		acked map[uint64]uint64
		want  uint64
	}{
		{Majority{1}, map[uint64]uint64{1: 5}, 5},
		{Majority{1, 2, 3}, map[uint64]uint64{1: 5, 2: 3, 3: 9}, 5},
		{Majority{1, 2, 3}, map[uint64]uint64{1: 5}, 0},
		{Majority{1, 2, 3, 4}, map[uint64]uint64{1: 5, 2: 3, 3: 9, 4: 7}, 5},
		{Majority{1, 2, 3, 4, 5}, map[uint64]uint64{1: 1, 2: 2, 3: 3, 4: 4, 5: 5}, 3},
	}
	for _, c := range cases {
		got := c.ids.CommittedIndex(func(id uint64) uint64 { return c.acked[id] })
		if got != c.want {
			t.Errorf("%v %v: got %d want %d", c.ids, c.acked, got, c.want)
		}
	}
}

func TestJointNeedsBothMajorities(t *testing.T) {
	j := Joint{Incoming: Majority{4, 5, 6}, Outgoing: Majority{1, 2, 3}}
	acked := map[uint64]uint64{1: 10, 2: 10, 3: 10, 4: 2, 5: 3, 6: 1}
	if got := j.CommittedIndex(func(id uint64) uint64 { return acked[id] }); got != 2 {
		t.Fatalf("joint commit = %d, want 2", got)
	}
	if got := (Joint{Incoming: Majority{1, 2, 3}}).CommittedIndex(func(id uint64) uint64 { return acked[id] }); got != 10 {
		t.Fatalf("simple commit = %d, want 10", got)
	}
	if got := (Joint{}).CommittedIndex(func(uint64) uint64 { return 7 }); got != 0 {
		t.Fatalf("empty config commit = %d, want 0", got)
	}
	votes := map[uint64]bool{1: true, 2: true, 4: true}
	if r := j.Vote(votes); r != VotePending {
		t.Fatalf("vote = %v, want pending", r)
	}
	votes[5] = true
	if r := j.Vote(votes); r != VoteWon {
		t.Fatalf("vote = %v, want won", r)
	}
	if r := j.Vote(map[uint64]bool{4: false, 5: false, 1: true, 2: true}); r != VoteLost {
		t.Fatalf("vote = %v, want lost", r)
	}
}
