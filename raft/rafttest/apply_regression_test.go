package rafttest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/storage/memory"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/internal/simhook"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// TestApplySpanningInstalledSnapshot replays, step by step on a manual
// node, a follower that skipped committed entries past a snapshot: it holds
// entries 1-10 on disk (out of its tiny cache) and receives a snapshot at
// 15 from the leader of term 2; before the snapshot is written, the leader
// of term 3 sends entries 11-20 and commit 20, so one apply batch spans
// 2-20. The snapshot's Commit discards the stored log (it does not hold
// entry 15), the batch's head can no longer be read, and the applier used
// to drop the whole batch, counting on the restore: the restore reaches
// 15, and 16-20 were never applied (the state machine applied "... 15, 21").
func TestApplySpanningInstalledSnapshot(t *testing.T) {
	members := []raftdata.Member{{ID: 1, Addr: "n1"}, {ID: 2, Addr: "n2"}, {ID: 3, Addr: "n3"}}
	store := memory.New()
	var kv *KV
	start := func() simhook.Node {
		kv = NewKV()
		n, err := simhook.NewNode(context.Background(), raft.Config{
			ID: 3, Storage: store, Network: discardNet{}, StateMachine: kv,
			HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
			EntryCacheBytes: 1, SnapshotEntries: -1,
		}, func() (time.Duration, time.Duration) { return 0, 0 })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := start()
	if err := n.Bootstrap(members); err != nil {
		t.Fatal(err)
	}
	cmd := func(i uint64) []byte {
		return KVOp{Kind: KVPut, Key: "k", Value: fmt.Sprint("v", i)}.Encode()
	}
	ents := func(lo, hi, term uint64) []raftdata.Entry {
		var out []raftdata.Entry
		for i := lo; i <= hi; i++ {
			if i > 15 {
				term = 3
			}
			out = append(out, raftdata.Entry{Index: i, Term: term, Type: raftdata.EntryNormal, Data: cmd(i)})
		}
		return out
	}
	drain := func() {
		for n.HasWrite() || n.HasApply() {
			if n.HasWrite() {
				n.Write()
			}
			if n.HasApply() {
				n.Apply()
			}
		}
	}
	drain()
	// Leader 1, term 2: entries 2-10, commit 1.
	n.Deliver([]raftdata.Message{{Type: raftdata.MsgApp, From: 1, To: 3, Term: 2, Index: 1, LogTerm: 1, Entries: ents(2, 10, 2), Commit: 1}})
	drain()
	// A restart: the entry cache starts empty, so committed entries are
	// read back from storage to be applied.
	_ = store.Close()
	store = store.Reopen()
	n = start()
	drain()
	// The same leader sends its snapshot at 15 in one chunk; it waits for
	// the write goroutine.
	snapKV := NewKV()
	res := make([]any, 14)
	if err := snapKV.Apply(ents(2, 15, 2), res); err != nil {
		t.Fatal(err)
	}
	s, err := snapKV.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var data bytes.Buffer
	if _, err := s.WriteTo(&data); err != nil {
		t.Fatal(err)
	}
	meta := raftdata.SnapshotMeta{Index: 15, Term: 2, Membership: raftdata.Membership{Voters: members}}
	n.Deliver([]raftdata.Message{{Type: raftdata.MsgSnap, From: 1, To: 3, Term: 2, Snapshot: &raftdata.SnapshotChunk{Meta: meta, Data: data.Bytes(), Done: true}}})
	if !n.HasWrite() {
		t.Fatal("the snapshot chunk was not queued for writing")
	}
	// Leader 2, term 3, before that write: entries 11-20, commit 20. The
	// apply batch 2-20 is queued ahead of the snapshot's restore.
	n.Deliver([]raftdata.Message{{Type: raftdata.MsgApp, From: 2, To: 3, Term: 3, Index: 10, LogTerm: 2, Entries: ents(11, 20, 2), Commit: 20}})
	drain()
	if st := n.Status(); st.Failed != nil || st.Applied != 20 {
		t.Fatalf("applied %d (failed: %v), want 20", st.Applied, st.Failed)
	}
	var got []uint64
	for _, e := range kv.Applied() {
		got = append(got, e.Index)
	}
	for i, idx := range got {
		if idx != uint64(i+2) {
			t.Fatalf("applied sequence %v, want 2 to 20 in order", got)
		}
	}
	if len(got) != 19 || kv.Get("k") != "v20" {
		t.Fatalf("applied sequence %v, value %q; want 2 to 20 and v20", got, kv.Get("k"))
	}
}

// discardNet is a raft.Network that drops what is sent: the test plays
// the leaders itself.
type discardNet struct{}

func (discardNet) Start(raft.Handler) error   { return nil }
func (discardNet) SetPeers([]raftdata.Member) {}
func (discardNet) Close() error               { return nil }
func (discardNet) Send([]raftdata.Message)    {}
