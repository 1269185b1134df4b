package rafttest

import "github.com/raftkit/raftkit/raft/raftdata"

// simNet is the simulated network: every message gets its own random delay
// (so messages reorder), may be dropped or duplicated, and is checked
// against the partition in force when it arrives.
type simNet struct {
	s        *sim
	group    []int           // partition group per node (index id-1)
	cut      map[[2]int]bool // one-way cuts: from -> to
	drop     float64
	dup      float64
	minDelay int64
	maxDelay int64
}

func (n *simNet) init(s *sim) {
	n.s = s
	n.group = make([]int, s.opts.Nodes)
	n.cut = map[[2]int]bool{}
	n.calm()
}

// calm sets a healthy network: small delays, no loss.
func (n *simNet) calm() {
	n.drop, n.dup, n.minDelay, n.maxDelay = 0, 0, 100*us, 1*ms
}

func (n *simNet) heal() {
	for i := range n.group {
		n.group[i] = 0
	}
	clear(n.cut)
}

func (n *simNet) blocked(from, to raftdata.NodeID) bool {
	f, t := int(from-1), int(to-1)
	return n.group[f] != n.group[t] || n.cut[[2]int{f, t}]
}

func (n *simNet) send(msgs []raftdata.Message) {
	r := n.s.rng
	for _, m := range msgs {
		copies := 1
		if n.drop > 0 && r.Float64() < n.drop {
			continue
		}
		if n.dup > 0 && r.Float64() < n.dup {
			copies = 2
		}
		for range copies {
			delay := n.minDelay + int64(r.IntN(int(n.maxDelay-n.minDelay)+1))
			if m.Type == raftdata.MsgTimeoutNow && r.IntN(3) == 0 {
				// Held up past the transfer's timeout: the target may
				// campaign after the leader gave the transfer up.
				delay += 100*ms + int64(r.IntN(int(200*ms)))
			}
			n.s.schedule(simEvent{at: n.s.now + delay, kind: evDeliver, msg: m})
		}
	}
}

// pause freezes a node, often the leader, for up to four election
// timeouts, as SIGSTOP, a VM stall or a long GC pause would; half the time
// it is also cut off from its peers while stopped and for a moment after.
func (s *sim) pause() {
	r := s.rng
	n := s.nodes[r.IntN(len(s.nodes))]
	if l := s.leader(); l != nil && r.IntN(2) == 0 {
		n = l
	}
	if !n.up || s.paused(n) {
		return
	}
	n.pausedUntil = s.now + 30*ms + int64(r.IntN(int(400*ms)))
	if r.IntN(2) == 0 {
		n.cutUntil = n.pausedUntil + int64(r.IntN(int(60*ms)))
	}
	what := "pause"
	if r.IntN(3) == 0 {
		// The whole host is suspended: the monotonic clock stops too.
		what = "suspend"
		n.suspendedDone += max(0, n.suspendTo-n.suspendFrom)
		n.suspendFrom, n.suspendTo = s.now, n.pausedUntil
	}
	s.res.Pauses++
	s.logf("%s node %d until %.3fs (cut off until %.3fs)", what, n.id, float64(n.pausedUntil)/1e9, float64(n.cutUntil)/1e9)
}

// planFaults schedules the first fault; each fault schedules the next.
func (s *sim) planFaults() {
	s.schedule(simEvent{at: 300*ms + int64(s.rng.IntN(int(500*ms))), kind: evFault})
}

