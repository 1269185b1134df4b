package raft

import (
	"context"
	"time"

	"github.com/raftkit/raftkit/raft/raftdata"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the spans' instrumentation scope.
const tracerName = "github.com/raftkit/raftkit/raft"

// tracing records OpenTelemetry spans when Config.TracerProvider is set;
// without one every method is a no-op that costs a branch, so the hot path
// pays nothing when tracing is off.
//
// Spans: raft.Propose (a proposal from submission to its result, with its
// index and term, and events raft.appended, raft.committed and
// raft.applied), its child raft.replicate (from the leader's append to the
// commit: the time spent making the entry durable on a majority, §5.3),
// raft.storage.Save (one durable write: entries and hard state),
// raft.apply (one batch handed to the state machine), raft.network.Send
// (one batch of messages handed to the network), raft.snapshot.write (the
// state machine's snapshot written to storage, with its size) and
// raft.snapshot.restore (a snapshot from the leader restored into the state
// machine).
type tracing struct {
	t     trace.Tracer
	attrs []attribute.KeyValue
}

func newTracing(tp trace.TracerProvider, id raftdata.NodeID, group raftdata.GroupID) tracing {
	if tp == nil {
		return tracing{}
	}
	return tracing{
		t:     tp.Tracer(tracerName),
		attrs: []attribute.KeyValue{attribute.Int64("raft.node", int64(id)), attribute.Int64("raft.group", int64(group))},
	}
}

func (tr *tracing) on() bool { return tr.t != nil }

// start begins a span with the node's attributes and extra ones.
func (tr *tracing) start(ctx context.Context, name string, extra ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs := append(append(make([]attribute.KeyValue, 0, len(tr.attrs)+len(extra)), tr.attrs...), extra...)
	return tr.t.Start(ctx, name, trace.WithAttributes(attrs...))
}

// end ends span, recording err.
func end(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// save traces a storage write.
func (tr *tracing) save(entries int, hs bool) trace.Span {
	_, span := tr.start(context.Background(), "raft.storage.Save",
		attribute.Int("raft.entries", entries), attribute.Bool("raft.hard_state", hs))
	return span
}

// send traces a batch handed to the network.
func (tr *tracing) send(n *Node, msgs []raftdata.Message) {
	if !tr.on() {
		n.net.Send(msgs)
		return
	}
	_, span := tr.start(context.Background(), "raft.network.Send", attribute.Int("raft.messages", len(msgs)))
	n.net.Send(msgs)
	span.End()
}

// appended records that f's entry is in the leader's log at f.index and
// starts its raft.replicate span. Called on the main loop.
func (tr *tracing) appended(f *Future) {
	idx := []attribute.KeyValue{attribute.Int64("raft.index", int64(f.index)), attribute.Int64("raft.term", int64(f.term))}
	f.span.SetAttributes(idx...)
	f.span.AddEvent("raft.appended")
	_, f.repl = tr.start(trace.ContextWithSpan(context.Background(), f.span), "raft.replicate", idx...)
}

// committed records, with the time the commit was learned, that f's entry
// is committed. Called by the applier before the entry is applied.
func (f *Future) committed(at time.Time) {
	f.span.AddEvent("raft.committed", trace.WithTimestamp(at))
	if f.repl != nil {
		f.repl.End(trace.WithTimestamp(at))
		f.repl = nil
	}
}

// traceFinish records a proposal's outcome on its spans: the result
// (or the state machine's per-command error), or the failure; an
// asynchronous proposal's span ends here.
func (f *Future) traceFinish(result any, err error) {
	if f.repl != nil {
		end(f.repl, err)
		f.repl = nil
	}
	if err == nil {
		f.span.AddEvent("raft.applied")
		if e, ok := result.(error); ok {
			f.span.SetAttributes(attribute.String("raft.result_error", e.Error()))
		}
	}
	if f.async {
		end(f.span, err)
	}
}
