// etcd-raft's (go.etcd.io/raft/v3) setup, following the "Usage" section of
// its README:
//
//   - Three raft.Node in this process, IDs 1 to 3, each started with
//     raft.StartNode(cfg, peers 1..3) on its own raft.NewMemoryStorage(),
//     with raft.Config{ID, Storage, ElectionTick: 10, HeartbeatTick: 1,
//     MaxSizePerMsg: 1 MiB, MaxInflightMsgs: 256, Logger}. ElectionTick,
//     HeartbeatTick and MaxInflightMsgs are the README's values;
//     MaxSizePerMsg is etcd's own setting (the README's example shows 4096,
//     which would cap an append message at about 30 of these writes). Every
//     other field keeps its zero value, which is the library's default:
//     CheckQuorum and PreVote off, AsyncStorageWrites off (the README
//     documents the Ready/Advance loop below), MaxCommittedSizePerReady =
//     MaxSizePerMsg, MaxUncommittedEntriesSize and MaxInflightBytes
//     unlimited, ReadOnlySafe. The logger prints warnings and errors only.
//   - Timers: every node's loop calls Tick every -etcd-tick (default 10 ms),
//     so the leader sends heartbeats every tick and a follower's election
//     timeout is 10 to 20 ticks.
//   - One goroutine per node runs the README's loop: on each Ready, append
//     Entries to the MemoryStorage, then SetHardState (and ApplySnapshot,
//     which never happens here: nothing is compacted); send Messages; apply
//     CommittedEntries (ConfChange entries through ApplyConfChange, normal
//     entries to the state machine); then Advance.
//   - Network: Go channels. Each directed link has a FIFO channel of 8192
//     messages and one goroutine that hands each message to the peer's
//     Node.Step, by reference (no encoding, as in raftkit's in-process
//     network). A full channel blocks the sender instead of dropping.
//   - State machine: a counter of applied commands. Each write is the
//     128-byte payload, copied, with its first 8 bytes replaced by a request
//     ID (so entries are the same size as for the other libraries). Applying
//     an entry wakes the proposer waiting on that ID; waiters are kept in 64
//     mutex-guarded shards, like etcd's server.
//   - The harness waits for a leader (from Ready.SoftState) and commits one
//     write through it before the clients start.
//   - A write is leader.Propose(ctx, data) followed by a wait until the
//     leader applies the entry with that request ID. If the leader loses
//     leadership, the write fails and the run aborts.
//
// No durable configuration: etcd-raft ships no durable log storage (etcd
// keeps its own WAL), and the issue asks for none.

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const (
	etcdLinkBuffer = 8192
	etcdShards     = 64
)

// etcdWaiters maps request IDs to the channel of the proposer waiting on
// them.
type etcdWaiters struct {
	shards [etcdShards]struct {
		mu sync.Mutex
		m  map[uint64]chan struct{}
	}
}

func newEtcdWaiters() *etcdWaiters {
	w := &etcdWaiters{}
	for i := range w.shards {
		w.shards[i].m = map[uint64]chan struct{}{}
	}
	return w
}

func (w *etcdWaiters) register(id uint64, ch chan struct{}) {
	s := &w.shards[id%etcdShards]
	s.mu.Lock()
	s.m[id] = ch
	s.mu.Unlock()
}

func (w *etcdWaiters) trigger(id uint64) {
	s := &w.shards[id%etcdShards]
	s.mu.Lock()
	ch := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if ch != nil {
		ch <- struct{}{}
	}
}

