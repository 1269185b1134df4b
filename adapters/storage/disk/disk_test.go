package disk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/adapters/storage/disk"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/storagetest"
)

// factory makes disk stores on temporary directories for the conformance
// suite; Reopen closes the store and opens its directory again. A small
// segment size makes the suite exercise rotation and segment deletion.
func factory(opts disk.Config) storagetest.Factory {
	return storagetest.FactoryFuncs{
		NewFunc: func(t testing.TB) raft.Storage { return mustOpen(t, t.TempDir(), opts) },
		ReopenFunc: func(t testing.TB, s raft.Storage) raft.Storage {
			dir := s.(*disk.Storage).Dir()
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return mustOpen(t, dir, opts)
		},
	}
}

func mustOpen(t testing.TB, dir string, opts disk.Config) *disk.Storage {
	t.Helper()
	s, err := disk.Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestConformance(t *testing.T) { storagetest.Run(t, factory(disk.Config{})) }

// TestConformanceSmallSegments runs the suite with segments of 4 KiB, so
// that nearly every Save rotates and compaction deletes segments.
func TestConformanceSmallSegments(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storagetest.Run(t, factory(disk.Config{SegmentBytes: 4 << 10, NoSync: true}))
}

func BenchmarkStorage(b *testing.B) { storagetest.Bench(b, factory(disk.Config{})) }

// entry returns entry i of term 1 with data derived from i.
func entry(i uint64) raftdata.Entry {
	return raftdata.Entry{Index: i, Term: 1, Data: dataOf(i)}
}

func dataOf(i uint64) []byte {
	return fmt.Appendf(nil, "entry %d %s", i, bytes.Repeat([]byte{byte(i)}, int(i%97)))
}

func entries(lo, hi uint64) []raftdata.Entry {
	var es []raftdata.Entry
	for i := lo; i < hi; i++ {
		es = append(es, entry(i))
	}
	return es
}

// checkLog checks that s holds exactly entries [first, last] as made by
// entry.
func checkLog(t *testing.T, s *disk.Storage, first, last uint64) {
	t.Helper()
	ctx := context.Background()
	st, err := s.InitialState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.FirstIndex != first || st.LastIndex != last {
		t.Fatalf("bounds [%d, %d], want [%d, %d]", st.FirstIndex, st.LastIndex, first, last)
	}
	es, err := s.Entries(ctx, first, last+1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for k, e := range es {
		if w := entry(first + uint64(k)); e.Index != w.Index || e.Term != w.Term || !bytes.Equal(e.Data, w.Data) {
			t.Fatalf("entry %d = %+v, want %+v", w.Index, e, w)
		}
	}
}

func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "wal", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// TestTornTail cuts the last segment at many offsets within its last record:
// every earlier record survives, the last is whole or gone, and appends work.
func TestTornTail(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	s := mustOpen(t, src, disk.Config{NoSync: true})
	hs := raftdata.HardState{Term: 1, Vote: 1}
	for lo := uint64(1); lo < 40; lo += 3 {
		hs.Commit = lo - 1
		if err := s.Save(ctx, &hs, entries(lo, lo+3)); err != nil {
			t.Fatal(err)
		}
	}
	seg := segments(t, src)[0]
	before, _ := os.Stat(seg)
	if err := s.Save(ctx, &raftdata.HardState{Term: 2, Vote: 1, Commit: 39}, entries(40, 45)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	full, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	start := before.Size()
	for cut := start; cut <= int64(len(full)); cut++ {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, "wal", filepath.Base(seg))
		if err := os.WriteFile(name, full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := disk.Open(context.Background(), dir, disk.Config{NoSync: true})
		if err != nil {
			t.Fatalf("cut at %d of %d: Open: %v", cut, len(full), err)
		}
		st, _ := s.InitialState(ctx)
		whole := cut == int64(len(full))
		wantLast, wantTerm := uint64(39), uint64(1)
		if whole {
			wantLast, wantTerm = 44, 2
		}
		if st.HardState.Term != wantTerm {
			t.Fatalf("cut at %d: hard state %+v, want term %d", cut, st.HardState, wantTerm)
		}
		checkLog(t, s, 1, wantLast)
		if err := s.Save(ctx, nil, entries(wantLast+1, wantLast+3)); err != nil {
			t.Fatalf("cut at %d: Save after recovery: %v", cut, err)
		}
		s.Close()
		s = mustOpen(t, dir, disk.Config{NoSync: true})
		checkLog(t, s, 1, wantLast+2)
		s.Close()
	}
}

// TestCorruptionInTheMiddle flips a byte in an early record: Open must fail
// with an error wrapping raft.ErrCorrupt rather than drop data.
func TestCorruptionInTheMiddle(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		segOpt int64
	}{{"last segment", 0}, {"earlier segment", 512}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, disk.Config{NoSync: true, SegmentBytes: tc.segOpt})
			for lo := uint64(1); lo < 60; lo += 3 {
				if err := s.Save(ctx, nil, entries(lo, lo+3)); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			seg := segments(t, dir)[0]
			b, _ := os.ReadFile(seg)
			b[len(b)/3] ^= 0x40
			if err := os.WriteFile(seg, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := disk.Open(context.Background(), dir, disk.Config{SegmentBytes: tc.segOpt})
			if !errors.Is(err, raft.ErrCorrupt) {
				t.Fatalf("Open after corrupting %s: %v, want an error wrapping ErrCorrupt", seg, err)
			}
		})
	}
}

// TestSnapshotCorruption flips a byte of a snapshot's data: reading it to
// the end fails with an error wrapping raft.ErrCorrupt.
func TestSnapshotCorruption(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir, disk.Config{NoSync: true})
	w, err := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: 5, Term: 1})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("snapshot"), 1000))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	m, _ := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
	b, _ := os.ReadFile(m[0])
	b[len(b)/2] ^= 1
	os.WriteFile(m[0], b, 0o644)
	s = mustOpen(t, dir, disk.Config{NoSync: true})
	defer s.Close()
	_, rc, err := s.OpenSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, raft.ErrCorrupt) {
		t.Fatalf("reading a corrupted snapshot: %v, want an error wrapping ErrCorrupt", err)
	}
}

