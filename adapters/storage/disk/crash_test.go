package disk_test

import (
	"context"
	"testing"

	"github.com/raftkit/raftkit/adapters/storage/disk"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/storagetest"
)

// crashOpts keeps segments small so that the child rotates and deletes
// segments many times per round.
var crashOpts = disk.Config{SegmentBytes: 256 << 10}

// TestCrash kills a child process writing to a store with SIGKILL at a
// random moment, several times on the same directory, and checks after each
// kill that everything the child was told is durable is there and intact
// (see storagetest.RunCrash). It must call RunCrash first: the child process
// runs this test too.
func TestCrash(t *testing.T) {
	storagetest.RunCrash(t, func(dir string) (raft.Storage, error) {
		return disk.Open(context.Background(), dir, crashOpts)
	})
}