func (w *etcdWaiters) cancel(id uint64) {
	s := &w.shards[id%etcdShards]
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

type etcdNode struct {
	id      uint64
	node    raft.Node
	storage *raft.MemoryStorage
	applied atomic.Uint64
	leader  atomic.Bool
	waiters *etcdWaiters
	// out are the links to the other nodes, by ID.
	out map[uint64]chan *pb.Message
}

type etcdCluster struct {
	nodes  []*etcdNode
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	logger *etcdLogger

	lead   *etcdNode
	nextID atomic.Uint64
	chans  sync.Pool
}

// errLeadershipLost fails writes once the leader the clients use has lost
// its leadership.
var errLeadershipLost = errors.New("etcd-raft: the leader lost its leadership")

func startEtcd(_, _ string) (_ cluster, err error) {
	c := &etcdCluster{done: make(chan struct{}), logger: &etcdLogger{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.chans.New = func() any { return make(chan struct{}, 1) }
	defer func() {
		if err != nil {
			_ = c.stop()
		}
	}()
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for _, p := range peers {
		c.nodes = append(c.nodes, &etcdNode{id: p.ID, storage: raft.NewMemoryStorage(),
			waiters: newEtcdWaiters(), out: map[uint64]chan *pb.Message{}})
	}
	for _, n := range c.nodes {
		n.node = raft.StartNode(&raft.Config{
			ID:              n.id,
			ElectionTick:    10,
			HeartbeatTick:   1,
			Storage:         n.storage,
			MaxSizePerMsg:   1 << 20,
			MaxInflightMsgs: 256,
			Logger:          c.logger,
		}, peers)
	}
	// Links: a channel and a delivery goroutine per directed pair.
	for _, from := range c.nodes {
		for _, to := range c.nodes {
			if from == to {
				continue
			}
			ch := make(chan *pb.Message, etcdLinkBuffer)
			from.out[to.id] = ch
			c.wg.Add(1)
			go c.deliver(ch, to)
		}
	}
	for _, n := range c.nodes {
		c.wg.Add(1)
		go c.loop(n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.lead == nil {
		if time.Now().After(deadline) {
			return nil, errors.New("no leader elected in 10s")
		}
		for _, n := range c.nodes {
			if n.leader.Load() {
				c.lead = n
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.propose(ctx, make([]byte, payloadSize)); err != nil {
		return nil, fmt.Errorf("first write: %w", err)
	}
	return c, nil
}

// deliver hands the messages of one link to the receiving node, in order.
func (c *etcdCluster) deliver(ch chan *pb.Message, to *etcdNode) {
	defer c.wg.Done()
	for {
		select {
		case m := <-ch:
			if err := to.node.Step(c.ctx, m); err != nil && c.ctx.Err() == nil {
				c.logger.Errorf("step on node %d: %v", to.id, err)
			}
		case <-c.done:
			return
		}
	}
}

// loop is the node's Ready loop, in the order of etcd-raft's README: save
// to storage, send messages, apply committed entries, Advance.
func (c *etcdCluster) loop(n *etcdNode) {
	defer c.wg.Done()
	ticker := time.NewTicker(etcdTick)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			n.node.Tick()
		case rd := <-n.node.Ready():
			if rd.SoftState != nil {
				n.leader.Store(rd.SoftState.RaftState == raft.StateLeader)
			}
			// 1. Entries, then HardState and Snapshot.
			if err := n.storage.Append(rd.Entries); err != nil {
				c.logger.Panicf("node %d: append: %v", n.id, err)
			}
			if !raft.IsEmptyHardState(rd.HardState) {
				if err := n.storage.SetHardState(rd.HardState); err != nil {
					c.logger.Panicf("node %d: hard state: %v", n.id, err)
				}
			}
			if !raft.IsEmptySnap(rd.Snapshot) {
				if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
					c.logger.Panicf("node %d: snapshot: %v", n.id, err)
				}
			}
			// 2. Messages.
			for _, m := range rd.Messages {
				link, ok := n.out[m.GetTo()]
				if !ok {
					c.logger.Errorf("node %d: message %v to unknown node %d", n.id, m.GetType(), m.GetTo())
					continue
				}
				select {
				case link <- m:
				case <-c.done:
					return
				}
				if m.GetType() == pb.MsgSnap {
					n.node.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
				}
			}
			// 3. Committed entries.
			for _, e := range rd.CommittedEntries {
				switch e.GetType() {
				case pb.EntryNormal:
					if d := e.GetData(); len(d) >= 8 {
						n.applied.Add(1)
						n.waiters.trigger(binary.BigEndian.Uint64(d))
					}
				case pb.EntryConfChange:
					var cc pb.ConfChange
					if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
						c.logger.Panicf("node %d: conf change: %v", n.id, err)
					}
					n.node.ApplyConfChange(&cc)
				case pb.EntryConfChangeV2:
					var cc pb.ConfChangeV2
					if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
						c.logger.Panicf("node %d: conf change: %v", n.id, err)
					}
					n.node.ApplyConfChange(&cc)
				}
			}
			// 4. Advance.
			n.node.Advance()
		case <-c.done:
			return
		}
	}
}

func (c *etcdCluster) propose(ctx context.Context, cmd []byte) error {
	if len(cmd) < 8 {
		return fmt.Errorf("etcd harness: a command of %d bytes has no room for the request ID", len(cmd))
	}
	id := c.nextID.Add(1)
	data := make([]byte, len(cmd)) // etcd-raft keeps it in the log
	copy(data, cmd)
	binary.BigEndian.PutUint64(data, id)
	ch := c.chans.Get().(chan struct{})
	w := c.lead.waiters
	w.register(id, ch)
	if err := c.lead.node.Propose(ctx, data); err != nil {
		w.cancel(id)
		return err
	}
	select {
	case <-ch:
		c.chans.Put(ch)
	case <-ctx.Done():
		w.cancel(id)
		return fmt.Errorf("waiting for write %d to apply: %w", id, ctx.Err())
	}
	if !c.lead.leader.Load() {
		return errLeadershipLost
	}
	return nil
}

func (c *etcdCluster) applied() uint64 {
	if c.lead == nil {
		return 0
	}
	return c.lead.applied.Load()
}

func (c *etcdCluster) stop() error {
	c.logger.muted.Store(true)
	close(c.done)
	c.cancel()
	for _, n := range c.nodes {
		if n.node != nil {
			n.node.Stop()
		}
	}
	c.wg.Wait()
	return nil
}

// etcdLogger prints etcd-raft's warnings and errors to stderr and drops its
// debug and info lines (elections), until muted for shutdown.
type etcdLogger struct{ muted atomic.Bool }

func (l *etcdLogger) print(level, s string) {
	if !l.muted.Load() {
		fmt.Fprintf(os.Stderr, "etcd-raft %s: %s\n", level, s)
	}
}

func (l *etcdLogger) Debug(...any)                {}
func (l *etcdLogger) Debugf(string, ...any)       {}
func (l *etcdLogger) Info(...any)                 {}
func (l *etcdLogger) Infof(string, ...any)        {}
func (l *etcdLogger) Warning(v ...any)            { l.print("warning", fmt.Sprint(v...)) }
func (l *etcdLogger) Warningf(f string, v ...any) { l.print("warning", fmt.Sprintf(f, v...)) }
func (l *etcdLogger) Error(v ...any)              { l.print("error", fmt.Sprint(v...)) }
func (l *etcdLogger) Errorf(f string, v ...any)   { l.print("error", fmt.Sprintf(f, v...)) }
func (l *etcdLogger) Fatal(v ...any)              { l.print("fatal", fmt.Sprint(v...)); os.Exit(1) }
func (l *etcdLogger) Fatalf(f string, v ...any)   { l.print("fatal", fmt.Sprintf(f, v...)); os.Exit(1) }
func (l *etcdLogger) Panic(v ...any)              { panic(fmt.Sprint(v...)) }
func (l *etcdLogger) Panicf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }
