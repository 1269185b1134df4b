package storagetest

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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// OpenFunc opens a durable store on dir (called in the parent and in a child
// process). It must create the store when dir is empty, and open what an
// earlier, possibly killed, process left in dir otherwise.
type OpenFunc func(dir string) (raft.Storage, error)

// CrashOption configures RunCrash.
type CrashOption func(*crashConfig)

// crashConfig is what the CrashOptions set.
type crashConfig struct {
	rounds             int
	minDelay, maxDelay time.Duration
	startTimeout       time.Duration
	seed               uint64
}

// CrashRounds sets how many times RunCrash starts a child on the same
// directory and kills it (5 by default).
func CrashRounds(n int) CrashOption {
	return func(c *crashConfig) { c.rounds = max(n, 1) }
}

// CrashKillDelay sets the range of the random delay between a child's first
// acknowledged write and its kill (200ms to 700ms by default).
func CrashKillDelay(minDelay, maxDelay time.Duration) CrashOption {
	return func(c *crashConfig) { c.minDelay, c.maxDelay = minDelay, max(minDelay, maxDelay) }
}

// CrashStartTimeout sets how long RunCrash waits for a child to open the
// store and acknowledge its first write (30s by default).
func CrashStartTimeout(d time.Duration) CrashOption {
	return func(c *crashConfig) { c.startTimeout = d }
}

// CrashSeed sets the seed of the children's random choices (by default
// drawn from the clock and logged). Where the kills land still depends on
// timing.
func CrashSeed(seed uint64) CrashOption {
	return func(c *crashConfig) { c.seed = seed }
}

// Environment of a child process: the directory, and "<seed> <deadline in
// Unix nanoseconds> <test name>".
const (
	crashDirEnv  = "RAFTKIT_STORAGETEST_CRASH_DIR"
	crashArgsEnv = "RAFTKIT_STORAGETEST_CRASH_ARGS"
)

// crashLinePrefix starts every line of the child's protocol on stdout.
const crashLinePrefix = "storagetest-crash "

// RunCrash checks that a store survives kill -9 during writes: every
// acknowledged Save (entries and hard state) is present after reopening,
// with the right data, with no gap and nothing after LastIndex; snapshots
// and compaction interleave. Call it from a Test function; it re-executes
// the test binary, running only the calling test, as the child process
// (detected through an environment variable), so the calling test must call
// RunCrash unconditionally and first:
//
//	func TestCrash(t *testing.T) {
//		storagetest.RunCrash(t, func(dir string) (raft.Storage, error) {
//			return mystore.Open(dir)
//		})
//	}
//
// In the child, RunCrash never returns: it writes until it is killed. Rounds
// and durations are options (CrashRounds, CrashKillDelay, CrashStartTimeout,
// CrashSeed). The test is skipped with -short.
//
// Each round starts a child on the same directory. The child opens the store
// with open and, until it is killed, saves batches of random sizes (entry
// data is derived from the index and the term so that it can be verified;
// some entries are EntryConfig), most with a hard state whose term, vote and
// commit change; it also saves the hard state alone, entries alone, replaces
// suffixes of the log with entries of a new term, and now and then commits a
// snapshot (with membership) at a committed index, or beyond LastIndex so
// that the log is discarded, and compacts. Before each write it prints the
// write, and after the write returns it prints an acknowledgement carrying
// LastIndex and the hard state. The parent kills the child with SIGKILL at a
// random moment after its first acknowledgement, opens the directory with
// open and checks that the store holds exactly what the acknowledged writes
// made of it, or that plus the one write in flight at the kill (a write is
// atomic): hard state (term, vote, commit), snapshot (metadata and bytes),
// FirstIndex and LastIndex as reported by InitialState, every entry (index,
// term, type and data), ErrUnavailable after LastIndex, ErrCompacted before
// FirstIndex and Term at the snapshot index. It then closes the store, opens
// it again and checks the same, so that recovery is stable.
//
// What the check cannot reach is a crash of the machine: data a store left
// in the operating system's cache survives the death of a process. Stores
// that live only in memory cannot use RunCrash at all: nothing survives the
// child process, so the first round fails.
func RunCrash(t *testing.T, open OpenFunc, opts ...CrashOption) {
	t.Helper()
	if dir := os.Getenv(crashDirEnv); dir != "" {
		runCrashChild(t, open, dir)
		return
	}
	if testing.Short() {
		t.Skip("storagetest.RunCrash: skipped with -short")
	}
	cfg := crashConfig{rounds: 5, minDelay: 200 * time.Millisecond, maxDelay: 700 * time.Millisecond,
		startTimeout: 30 * time.Second, seed: uint64(time.Now().UnixNano())}
	for _, o := range opts {
		o(&cfg)
	}
	t.Logf("storagetest.RunCrash: seed %d (CrashSeed reproduces the children's choices)", cfg.seed)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(cfg.seed, 0xc4a5))
	m := crashModel{first: 1}
	var total crashStats
	for round := range cfg.rounds {
		delay := cfg.minDelay
		if d := cfg.maxDelay - cfg.minDelay; d > 0 {
			delay += time.Duration(rng.Int64N(int64(d) + 1))
		}
		res := crashRound(t, &cfg, dir, cfg.seed+uint64(round)*0x9e3779b97f4a7c15, delay, m)
		got, which := verifyCrashRound(t, open, dir, res)
		m = got
		total.add(res.stats)
		t.Logf("round %d: killed after %v; %s; last acknowledged: LastIndex %d, %+v; recovered %s",
			round, delay, res.stats, res.acked.last(), res.acked.hs, which)
	}
	t.Logf("all %d rounds: %s; final store: FirstIndex %d, LastIndex %d, snapshot at %d",
		cfg.rounds, total, m.first, m.last(), m.snap.Index)
}