// fault applies one fault chosen by the seed: partitions of every shape,
// message loss, duplication and delay, crashes and restarts, slow disks and
// leadership transfers.
func (s *sim) fault() {
	if s.settled {
		return
	}
	defer s.schedule(simEvent{at: s.now + 100*ms + int64(s.rng.IntN(int(700*ms))), kind: evFault})
	r := s.rng
	nodes := len(s.nodes)
	if r.IntN(10) == 0 {
		s.startChange() // grow, shrink or replace, driven to completion
		return
	}
	if r.IntN(8) == 0 {
		s.pause()
		return
	}
	if r.IntN(20) == 0 {
		// A wall clock step, forward or back: it must not move the
		// clocks Raft's timing runs on. Never while the host is
		// suspended: a step back then could hide the suspension from the
		// lease (the one case guides/clients.md says leases do not
		// survive), as drift beyond the bound would.
		n := s.nodes[r.IntN(len(s.nodes))]
		if s.paused(n) {
			return
		}
		step := int64(r.IntN(int(4000*ms))) - 2000*ms
		n.wallStep += step
		s.logf("wall clock of node %d stepped by %dms", n.id, step/ms)
		return
	}
	switch k := r.IntN(100); {
	case k < 15: // symmetric partition into two sides
		s.net.heal()
		for i := range s.net.group {
			s.net.group[i] = r.IntN(2)
		}
		s.res.Partitions++
		s.logf("partition %v", s.net.group)
	case k < 22: // partial partition: one node reaches only some others
		s.net.heal()
		x := r.IntN(nodes)
		for y := range nodes {
			if y != x && r.IntN(2) == 0 {
				s.net.cut[[2]int{x, y}] = true
				s.net.cut[[2]int{y, x}] = true
			}
		}
		s.res.Partitions++
		s.logf("partial partition around node %d: %v", x+1, s.net.cut)
	case k < 30: // asymmetric: one-way cuts
		for range 1 + r.IntN(3) {
			x, y := r.IntN(nodes), r.IntN(nodes)
			if x != y {
				s.net.cut[[2]int{x, y}] = true
			}
		}
		s.res.Partitions++
		s.logf("one-way cuts %v", s.net.cut)
	case k < 36:
		s.net.heal()
		s.logf("heal")
	case k < 46: // lossy, duplicating, reordering network
		s.net.drop = float64(r.IntN(30)) / 100
		s.net.dup = float64(r.IntN(20)) / 100
		s.net.minDelay = int64(r.IntN(int(2 * ms)))
		s.net.maxDelay = s.net.minDelay + int64(r.IntN(int(30*ms)))
		s.logf("network drop=%.2f dup=%.2f delay=[%d,%d]us", s.net.drop, s.net.dup, s.net.minDelay/us, s.net.maxDelay/us)
	case k < 51:
		s.net.calm()
		s.logf("network calm")
	case k < 63: // crash a node
		n := s.nodes[r.IntN(nodes)]
		s.crash(n)
	case k < 75: // restart a crashed node
		for _, n := range s.nodes {
			if !n.up {
				s.logf("restart node %d", n.id)
				s.start(n)
				s.after(n)
				break
			}
		}
	case k < 81: // a slow disk
		n := s.nodes[r.IntN(nodes)]
		n.disk = 5*ms + int64(r.IntN(int(50*ms)))
		s.logf("slow disk on node %d: %dus", n.id, n.disk/us)
	case k < 84:
		for _, n := range s.nodes {
			n.disk = s.diskLatency()
		}
	case k < 87: // a snapshot and compaction at a random point
		if n := s.nodes[r.IntN(nodes)]; n.up && !s.paused(n) {
			n.node.TakeSnapshot()
			s.logf("snapshot requested on node %d", n.id)
			s.after(n)
		}
	default: // leadership transfer
		for _, n := range s.nodes {
			if n.up && !s.paused(n) && n.node.Status().Role == raftdata.RoleLeader {
				to := raftdata.NodeID(0)
				if r.IntN(2) == 0 {
					to = raftdata.NodeID(1 + r.IntN(nodes))
				}
				if t := s.nodes[r.IntN(nodes)]; r.IntN(2) == 0 && t != n {
					if to != 0 {
						t = s.nodes[to-1]
					}
					// The target's vote for itself takes longer to write
					// than an election timeout: it may win after the
					// leader abandoned the transfer.
					t.disk = 100*ms + int64(r.IntN(int(200*ms)))
					s.logf("slow disk on transfer target %d: %dus", t.id, t.disk/us)
				}
				if r.IntN(2) == 0 {
					// Cut the leader off soon after: it hears nothing of an
					// election its transfer may still cause.
					s.schedule(simEvent{at: s.now + 50*ms + int64(r.IntN(int(60*ms))), kind: evIsolate, node: int(n.id - 1)})
				}
				err := n.node.Transfer(to)
				s.res.Transfers++
				s.logf("transfer from %d to %d: %v", n.id, to, err)
				s.after(n)
				break
			}
		}
	}
}
