package main

import (
	"context"
	"fmt"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// newTracerProvider exports spans in batches to an OTLP/HTTP collector at
// endpoint (host:port, plain HTTP: a collector on the node's own machine or
// network).
func newTracerProvider(ctx context.Context, endpoint string) (*sdktrace.TracerProvider, error) {
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure())
	if err != nil {
		return nil, fmt.Errorf("-otlp %s: %w", endpoint, err)
	}
	res := resource.NewSchemaless(semconv.ServiceName("raftkit-kv"))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// propagator carries a trace from one node's HTTP API to another's in the
// W3C traceparent header, so a write forwarded to the leader is one trace:
// the follower's request span, its forward, the leader's request span and
// the leader's raft.Propose with its replicate, commit and apply.
var propagator = propagation.TraceContext{}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// traced wraps an API handler in a server span named "kv <pattern>",
// continuing the caller's trace when the request carries one. Without a
// tracer it returns h unchanged.
func (k *kvNode) traced(pattern string, h http.HandlerFunc) http.HandlerFunc {
	if k.cfg.tracer == nil {
		return h
	}
	tr := k.cfg.tracer.Tracer("github.com/raftkit/raftkit/examples/kv")
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tr.Start(ctx, "kv "+pattern, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path),
				semconv.HTTPRoute(pattern), attribute.Int64("raft.node", int64(k.cfg.id))))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r.WithContext(ctx))
		span.SetAttributes(semconv.HTTPResponseStatusCode(sw.code))
		if sw.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.code))
		}
	}
}

// startForwardSpan starts the client span of a write forwarded to the
// leader and puts the trace into the request's headers.
func (k *kvNode) startForwardSpan(req *http.Request, leader uint64) trace.Span {
	if k.cfg.tracer == nil {
		return nil
	}
	ctx, span := k.cfg.tracer.Tracer("github.com/raftkit/raftkit/examples/kv").Start(req.Context(), "kv forward",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.Int64("raft.leader", int64(leader))))
	propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	return span
}
