package raft

import (
	"context"
	"sync"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// proposalQueue hands proposals from callers to the main loop. Callers
// append under a mutex and the loop swaps out the whole queue at once: one
// lock per batch on the loop's side, instead of one channel receive per
// proposal. The queue is bounded; callers wait for room.
type proposalQueue struct {
	mu     sync.Mutex
	items  []*Future
	limit  int
	closed bool
	space  chan struct{} // closed (and replaced) when the loop empties a full queue
	signal chan struct{} // wakes the loop when the queue becomes non-empty (the loop's one wake channel)
}

func newProposalQueue(limit int, signal chan struct{}) *proposalQueue {
	return &proposalQueue{limit: limit, space: make(chan struct{}), signal: signal}
}

func (q *proposalQueue) push(ctx context.Context, f *Future, stopping <-chan struct{}) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrStopped
		}
		if len(q.items) < q.limit {
			q.items = append(q.items, f)
			wake := len(q.items) == 1
			q.mu.Unlock()
			if wake {
				select {
				case q.signal <- struct{}{}:
				default:
				}
			}
			return nil
		}
		space := q.space
		q.mu.Unlock()
		select {
		case <-space:
		case <-stopping:
			return ErrStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waiting reports whether proposals are queued.
func (q *proposalQueue) waiting() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) > 0
}

// take returns everything queued and gives the queue buf (emptied) to fill
// next, so that two slices alternate without allocating.
func (q *proposalQueue) take(buf []*Future) []*Future {
	q.mu.Lock()
	items := q.items
	if len(items) >= q.limit {
		close(q.space)
		q.space = make(chan struct{})
	}
	q.items = buf[:0]
	q.mu.Unlock()
	return items
}

// close refuses further proposals and returns the ones still queued.
func (q *proposalQueue) close() []*Future {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	items := q.items
	q.items = nil
	close(q.space)
	return items
}

// inbox hands received messages and loop events to the main loop: senders
// append under a mutex and wake the loop through one channel (shared with
// the proposal queue), and the loop takes everything at once. The loop's
// select then names three channels (stop, ticker, wake) instead of one per
// input kind, and a message batch costs a lock instead of a channel send
// and receive: both matter on the hottest path of a busy leader.
//
// Message batches are bounded (Step waits for room, as a full network
// buffer would); events are not, as each is owed to a caller or goroutine
// that waits for it (bounded by the number of them).
type inbox struct {
	mu      sync.Mutex
	msgs    [][]raftdata.Message
	events  []loopEvent
	limit   int // of message batches
	closed  bool
	space   chan struct{} // closed (and replaced) when the loop empties a full inbox
	signal  chan struct{} // the loop's wake-up channel
	spareM  [][]raftdata.Message
	spareEv []loopEvent
}

func newInbox(limit int, signal chan struct{}) *inbox {
	return &inbox{limit: limit, space: make(chan struct{}), signal: signal}
}

func (b *inbox) wake() {
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

// pushMsgs queues a batch of messages, waiting while the inbox is full.
func (b *inbox) pushMsgs(ctx context.Context, msgs []raftdata.Message, stopping <-chan struct{}) error {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return ErrStopped
		}
		if len(b.msgs) < b.limit {
			b.msgs = append(b.msgs, msgs)
			wake := len(b.msgs) == 1 && len(b.events) == 0
			b.mu.Unlock()
			if wake {
				b.wake()
			}
			return nil
		}
		space := b.space
		b.mu.Unlock()
		select {
		case <-space:
		case <-stopping:
			return ErrStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// post queues an event; false once the loop has stopped.
func (b *inbox) post(ev loopEvent) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.events = append(b.events, ev)
	wake := len(b.events) == 1 && len(b.msgs) == 0
	b.mu.Unlock()
	if wake {
		b.wake()
	}
	return true
}

// take returns everything queued; the slices stay valid until the next
// take (two sets of buffers alternate).
func (b *inbox) take() ([][]raftdata.Message, []loopEvent) {
	// The caller is done with the previous take's slices: recycle them.
	clear(b.spareM)
	clear(b.spareEv)
	b.mu.Lock()
	msgs, events := b.msgs, b.events
	if len(msgs) >= b.limit {
		close(b.space)
		b.space = make(chan struct{})
	}
	b.msgs, b.events = b.spareM[:0], b.spareEv[:0]
	b.mu.Unlock()
	b.spareM, b.spareEv = msgs, events
	return msgs, events
}

// close refuses further input and returns the events still queued.
func (b *inbox) close() []loopEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	events := b.events
	b.msgs, b.events = nil, nil
	close(b.space)
	return events
}
