// Package engine is raftkit's pure Raft state machine: inputs (ticks, received
// messages, proposals, completed writes) produce outputs (entries and hard state
// to persist, messages to send, entries to apply) and nothing else. It starts no
// goroutines, reads no clock, draws no randomness of its own and does no I/O, so
// every scenario can be replayed step by step in a test.
//
// It works on the public data types of package raftdata (types.go aliases
// them); package raft runs it.
package engine

func contains(set []Member, id NodeID) bool {
	for _, x := range set {
		if x.ID == id {
			return true
		}
	}
	return false
}

func containsID(ids []NodeID, id NodeID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func sortIDs(ids []NodeID) {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}
