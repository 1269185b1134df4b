package rafttest

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/internal/simhook"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// simClient runs KV operations one at a time against the node it believes
// leads, like an application client with a retry loop.
type simClient struct {
	id      int
	seq     int
	guess   int // index of the node tried next
	pending *simOp
	// sentAt is when the next operation was sent to a paused node, which
	// takes it from its socket when it resumes.
	sentAt int64
	// reader makes a client that only reads (three in four from the
	// lease) and waits readerWait at most for an answer.
	reader bool
}

const readerWait = 20 * ms

type simOp struct {
	op     KVOp
	cmd    []byte
	handle simhook.Op
	node   *simNode
	call   int64
}

// RandomKVOp draws the workload's next operation for client's seq-th
// call: gets, puts and compare-and-sets over three keys, with values unique
// to the client and call, so that a history says exactly which write a read
// saw.
func RandomKVOp(r *rand.Rand, client, seq int) KVOp {
	key := fmt.Sprint("k", r.IntN(3))
	switch k := r.IntN(10); {
	case k < 4:
		return KVOp{Kind: KVGet, Key: key}
	case k < 8:
		return KVOp{Kind: KVPut, Key: key, Value: fmt.Sprintf("c%d-%d", client, seq)}
	}
	// Compare against a value this client may have written.
	old := ""
	if seq > 1 && r.IntN(2) == 0 {
		old = fmt.Sprintf("c%d-%d", client, seq-1-r.IntN(min(seq-1, 3)))
	}
	return KVOp{Kind: KVCAS, Key: key, Old: old, Value: fmt.Sprintf("c%d-%d", client, seq)}
}

// next starts the client's next operation.
func (c *simClient) next(s *sim) {
	if c.pending != nil || s.settled {
		return
	}
	if c.sentAt == 0 && s.rng.IntN(4) == 0 {
		// Like a client behind a load balancer, start at any node: a
		// follower redirects to the leader it knows, so that while two
		// nodes believe they lead, both get clients.
		c.guess = s.rng.IntN(len(s.nodes))
	}
	n := s.nodes[c.guess]
	if n.up && s.paused(n) {
		if c.sentAt == 0 {
			c.sentAt = s.now
		}
		s.schedule(simEvent{at: n.pausedUntil + int64(s.rng.IntN(int(ms))), kind: evClient, n: c.id})
		return
	}
	call := s.now
	if c.sentAt != 0 {
		call, c.sentAt = c.sentAt, 0
	}
	r := s.rng
	c.seq++
	op := RandomKVOp(r, c.id, c.seq)
	lease := r.IntN(2) == 0
	if c.reader {
		op, lease = KVOp{Kind: KVGet, Key: fmt.Sprint("k", r.IntN(3))}, r.IntN(4) != 0
	}
	if !n.up {
		c.retry(s, 0)
		return
	}
	p := &simOp{op: op, node: n, call: call}
	var err error
	if op.Kind == KVGet {
		if s.opts.BrokenReads && n.node.Status().Role == raftdata.RoleLeader {
			// The negative control: a node that thinks it leads answers
			// from its own state without asking a quorum.
			s.history.Record(c.id, op, s.now, s.now, KVResult{Value: n.kv.Get(op.Key)})
			c.done(s)
			return
		}
		p.handle, err = n.node.Read(lease)
		if l, ok := p.handle.(interface{ Leased() bool }); ok && err == nil && l.Leased() {
			s.checks.leaseRead(s, n)
		}
	} else {
		p.cmd = op.Encode()
		p.handle, err = n.node.Propose(p.cmd)
	}
	s.after(n)
	if err != nil {
		// Refused before anything was appended: the operation did not
		// happen; try the leader the node named, or another node.
		var nl *raft.NotLeaderError
		hint := raftdata.NodeID(0)
		if errors.As(err, &nl) {
			hint = nl.LeaderID
		}
		c.retry(s, hint)
		return
	}
	c.pending = p
}

func (c *simClient) retry(s *sim, hint raftdata.NodeID) {
	if hint != 0 {
		c.guess = int(hint - 1)
	} else {
		c.guess = s.rng.IntN(len(s.nodes))
	}
	s.schedule(simEvent{at: s.now + 2*ms + int64(s.rng.IntN(int(5*ms))), kind: evClient, n: c.id})
}

func (c *simClient) done(s *sim) {
	c.pending = nil
	s.schedule(simEvent{at: s.now + int64(s.rng.IntN(int(3*ms))), kind: evClient, n: c.id})
}

// giveUp abandons the pending operation: its outcome is unknown.
func (c *simClient) giveUp(s *sim) {
	p := c.pending
	s.history.RecordUnknown(c.id, p.op, p.call)
	c.guess = s.rng.IntN(len(s.nodes)) // that node may be down, paused or cut off
	c.done(s)
}

// pollClients completes operations whose outcome arrived and gives up on
// those that waited too long.
func (s *sim) pollClients() {
	for _, c := range s.clients {
		p := c.pending
		if p == nil {
			continue
		}
		select {
		case <-p.handle.Done():
		default:
			if s.now-p.call > s.clientWait || c.reader && s.now-p.call > readerWait {
				c.giveUp(s)
			}
			continue
		}
		res, err := p.handle.Result()
		switch {
		case err == nil:
			out := KVResult{}
			switch p.op.Kind {
			case KVGet:
				out.Value = p.node.kv.Get(p.op.Key)
			case KVCAS:
				out.Swapped, _ = res.(bool)
			}
			s.history.Record(c.id, p.op, p.call, s.now, out)
			if p.op.Kind != KVGet {
				s.res.Acked++
				s.checks.ack(s, p.handle.Index(), p.cmd)
			}
			c.done(s)
		case errors.Is(err, raft.ErrProposalDropped), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrTransferInProgress):
			// Definitely not applied (or, for a read, not served).
			c.pending = nil
			c.retry(s, 0)
		default:
			c.giveUp(s)
		}
	}
}
