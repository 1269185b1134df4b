package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/raftkit/raftkit/adapters/storage/postgres"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ents(lo, hi, term uint64) []raftdata.Entry {
	var out []raftdata.Entry
	for i := lo; i < hi; i++ {
		out = append(out, raftdata.Entry{Index: i, Term: term, Data: []byte(fmt.Sprint("cmd-", i))})
	}
	return out
}

// withParams adds query parameters to a URL-form DSN.
func withParams(dsn, params string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + params
	}
	return dsn + "?" + params
}

func TestOpenRefusesAsynchronousCommit(t *testing.T) {
	// A DSN can turn synchronous_commit off for its sessions only: the
	// check must see what the store's own connections see.
	dsn := withParams(testDSN(), "options=-c%20synchronous_commit%3Doff")
	_, err := postgres.Open(ctxT(t), postgres.Config{DSN: dsn, Schema: testSchema, Node: 1})
	if !errors.Is(err, postgres.ErrUnsafeDurability) || !strings.Contains(err.Error(), "synchronous_commit = off") {
		t.Fatalf("open with synchronous_commit=off: %v, want ErrUnsafeDurability naming it", err)
	}

	pool, err := pgxpool.New(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := postgres.Open(ctxT(t), postgres.Config{Pool: pool, Schema: testSchema, Node: 1}); !errors.Is(err, postgres.ErrUnsafeDurability) {
		t.Fatalf("open on a pool with synchronous_commit=off: %v, want ErrUnsafeDurability", err)
	}

	s, err := postgres.Open(ctxT(t), postgres.Config{DSN: dsn, Schema: testSchema, Node: 1, AllowUnsafeDurability: true})
	if err != nil {
		t.Fatalf("open with AllowUnsafeDurability: %v", err)
	}
	s.Close()
}

func TestOpenRefusesFsyncOff(t *testing.T) {
	srv := startServer(t, "fsync=off", "full_page_writes=off")
	_, err := postgres.Open(ctxT(t), postgres.Config{DSN: srv.dsn(), Node: 1})
	if !errors.Is(err, postgres.ErrUnsafeDurability) {
		t.Fatalf("open with fsync=off: %v, want ErrUnsafeDurability", err)
	}
	for _, name := range []string{"fsync = off", "full_page_writes = off"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %q: %v", name, err)
		}
	}
	s, err := postgres.Open(ctxT(t), postgres.Config{DSN: srv.dsn(), Node: 1, AllowUnsafeDurability: true})
	if err != nil {
		t.Fatalf("open with AllowUnsafeDurability: %v", err)
	}
	s.Close()
}

func TestOpenRejectsBadOptions(t *testing.T) {
	pool := sharedPool(t)
	for name, o := range map[string]postgres.Config{
		"neither DSN nor Pool": {},
		"both DSN and Pool":    {DSN: testDSN(), Pool: pool},
		"bad DSN":              {DSN: "postgres://%zz"},
		"quoted schema":        {Pool: pool, Schema: `x"; DROP TABLE y; --`},
		"upper-case schema":    {Pool: pool, Schema: "Raft"},
		"negative chunk":       {Pool: pool, ChunkBytes: -1},
		"huge chunk":           {Pool: pool, ChunkBytes: 1 << 30},
	} {
		if _, err := postgres.Open(ctxT(t), o); !errors.Is(err, raft.ErrInvalidArgument) {
			t.Errorf("%s: %v, want raft.ErrInvalidArgument", name, err)
		}
	}
}

