package raft

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/raftkit/raftkit/raft/raftdata"
	"go.opentelemetry.io/otel/trace"
)

// persistJob is one Ready's writes and the messages that may only be sent
// once they are durable. notify, if set, receives the outcome.
type persistJob struct {
	hs     *raftdata.HardState
	ents   []raftdata.Entry
	msgs   []raftdata.Message
	notify chan error
	// chunk is a snapshot chunk from the leader to write; own is this
	// node's snapshot to commit. They are ordered with the log writes.
	chunk *raftdata.Message
	own   *ownSnapshot
}

// persisted tells the loop that entries up to index (of term term) are
// durable.
type persisted struct {
	index, term uint64
}

// persister makes writes durable on its own goroutine. Every job queued
// while a write is in progress is merged into the next write: one Save and
// one fsync for many batches (group commit). Jobs complete in order, and a
// job's messages are sent only after its write and every earlier one.
type persister struct {
	n      *Node
	mu     sync.Mutex
	queue  []persistJob
	busy   bool // a write taken from queue is in progress
	signal chan struct{}
	buf    []raftdata.Entry
	recv   *snapshotReceiver
	// floor is the index of the last snapshot installed from a leader:
	// queued writes of entries at or below it are stale and skipped.
	floor uint64
	// failed is the permanent storage error the node is stopping for.
	failed error
}

func newPersister(n *Node) *persister {
	return &persister{n: n, signal: make(chan struct{}, 1)}
}

func (p *persister) enqueue(j persistJob) {
	p.mu.Lock()
	p.queue = append(p.queue, j)
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

func (p *persister) run() {
	defer p.n.wg.Done()
	var jobs []persistJob
	for {
		select {
		case <-p.signal:
		case <-p.n.stopping:
			// Finish what is queued: it may hold votes and appends whose
			// effects other nodes already count on being attempted.
			p.mu.Lock()
			jobs, p.queue = p.queue, nil
			p.mu.Unlock()
			p.flush(jobs, true)
			return
		}
		p.n.waitHeld()
		jobs = p.writeQueued(jobs)
	}
}

// writeQueued performs one write of everything queued, reusing buf for the
// job list, and returns buf emptied.
func (p *persister) writeQueued(buf []persistJob) []persistJob {
	p.mu.Lock()
	jobs := p.queue
	p.queue = buf[:0]
	p.busy = len(jobs) > 0
	p.mu.Unlock()
	p.flush(jobs, false)
	p.mu.Lock()
	p.busy = false
	p.mu.Unlock()
	clear(jobs)
	return jobs[:0]
}

// writeInline carries out a log write on the caller's goroutine (the main
// loop) when the Storage saves without waiting on I/O (InlineSaver) and no
// earlier write is queued or in progress, so that order is kept. It reports
// whether it did: on false, the job goes to the queue as usual. A failed
// Save also returns false, and the queue's retries take over.
func (p *persister) writeInline(j *persistJob) bool {
	p.mu.Lock()
	if p.busy || len(p.queue) > 0 || (p.floor > 0 && len(j.ents) > 0 && j.ents[0].Index <= p.floor) {
		p.mu.Unlock()
		return false
	}
	p.busy = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.busy = false
		p.mu.Unlock()
	}()
	if j.hs != nil || len(j.ents) > 0 {
		// No deadline: an InlineSaver does not wait, and a timer per write
		// would cost more than the write.
		var span trace.Span
		if p.n.trace.on() {
			span = p.n.trace.save(len(j.ents), j.hs != nil)
		}
		err := p.n.store.Save(context.Background(), j.hs, j.ents)
		if span != nil {
			end(span, err)
		}
		if err != nil {
			// The queue retries it, or stops the node if it is permanent.
			p.n.watch.failed(err)
			p.n.log.Error("storage write failed; retrying", "attempt", 0, "entries", len(j.ents), "err", err)
			return false
		}
	}
	if len(j.msgs) > 0 {
		p.n.trace.send(p.n, j.msgs)
	}
	if len(j.ents) > 0 {
		last := j.ents[len(j.ents)-1]
		p.n.eng.Persisted(last.Index, last.Term)
	}
	return true
}

// flush carries out jobs in order: runs of log writes are merged into one
// Save each; snapshot jobs are carried out between them.
func (p *persister) flush(jobs []persistJob, final bool) {
	start := 0
	for i := range jobs {
		j := &jobs[i]
		if j.chunk == nil && j.own == nil {
			continue
		}
		if i > start {
			p.write(jobs[start:i], final)
		}
		start = i + 1
		if final {
			continue // stopping: do not start snapshot work
		}
		p.n.watch.begin(p.n.monoClock())
		if j.chunk != nil {
			p.writeChunk(j.chunk)
		} else {
			p.commitOwn(j.own)
		}
		p.n.watch.end()
	}
	if start < len(jobs) {
		p.write(jobs[start:], final)
	}
}

