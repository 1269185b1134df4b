package disk_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/disk"
	"github.com/raftkit/raftkit/raft"
)

// crashDirEnv names the directory TestCrashChild writes to; the child runs
// only when it is set.
const crashDirEnv = "RAFTKIT_DISK_CRASH_DIR"

// crashOpts keeps segments small so that the child rotates and deletes
// segments many times per round.
var crashOpts = disk.Options{SegmentBytes: 256 << 10}

// crashData is the data of entry i in the crash test.
func crashData(i uint64) []byte {
	n := int(i*7919%1500) + 1
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(i>>(8*(k%8))) ^ byte(k)
	}
	return b
}

func crashSnapData(i uint64) []byte { return fmt.Appendf(nil, "snapshot at %d", i) }

// TestCrash kills a child process writing to a store with SIGKILL at a
// random moment, several times, and checks after each kill that everything
// the child was told is durable is there and intact.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var lastAck uint64
	for round := range 5 {
		acked, acks := runCrashChild(t, dir, time.Duration(200+rng.IntN(500))*time.Millisecond)
		if acks > 0 {
			lastAck = acked
		}
		first, last, snap := verifyCrashStore(t, dir, lastAck)
		t.Logf("round %d: %d saves acknowledged, last acknowledged %d; recovered [%d, %d], snapshot at %d",
			round, acks, lastAck, first, last, snap)
	}
}

// runCrashChild runs TestCrashChild on dir and kills it with SIGKILL after
// it has acknowledged a first save and d has passed. It returns the last
// index acknowledged and the number of acknowledgements.
func runCrashChild(t *testing.T, dir string, d time.Duration) (uint64, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last atomic.Uint64
	var acks atomic.Int64
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			v, ok := strings.CutPrefix(sc.Text(), "ack ")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			last.Store(n)
			if acks.Add(1) == 1 {
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-done:
		_ = cmd.Wait()
		t.Fatalf("the child exited before acknowledging a save: %s", stderr.String())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the child acknowledged nothing in 30s: %s", stderr.String())
	}
	time.Sleep(d)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done // every line written before the kill has been read
	_ = cmd.Wait()
	if s := stderr.String(); strings.Contains(s, "FAIL") || strings.Contains(s, "panic") {
		t.Fatalf("the child failed: %s", s)
	}
	return last.Load(), int(acks.Load())
}

// verifyCrashStore opens dir and checks that it holds, without gaps, every
// entry up to lastAck that was not compacted, with the right data, and
// nothing after LastIndex. It returns the bounds and the snapshot index.
func verifyCrashStore(t *testing.T, dir string, lastAck uint64) (first, last, snap uint64) {
	t.Helper()
	ctx := context.Background()
	s, err := disk.Open(dir, crashOpts)
	if err != nil {
		t.Fatalf("Open after the kill: %v", err)
	}
	defer s.Close()
	st, err := s.InitialState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, last = st.FirstIndex, st.LastIndex
	if last < lastAck {
		t.Fatalf("LastIndex %d is below the last acknowledged index %d", last, lastAck)
	}
	if first > lastAck+1 && first-1 != st.Snapshot.Index {
		t.Fatalf("FirstIndex %d with the snapshot at %d", first, st.Snapshot.Index)
	}
	if st.HardState.Commit > last {
		t.Fatalf("hard state %+v beyond LastIndex %d", st.HardState, last)
	}
	for lo := first; lo <= last; lo += 1000 {
		hi := min(lo+1000, last+1)
		es, err := s.Entries(ctx, lo, hi, 0)
		if err != nil {
			t.Fatalf("Entries(%d, %d) with bounds [%d, %d]: %v", lo, hi, first, last, err)
		}
		if len(es) != int(hi-lo) {
			t.Fatalf("Entries(%d, %d) returned %d entries", lo, hi, len(es))
		}
		for k, e := range es {
			i := lo + uint64(k)
			if e.Index != i || e.Term != 1 || !bytes.Equal(e.Data, crashData(i)) {
				t.Fatalf("entry %d is wrong after the kill: index %d, term %d, %d bytes", i, e.Index, e.Term, len(e.Data))
			}
		}
	}
	if _, err := s.Entries(ctx, last+1, last+2, 0); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Entries past LastIndex: %v", err)
	}
	if snap = st.Snapshot.Index; snap > 0 {
		meta, rc, err := s.OpenSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || meta.Index != snap || !bytes.Equal(b, crashSnapData(snap)) {
			t.Fatalf("snapshot at %d: %q, %v", meta.Index, b, err)
		}
		if term, err := s.Term(ctx, snap); err != nil || term != 1 {
			t.Fatalf("Term(snapshot index %d) = %d, %v", snap, term, err)
		}
	}
	return first, last, snap
}

// TestCrashChild is the child process of TestCrash. It saves batches until
// it is killed, printing "ack <last index>" after each Save returns, and
// now and then commits a snapshot and compacts.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrash")
	}
	ctx := context.Background()
	s, err := disk.Open(dir, crashOpts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.InitialState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	first, next, prevSnap := st.FirstIndex, st.LastIndex+1, st.Snapshot.Index
	batch := make([]raft.Entry, 0, 64)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		lo := next
		if rng.IntN(10) == 0 { // rewrite a few entries, identically
			lo = max(first, next-min(next-1, rng.Uint64N(5)))
		}
		hi := next + 1 + rng.Uint64N(64)
		batch = batch[:0]
		for i := lo; i < hi; i++ {
			batch = append(batch, raft.Entry{Index: i, Term: 1, Data: crashData(i)})
		}
		if err := s.Save(ctx, &raft.HardState{Term: 1, Vote: 1, Commit: lo - 1}, batch); err != nil {
			t.Fatal(err)
		}
		next = hi
		fmt.Fprintf(os.Stdout, "ack %d\n", hi-1)
		if rng.IntN(40) == 0 {
			idx := max(prevSnap, next-1-rng.Uint64N(min(next-first, 50)))
			prevSnap = idx
			w, err := s.CreateSnapshot(ctx, raft.SnapshotMeta{Index: idx, Term: 1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(crashSnapData(idx)); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			upTo := idx - min(idx, rng.Uint64N(100))
			if err := s.Compact(ctx, upTo); err != nil {
				t.Fatal(err)
			}
			first = max(first, upTo+1)
		}
	}
}
