package session_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
	"github.com/raftkit/raftkit/raft/session"
)

// counter counts the commands it applies; each result is the new count.
type counter struct{ n int }

func (c *counter) Apply(ents []raftdata.Entry, res []any) error {
	for i := range ents {
		c.n++
		res[i] = c.n
	}
	return nil
}

func (c *counter) Snapshot() (raft.Snapshot, error) { return snap(strconv.Itoa(c.n)), nil }

func (c *counter) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	c.n, err = strconv.Atoi(string(b))
	return err
}

type snap string

func (s snap) WriteTo(w io.Writer) (int64, error) {
	n, err := io.WriteString(w, string(s))
	return int64(n), err
}
func (snap) Release() {}

// log feeds commands to m as consecutive entries from index next, one
// Apply per call, and returns the results.
type log struct {
	m    *session.Machine
	next uint64
}

func (l *log) apply(t *testing.T, cmds ...[]byte) []any {
	t.Helper()
	ents := make([]raftdata.Entry, len(cmds))
	for i, c := range cmds {
		l.next++
		ents[i] = raftdata.Entry{Index: l.next, Term: 1, Data: c}
	}
	res := make([]any, len(cmds))
	if err := l.m.Apply(ents, res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDuplicateAnsweredFromRecord(t *testing.T) {
	c := &counter{}
	l := &log{m: session.Wrap(c, session.Config{})}
	a := session.NewClient(7)
	first := a.Next([]byte("x"))
	if res := l.apply(t, first); res[0] != 1 {
		t.Fatalf("first: %v", res[0])
	}
	// A retry of the same bytes, later in the log, and twice in one batch.
	if res := l.apply(t, []byte("plain"), first, first); res[0] != 2 || res[1] != 1 || res[2] != 1 {
		t.Fatalf("retries: %v", res)
	}
	second := a.Next([]byte("y"))
	if res := l.apply(t, second, second); res[0] != 3 || res[1] != 3 {
		t.Fatalf("a command and its retry in one batch: %v", res)
	}
	if c.n != 3 {
		t.Fatalf("applied %d commands, want 3 (the plain one and two sessions' commands)", c.n)
	}
	// Consecutive commands of one client in one batch, each retried.
	third, fourth := a.Next([]byte("z")), a.Next([]byte("w"))
	if res := l.apply(t, third, fourth, fourth); res[0] != 4 || res[1] != 5 || res[2] != 5 {
		t.Fatalf("two commands of a client in one batch: %v", res)
	}
	if res := l.apply(t, fourth); res[0] != 5 {
		t.Fatalf("the latest command's retry in a later batch: %v", res[0])
	}
	for name, cmd := range map[string][]byte{
		"stale serial":        first,
		"gap in serials":      session.Encode(7, 9, []byte("z")),
		"unknown client at 2": session.Encode(8, 2, []byte("z")),
	} {
		res := l.apply(t, cmd)
		err, _ := res[0].(error)
		want := session.ErrExpired
		if name == "stale serial" {
			want = session.ErrStale
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, res[0], want)
		}
	}
	if c.n != 5 {
		t.Fatalf("refused commands were applied: %d, want 5", c.n)
	}
}

func TestSessionsExpireAndEvictByTheLog(t *testing.T) {
	run := func() (*session.Machine, []any) {
		m := session.Wrap(&counter{}, session.Config{ExpireEntries: 100, MaxSessions: 10})
		l := &log{m: m}
		var out []any
		for c := uint64(1); c <= 30; c++ {
			out = append(out, l.apply(t, session.Encode(c, 1, nil))...)
		}
		// Client 30 is among the newest: kept. Client 1 was evicted.
		out = append(out, l.apply(t, session.Encode(30, 1, nil), session.Encode(1, 1, nil))...)
		for i := 0; i < 120; i++ {
			l.apply(t, []byte("tick"))
		}
		// Past ExpireEntries, client 30's session is gone too.
		out = append(out, l.apply(t, session.Encode(30, 2, nil))...)
		return m, out
	}
	m1, out1 := run()
	_, out2 := run()
	if len(out1) != len(out2) {
		t.Fatal("two machines fed the same log disagree")
	}
	for i := range out1 {
		if e1, ok := out1[i].(error); ok {
			if e2, ok := out2[i].(error); !ok || e1.Error() != e2.Error() {
				t.Fatalf("result %d: %v vs %v", i, out1[i], out2[i])
			}
		} else if out1[i] != out2[i] {
			t.Fatalf("result %d: %v vs %v", i, out1[i], out2[i])
		}
	}
	n := len(out1)
	if out1[n-3] != 30 {
		t.Errorf("client 30's duplicate: %v, want its recorded result 30", out1[n-3])
	}
	if out1[n-2] != 31 {
		t.Errorf("client 1 after eviction (serial 1 starts a new session): %v, want 31", out1[n-2])
	}
	if !errors.Is(out1[n-1].(error), session.ErrExpired) {
		t.Errorf("client 30 after expiry: %v, want ErrExpired", out1[n-1])
	}
	if m1.Sessions() > 10 {
		t.Errorf("%d sessions, bound 10", m1.Sessions())
	}
}

func TestSnapshotKeepsSessions(t *testing.T) {
	m := session.Wrap(&counter{}, session.Config{})
	l := &log{m: m}
	a := session.NewClient(3)
	cmd := a.Next([]byte("x"))
	l.apply(t, []byte("plain"), cmd)
	errCmd := session.Encode(4, 1, nil)
	l.apply(t, errCmd)
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	s.Release()
	c2 := &counter{}
	m2 := session.Wrap(c2, session.Config{})
	if err := m2.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	l2 := &log{m: m2, next: l.next}
	if res := l2.apply(t, cmd); res[0] != 2 || c2.n != 3 {
		t.Fatalf("duplicate after restore: %v (count %d), want the recorded 2 and nothing applied", res[0], c2.n)
	}
	if err := m2.Restore(bytes.NewReader(buf.Bytes()[:20])); !errors.Is(err, raft.ErrCorrupt) {
		t.Fatalf("truncated table: %v, want raft.ErrCorrupt", err)
	}
	if err := m2.Restore(bytes.NewReader([]byte("3"))); !errors.Is(err, raft.ErrCorrupt) {
		t.Fatalf("a snapshot without the table: %v, want raft.ErrCorrupt", err)
	}
}

func TestDefaultCodecRoundTrip(t *testing.T) {
	var c session.DefaultCodec
	for _, v := range []any{nil, []byte("b"), "s", true, false, 42, int64(-7), uint64(9)} {
		b, err := c.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if gb, ok := got.([]byte); ok {
			if !bytes.Equal(gb, v.([]byte)) {
				t.Errorf("%v -> %v", v, got)
			}
		} else if got != v {
			t.Errorf("%v (%T) -> %v (%T)", v, v, got, got)
		}
	}
	b, _ := c.Encode(session.ErrStale)
	got, _ := c.Decode(b)
	if err, ok := got.(error); !ok || !errors.Is(err, session.ErrStale) {
		t.Errorf("ErrStale came back as %v", got)
	}
	if _, err := c.Encode(struct{}{}); err == nil {
		t.Error("an unsupported type was encoded")
	}
}

// tee gives every entry to the cluster's Recorder (whose checks expect to
// see the whole log) and applies through the session machine, whose results
// the proposers get.
type tee struct {
	rec  raft.StateMachine
	sess *session.Machine
}

func (t tee) Apply(ents []raftdata.Entry, res []any) error {
	if err := t.rec.Apply(ents, make([]any, len(ents))); err != nil {
		return err
	}
	return t.sess.Apply(ents, res)
}

func (t tee) Snapshot() (raft.Snapshot, error) { return nil, errors.New("no snapshots in this test") }
func (t tee) Restore(io.Reader) error          { return errors.New("no snapshots in this test") }

// TestRetriedProposalAppliesOnce runs sessions under a real cluster: the
// same session command proposed twice (a client retrying after a lost
// answer) commits twice but is applied once on every node, and the retry
// gets the first answer.
func TestRetriedProposalAppliesOnce(t *testing.T) {
	counters := map[raftdata.NodeID]*counter{}
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{
		Configure: func(cfg *raft.Config) {
			counters[cfg.ID] = &counter{}
			cfg.StateMachine = tee{rec: cfg.StateMachine, sess: session.Wrap(counters[cfg.ID], session.Config{})}
		},
	})
	l := c.WaitLeader(10 * time.Second)
	client := session.NewClient(99)
	cmd := client.Next([]byte("pay 10"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := c.Node(l).Propose(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Node(l).Propose(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if first != 1 || again != 1 {
		t.Fatalf("the command answered %v and its retry %v, want 1 and 1", first, again)
	}
	c.WaitConverged(10 * time.Second)
	for _, id := range c.IDs() {
		if n := counters[id].n; n != 1 {
			t.Fatalf("node %d applied the command %d times", id, n)
		}
	}
}
