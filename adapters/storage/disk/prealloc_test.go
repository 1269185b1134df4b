package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

func pEntries(lo, hi uint64) []raftdata.Entry {
	var es []raftdata.Entry
	for i := lo; i < hi; i++ {
		es = append(es, raftdata.Entry{Index: i, Term: 1, Data: pData(i)})
	}
	return es
}

func pData(i uint64) []byte {
	return fmt.Appendf(nil, "entry %d %s", i, bytes.Repeat([]byte{byte(i) | 1}, int(i%97)))
}

func pOpen(t *testing.T, dir string, opts Config) *Storage {
	t.Helper()
	s, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

// pCheck checks that s holds exactly entries [first, last] as made by
// pEntries.
func pCheck(t *testing.T, s *Storage, first, last uint64) {
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
		i := first + uint64(k)
		if e.Index != i || e.Term != 1 || !bytes.Equal(e.Data, pData(i)) {
			t.Fatalf("entry %d = %+v", i, e)
		}
	}
}

func pSegments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "wal", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// TestSealedSegmentPadding checks that segments are preallocated with zeros,
// that sealed segments ending with zero padding replay, and that non-zero
// bytes in the padding of any segment are corruption.
func TestSealedSegmentPadding(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := Config{SegmentBytes: 8 << 10}
	s := pOpen(t, dir, opts)
	for lo := uint64(1); lo < 300; lo += 5 {
		if err := s.Save(ctx, &raftdata.HardState{Term: 1, Vote: 1, Commit: lo - 1}, pEntries(lo, lo+5)); err != nil {
			t.Fatal(err)
		}
	}
	var padded int
	s.mu.RLock()
	for _, sg := range s.segs {
		if sg.alloc != opts.SegmentBytes || sg.size > sg.alloc {
			t.Errorf("segment %s: %d bytes of data, %d allocated", sg.path, sg.size, sg.alloc)
		}
		if sg.size < sg.alloc {
			padded++
		}
	}
	nsegs := len(s.segs)
	s.mu.RUnlock()
	if nsegs < 3 || padded < 2 {
		t.Fatalf("%d segments, %d with padding", nsegs, padded)
	}
	s.Close()

	s = pOpen(t, dir, opts)
	pCheck(t, s, 1, 300)
	if err := s.Save(ctx, nil, pEntries(301, 310)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = pOpen(t, dir, opts)
	pCheck(t, s, 1, 309)
	s.Close()

	// A non-zero byte in the padding, of a sealed segment or of the last
	// one, is corruption.
	segs := pSegments(t, dir)
	for _, seg := range []string{segs[0], segs[len(segs)-1]} {
		orig, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		b := slices.Clone(orig)
		if b[len(b)-1] != 0 {
			t.Fatalf("%s does not end with padding", seg)
		}
		b[len(b)-1] = 7
		if err := os.WriteFile(seg, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(context.Background(), dir, opts); !errors.Is(err, raft.ErrCorrupt) {
			t.Fatalf("Open with a non-zero byte in the padding of %s: %v, want ErrCorrupt", seg, err)
		}
		if err := os.WriteFile(seg, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s = pOpen(t, dir, opts)
	pCheck(t, s, 1, 309)
	s.Close()
}

// TestTornRecordInPreallocatedSpace models crashes while a record is being
// written into preallocated space: a prefix of the record, or the record
// with a hole, followed by zeros. Open keeps everything before it, zeroes
// it without shrinking the file, and appends go on there.
func TestTornRecordInPreallocatedSpace(t *testing.T) {
	ctx := context.Background()
	opts := Config{NoSync: true, SegmentBytes: 64 << 10} // 64 KiB preallocated
	src := t.TempDir()
	s := pOpen(t, src, opts)
	hs := raftdata.HardState{Term: 1, Vote: 1}
	for lo := uint64(1); lo < 40; lo += 3 {
		hs.Commit = lo - 1
		if err := s.Save(ctx, &hs, pEntries(lo, lo+3)); err != nil {
			t.Fatal(err)
		}
	}
	sg := s.segs[len(s.segs)-1]
	start := sg.size
	if err := s.Save(ctx, &raftdata.HardState{Term: 2, Vote: 1, Commit: 39}, pEntries(40, 45)); err != nil {
		t.Fatal(err)
	}
	end, alloc := sg.size, sg.alloc
	s.Close()
	seg := pSegments(t, src)[0]
	full, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(full)) != alloc || alloc <= end || !allZero(full[end:]) {
		t.Fatalf("segment of %d bytes, data to %d, %d allocated", len(full), end, alloc)
	}

	var images [][]byte
	for cut := start; cut < end; cut++ { // a prefix of the record, then zeros
		b := slices.Clone(full)
		clear(b[cut:end])
		images = append(images, b)
	}
	for h := start + recHeader; h < end; h += 7 { // a hole in the record
		b := slices.Clone(full)
		clear(b[h:min(h+20, end)])
		images = append(images, b)
	}
	for k, img := range images {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, "wal", filepath.Base(seg))
		if err := os.WriteFile(name, img, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), dir, opts)
		if err != nil {
			t.Fatalf("image %d: Open: %v", k, err)
		}
		st, _ := s.InitialState(ctx)
		if st.HardState.Term != 1 {
			t.Fatalf("image %d: hard state %+v, want term 1", k, st.HardState)
		}
		pCheck(t, s, 1, 39)
		if err := s.Save(ctx, nil, pEntries(40, 42)); err != nil {
			t.Fatalf("image %d: Save after recovery: %v", k, err)
		}
		s.Close()
		if fi, err := os.Stat(name); err != nil || fi.Size() != alloc {
			t.Fatalf("image %d: segment size after recovery and a save: %v, %v; want %d", k, fi.Size(), err, alloc)
		}
		s = pOpen(t, dir, opts)
		pCheck(t, s, 1, 41)
		s.Close()
	}

	// A bad record followed by non-zero data is corruption, even at the end
	// of the last segment.
	b := slices.Clone(full)
	b[start+recHeader+3] ^= 0x10
	b[end+100] = 1
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wal", filepath.Base(seg)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dir, opts); !errors.Is(err, raft.ErrCorrupt) {
		t.Fatalf("Open with a bad record followed by non-zero data: %v, want ErrCorrupt", err)
	}
}