// TestLock checks that a directory can be opened by one store at a time.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, disk.Config{})
	if _, err := disk.Open(context.Background(), dir, disk.Config{}); !errors.Is(err, disk.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Term(context.Background(), 0); !errors.Is(err, raft.ErrClosed) {
		t.Fatalf("Term after Close: %v, want raft.ErrClosed", err)
	}
	s = mustOpen(t, dir, disk.Config{})
	s.Close()
}

// TestCompactDeletesSegments checks that compaction gives space back and
// that what remains survives a reopen.
func TestCompactDeletesSegments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := disk.Config{NoSync: true, SegmentBytes: 1 << 10}
	s := mustOpen(t, dir, opts)
	if err := s.Save(ctx, &raftdata.HardState{Term: 1, Vote: 1, Commit: 1}, entries(1, 2)); err != nil {
		t.Fatal(err)
	}
	for lo := uint64(2); lo < 200; lo += 4 {
		if err := s.Save(ctx, nil, entries(lo, lo+4)); err != nil {
			t.Fatal(err)
		}
	}
	n := len(segments(t, dir))
	w, _ := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: 150, Term: 1})
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, 150); err != nil {
		t.Fatal(err)
	}
	if m := len(segments(t, dir)); m >= n/2 {
		t.Fatalf("%d segments after compaction, had %d", m, n)
	}
	checkLog(t, s, 151, 201)
	s.Close()
	s = mustOpen(t, dir, opts)
	defer s.Close()
	checkLog(t, s, 151, 201)
	st, _ := s.InitialState(ctx)
	if st.HardState != (raftdata.HardState{Term: 1, Vote: 1, Commit: 1}) || st.Snapshot.Index != 150 {
		t.Fatalf("state after reopen: %+v", st)
	}
}

// TestInterruptedSnapshotCommit models a crash between the rename of a
// snapshot file into place and the log record of its commit: Open must
// finish the commit, applying the log rule of SnapshotWriter.Commit.
func TestInterruptedSnapshotCommit(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		meta        raftdata.SnapshotMeta
		first, last uint64
	}{
		{raftdata.SnapshotMeta{Index: 8, Term: 1}, 1, 10},   // the log holds it: kept
		{raftdata.SnapshotMeta{Index: 20, Term: 3}, 21, 20}, // beyond the log: discarded
		{raftdata.SnapshotMeta{Index: 6, Term: 2}, 7, 6},    // term mismatch: discarded
	} {
		t.Run(fmt.Sprint(tc.meta.Index), func(t *testing.T) {
			dir, other := t.TempDir(), t.TempDir()
			s := mustOpen(t, dir, disk.Config{NoSync: true})
			if err := s.Save(ctx, &raftdata.HardState{Term: 3, Vote: 1, Commit: 4}, entries(1, 11)); err != nil {
				t.Fatal(err)
			}
			w, _ := s.CreateSnapshot(ctx, raftdata.SnapshotMeta{Index: 4, Term: 1})
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			s.Close()
			// Make the newer snapshot file in another store and copy it in.
			o := mustOpen(t, other, disk.Config{NoSync: true})
			w, _ = o.CreateSnapshot(ctx, tc.meta)
			w.Write([]byte("newer"))
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			o.Close()
			m, _ := filepath.Glob(filepath.Join(other, "snap", "*.snap"))
			b, _ := os.ReadFile(m[0])
			os.WriteFile(filepath.Join(dir, "snap", filepath.Base(m[0])), b, 0o644)

			for range 2 { // the second open finds the commit finished
				s = mustOpen(t, dir, disk.Config{NoSync: true})
				st, _ := s.InitialState(ctx)
				if st.Snapshot.Index != tc.meta.Index || st.FirstIndex != tc.first || st.LastIndex != tc.last || st.HardState.Commit != 4 {
					t.Fatalf("state after recovery: %+v", st)
				}
				if term, err := s.Term(ctx, tc.meta.Index); err != nil || term != tc.meta.Term {
					t.Fatalf("Term(%d) = %d, %v", tc.meta.Index, term, err)
				}
				s.Close()
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "snap", "*")); len(m) != 1 {
				t.Fatalf("snapshot files left: %v", m)
			}
		})
	}
}

// TestFailedIsPermanent: a node on a disk store that failed a write stops
// instead of retrying (raft.Storage, "Failures").
func TestFailedIsPermanent(t *testing.T) {
	if !errors.Is(disk.ErrFailed, raft.ErrPermanent) {
		t.Fatal("disk.ErrFailed does not wrap raft.ErrPermanent")
	}
}
