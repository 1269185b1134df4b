package storagetest

import (
	"testing"

	"github.com/raftkit/raftkit/raft"
)

// Factory creates stores for the suite.
type Factory interface {
	// New returns a new, empty store. The suite closes it.
	New(t testing.TB) raft.Storage
	// Reopen closes s (if still open) and opens the same data again, as
	// after a process restart. The suite closes the store it returns.
	Reopen(t testing.TB, s raft.Storage) raft.Storage
}

// FactoryFuncs adapts two functions to a Factory.
type FactoryFuncs struct {
	// NewFunc implements Factory.New.
	NewFunc func(testing.TB) raft.Storage
	// ReopenFunc implements Factory.Reopen.
	ReopenFunc func(testing.TB, raft.Storage) raft.Storage
}

// New calls f.NewFunc.
func (f FactoryFuncs) New(t testing.TB) raft.Storage {
	t.Helper()
	if f.NewFunc == nil {
		t.Fatal("storagetest: FactoryFuncs.NewFunc is nil")
	}
	return f.NewFunc(t)
}

// Reopen calls f.ReopenFunc.
func (f FactoryFuncs) Reopen(t testing.TB, s raft.Storage) raft.Storage {
	t.Helper()
	if f.ReopenFunc == nil {
		t.Fatal("storagetest: FactoryFuncs.ReopenFunc is nil: every raft.Storage must be durable, so the suite needs to reopen it")
	}
	return f.ReopenFunc(t, s)
}

var _ Factory = FactoryFuncs{}
