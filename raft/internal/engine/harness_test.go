package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// world drives engines step by step with no clocks or goroutines: writes
// become durable when the test says so, and messages travel only when
// delivered. It is the replay harness for the scenario tests.
type world struct {
	t      *testing.T
	nodes  map[NodeID]*node
	ids    []NodeID
	queue  []Message // in flight
	cut    map[[2]NodeID]bool
	noAuto bool // when set, step() does not persist automatically
}

// node is one engine with a simulated durable log.
type node struct {
	e       *Engine
	stable  []Entry // durable log, index i at stable[i-1]
	hs      HardState
	applied []Entry
	reads   []ReadState
	failed  []uint64
	aborted bool
	// pending writes not yet durable, and the messages that wait on them
	pendEnts []Entry
	pendHS   *HardState
	pendMsgs []Message
}

func testConfig(id NodeID, seed uint64) Config {
	r := rand.New(rand.NewPCG(seed, uint64(id)))
	return Config{
		ID: id, ElectionTicks: 10, HeartbeatTicks: 1, LeaseTicks: 0,
		MaxMsgBytes: 1 << 20, MaxInflightMsgs: 16, CacheBytes: 1 << 20,
		Rand: func(n int) int { return r.IntN(n) },
	}
}

func members(ids ...NodeID) Membership {
	var m Membership
	for _, id := range ids {
		m.Voters = append(m.Voters, Member{ID: id, Addr: fmt.Sprint("n", id)})
	}
	return m
}

// newWorld bootstraps n voters.
func newWorld(t *testing.T, n int) *world {
	w := &world{t: t, nodes: map[NodeID]*node{}, cut: map[[2]NodeID]bool{}}
	var ids []NodeID
	for i := 1; i <= n; i++ {
		ids = append(ids, NodeID(i))
	}
	for _, id := range ids {
		e, err := New(testConfig(id, 1), InitialState{})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Bootstrap(members(ids...)); err != nil {
			t.Fatal(err)
		}
		w.nodes[id] = &node{e: e}
	}
	w.ids = ids
	w.step()
	return w
}

// collect takes each engine's Ready: writes go to the pending area (and are
// made durable at once unless noAuto), messages go to the queue.
func (w *world) collect() bool {
	busy := false
	for _, id := range w.ids {
		n := w.nodes[id]
		if n == nil {
			continue
		}
		rd := n.e.Ready()
		busy = busy || !rd.IsEmpty()
		if rd.HardState != nil {
			hs := *rd.HardState
			n.pendHS = &hs
		}
		if len(rd.Entries) > 0 {
			n.pendEnts = mergeEntries(n.pendEnts, rd.Entries)
		}
		w.queue = append(w.queue, rd.Messages...)
		n.pendMsgs = append(n.pendMsgs, rd.AfterPersist...)
		if rd.Apply.Hi > 0 {
			ents := rd.Apply.Entries
			if len(ents) == 0 || ents[0].Index != rd.Apply.Lo {
				head := n.durable(rd.Apply.Lo, ents)
				ents = append(head, ents...)
			}
			n.applied = append(n.applied, ents...)
		}
		for _, f := range rd.Fetches {
			n.e.Fetched(f.Peer, f.Lo, n.durableRange(f.Lo, f.Hi), false)
		}
		n.reads = append(n.reads, rd.ReadStates...)
		n.failed = append(n.failed, rd.FailedReads...)
		n.aborted = n.aborted || rd.TransferAborted
		if !w.noAuto {
			w.persist(id)
		}
	}
	return busy
}

// durable returns stable entries from lo up to (not including) the first of
// rest, as the runtime's apply path reads them from storage.
func (n *node) durable(lo uint64, rest []Entry) []Entry {
	hi := uint64(len(n.stable)) + 1
	if len(rest) > 0 {
		hi = rest[0].Index
	}
	return n.durableRange(lo, hi)
}

func (n *node) durableRange(lo, hi uint64) []Entry {
	var out []Entry
	for i := lo; i < hi && i <= uint64(len(n.stable)); i++ {
		out = append(out, n.stable[i-1])
	}
	return out
}

func mergeEntries(old, add []Entry) []Entry {
	if len(old) > 0 && add[0].Index <= old[len(old)-1].Index {
		k := 0
		for k < len(old) && old[k].Index < add[0].Index {
			k++
		}
		old = old[:k]
	}
	return append(old, add...)
}

// persist makes node id's pending writes durable, then releases the
// messages that waited on them.
func (w *world) persist(id NodeID) {
	n := w.nodes[id]
	if n.pendHS != nil {
		n.hs = *n.pendHS
		n.pendHS = nil
	}
	if len(n.pendEnts) > 0 {
		first := n.pendEnts[0].Index
		n.stable = append(n.stable[:first-1], n.pendEnts...)
		last := n.pendEnts[len(n.pendEnts)-1]
		n.pendEnts = nil
		n.e.Persisted(last.Index, last.Term)
	}
	w.queue = append(w.queue, n.pendMsgs...)
	n.pendMsgs = nil
}

// deliver hands every queued message to its target (dropping those on cut
// links) and repeats until the network is quiet.
func (w *world) step() {
	for i := 0; i < 1000; i++ {
		busy := w.collect()
		if len(w.queue) == 0 {
			if busy {
				continue
			}
			return
		}
		q := w.queue
		w.queue = nil
		for _, m := range q {
			w.deliverOne(m)
		}
	}
	w.t.Fatal("network did not quiesce")
}

func (w *world) deliverOne(m Message) {
	if w.cut[[2]NodeID{m.From, m.To}] {
		return
	}
	n := w.nodes[m.To]
	if n == nil {
		return
	}
	if err := n.e.Step(m); err != nil {
		w.t.Fatalf("step %v: %v", m.Type, err)
	}
}

// isolate cuts id off from every other node in both directions.
func (w *world) isolate(id NodeID) {
	for _, o := range w.ids {
		if o != id {
			w.cut[[2]NodeID{id, o}] = true
			w.cut[[2]NodeID{o, id}] = true
		}
	}
}

func (w *world) heal() { w.cut = map[[2]NodeID]bool{} }

// tick advances every node's clock k times, delivering after each tick.
func (w *world) tick(k int, ids ...NodeID) {
	if len(ids) == 0 {
		ids = w.ids
	}
	for i := 0; i < k; i++ {
		for _, id := range ids {
			w.nodes[id].e.Tick()
		}
		w.step()
	}
}

// addNode adds a node with an empty log and no configuration, as a new
// machine waiting to be added to the cluster.
func (w *world) addNode(id NodeID) {
	e, err := New(testConfig(id, 1), InitialState{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.nodes[id] = &node{e: e}
	w.ids = append(w.ids, id)
}

// expireLease makes ids behave as if an election timeout passed since they
// last heard from a leader.
func (w *world) expireLease(ids ...NodeID) {
	for _, id := range ids {
		w.nodes[id].e.electionElapsed = w.nodes[id].e.cfg.ElectionTicks
	}
}

// deliverOnly delivers queued messages matching keep (dropping the rest)
// until none is left.
func (w *world) deliverOnly(keep func(Message) bool) {
	w.collect()
	for i := 0; len(w.queue) > 0; i++ {
		if i > 1000 {
			w.t.Fatal("network did not quiesce")
		}
		q := w.queue
		w.queue = nil
		for _, m := range q {
			if keep(m) {
				w.deliverOne(m)
			}
		}
		w.collect()
	}
}

func isVote(m Message) bool {
	switch m.Type {
	case MsgVote, MsgVoteResp, MsgPreVote, MsgPreVoteResp:
		return true
	}
	return false
}

// elect makes id campaign and delivers until quiet.
func (w *world) elect(id NodeID) {
	w.nodes[id].e.campaign(true, false)
	w.step()
	if w.nodes[id].e.Role() != Leader {
		w.t.Fatalf("node %d did not become leader: %v term %d", id, w.nodes[id].e.Role(), w.nodes[id].e.Term())
	}
}

func (w *world) leaders() []NodeID {
	var out []NodeID
	for _, id := range w.ids {
		if w.nodes[id].e.Role() == Leader {
			out = append(out, id)
		}
	}
	return out
}

func (w *world) propose(id NodeID, data string) uint64 {
	w.t.Helper()
	idx, err := w.nodes[id].e.Propose([]Entry{{Data: []byte(data)}})
	if err != nil {
		w.t.Fatalf("propose on %d: %v", id, err)
	}
	return idx
}

// checkLogs asserts that every node's durable log agrees on every committed
// index and that applied entries are the committed prefix, in order.
func (w *world) checkLogs() {
	w.t.Helper()
	var ref []Entry
	for _, id := range w.ids {
		n := w.nodes[id]
		c := n.e.Committed()
		if uint64(len(n.stable)) < c {
			continue // leader committed ahead of its own fsync
		}
		for i := uint64(1); i <= c; i++ {
			e := n.stable[i-1]
			if uint64(len(ref)) < i {
				ref = append(ref, e)
			} else if ref[i-1].Term != e.Term || string(ref[i-1].Data) != string(e.Data) {
				w.t.Fatalf("node %d committed entry %d differs: %+v vs %+v", id, i, e, ref[i-1])
			}
		}
		for k, e := range n.applied {
			if e.Index != uint64(k+1) {
				w.t.Fatalf("node %d applied index %d at position %d", id, e.Index, k)
			}
		}
	}
}
