package raft_test

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// spanRecorder is a TracerProvider, on the OpenTelemetry trace API alone,
// that keeps every ended span. The core module's tests use it instead of
// the OpenTelemetry SDK, so that the core's go.mod names no SDK module.
type spanRecorder struct {
	noop.TracerProvider
	mu    sync.Mutex
	ended []*recordedSpan
	ids   atomic.Uint64
}

// Tracer implements trace.TracerProvider.
func (r *spanRecorder) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return recordingTracer{r: r}
}

// Ended returns the spans ended so far, in the order they ended.
func (r *spanRecorder) Ended() []*recordedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*recordedSpan(nil), r.ended...)
}

type recordingTracer struct {
	noop.Tracer
	r *spanRecorder
}

func (t recordingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	parent := trace.SpanContextFromContext(ctx)
	var sid trace.SpanID
	binary.BigEndian.PutUint64(sid[:], t.r.ids.Add(1))
	tid := parent.TraceID()
	if !tid.IsValid() {
		binary.BigEndian.PutUint64(tid[8:], t.r.ids.Add(1))
	}
	start := cfg.Timestamp()
	if start.IsZero() {
		start = time.Now()
	}
	s := &recordedSpan{r: t.r, name: name, parent: parent, start: start, attrs: cfg.Attributes(),
		sc: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})}
	return trace.ContextWithSpan(ctx, s), s
}

// recordedEvent is one event of a recordedSpan.
type recordedEvent struct {
	Name string
	Time time.Time
}

// recordedSpan is a span kept by a spanRecorder.
type recordedSpan struct {
	noop.Span
	r      *spanRecorder
	name   string
	parent trace.SpanContext
	sc     trace.SpanContext

	mu     sync.Mutex
	start  time.Time
	end    time.Time
	attrs  []attribute.KeyValue
	events []recordedEvent
	status codes.Code
}

func (s *recordedSpan) Name() string                   { return s.name }
func (s *recordedSpan) Parent() trace.SpanContext      { return s.parent }
func (s *recordedSpan) SpanContext() trace.SpanContext { return s.sc }
func (s *recordedSpan) IsRecording() bool              { return true }
func (s *recordedSpan) StartTime() time.Time           { return s.start }

func (s *recordedSpan) EndTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

func (s *recordedSpan) Attributes() []attribute.KeyValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]attribute.KeyValue(nil), s.attrs...)
}

func (s *recordedSpan) Events() []recordedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recordedEvent(nil), s.events...)
}

func (s *recordedSpan) SetAttributes(kv ...attribute.KeyValue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attrs = append(s.attrs, kv...)
}

func (s *recordedSpan) AddEvent(name string, opts ...trace.EventOption) {
	cfg := trace.NewEventConfig(opts...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, recordedEvent{Name: name, Time: cfg.Timestamp()})
}

func (s *recordedSpan) RecordError(err error, opts ...trace.EventOption) {
	s.AddEvent("exception", opts...)
}

func (s *recordedSpan) SetStatus(code codes.Code, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

func (s *recordedSpan) End(opts ...trace.SpanEndOption) {
	cfg := trace.NewSpanEndConfig(opts...)
	s.mu.Lock()
	if !s.end.IsZero() {
		s.mu.Unlock()
		return
	}
	s.end = cfg.Timestamp()
	if s.end.IsZero() {
		s.end = time.Now()
	}
	s.mu.Unlock()
	s.r.mu.Lock()
	s.r.ended = append(s.r.ended, s)
	s.r.mu.Unlock()
}
