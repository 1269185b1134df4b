package memory_test

import (
	"testing"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/storagetest"
)

// factory makes memory stores for the conformance suite; Reopen models a
// restart by closing the handle and opening a new one onto the same data.
var factory = storagetest.FactoryFuncs{
	NewFunc: func(testing.TB) raft.Storage { return memory.New() },
	ReopenFunc: func(t testing.TB, s raft.Storage) raft.Storage {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		return s.(*memory.Storage).Reopen()
	},
}

func TestConformance(t *testing.T) { storagetest.Run(t, factory) }

func BenchmarkConformance(b *testing.B) { storagetest.Bench(b, factory) }
