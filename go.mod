module github.com/raftkit/raftkit

go 1.24
