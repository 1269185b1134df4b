package rafttest

// The directed links of the in-memory Network: queues, delays and delivery.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkit/raftkit/raft/raftdata"
)

type netLinkKey struct{ from, to raftdata.NodeID }

// netLinkState is a link's fault state, replaced whole when faults change.
type netLinkState struct {
	blocked bool // partitioned, isolated or cut
	faults  LinkFaults
	lossy   bool // DropRate or DuplicateRate set
	delayed bool // MaxDelay set
}

// netLink is a directed link: a FIFO queue and the goroutine that drains it.
type netLink struct {
	net      *Network
	from, to raftdata.NodeID
	src, dst *netNode
	quit     chan struct{} // closed by stop
	state    atomic.Pointer[netLinkState]
	signal   chan struct{} // cap 1: the queue went from empty to non-empty
	epoch    atomic.Uint64 // bumped by purge, under mu; stale delayed messages are dropped
	// pending counts the messages taken from the queue and not yet delivered or
	// dropped (in hand or delayed); it counts against the queue limit.
	// Increased under mu when taking, so that qlen+pending never dips.
	pending atomic.Int64

	mu sync.Mutex
	// The queue is a FIFO of chunks, each handed whole to one Step call (the
	// receiver owns it then), so that queueing allocates one array per chunk
	// and never copies to grow.
	chunks [][]raftdata.Message // non-empty; senders append to the last
	qlen   int                  // messages in chunks
	hint   int                  // size of the last batch taken, to size the next chunk
	dead   bool                 // stopped: enqueue drops

	delayed netDelayHeap // owned by the link goroutine
}

// enqueue appends msgs, all addressed to l.to, to the queue.
func (l *netLink) enqueue(msgs []raftdata.Message) {
	n := l.net
	if l.state.Load().blocked || l.dst.cur.Load() == nil {
		l.drop(len(msgs))
		return
	}
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		l.drop(len(msgs))
		return
	}
	k := len(msgs)
	if room := n.queueLimit - l.qlen - int(l.pending.Load()); k > room {
		k = max(room, 0)
	}
	wasEmpty := l.qlen == 0
	l.appendLocked(msgs[:k])
	l.mu.Unlock()
	if k < len(msgs) {
		l.drop(len(msgs) - k)
	}
	if wasEmpty && k > 0 {
		select {
		case l.signal <- struct{}{}:
		default:
		}
	}
}

// appendLocked appends msgs to the queue's chunks. A new chunk is as large as
// msgs, with room for a few more when the last batch taken was larger, and
// doubles while the queue backs up. (Every chunk is handed to the receiver,
// so an oversized one is allocated and scanned for nothing.)
func (l *netLink) appendLocked(msgs []raftdata.Message) {
	l.qlen += len(msgs)
	for len(msgs) > 0 {
		nc := len(l.chunks)
		if nc == 0 || len(l.chunks[nc-1]) == cap(l.chunks[nc-1]) {
			size := max(min(l.hint, 4), len(msgs))
			if nc > 0 {
				size = max(size, 2*cap(l.chunks[nc-1]))
			}
			size = min(size, netMaxBatch)
			l.chunks = append(l.chunks, make([]raftdata.Message, 0, size))
			nc++
		}
		tail := &l.chunks[nc-1]
		k := min(len(msgs), cap(*tail)-len(*tail))
		*tail = append(*tail, msgs[:k]...)
		msgs = msgs[k:]
	}
}

// takeLocked removes and returns the oldest chunk.
func (l *netLink) takeLocked() []raftdata.Message {
	batch := l.chunks[0]
	copy(l.chunks, l.chunks[1:])
	l.chunks[len(l.chunks)-1] = nil
	l.chunks = l.chunks[:len(l.chunks)-1]
	l.qlen -= len(batch)
	l.hint = len(batch)
	return batch
}

// purge discards the queued and delayed messages. Called under Network.mu.
func (l *netLink) purge() {
	l.mu.Lock()
	dropped := l.qlen
	clear(l.chunks)
	l.chunks = l.chunks[:0]
	l.qlen = 0
	l.epoch.Add(1) // delayed messages are dropped when they come due
	l.mu.Unlock()
	l.drop(dropped)
}

// stop purges the link and ends its goroutine; later enqueues drop. Called
// under Network.mu, with the link already unregistered.
func (l *netLink) stop() {
	l.mu.Lock()
	l.dead = true
	l.mu.Unlock()
	l.purge()
	close(l.quit)
}

// drop counts k messages of this link as dropped.
func (l *netLink) drop(k int) {
	if k > 0 {
		l.net.dropped.Add(uint64(k))
		l.src.dropped.Add(uint64(k))
	}
}

