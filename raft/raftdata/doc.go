// Package raftdata defines the data that Raft stores and exchanges: log
// entries, the hard state, cluster membership, snapshot metadata and chunks,
// and protocol messages. Every Storage and Network implementation reads and
// writes these types; package raft, its engine, the wire codec, the
// conformance suites and every adapter share them from here.
//
// The types are plain values with no behaviour beyond small helpers
// (Entry.Size, Membership.IsVoter, ...). Their meaning in the protocol is
// documented on each declaration, with the section of the Raft paper or of
// Ongaro's thesis that defines it.
package raftdata