// crashPattern returns the -test.run pattern that matches the test named
// name and nothing else.
func crashPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// crashStats counts the writes acknowledged in a round.
type crashStats struct {
	saves, hsOnly, noHS, rewrites, snapshots, discards, compactions int
}

func (s *crashStats) add(o crashStats) {
	s.saves += o.saves
	s.hsOnly += o.hsOnly
	s.noHS += o.noHS
	s.rewrites += o.rewrites
	s.snapshots += o.snapshots
	s.discards += o.discards
	s.compactions += o.compactions
}

func (s crashStats) String() string {
	return fmt.Sprintf("%d saves acknowledged (%d of the hard state alone, %d without a hard state, %d replacing a suffix), "+
		"%d snapshots committed (%d discarding the log), %d compactions",
		s.saves, s.hsOnly, s.noHS, s.rewrites, s.snapshots, s.discards, s.compactions)
}

// crashOp is one write of the child, as printed before it is made.
type crashOp struct {
	kind   string // "save", "snap" or "compact"
	lo, hi uint64 // save: entries [lo, hi); snap: index lo; compact: up to lo
	term   uint64 // save: term of the entries; snap: snapshot term
	hs     *raftdata.HardState
}

func (op crashOp) String() string {
	switch op.kind {
	case "save":
		hs := "-"
		if op.hs != nil {
			hs = fmt.Sprintf("%d %d %d", op.hs.Term, op.hs.Vote, op.hs.Commit)
		}
		return fmt.Sprintf("save %d %d %d %s", op.lo, op.hi, op.term, hs)
	case "snap":
		return fmt.Sprintf("snap %d %d", op.lo, op.term)
	default:
		return fmt.Sprintf("compact %d", op.lo)
	}
}

func (op crashOp) describe() string {
	switch op.kind {
	case "save":
		return fmt.Sprintf("Save(hs %s, entries [%d, %d) of term %d)", fmtHS(op.hs), op.lo, op.hi, op.term)
	case "snap":
		return fmt.Sprintf("a snapshot at index %d, term %d", op.lo, op.term)
	default:
		return fmt.Sprintf("Compact(%d)", op.lo)
	}
}

