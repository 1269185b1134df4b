package redis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/raftkit/raftkit/adapters/storage/redis"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

func ents(lo, hi, term uint64) []raftdata.Entry {
	var out []raftdata.Entry
	for i := lo; i < hi; i++ {
		out = append(out, raftdata.Entry{Index: i, Term: term, Data: []byte(fmt.Sprint("cmd-", i))})
	}
	return out
}

func opts(addr string) *goredis.UniversalOptions {
	return &goredis.UniversalOptions{Addrs: []string{addr}}
}

// TestOpenRefusesUnsafeServers covers each setting, as the machine's shared
// Redis (no persistence at all) and private servers run them.
func TestOpenRefusesUnsafeServers(t *testing.T) {
	machine := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer machine.Close()
	if err := machine.Ping(ctxT(t)).Err(); err != nil {
		t.Fatalf("the machine's Redis is required at 127.0.0.1:6379: %v", err)
	}
	everysec := startRedis(t, "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "allkeys-lru")
	noConfig := startRedis(t, append(durableSettings, "--rename-command", "CONFIG", "")...)
	for _, c := range []struct {
		name   string
		client goredis.UniversalClient
		want   []string
	}{
		{"no persistence", machine, []string{`appendonly = "no"`}},
		{"fsync every second, evicting", everysec.client(t), []string{`appendfsync = "everysec"`, `maxmemory-policy = "allkeys-lru"`}},
		{"CONFIG disabled", noConfig.client(t), []string{"cannot read setting appendonly"}},
	} {
		_, err := redis.Open(ctxT(t), redis.Config{Client: c.client, Node: 1})
		if !errors.Is(err, redis.ErrUnsafeDurability) {
			t.Errorf("%s: %v, want ErrUnsafeDurability", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not say %q: %v", c.name, w, err)
			}
		}
	}
	s, err := redis.Open(ctxT(t), redis.Config{Client: everysec.client(t), Node: 1, AllowUnsafeDurability: true})
	if err != nil {
		t.Fatalf("open with AllowUnsafeDurability: %v", err)
	}
	s.Close()
}

func TestOpenRejectsBadOptions(t *testing.T) {
	c := shared.srv.client(t)
	for name, o := range map[string]redis.Config{
		"neither Client nor Redis": {},
		"both Client and Redis":    {Client: c, Redis: opts(shared.srv.addr())},
		"prefix with a brace":      {Client: c, Prefix: "a{b}"},
		"prefix with a space":      {Client: c, Prefix: "a b"},
		"negative chunk":           {Client: c, ChunkBytes: -1},
		"huge chunk":               {Client: c, ChunkBytes: 1 << 30},
		"tiny snapshot TTL":        {Client: c, OldSnapshotTTL: time.Microsecond},
	} {
		if _, err := redis.Open(ctxT(t), o); !errors.Is(err, raft.ErrInvalidArgument) {
			t.Errorf("%s: %v, want raft.ErrInvalidArgument", name, err)
		}
	}
}

func TestNewerLayoutRefused(t *testing.T) {
	node := raftdata.NodeID(nextNode.Add(1))
	s := openStore(t, redis.Config{Group: 1, Node: node})
	s.Close()
	c := shared.srv.client(t)
	if err := c.HSet(ctxT(t), fmt.Sprintf("{raftkit:1:%d}:meta", node), "layout", 99).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := redis.Open(ctxT(t), redis.Config{Client: c, Group: 1, Node: node}); !errors.Is(err, redis.ErrLayoutVersion) {
		t.Fatalf("open on a newer layout: %v, want ErrLayoutVersion", err)
	}
}

// TestGroupsAndNodesAreIsolated writes different logs under the same node
// ID in two groups and under two prefixes.
func TestGroupsAndNodesAreIsolated(t *testing.T) {
	node := raftdata.NodeID(nextNode.Add(1))
	stores := map[string]redis.Config{
		"g1": {Group: 1, Node: node}, "g2": {Group: 2, Node: node}, "other prefix": {Group: 1, Node: node, Prefix: "app:raft"},
	}
	last := map[string]uint64{"g1": 5, "g2": 9, "other prefix": 2}
	for name, o := range stores {
		s := openStore(t, o)
		if err := s.Save(ctxT(t), &raftdata.HardState{Term: last[name]}, ents(1, last[name]+1, last[name])); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for name, o := range stores {
		s := openStore(t, o)
		st, err := s.InitialState(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		es, err := s.Entries(ctxT(t), 1, st.LastIndex+1, 0)
		if st.LastIndex != last[name] || st.HardState.Term != last[name] || err != nil || es[0].Term != last[name] {
			t.Errorf("%s: state %+v, entries %v, %v", name, st, es, err)
		}
		s.Close()
	}
}

// TestSecondOpenFencesFirst: two stores opened for one node (a
// misconfiguration) never both write; the older one's changes fail whole.
func TestSecondOpenFencesFirst(t *testing.T) {
	node := raftdata.NodeID(nextNode.Add(1))
	a := openStore(t, redis.Config{Group: 1, Node: node, ChunkBytes: 16})
	defer a.Close()
	if err := a.Save(ctxT(t), &raftdata.HardState{Term: 1}, ents(1, 4, 1)); err != nil {
		t.Fatal(err)
	}
	w, err := a.CreateSnapshot(ctxT(t), raftdata.SnapshotMeta{Index: 3, Term: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 40)); err != nil { // two chunks stored
		t.Fatal(err)
	}
	b := openStore(t, redis.Config{Group: 1, Node: node})
	defer b.Close()
	if err := a.Save(ctxT(t), &raftdata.HardState{Term: 5, Vote: 2}, ents(2, 8, 5)); !errors.Is(err, redis.ErrFenced) {
		t.Fatalf("save on the fenced store: %v, want ErrFenced", err)
	}
	if _, err := w.Write(make([]byte, 40)); !errors.Is(err, redis.ErrFenced) {
		t.Fatalf("snapshot write on the fenced store: %v, want ErrFenced", err)
	}
	if _, err := a.CreateSnapshot(ctxT(t), raftdata.SnapshotMeta{Index: 3, Term: 1}); !errors.Is(err, redis.ErrFenced) {
		t.Fatalf("create snapshot on the fenced store: %v, want ErrFenced", err)
	}
	st, err := b.InitialState(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.LastIndex != 3 || st.HardState.Term != 1 {
		t.Fatalf("after the fenced save: last %d term %d, want 3 and 1", st.LastIndex, st.HardState.Term)
	}
	keys, err := shared.srv.client(t).Keys(ctxT(t), fmt.Sprintf("{raftkit:1:%d}:*", node)).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, ":snap:") {
			t.Errorf("the fenced snapshot left %s behind", k)
		}
	}
	if _, _, err := b.OpenSnapshot(ctxT(t)); !errors.Is(err, raft.ErrNoSnapshot) {
		t.Fatalf("open snapshot on the new store: %v, want ErrNoSnapshot", err)
	}
}

// TestReplacedSnapshotReadableForTTL: a reader opened before a newer
// snapshot's Commit finishes within OldSnapshotTTL, and fails with
// ErrSnapshotGone after it.
func TestReplacedSnapshotReadableForTTL(t *testing.T) {
	s := openStore(t, redis.Config{Group: 1, Node: raftdata.NodeID(nextNode.Add(1)), ChunkBytes: 8, OldSnapshotTTL: 300 * time.Millisecond})
	defer s.Close()
	commit := func(index uint64, data string) {
		w, err := s.CreateSnapshot(ctxT(t), raftdata.SnapshotMeta{Index: index, Term: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, data); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	commit(5, "first snapshot, several chunks long")
	_, early, err := s.OpenSnapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	_, late, err := s.OpenSnapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	commit(9, "second")
	if b, err := io.ReadAll(early); err != nil || string(b) != "first snapshot, several chunks long" {
		t.Fatalf("reader of the replaced snapshot: %q, %v", b, err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := io.ReadAll(late); !errors.Is(err, redis.ErrSnapshotGone) {
		t.Fatalf("reader past the TTL: %v, want ErrSnapshotGone", err)
	}
	meta, r, err := s.OpenSnapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); meta.Index != 9 || string(b) != "second" {
		t.Fatalf("latest snapshot %d %q", meta.Index, b)
	}
}

// TestCorruptElementReported: a log element that is not what the store
// wrote is raft.ErrCorrupt.
func TestCorruptElementReported(t *testing.T) {
	node := raftdata.NodeID(nextNode.Add(1))
	s := openStore(t, redis.Config{Group: 1, Node: node})
	defer s.Close()
	if err := s.Save(ctxT(t), nil, ents(1, 6, 1)); err != nil {
		t.Fatal(err)
	}
	c := shared.srv.client(t)
	key := fmt.Sprintf("{raftkit:1:%d}:log", node)
	if err := c.LSet(ctxT(t), key, 2, "short").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Entries(ctxT(t), 1, 6, 0); !errors.Is(err, raft.ErrCorrupt) {
		t.Errorf("entries over a short element: %v, want raft.ErrCorrupt", err)
	}
	if err := c.LSet(ctxT(t), key, 2, string(make([]byte, 20))).Err(); err != nil { // index 0, not 3
		t.Fatal(err)
	}
	if _, err := s.Entries(ctxT(t), 3, 4, 0); !errors.Is(err, raft.ErrCorrupt) {
		t.Errorf("entries over a misplaced element: %v, want raft.ErrCorrupt", err)
	}
}

// TestSaveWhileServerDown: a Save that meets a killed server returns an
// error (and so acknowledges nothing); once the server is back from its
// append-only file, the same Save succeeds and the log holds each entry
// once.
func TestSaveWhileServerDown(t *testing.T) {
	srv := startRedis(t, durableSettings...)
	s := openStore(t, redis.Config{Redis: opts(srv.addr()), Node: 1})
	defer s.Close()
	if err := s.Save(ctxT(t), &raftdata.HardState{Term: 1}, ents(1, 11, 1)); err != nil {
		t.Fatal(err)
	}
	srv.kill()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := s.Save(ctx, &raftdata.HardState{Term: 2, Commit: 3}, ents(8, 21, 2))
	cancel()
	if err == nil {
		t.Fatal("save with the server down returned nil")
	}
	srv.start()
	var last error
	for i := 0; i < 100; i++ {
		if last = s.Save(ctxT(t), &raftdata.HardState{Term: 2, Commit: 3}, ents(8, 21, 2)); last == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("save after the restart: %v", last)
	}
	s.Close()
	srv.kill() // what was acknowledged is in the append-only file
	srv.start()
	r := openStore(t, redis.Config{Redis: opts(srv.addr()), Node: 1})
	defer r.Close()
	st, err := r.InitialState(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.LastIndex != 20 || st.HardState != (raftdata.HardState{Term: 2, Commit: 3}) {
		t.Fatalf("state %+v, want last 20 and term 2 commit 3", st)
	}
	es, err := r.Entries(ctxT(t), 1, 21, 0)
	if err != nil || len(es) != 20 {
		t.Fatalf("entries: %d, %v", len(es), err)
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

// TestClusterSurvivesRedisKill runs three nodes on a private server, kills
// it (SIGKILL) twice under write load, restarts it from its append-only
// file, restarts every node from what Redis kept, and checks that every
// acknowledged write is on every node.
func TestClusterSurvivesRedisKill(t *testing.T) {
	srv := startRedis(t, durableSettings...)
	var failed atomic.Int64
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{
		KV:                true,
		HeartbeatInterval: 20 * time.Millisecond,
		ElectionTimeout:   300 * time.Millisecond,
		Configure:         func(c *raft.Config) { c.SnapshotEntries, c.SnapshotTrailingEntries = 150, 50 },
		Storage: func(id raftdata.NodeID) (raft.Storage, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// No go-redis retries: a Save that meets the kill fails and the
			// node retries it (TestConformanceScriptsRunTwice covers the
			// client's own retries).
			o := opts(srv.addr())
			o.MaxRetries = -1
			s, err := redis.Open(ctx, redis.Config{Redis: o, Group: 1, Node: id})
			if err != nil {
				return nil, err
			}
			return rafttest.SaveFailures{Storage: s, Failed: &failed}, nil
		},
	})
	c.WaitLeader(10 * time.Second)
	load := rafttest.StartLoad(c, 8)
	defer load.Stop()
	load.WaitAcked(t, 200, 20*time.Second)
	for round := 0; round < 2; round++ {
		before := load.Acked()
		srv.kill()
		time.Sleep(500 * time.Millisecond)
		srv.start()
		load.WaitAcked(t, before+200, 30*time.Second)
		t.Logf("round %d: %d writes acknowledged before the kill, %d after the restart", round, before, load.Acked())
	}
	load.Stop()
	for _, id := range c.IDs() {
		c.Crash(id)
	}
	for _, id := range c.IDs() {
		c.Restart(id)
	}
	c.WaitLeader(10 * time.Second)
	c.WaitConverged(30 * time.Second)
	load.Check(t)
	var snapshots uint64
	for _, id := range c.IDs() {
		snapshots += c.Node(id).Metrics().SnapshotIndex
	}
	if failed.Load() == 0 {
		t.Fatal("no Save failed: the kills did not meet a write")
	}
	if snapshots == 0 {
		t.Fatal("no node restarted from a snapshot: the test did not exercise them")
	}
	t.Logf("%d acknowledged writes of %d attempts present on all 3 nodes after restarting them; %d Saves failed during the kills",
		load.Acked(), load.Attempts(), failed.Load())
}
