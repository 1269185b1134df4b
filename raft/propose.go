package raft

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/raftkit/raftkit/raft/internal/engine"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Future is the pending outcome of a proposal made with ProposeAsync.
type Future struct {
	data  []byte
	index uint64
	term  uint64
	// assigned is closed once index and term are set (or the proposal
	// failed); nil for synchronous proposals, which do not wait for it.
	assigned chan struct{}
	// done is closed when the outcome is known. A pooled future (internal
	// to Propose) instead receives one token on it, so that the future and
	// its channel can be reused.
	done   chan struct{}
	pooled bool
	async  bool // from ProposeAsync: finish ends span
	state  atomic.Uint32
	result any
	err    error
	// span is the proposal's raft.Propose span and repl its child
	// raft.replicate span, from the append to the commit; both nil unless
	// tracing is on.
	span, repl trace.Span
}

// futurePool recycles the futures of synchronous proposals: one allocation
// fewer per write on the hottest path.
var futurePool = sync.Pool{New: func() any {
	return &Future{done: make(chan struct{}, 1), pooled: true}
}}

// Index returns the log index assigned to the proposal (0 if it failed
// before being appended).
func (f *Future) Index() uint64 { return f.index }

// Term returns the term in which the proposal was appended.
func (f *Future) Term() uint64 { return f.term }

// Done is closed once the outcome is known.
func (f *Future) Done() <-chan struct{} { return f.done }

// Result returns the state machine's result for the command once Done is
// closed; before that it returns an error saying the outcome is pending.
// Call Wait to block.
func (f *Future) Result() (any, error) {
	select {
	case <-f.done:
		return f.result, f.err
	default:
		return nil, errors.New("raft: proposal still pending")
	}
}

// Wait blocks until the outcome is known or ctx ends. When ctx ends first,
// the command may still be applied later: its outcome is unknown.
func (f *Future) Wait(ctx context.Context) (any, error) {
	if ctx.Done() == nil {
		<-f.done
		return f.result, f.err
	}
	select {
	case <-f.done:
		return f.result, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("raft: waiting for proposal: %w", ctx.Err())
	}
}

// finish sets the outcome once; later calls are ignored.
func (f *Future) finish(result any, err error) {
	if !f.state.CompareAndSwap(0, 1) {
		return
	}
	if f.span != nil {
		f.traceFinish(result, err)
	}
	f.result, f.err = result, err
	if f.assigned != nil {
		select {
		case <-f.assigned:
		default:
			close(f.assigned)
		}
	}
	if f.pooled {
		f.done <- struct{}{} // the last touch: the waiter may recycle f
		return
	}
	close(f.done)
}

// Propose replicates cmd, waits until it is applied on this node, and
// returns the state machine's result. Only the leader accepts proposals:
// elsewhere it returns a *NotLeaderError. If ctx ends first the outcome is
// unknown: the command may or may not be applied.
func (n *Node) Propose(ctx context.Context, cmd []byte) (res any, err error) {
	var span trace.Span
	if n.trace.on() {
		ctx, span = n.trace.start(ctx, "raft.Propose", attribute.Int("raft.bytes", len(cmd)))
		defer func() { end(span, err) }()
	}
	f, err := n.submit(ctx, cmd, false, span)
	if err != nil {
		return nil, err
	}
	if done := ctx.Done(); done == nil {
		<-f.done
	} else {
		select {
		case <-f.done:
		case <-done:
			// The future stays with the applier; it is not recycled.
			return nil, fmt.Errorf("raft: waiting for proposal: %w", ctx.Err())
		}
	}
	res, err = f.result, f.err
	*f = Future{done: f.done, pooled: true}
	futurePool.Put(f)
	return res, err
}

// ProposeAsync appends cmd to the leader's log and returns as soon as it
// has an index and term, without waiting for commit. The Future delivers
// the result. Errors known at once (not the leader, too large, stopped)
// are returned directly.
func (n *Node) ProposeAsync(ctx context.Context, cmd []byte) (*Future, error) {
	var span trace.Span
	if n.trace.on() {
		// The span ends with the outcome (Future.finish), or here when
		// the proposal fails before it is queued.
		ctx, span = n.trace.start(ctx, "raft.Propose", attribute.Int("raft.bytes", len(cmd)), attribute.Bool("raft.async", true))
	}
	f, err := n.submit(ctx, cmd, true, span)
	if err != nil {
		if span != nil {
			end(span, err)
		}
		return nil, err
	}
	select {
	case <-f.assigned:
	case <-ctx.Done():
		return nil, fmt.Errorf("raft: waiting for proposal index: %w", ctx.Err())
	}
	if f.index == 0 {
		<-f.done
		return nil, f.err
	}
	return f, nil
}

// submit queues cmd for the loop; span, when tracing, is the proposal's
// raft.Propose span (ended by finish for an asynchronous proposal).
func (n *Node) submit(ctx context.Context, cmd []byte, async bool, span trace.Span) (*Future, error) {
	if len(cmd) > n.cfg.MaxEntryBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrProposalTooLarge, len(cmd), n.cfg.MaxEntryBytes)
	}
	if n.view.Load().role != raftdata.RoleLeader {
		return nil, n.notLeader()
	}
	var f *Future
	if async {
		f = &Future{data: cmd, done: make(chan struct{}), assigned: make(chan struct{}), span: span, async: true}
	} else {
		f = futurePool.Get().(*Future)
		f.data, f.span = cmd, span
	}
	if err := n.props.push(ctx, f, n.stopping); err != nil {
		if f.pooled {
			f.data, f.span = nil, nil
			futurePool.Put(f)
		}
		if errors.Is(err, ErrStopped) {
			return nil, err
		}
		return nil, fmt.Errorf("raft: submitting proposal: %w", err)
	}
	return f, nil
}

// takeProposals appends everything queued, in batches of at most
// MaxProposalBatch commands.
func (n *Node) takeProposals() {
	all := n.props.take(n.spare)
	for fs := all; len(fs) > 0; {
		k := min(len(fs), n.cfg.MaxProposalBatch)
		n.flushProposals(fs[:k])
		fs = fs[k:]
	}
	n.spare = all[:0]
}

// flushProposals appends one batch of proposals (one write, one fsync).
func (n *Node) flushProposals(fs []*Future) {
	// The engine copies the batch into its log, so the buffer is reused.
	batch := n.batch[:0]
	for _, f := range fs {
		batch = append(batch, raftdata.Entry{Type: raftdata.EntryNormal, Data: f.data})
	}
	first, err := n.eng.Propose(batch)
	clear(batch)
	n.batch = batch[:0]
	if err != nil {
		err = n.proposeError(err)
		for _, f := range fs {
			f.finish(nil, err)
		}
		clear(fs)
		return
	}
	term := n.eng.Term()
	for i, f := range fs {
		f.index, f.term, f.data = first+uint64(i), term, nil
		if f.span != nil {
			n.trace.appended(f)
		}
		if f.assigned != nil {
			close(f.assigned)
		}
	}
	n.applier.register(fs) // copies the futures into its own queue
	clear(fs)
}

func (n *Node) proposeError(err error) error {
	switch {
	case errors.Is(err, engine.ErrNotLeader):
		return &NotLeaderError{LeaderID: n.eng.Leader(), LeaderAddr: n.lastView.leaderAddr}
	case errors.Is(err, engine.ErrTransferring):
		return ErrTransferInProgress
	}
	return err
}
