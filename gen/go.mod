module github.com/raftkit/raftkit/gen

go 1.26.0

replace github.com/raftkit/raftkit => ..

require (
	github.com/dave/jennifer v1.7.1
	github.com/raftkit/raftkit v0.0.0-00010101000000-000000000000
	golang.org/x/tools v0.52.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
)
