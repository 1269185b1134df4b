module github.com/raftkit/raftkit/cmd/raftgen

go 1.26.0

replace github.com/raftkit/raftkit => ../..

replace github.com/raftkit/raftkit/gen => ../../gen

require (
	github.com/raftkit/raftkit/gen v0.0.0-00010101000000-000000000000
	go.yaml.in/yaml/v3 v3.0.5
)

require (
	github.com/dave/jennifer v1.7.1 // indirect
	golang.org/x/mod v0.42.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/tools v0.52.0 // indirect
)