// hasWork reports whether writes are queued.
func (p *persister) hasWork() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue) > 0
}

// write merges jobs into one Save (see save for failures).
func (p *persister) write(jobs []persistJob, final bool) {
	var hs *raftdata.HardState
	var ents []raftdata.Entry
	var msgs []raftdata.Message
	withEntries := 0
	for _, j := range jobs {
		if j.hs != nil {
			hs = j.hs
		}
		if len(j.ents) > 0 {
			withEntries++
			ents = j.ents
		}
		msgs = append(msgs, j.msgs...)
	}
	if p.floor > 0 && withEntries > 0 {
		// Entries queued before a snapshot from the leader was installed
		// may lie under it: the snapshot replaced them.
		withEntries = 0
		for i := range jobs {
			for len(jobs[i].ents) > 0 && jobs[i].ents[0].Index <= p.floor {
				jobs[i].ents = jobs[i].ents[1:]
			}
			if len(jobs[i].ents) > 0 {
				withEntries++
				ents = jobs[i].ents
			}
		}
		if withEntries == 0 {
			ents = nil
		}
	}
	if withEntries > 1 {
		// Merge the batches, later ones replacing suffixes of earlier ones.
		ents = nil
		for _, j := range jobs {
			ents = p.merge(ents, j.ents)
		}
	}
	var err error
	if hs != nil || len(ents) > 0 {
		if p.n.trace.on() {
			span := p.n.trace.save(len(ents), hs != nil)
			defer func() { end(span, err) }()
		}
		err = p.save(hs, ents, final)
	}
	for _, j := range jobs {
		if j.notify != nil {
			j.notify <- err
		}
	}
	if err != nil {
		if p.n.manual {
			p.n.fail(fmt.Errorf("raft: storage write: %w", err))
		}
		return
	}
	if len(msgs) > 0 && !final {
		p.n.trace.send(p.n, msgs)
	}
	if len(ents) > 0 {
		last := ents[len(ents)-1]
		clear(p.buf) // drop references to entry data
		p.buf = p.buf[:0]
		p.n.post(loopEvent{persisted: &persisted{index: last.Index, term: last.Term}})
	}
}

// save calls Storage.Save, retrying a failed write with backoff until it
// succeeds or the node stops: nothing that depends on it has been sent, so
// waiting out an outage (a database restart) loses nothing. A permanent
// error stops the node at once; the loop's watchdog (checkStorage) hands
// leadership over, and stops the node, when the retries last too long.
func (p *persister) save(hs *raftdata.HardState, ents []raftdata.Entry, final bool) error {
	if p.failed != nil {
		return p.failed // the node is stopping for it: write nothing more
	}
	n := p.n
	n.watch.begin(n.monoClock())
	defer n.watch.end()
	attemptTimeout := 10 * n.cfg.ElectionTimeout
	if n.cfg.StorageTimeout > 0 {
		attemptTimeout = min(attemptTimeout, n.cfg.StorageTimeout)
	}
	backoff := 10 * time.Millisecond
	for attempt := 0; ; attempt++ {
		var err error
		if n.inlineSave {
			// A store that never waits on I/O needs no deadline, and a
			// timer per write would cost more than the write.
			err = n.store.Save(context.Background(), hs, ents)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
			err = n.store.Save(ctx, hs, ents)
			cancel()
		}
		if err == nil {
			return nil
		}
		n.watch.failed(err)
		if isPermanent(err) {
			p.failed = err
			n.storageFailedFor("write", err)
			return err
		}
		n.log.Error("storage write failed; retrying", "attempt", attempt, "entries", len(ents), "err", err)
		if final || n.manual {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-n.stopping:
			final = true
		}
		backoff = min(2*backoff, time.Second)
	}
}

// check counts a failed snapshot or compaction call, and stops the node
// when the error is permanent. It returns err.
func (p *persister) check(op string, err error) error {
	if err != nil {
		p.n.watch.failed(err)
		if isPermanent(err) && p.failed == nil {
			p.failed = err
			p.n.storageFailedFor(op, err)
		}
	}
	return err
}

// merge appends next to the write being built in p.buf, replacing its
// suffix from next's first index (a later batch may overwrite entries of an
// earlier one). It copies into p.buf, which it reuses from write to write
// (Storage.Save does not retain its slice), and never writes into the
// engine's arrays. A single batch is written as is, without a copy.
func (p *persister) merge(acc, next []raftdata.Entry) []raftdata.Entry {
	if len(next) == 0 {
		return acc
	}
	k := 0
	if len(acc) > 0 && next[0].Index > acc[0].Index {
		k = min(int(next[0].Index-acc[0].Index), len(acc))
	}
	if len(acc) > 0 && k == 0 || len(acc) == 0 {
		p.buf = append(p.buf[:0], next...)
		return p.buf
	}
	// acc is p.buf here: the first batch was copied in on the way.
	p.buf = append(acc[:k], next...)
	return p.buf
}
