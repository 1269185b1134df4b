package raft

import (
	"context"
	"sync"
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
	signal chan struct{} // wakes the loop when the queue becomes non-empty
}

func newProposalQueue(limit int) *proposalQueue {
	return &proposalQueue{limit: limit, space: make(chan struct{}), signal: make(chan struct{}, 1)}
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
