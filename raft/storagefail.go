package raft

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The storage failure policy (written for users on Storage, "Failures"):
//
//   - A failed write is retried with backoff (10 ms doubling to 1 s):
//     nothing that depends on it has been sent, so waiting out an outage
//     loses nothing.
//   - A leader whose write has failed or gone unanswered for an election
//     timeout hands leadership over (engine.StepDown): its followers hold
//     what it sent them, and one of them can commit while it cannot.
//   - A permanent error (ErrPermanent, ErrCorrupt) stops the node at once,
//     and writes failing or unanswered for Config.StorageTimeout stop it
//     with ErrStorageStalled: Node.Err reports why, and a leader hands
//     leadership over first.

// isPermanent reports whether a storage error cannot be cured by retrying.
func isPermanent(err error) bool {
	return errors.Is(err, ErrPermanent) || errors.Is(err, ErrCorrupt)
}

// storageWatch is what the loop's watchdog knows of the persister's work.
type storageWatch struct {
	// since is when the storage operation in progress started (on the
	// monotonic clock, plus one), or 0 when none is.
	since atomic.Int64
	// errors counts failed storage calls since the node started.
	errors atomic.Uint64
	// last is the latest error of the operation in progress, or nil.
	last atomic.Pointer[error]
	// abandon is closed when the node stops because storage stalled: the
	// goroutine stuck in the store is no longer waited for.
	abandon     chan struct{}
	abandonOnce sync.Once
}

// begin records that a storage operation starts.
func (w *storageWatch) begin(now time.Duration) {
	if w.since.Load() == 0 {
		w.since.Store(int64(now) + 1)
	}
}

// end records that it finished, successfully or for good. It is on the
// path of every write: two atomic operations when nothing failed.
func (w *storageWatch) end() {
	w.since.Store(0)
	if w.last.Load() != nil {
		w.last.Store(nil)
	}
}

// failed counts a failed call and keeps its error for the report.
func (w *storageWatch) failed(err error) {
	w.errors.Add(1)
	w.last.Store(&err)
}

// busyFor returns how long the operation in progress has run, and the last
// error it met.
func (w *storageWatch) busyFor(now time.Duration) (time.Duration, error) {
	s := w.since.Load()
	if s == 0 {
		return 0, nil
	}
	var last error
	if p := w.last.Load(); p != nil {
		last = *p
	}
	return now - time.Duration(s-1), last
}

// checkStorage is the loop's watchdog, run at every ticker wake: a leader
// whose write has failed or stalled for an election timeout steps down, and
// a node whose write has for Config.StorageTimeout stops.
func (n *Node) checkStorage() {
	d, last := n.watch.busyFor(n.monoClock())
	if d < n.cfg.ElectionTimeout {
		return
	}
	if n.eng.StepDown() {
		n.log.Error("storage write failing or stalled: handing leadership over", "for", d.Round(time.Millisecond), "err", last)
	}
	if n.cfg.StorageTimeout > 0 && d >= n.cfg.StorageTimeout {
		err := fmt.Errorf("%w: no write completed for %v", ErrStorageStalled, d.Round(time.Millisecond))
		if last != nil {
			err = fmt.Errorf("%w: no write completed for %v (last error: %w)", ErrStorageStalled, d.Round(time.Millisecond), last)
		}
		n.watch.abandonOnce.Do(func() { close(n.watch.abandon) })
		n.failStorage(err)
	}
}

// storageFailedFor stops the node for a permanent storage error met off
// the loop (the persister): the loop hands leadership over, then stops.
func (n *Node) storageFailedFor(op string, err error) {
	err = fmt.Errorf("raft: storage %s failed permanently: %w", op, err)
	if !n.post(loopEvent{fn: func() { n.failStorage(err) }}) {
		n.fail(err)
	}
}

// failStorage stops the node on the loop. A leader first tells its most
// up-to-date follower to campaign at once (engine.StepDown), so that the
// cluster need not wait out an election timeout.
func (n *Node) failStorage(err error) {
	if n.eng.StepDown() {
		n.handleReady(n.eng.Ready())
	}
	n.fail(err)
}
