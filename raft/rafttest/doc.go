// Package rafttest is raftkit's test kit: an in-memory network with fault
// injection and a cluster harness that tests of the library, its adapters and
// its users' code run on.
package rafttest