func (l *netLink) run() {
	n := l.net
	defer n.wg.Done()
	done := n.ctx.Done()
	defer func() { // a stopped link drops what it still holds
		l.drop(len(l.delayed))
		l.pending.Add(-int64(len(l.delayed)))
		clear(l.delayed)
		l.delayed = nil
	}()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-done:
			return
		case <-l.quit:
			return
		default:
		}
		if len(l.delayed) > 0 && l.delayed[0].due <= n.now() {
			l.deliverDue()
			continue
		}
		l.mu.Lock()
		if l.qlen > 0 {
			batch := l.takeLocked()
			epoch := l.epoch.Load()
			l.pending.Add(int64(len(batch)))
			l.mu.Unlock()
			l.process(batch, epoch)
			continue
		}
		l.mu.Unlock()

		var timerC <-chan time.Time
		if len(l.delayed) > 0 {
			d := time.Duration(l.delayed[0].due - n.now())
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			timerC = timer.C
		}
		select {
		case <-l.signal:
		case <-timerC:
		case <-done:
			return
		case <-l.quit:
			return
		}
	}
}

// process applies the link's faults to a batch taken from the queue and
// delivers it or holds it for its delay.
func (l *netLink) process(batch []raftdata.Message, epoch uint64) {
	taken := int64(len(batch))
	st := l.state.Load()
	if st.blocked {
		l.drop(len(batch))
		l.pending.Add(-taken)
		return
	}
	if st.lossy {
		batch = l.applyLoss(batch, st.faults)
	}
	if st.delayed {
		l.hold(batch, st.faults, epoch)
		l.pending.Add(int64(len(batch)) - taken) // the held ones stay pending
		return
	}
	if len(batch) > 0 {
		l.deliver(batch)
	}
	l.pending.Add(-taken)
}

// applyLoss drops and duplicates messages of batch, in place where it can.
func (l *netLink) applyLoss(batch []raftdata.Message, f LinkFaults) []raftdata.Message {
	n := l.net
	out := batch[:0]
	var dups []raftdata.Message
	n.rngMu.Lock()
	for i := range batch {
		if f.DropRate > 0 && n.rng.Float64() < f.DropRate {
			continue
		}
		out = append(out, batch[i]) // out never overtakes i
		if f.DuplicateRate > 0 && n.rng.Float64() < f.DuplicateRate {
			dups = append(dups, batch[i])
		}
	}
	n.rngMu.Unlock()
	if lost := len(batch) - len(out); lost > 0 {
		l.drop(lost)
	}
	if len(dups) > 0 {
		n.duplicated.Add(uint64(len(dups)))
		out = append(out, dups...)
	}
	return out
}

// hold schedules each message of batch after its own random delay.
func (l *netLink) hold(batch []raftdata.Message, f LinkFaults, epoch uint64) {
	n := l.net
	now := n.now()
	span := int64(f.MaxDelay - f.MinDelay)
	n.rngMu.Lock()
	for i := range batch {
		d := int64(f.MinDelay)
		if span > 0 {
			d += n.rng.Int64N(span + 1)
		}
		l.delayed.push(netDelayed{due: now + d, epoch: epoch, m: batch[i]})
	}
	n.rngMu.Unlock()
}

// deliverDue delivers the delayed messages that have come due, up to a batch.
func (l *netLink) deliverDue() {
	n := l.net
	now := n.now()
	epoch := l.epoch.Load()
	var batch []raftdata.Message
	popped, stale := 0, 0
	for len(l.delayed) > 0 && l.delayed[0].due <= now && len(batch) < netMaxBatch {
		d := l.delayed.pop()
		popped++
		if d.epoch != epoch {
			stale++
			continue
		}
		batch = append(batch, d.m)
	}
	if stale > 0 {
		l.drop(stale)
	}
	if len(batch) > 0 {
		if l.state.Load().blocked {
			l.drop(len(batch))
		} else {
			l.deliver(batch)
		}
	}
	l.pending.Add(-int64(popped))
}

// deliver hands batch to the destination's handler.
func (l *netLink) deliver(batch []raftdata.Message) {
	n := l.net
	ep := l.dst.cur.Load()
	if ep == nil {
		l.drop(len(batch))
		return
	}
	hb := ep.handler.Load()
	if hb == nil {
		l.drop(len(batch))
		return
	}
	k := len(batch) // the handler owns batch once called
	if err := hb.h.Step(ep.ctx, batch); err != nil {
		l.drop(k)
	} else {
		n.delivered.Add(uint64(k))
		l.dst.received.Add(uint64(k))
	}
}

// netDelayed is a message waiting out its delay.
type netDelayed struct {
	due   int64 // Network.now at which it is delivered
	epoch uint64
	m     raftdata.Message
}

// netDelayHeap is a min-heap of delayed messages by due time.
type netDelayHeap []netDelayed

func (h *netDelayHeap) push(d netDelayed) {
	*h = append(*h, d)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].due <= s[i].due {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *netDelayHeap) pop() netDelayed {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = netDelayed{} // release references
	s = s[:last]
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(s) {
			break
		}
		if c+1 < len(s) && s[c+1].due < s[c].due {
			c++
		}
		if s[i].due <= s[c].due {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
	*h = s
	return top
}
