package storagetest_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/storagetest"
)

// The suite is tested by running it against stores with one planted bug each
// and checking that the check aimed at the bug fails, with a message naming
// the contract. Each run is a child process (a failing subtest cannot be
// observed from within the same test binary).

const faultEnv = "STORAGETEST_FAULT"

var faults = []struct {
	name  string // fault planted in the store
	check string // subtest of Run that must fail
	want  string // contract its message must name
}{
	{"dropsHardStateWithoutEntries", "HardState/RoundTrip", "Save: the hard state (term, vote and commit) must round-trip"},
	{"ignoresMaxBytes", "Entries/MaxBytes", "Entries: maxBytes must stop before the total Entry.Size exceeds it"},
	{"bareErrors", "Entries/Compacted", "Entries: lo < FirstIndex must fail with ErrCompacted"},
	{"reusesResultBuffer", "Entries/ResultNotModified", "Entries: the returned slice must not be modified by the store afterwards"},
	{"keepsStaleSuffix", "Save/ReplacesConflictingSuffix", "Save: a conflicting suffix must be replaced"},
	{"retainsSaveSlice", "Save/DoesNotRetainSlice", "Save: must not retain the entries slice"},
	{"termForgetsSnapshot", "Term/Boundaries", "Term: must answer for the snapshot index even after compaction"},
	{"abortCommits", "Snapshot/Abort", "SnapshotWriter.Abort: must discard the snapshot"},
	{"readerFollowsLatest", "Snapshot/ReaderOutlivesNewerSnapshot", "OpenSnapshot: a reader must keep reading its snapshot after a newer one commits"},
	{"compactIgnoresSnapshot", "Compact/BeyondSnapshotIndex", "Compact: upTo beyond the snapshot index must fail with ErrUnavailable"},
	{"forgetsOnReopen", "Reopen/Everything", "Reopen: the hard state, log, snapshot and compaction bounds must survive"},
}

// TestSuiteFindsPlantedBugs runs each faulty store's targeted check in a
// child process and checks that it fails for the right reason.
func TestSuiteFindsPlantedBugs(t *testing.T) {
	if os.Getenv(faultEnv) != "" {
		t.Skip("in a child process")
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			run := "^TestFaultyStore$/^" + strings.ReplaceAll(f.check, "/", "$/^") + "$"
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), faultEnv+"="+f.name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed a store that %s (error %v):\n%s", f.name, err, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestFaultyStore/"+f.check) ||
				!strings.Contains(string(out), ": "+f.want) {
				t.Fatalf("want %s to fail with %q; output:\n%s", f.check, f.want, out)
			}
		})
	}
}

// TestFaultyStore runs the suite against the faulty store named by the
// environment; it does nothing in a normal run.
func TestFaultyStore(t *testing.T) {
	fault := os.Getenv(faultEnv)
	if fault == "" {
		t.Skip("run by TestSuiteFindsPlantedBugs")
	}
	storagetest.Run(t, storagetest.FactoryFuncs{
		NewFunc: func(testing.TB) raft.Storage { return &faulty{Storage: memory.New(), fault: fault} },
		ReopenFunc: func(t testing.TB, s raft.Storage) raft.Storage {
			_ = s.Close()
			if fault == "forgetsOnReopen" {
				return &faulty{Storage: memory.New(), fault: fault}
			}
			return &faulty{Storage: s.(*faulty).Storage.Reopen(), fault: fault}
		},
	})
}

// faulty is a memory store with one bug planted.
type faulty struct {
	*memory.Storage
	fault string

	retained      []raftdata.Entry // retainsSaveSlice: the last batch saved
	retainedFirst uint64
	buf           []raftdata.Entry // reusesResultBuffer
}

func (f *faulty) bounds() raft.State {
	st, _ := f.Storage.InitialState(context.Background())
	return st
}

func (f *faulty) Save(ctx context.Context, hs *raftdata.HardState, es []raftdata.Entry) error {
	switch f.fault {
	case "dropsHardStateWithoutEntries":
		if len(es) == 0 {
			return nil
		}
	case "retainsSaveSlice":
		if len(es) > 0 {
			f.retained, f.retainedFirst = es, es[0].Index
		}
	case "keepsStaleSuffix":
		// Overwrite in place, leaving stored entries past the batch.
		st := f.bounds()
		if len(es) > 0 && es[len(es)-1].Index < st.LastIndex {
			old, err := f.Storage.Entries(ctx, es[len(es)-1].Index+1, st.LastIndex+1, 0)
			if err != nil {
				return err
			}
			if err := f.Storage.Save(ctx, hs, es); err != nil {
				return err
			}
			return f.Storage.Save(ctx, nil, old)
		}
	}
	return f.Storage.Save(ctx, hs, es)
}

func (f *faulty) Entries(ctx context.Context, lo, hi uint64, maxBytes int) ([]raftdata.Entry, error) {
	if f.fault == "ignoresMaxBytes" {
		maxBytes = 0
	}
	es, err := f.Storage.Entries(ctx, lo, hi, maxBytes)
	switch {
	case err != nil && f.fault == "bareErrors":
		return nil, errors.New(err.Error())
	case err != nil:
		return nil, err
	case f.fault == "reusesResultBuffer":
		f.buf = append(f.buf[:0], es...)
		return f.buf, nil
	case f.fault == "retainsSaveSlice":
		for i := range es {
			if k := es[i].Index - f.retainedFirst; es[i].Index >= f.retainedFirst && k < uint64(len(f.retained)) {
				es[i] = f.retained[k]
			}
		}
	}
	return es, nil
}

func (f *faulty) Term(ctx context.Context, index uint64) (uint64, error) {
	if f.fault == "termForgetsSnapshot" && index > 0 && index < f.bounds().FirstIndex {
		return 0, raft.ErrCompacted
	}
	return f.Storage.Term(ctx, index)
}

func (f *faulty) Compact(ctx context.Context, upTo uint64) error {
	if f.fault == "compactIgnoresSnapshot" && upTo > f.bounds().Snapshot.Index {
		return nil
	}
	return f.Storage.Compact(ctx, upTo)
}

func (f *faulty) CreateSnapshot(ctx context.Context, meta raftdata.SnapshotMeta) (raft.SnapshotWriter, error) {
	w, err := f.Storage.CreateSnapshot(ctx, meta)
	if err != nil || f.fault != "abortCommits" {
		return w, err
	}
	return abortCommits{w}, nil
}

// abortCommits is a snapshot writer whose Abort commits.
type abortCommits struct{ raft.SnapshotWriter }

func (w abortCommits) Abort() error {
	_ = w.Commit(context.Background())
	return nil
}

func (f *faulty) OpenSnapshot(ctx context.Context) (raftdata.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := f.Storage.OpenSnapshot(ctx)
	if err != nil || f.fault != "readerFollowsLatest" {
		return meta, rc, err
	}
	return meta, &latestReader{s: f.Storage}, nil
}

// latestReader reads from whatever snapshot is the latest at each Read.
type latestReader struct {
	s   *memory.Storage
	off int64
}

func (r *latestReader) Read(p []byte) (int, error) {
	_, rc, err := r.s.OpenSnapshot(context.Background())
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, r.off); err != nil {
		return 0, err
	}
	n, err := rc.Read(p)
	r.off += int64(n)
	return n, err
}

func (r *latestReader) Close() error { return nil }