func parseCrashOp(f []string) (crashOp, error) {
	n := make([]uint64, 0, len(f))
	for _, s := range f[1:] {
		if s == "-" {
			continue
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return crashOp{}, err
		}
		n = append(n, v)
	}
	op := crashOp{kind: f[0]}
	switch {
	case op.kind == "save" && len(n) == 3 && len(f) == 5:
		op.lo, op.hi, op.term = n[0], n[1], n[2]
	case op.kind == "save" && len(n) == 6:
		op.lo, op.hi, op.term = n[0], n[1], n[2]
		op.hs = &raftdata.HardState{Term: n[3], Vote: raftdata.NodeID(n[4]), Commit: n[5]}
	case op.kind == "snap" && len(n) == 2:
		op.lo, op.term = n[0], n[1]
	case op.kind == "compact" && len(n) == 1:
		op.lo = n[0]
	default:
		return crashOp{}, errors.New("malformed")
	}
	return op, nil
}

// crashModel is what the store must hold: the entries are known by their
// terms, their type and data being derived from index and term.
type crashModel struct {
	hs    raftdata.HardState
	snap  raftdata.SnapshotMeta // Index 0: none
	first uint64
	terms []uint64 // terms of entries first..last
}

func (m *crashModel) last() uint64 { return m.first + uint64(len(m.terms)) - 1 }

func (m *crashModel) clone() crashModel {
	c := *m
	c.terms = append([]uint64(nil), m.terms...)
	return c
}

// apply records op, which the store acknowledged (or may have made durable
// before the kill). It fails if op is one the child should not have made.
func (m *crashModel) apply(op crashOp) error {
	switch op.kind {
	case "save":
		if op.hs != nil {
			m.hs = *op.hs
		}
		if op.lo == op.hi {
			return nil
		}
		if op.lo < m.first || op.lo > m.last()+1 || op.hi < op.lo {
			return fmt.Errorf("child saved [%d, %d) with the log at [%d, %d]", op.lo, op.hi, m.first, m.last())
		}
		m.terms = m.terms[:op.lo-m.first]
		for range op.hi - op.lo {
			m.terms = append(m.terms, op.term)
		}
	case "snap":
		i := op.lo
		if i < m.first || i > m.last() || m.terms[i-m.first] != op.term {
			m.terms, m.first = nil, i+1
		}
		m.snap = crashSnapMeta(i, op.term)
	case "compact":
		if op.lo > m.snap.Index {
			return fmt.Errorf("child compacted up to %d with the snapshot at %d", op.lo, m.snap.Index)
		}
		if op.lo >= m.first {
			m.terms = append([]uint64(nil), m.terms[op.lo+1-m.first:]...)
			m.first = op.lo + 1
		}
	}
	return nil
}

// crashEntry is entry i of term term in the crash check: every 97th index
// is an EntryConfig with a membership derived from the index; the others
// carry 0 to 1499 bytes derived from index and term.
func crashEntry(i, term uint64) raftdata.Entry {
	if i%97 == 0 {
		return raftdata.Entry{Index: i, Term: term, Type: raftdata.EntryConfig, Data: raftdata.EncodeMembership(crashMembership(i + term))}
	}
	n := int((i*7919 + term*104729) % 1500)
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(i>>(8*(k%8))) ^ byte(k) ^ byte(term*13)
	}
	return raftdata.Entry{Index: i, Term: term, Type: raftdata.EntryNormal, Data: b}
}

// crashMembership is a membership derived from x.
func crashMembership(x uint64) raftdata.Membership {
	var m raftdata.Membership
	for id := uint64(1); id <= 1+x%5; id++ {
		m.Voters = append(m.Voters, raftdata.Member{ID: raftdata.NodeID(id), Addr: fmt.Sprintf("node-%d:%d", id, 7000+x%1000)})
	}
	if x%3 == 0 {
		m.NonVoters = []raftdata.Member{{ID: raftdata.NodeID(10 + x%7), Addr: "learner"}}
	}
	return m
}

