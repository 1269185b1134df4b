module github.com/raftkit/raftkit

go 1.26.0

require (
	github.com/anishathalye/porcupine v1.3.1
	go.opentelemetry.io/otel v1.47.0
	go.opentelemetry.io/otel/trace v1.47.0
	golang.org/x/sys v0.49.0
)

require github.com/cespare/xxhash/v2 v2.3.0 // indirect
