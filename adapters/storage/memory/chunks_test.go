package memory

import (
	"math/rand/v2"
	"testing"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// TestChunkLogMatchesSlice drives a chunkLog and a plain slice with the
// same random appends, truncations and front drops across chunk boundaries
// and checks that they always hold the same entries.
func TestChunkLogMatchesSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var c chunkLog
	var model []raftdata.Entry
	next := uint64(1)
	for step := 0; step < 400; step++ {
		switch op := r.IntN(10); {
		case op < 6:
			n := r.IntN(3 * chunkEntries / 2)
			batch := make([]raftdata.Entry, n)
			for i := range batch {
				batch[i] = raftdata.Entry{Index: next, Term: uint64(step)}
				next++
			}
			c.append(batch)
			model = append(model, batch...)
		case op < 8 && len(model) > 0:
			n := r.IntN(len(model) + 1)
			c.truncate(n)
			model = model[:n]
		case len(model) > 0:
			k := r.IntN(len(model) + 1)
			c.dropFront(k)
			model = model[k:]
		}
		if c.len() != len(model) {
			t.Fatalf("step %d: len %d, model %d", step, c.len(), len(model))
		}
		if len(model) == 0 {
			continue
		}
		for _, i := range []int{0, len(model) / 2, len(model) - 1, r.IntN(len(model))} {
			if e := c.at(i); e.Index != model[i].Index || e.Term != model[i].Term {
				t.Fatalf("step %d: at(%d) = %+v, model %+v", step, i, *c.at(i), model[i])
			}
		}
		a := r.IntN(len(model))
		b := a + r.IntN(len(model)-a+1)
		got := c.copyOut(nil, a, b)
		for i := range got {
			if got[i].Index != model[a+i].Index || got[i].Term != model[a+i].Term {
				t.Fatalf("step %d: copyOut(%d, %d)[%d] = %+v, model %+v", step, a, b, i, got[i], model[a+i])
			}
		}
		if len(got) != b-a {
			t.Fatalf("step %d: copyOut returned %d entries, want %d", step, len(got), b-a)
		}
	}
}
