// Package storagetest is the conformance suite for raft.Storage
// implementations. Every store, raftkit's own and its users', runs it from a
// test of its own package:
//
//	var factory = storagetest.FactoryFuncs{
//		NewFunc: func(t testing.TB) raft.Storage {
//			s, err := mystore.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		},
//		ReopenFunc: func(t testing.TB, s raft.Storage) raft.Storage {
//			dir := s.(*mystore.Store).Dir()
//			if err := s.Close(); err != nil {
//				t.Fatal(err)
//			}
//			s2, err := mystore.Open(dir)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s2
//		},
//	}
//
//	func TestConformance(t *testing.T) { storagetest.Run(t, factory) }
//
//	func BenchmarkStorage(b *testing.B) { storagetest.Bench(b, factory) }
//
// Run checks the rules written in the documentation of raft.Storage and
// raft.SnapshotWriter that a running process can observe, each as a named
// subtest on a fresh store, so that one check can be rerun alone with
// go test -run 'TestConformance/Save/ReplacesConflictingSuffix'. Every
// failure message starts with the rule broken, for example
// "Save: a conflicting suffix must be replaced: ...".
//
// The suite uses a store exactly as the runtime does: InitialState once, right
// after the store is opened, and only then the other methods; one goroutine
// orders every change (Save, Compact, SnapshotWriter.Commit) while snapshot
// bytes are written and reads are served from other goroutines. Because
// InitialState is the only way to read the hard state, checks of the hard
// state reopen the store. Bounds of the log are observed through the errors
// of Entries and Term, which the contract fixes exactly.
//
// What the suite cannot check is the durability of a write across a machine
// crash: Reopen models a clean process restart. Stores that buffer writes
// should additionally be tested by killing the process or the machine.
package storagetest