func crashSnapMeta(index, term uint64) raftdata.SnapshotMeta {
	if index == 0 {
		return raftdata.SnapshotMeta{}
	}
	return raftdata.SnapshotMeta{Index: index, Term: term, Membership: crashMembership(index ^ term)}
}

// crashSnapData is the snapshot at index of term term: 16 bytes to about
// 300KB.
func crashSnapData(index, term uint64) []byte {
	return payload(index<<8^term, 16+int(index*31%300_000))
}

// crashResult is what the parent learned from one child.
type crashResult struct {
	acked   crashModel // after the last acknowledged write
	pending *crashOp   // the write printed but not acknowledged, if any
	stats   crashStats
}

// crashRound runs a child on dir, whose store holds m, and kills it delay
// after its first acknowledgement.
func crashRound(t *testing.T, cfg *crashConfig, dir string, seed uint64, delay time.Duration, m crashModel) crashResult {
	t.Helper()
	deadline := time.Now().Add(cfg.startTimeout + delay + time.Minute)
	cmd := exec.Command(os.Args[0], "-test.run="+crashPattern(t.Name()), "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir,
		fmt.Sprintf("%s=%d %d %s", crashArgsEnv, seed, deadline.UnixNano(), t.Name()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("storagetest.RunCrash: starting the child: %v", err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	var (
		res      = crashResult{acked: m}
		protoErr error
		other    []string // the child's output other than the protocol
		mu       sync.Mutex
	)
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		acks := 0
		for sc.Scan() {
			line := sc.Text()
			rest, ok := strings.CutPrefix(line, crashLinePrefix)
			if !ok {
				mu.Lock()
				if other = append(other, line); len(other) > 200 {
					other = other[1:]
				}
				mu.Unlock()
				continue
			}
			if protoErr != nil {
				continue
			}
			protoErr = res.line(rest)
			if protoErr == nil && strings.HasPrefix(rest, "ack ") {
				if acks++; acks == 1 {
					close(started)
				}
			}
		}
	}()
	output := func() string {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", strings.Join(other, "\n"), stderr.String())
	}

	timer := time.NewTimer(cfg.startTimeout)
	defer timer.Stop()
	select {
	case <-started:
	case <-done:
		_ = cmd.Wait()
		killed = true
		t.Fatalf("storagetest.RunCrash: the child exited before acknowledging a write (protocol error: %v)\n%s", protoErr, output())
	case <-timer.C:
		t.Fatalf("storagetest.RunCrash: the child acknowledged no write in %v", cfg.startTimeout)
	}
	time.Sleep(delay)
	select {
	case <-done:
		_ = cmd.Wait()
		killed = true
		t.Fatalf("storagetest.RunCrash: the child exited before it was killed (protocol error: %v)\n%s", protoErr, output())
	default:
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("storagetest.RunCrash: killing the child: %v", err)
	}
	killed = true
	<-done // every line written before the kill has been read
	_ = cmd.Wait()
	if protoErr != nil {
		t.Fatalf("storagetest.RunCrash: the child broke the protocol: %v\n%s", protoErr, output())
	}
	return res
}

// line handles one protocol line of the child (without the prefix).
func (r *crashResult) line(s string) error {
	f := strings.Fields(s)
	if len(f) == 0 {
		return fmt.Errorf("empty line")
	}
	switch f[0] {
	case "start":
		// start <first> <last> <snap index> <snap term> <hs term> <vote> <commit>
		var n [7]uint64
		if len(f) != 8 {
			return fmt.Errorf("malformed line %q", s)
		}
		for i := range n {
			v, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return fmt.Errorf("malformed line %q", s)
			}
			n[i] = v
		}
		m := &r.acked
		want := [7]uint64{m.first, m.last(), m.snap.Index, m.snap.Term, m.hs.Term, uint64(m.hs.Vote), m.hs.Commit}
		if n != want {
			return fmt.Errorf("Reopen: what survived a crash must survive the next open too: "+
				"the child's InitialState reports FirstIndex %d, LastIndex %d, snapshot %d/%d, hard state %d/%d/%d; "+
				"the parent verified FirstIndex %d, LastIndex %d, snapshot %d/%d, hard state %d/%d/%d",
				n[0], n[1], n[2], n[3], n[4], n[5], n[6], want[0], want[1], want[2], want[3], want[4], want[5], want[6])
		}
	case "ack":
		// ack <last> <hs term> <vote> <commit>
		if r.pending == nil {
			return fmt.Errorf("acknowledgement without a write")
		}
		op := *r.pending
		r.pending = nil
		if op.kind == "save" && op.lo < op.hi && op.lo <= r.acked.last() {
			r.stats.rewrites++
		}
		if err := r.acked.apply(op); err != nil {
			return err
		}
		ack := fmt.Sprintf("ack %d %d %d %d", r.acked.last(), r.acked.hs.Term, r.acked.hs.Vote, r.acked.hs.Commit)
		if s != ack {
			return fmt.Errorf("the child acknowledged %q after %s, the parent expected %q", s, op.describe(), ack)
		}
		switch op.kind {
		case "save":
			r.stats.saves++
			if op.lo == op.hi {
				r.stats.hsOnly++
			}
			if op.hs == nil {
				r.stats.noHS++
			}
		case "snap":
			r.stats.snapshots++
			if r.acked.first == op.lo+1 && len(r.acked.terms) == 0 {
				r.stats.discards++
			}
		case "compact":
			r.stats.compactions++
		}
	default:
		if r.pending != nil {
			return fmt.Errorf("a new write before the acknowledgement of %s", r.pending.describe())
		}
		op, err := parseCrashOp(f)
		if err != nil {
			return fmt.Errorf("malformed line %q", s)
		}
		r.pending = &op
	}
	return nil
}

// verifyCrashRound opens dir and checks that it holds what the child's
// acknowledged writes left, or that plus the write in flight. It returns the
// model that matched and a description of it.
func verifyCrashRound(t *testing.T, open OpenFunc, dir string, res crashResult) (crashModel, string) {
	t.Helper()
	cands := []crashModel{res.acked}
	if res.pending != nil {
		b := res.acked.clone()
		if err := b.apply(*res.pending); err != nil {
			t.Fatalf("storagetest.RunCrash: the child broke the protocol: %v", err)
		}
		cands = append(cands, b)
	}
	var m crashModel
	var which string
	for pass := range 2 { // recovery must be stable: a second open sees the same
		s, err := open(dir)
		if err != nil {
			t.Fatalf("storagetest.RunCrash: OpenFunc: the store must open after kill -9 (open #%d): %v", pass+1, err)
		}
		if s == nil {
			t.Fatal("storagetest.RunCrash: OpenFunc returned a nil store")
		}
		var errs []error
		matched := -1
		for i, c := range cands {
			if pass == 1 && i != 0 {
				break
			}
			if err := verifyCrashStore(t.Context(), s, &c); err != nil {
				errs = append(errs, err)
				continue
			}
			matched = i
			break
		}
		if cerr := s.Close(); cerr != nil && matched >= 0 {
			t.Fatalf("%s: %v", cClose, cerr)
		}
		if matched < 0 {
			msg := "storagetest.RunCrash: every acknowledged write must survive kill -9, and a write must be atomic"
			if pass == 1 {
				msg = "storagetest.RunCrash: Reopen: what a first open after kill -9 reported must survive a second open"
			}
			msg += fmt.Sprintf(":\n  against the %d writes acknowledged: %v", res.stats.total(), errs[0])
			if len(errs) > 1 {
				msg += fmt.Sprintf("\n  against those plus the write in flight, %s: %v", res.pending.describe(), errs[1])
			}
			t.Fatal(msg)
		}
		if pass == 0 {
			m = cands[matched]
			which = "the acknowledged writes"
			if res.pending != nil {
				which = "the acknowledged writes, without the write in flight (" + res.pending.describe() + ")"
				if matched == 1 {
					which = "the acknowledged writes and the write in flight (" + res.pending.describe() + ")"
				}
			}
			which = fmt.Sprintf("%s: FirstIndex %d, LastIndex %d, snapshot at %d, %+v, all entries verified",
				which, m.first, m.last(), m.snap.Index, m.hs)
			cands = []crashModel{m}
		}
	}
	return m, which
}

func (s crashStats) total() int { return s.saves + s.snapshots + s.compactions }

// verifyCrashStore checks that a freshly opened s holds exactly m.
func verifyCrashStore(ctx context.Context, s raft.Storage, m *crashModel) error {
	st, err := s.InitialState(ctx)
	if err != nil {
		return fmt.Errorf("%s: %v", cInitialState, err)
	}
	if st.HardState != m.hs {
		return fmt.Errorf("InitialState().HardState = %+v, want %+v", st.HardState, m.hs)
	}
	if !metaEqual(st.Snapshot, m.snap) {
		return fmt.Errorf("InitialState().Snapshot = %+v, want %+v", st.Snapshot, m.snap)
	}
	first, last := m.first, m.last()
	if st.FirstIndex != first || st.LastIndex != last {
		return fmt.Errorf("InitialState() bounds = [%d, %d], want [%d, %d]", st.FirstIndex, st.LastIndex, first, last)
	}
	const chunk = 1000
	for lo := first; lo <= last; lo += chunk {
		hi := min(lo+chunk, last+1)
		es, err := s.Entries(ctx, lo, hi, 0)
		if err != nil {
			return fmt.Errorf("Entries(%d, %d, 0) with bounds [%d, %d]: %v", lo, hi, first, last, err)
		}
		want := make([]raftdata.Entry, 0, hi-lo)
		for i := lo; i < hi; i++ {
			want = append(want, crashEntry(i, m.terms[i-first]))
		}
		if d := diffEntries(es, want); d != "" {
			return fmt.Errorf("Entries(%d, %d, 0): %s", lo, hi, d)
		}
	}
	if es, err := s.Entries(ctx, last+1, last+2, 0); !errors.Is(err, raft.ErrUnavailable) {
		return fmt.Errorf("Entries(%d, %d, 0) past LastIndex %d = %d entries, error %v; want an error wrapping %q",
			last+1, last+2, last, len(es), err, raft.ErrUnavailable)
	}
	if term, err := s.Term(ctx, last+1); !errors.Is(err, raft.ErrUnavailable) {
		return fmt.Errorf("Term(%d) past LastIndex %d = %d, %v; want an error wrapping %q",
			last+1, last, term, err, raft.ErrUnavailable)
	}
	if first > 1 {
		if es, err := s.Entries(ctx, first-1, first, 0); !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("Entries(%d, %d, 0) before FirstIndex %d = %d entries, error %v; want an error wrapping %q",
				first-1, first, first, len(es), err, raft.ErrCompacted)
		}
	}
	if m.snap.Index == 0 {
		_, rc, err := s.OpenSnapshot(ctx)
		if err == nil {
			_ = rc.Close()
		}
		if !errors.Is(err, raft.ErrNoSnapshot) {
			return fmt.Errorf("OpenSnapshot with no snapshot committed: error %v, want an error wrapping %q", err, raft.ErrNoSnapshot)
		}
		return nil
	}
	if term, err := s.Term(ctx, m.snap.Index); err != nil || term != m.snap.Term {
		return fmt.Errorf("Term(%d), the snapshot index, = %d, %v; want %d", m.snap.Index, term, err, m.snap.Term)
	}
	meta, rc, err := s.OpenSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("OpenSnapshot: %v", err)
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reading the snapshot at %d: %v", meta.Index, err)
	}
	if !metaEqual(meta, m.snap) {
		return fmt.Errorf("OpenSnapshot meta = %+v, want %+v", meta, m.snap)
	}
	if d := diffBytes(b, crashSnapData(m.snap.Index, m.snap.Term)); d != "" {
		return fmt.Errorf("snapshot at index %d: %s", m.snap.Index, d)
	}
	return nil
}