// TestConcurrentOpensMigrateOnce opens many nodes at once on a schema that
// does not exist yet.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	schema := testSchema + "_concurrent"
	pool := sharedPool(t)
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := postgres.Open(ctxT(t), postgres.Config{DSN: testDSN(), Schema: schema, Group: 3, Node: raftdata.NodeID(i + 1)})
			if err == nil {
				err = s.Save(ctxT(t), &raftdata.HardState{Term: uint64(i + 1)}, ents(1, 3, 1))
				s.Close()
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
	var versions int
	if err := pool.QueryRow(ctxT(t), `SELECT count(*) FROM `+pgx.Identifier{schema}.Sanitize()+`.schema_migrations`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions != 1 {
		t.Fatalf("%d migration rows, want 1", versions)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	schema := testSchema + "_future"
	pool := sharedPool(t)
	q := pgx.Identifier{schema}.Sanitize()
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+q+` CASCADE`) })
	s := openStore(t, postgres.Config{Schema: schema, Node: 1})
	s.Close()
	if _, err := pool.Exec(ctxT(t), `INSERT INTO `+q+`.schema_migrations (version) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctxT(t), postgres.Config{DSN: testDSN(), Schema: schema, Node: 1}); !errors.Is(err, postgres.ErrSchemaVersion) {
		t.Fatalf("open on a newer schema: %v, want ErrSchemaVersion", err)
	}
}

// TestGroupsAndNodesAreIsolated writes different logs under the same node
// ID in two groups and under two node IDs in one group.
func TestGroupsAndNodesAreIsolated(t *testing.T) {
	node := raftdata.NodeID(nextNode.Add(1))
	other := raftdata.NodeID(nextNode.Add(1))
	stores := map[string]*postgres.Storage{
		"g1":  openStore(t, postgres.Config{Group: 1, Node: node}),
		"g2":  openStore(t, postgres.Config{Group: 2, Node: node}),
		"g1b": openStore(t, postgres.Config{Group: 1, Node: other}),
	}
	last := map[string]uint64{"g1": 5, "g2": 9, "g1b": 2}
	for name, s := range stores {
		if err := s.Save(ctxT(t), &raftdata.HardState{Term: last[name]}, ents(1, last[name]+1, last[name])); err != nil {
			t.Fatal(err)
		}
	}
	for name, s := range stores {
		s.Close()
		r := openStore(t, postgres.Config{Group: s.Group(), Node: s.Node()})
		st, err := r.InitialState(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if st.LastIndex != last[name] || st.HardState.Term != last[name] {
			t.Errorf("%s: last %d term %d, want %d and %d", name, st.LastIndex, st.HardState.Term, last[name], last[name])
		}
		es, err := r.Entries(ctxT(t), 1, st.LastIndex+1, 0)
		if err != nil || len(es) != int(last[name]) || es[0].Term != last[name] {
			t.Errorf("%s: entries %v, %v", name, es, err)
		}
		r.Close()
	}
}

// TestSecondOpenFencesFirst: two stores opened for one node (a
// misconfiguration) never both write; the older one's changes fail whole.
func TestSecondOpenFencesFirst(t *testing.T) {
	node := raftdata.NodeID(nextNode.Add(1))
	a := openStore(t, postgres.Config{Group: 1, Node: node})
	defer a.Close()
	if err := a.Save(ctxT(t), &raftdata.HardState{Term: 1}, ents(1, 4, 1)); err != nil {
		t.Fatal(err)
	}
	b := openStore(t, postgres.Config{Group: 1, Node: node})
	defer b.Close()
	err := a.Save(ctxT(t), &raftdata.HardState{Term: 5, Vote: 2}, ents(2, 8, 5))
	if !errors.Is(err, postgres.ErrFenced) {
		t.Fatalf("save on the fenced store: %v, want ErrFenced", err)
	}
	if err := a.Compact(ctxT(t), 0); err != nil {
		t.Fatalf("a no-op compact should not reach the server: %v", err)
	}
	c := openStore(t, postgres.Config{Group: 1, Node: node})
	defer c.Close()
	st, err := c.InitialState(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.LastIndex != 3 || st.HardState.Term != 1 {
		t.Fatalf("after the fenced save: last %d term %d, want 3 and 1 (nothing of it written)", st.LastIndex, st.HardState.Term)
	}
	if err := b.Save(ctxT(t), nil, ents(4, 5, 1)); !errors.Is(err, postgres.ErrFenced) {
		t.Fatalf("save on the store fenced by a third open: %v, want ErrFenced", err)
	}
}

// TestSaveWhileServerDown: a Save that meets a dead server returns an error
// (and so acknowledges nothing); once the server is back, the same Save
// succeeds and the log holds each entry once.
func TestSaveWhileServerDown(t *testing.T) {
	srv := startServer(t)
	open := func() *postgres.Storage {
		s, err := postgres.Open(ctxT(t), postgres.Config{DSN: srv.dsn(), Node: 1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	defer s.Close()
	if err := s.Save(ctxT(t), &raftdata.HardState{Term: 1}, ents(1, 11, 1)); err != nil {
		t.Fatal(err)
	}
	srv.crash()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := s.Save(ctx, &raftdata.HardState{Term: 2, Commit: 3}, ents(8, 21, 2))
	cancel()
	if err == nil {
		t.Fatal("save with the server down returned nil")
	}
	srv.start()
	var last error
	for i := 0; i < 100; i++ { // the pool redials
		if last = s.Save(ctxT(t), &raftdata.HardState{Term: 2, Commit: 3}, ents(8, 21, 2)); last == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("save after the restart: %v", last)
	}
	s.Close()
	r := open()
	defer r.Close()
	st, err := r.InitialState(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.LastIndex != 20 || st.HardState != (raftdata.HardState{Term: 2, Commit: 3}) {
		t.Fatalf("state %+v, want last 20 and term 2 commit 3", st)
	}
	es, err := r.Entries(ctxT(t), 1, 21, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		want := uint64(1)
		if e.Index >= 8 {
			want = 2
		}
		if e.Index != uint64(i+1) || e.Term != want {
			t.Fatalf("entry %d: index %d term %d, want %d and %d", i, e.Index, e.Term, i+1, want)
		}
	}
}

// TestCorruptMembershipReported: undecodable bytes in a snapshot's
// membership column are reported as raft.ErrCorrupt, not guessed at.
func TestCorruptMembershipReported(t *testing.T) {
	node := raftdata.NodeID(nextNode.Add(1))
	s := openStore(t, postgres.Config{Group: 1, Node: node})
	w, err := s.CreateSnapshot(ctxT(t), raftdata.SnapshotMeta{Index: 5, Term: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	pool := sharedPool(t)
	if _, err := pool.Exec(ctxT(t), `UPDATE `+pgx.Identifier{testSchema}.Sanitize()+`.snapshots SET membership = '\xffff'
		WHERE group_id = 1 AND node_id = $1`, int64(node)); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctxT(t), postgres.Config{DSN: testDSN(), Schema: testSchema, Group: 1, Node: node})
	if !errors.Is(err, raft.ErrCorrupt) {
		t.Fatalf("open with a corrupt membership: %v, want raft.ErrCorrupt", err)
	}
}

// TestFencedSnapshotWriterLeavesNothing: a snapshot being written when
// another store opens the node fails, and leaves no rows behind.
func TestFencedSnapshotWriterLeavesNothing(t *testing.T) {
	node := raftdata.NodeID(nextNode.Add(1))
	a := openStore(t, postgres.Config{Group: 1, Node: node, ChunkBytes: 16})
	defer a.Close()
	w, err := a.CreateSnapshot(ctxT(t), raftdata.SnapshotMeta{Index: 3, Term: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 40)); err != nil { // two chunks stored
		t.Fatal(err)
	}
	b := openStore(t, postgres.Config{Group: 1, Node: node})
	defer b.Close()
	if _, err := w.Write(make([]byte, 40)); !errors.Is(err, postgres.ErrFenced) {
		t.Fatalf("write after another open: %v, want ErrFenced", err)
	}
	if err := w.Commit(ctxT(t)); err == nil {
		t.Fatal("commit after another open succeeded")
	}
	var chunks, snaps int
	q := pgx.Identifier{testSchema}.Sanitize()
	pool := sharedPool(t)
	if err := pool.QueryRow(ctxT(t), `SELECT (SELECT count(*) FROM `+q+`.snapshot_chunks WHERE group_id = 1 AND node_id = $1),
		(SELECT count(*) FROM `+q+`.snapshots WHERE group_id = 1 AND node_id = $1)`, int64(node)).Scan(&chunks, &snaps); err != nil {
		t.Fatal(err)
	}
	if chunks != 0 || snaps != 0 {
		t.Fatalf("%d chunk rows and %d snapshot rows left behind", chunks, snaps)
	}
	if _, _, err := b.OpenSnapshot(ctxT(t)); !errors.Is(err, raft.ErrNoSnapshot) {
		t.Fatalf("open snapshot on the new store: %v, want ErrNoSnapshot", err)
	}
}

// TestMissingRowsReportedCorrupt: rows deleted behind the store's back,
// inside the log's bounds, are corruption, whether the read is cut by size
// or not.
func TestMissingRowsReportedCorrupt(t *testing.T) {
	node := raftdata.NodeID(nextNode.Add(1))
	s := openStore(t, postgres.Config{Group: 1, Node: node})
	defer s.Close()
	if err := s.Save(ctxT(t), nil, ents(1, 11, 1)); err != nil {
		t.Fatal(err)
	}
	pool := sharedPool(t)
	if _, err := pool.Exec(ctxT(t), `DELETE FROM `+pgx.Identifier{testSchema}.Sanitize()+`.entries
		WHERE group_id = 1 AND node_id = $1 AND idx IN (5, 10)`, int64(node)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lo, hi uint64
		max    int
	}{{1, 11, 0}, {1, 11, 1 << 20}, {4, 6, 0}, {8, 11, 0}, {8, 11, 1000}} {
		if _, err := s.Entries(ctxT(t), c.lo, c.hi, c.max); !errors.Is(err, raft.ErrCorrupt) {
			t.Errorf("Entries(%d, %d, %d): %v, want raft.ErrCorrupt", c.lo, c.hi, c.max, err)
		}
	}
	if _, err := s.Term(ctxT(t), 5); !errors.Is(err, raft.ErrCorrupt) {
		t.Errorf("Term(5): %v, want raft.ErrCorrupt", err)
	}
	// Reads that stop before the hole are fine.
	if es, err := s.Entries(ctxT(t), 1, 11, 3*(&raftdata.Entry{Data: []byte("cmd-1")}).Size()); err != nil || len(es) != 3 {
		t.Errorf("Entries cut before the hole: %d entries, %v", len(es), err)
	}
}
