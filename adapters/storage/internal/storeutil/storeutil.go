// Package storeutil holds checks that every storage adapter of raftkit
// applies the same way.
package storeutil

import (
	"fmt"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// ValidateBatch checks that entries are contiguous, ascending and never
// go back in term, as raft.Storage.Save requires. Errors wrap invalid, the
// adapter's own sentinel for invalid arguments.
func ValidateBatch(entries []raftdata.Entry, invalid error) error {
	for i := 1; i < len(entries); i++ {
		prev, e := &entries[i-1], &entries[i]
		if e.Index != prev.Index+1 {
			return fmt.Errorf("%w: save: entry index %d follows index %d", invalid, e.Index, prev.Index)
		}
		if e.Term < prev.Term {
			return fmt.Errorf("%w: save: entry %d has term %d, below term %d of entry %d",
				invalid, e.Index, e.Term, prev.Term, prev.Index)
		}
	}
	return nil
}
