package tcp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/network/tcp"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// proxy forwards connections to a target and can cut them all at once,
// at whatever byte each one has reached: mid-frame under load.
type proxy struct {
	ln     net.Listener
	target atomic.Pointer[string]
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(t testing.TB) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) setTarget(a string) { p.target.Store(&a) }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		target := p.target.Load()
		if target == nil {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", *target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		p.wg.Add(2)
		go pipe(up, c)
		go pipe(c, up)
	}
}

// cut closes every connection through the proxy.
func (p *proxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns) / 2
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
	return n
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// tcpCluster starts a 3-node cluster over loopback TCP, each node reached
// through its own proxy.
func tcpCluster(t *testing.T) (*rafttest.Cluster, map[raftdata.NodeID]*proxy) {
	proxies := map[raftdata.NodeID]*proxy{}
	var mu sync.Mutex
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{
		HeartbeatInterval: 20 * time.Millisecond,
		Transport: func(id raftdata.NodeID, addr string) (raft.Network, string, error) {
			mu.Lock()
			p := proxies[id]
			if p == nil {
				p = newProxy(t)
				proxies[id] = p
			}
			mu.Unlock()
			tr, err := tcp.New(tcp.Config{ClusterID: 42, ID: id, Listen: "127.0.0.1:0", Advertise: p.addr(), Logger: quiet(),
				MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
			if err != nil {
				return nil, "", err
			}
			p.setTarget(tr.Addr())
			return tr, p.addr(), nil
		},
	})
	return c, proxies
}

// writeLoad proposes through whichever node leads until stop closes, and
// returns the commands acknowledged.
func writeLoad(c *rafttest.Cluster, workers int, stop <-chan struct{}) func() map[string]bool {
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				l := c.Leader()
				var n *raft.Node
				if l != 0 {
					n = c.Node(l)
				}
				if n == nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				cmd := fmt.Sprintf("w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := n.Propose(ctx, []byte(cmd))
				cancel()
				if err == nil {
					mu.Lock()
					acked[cmd] = true
					mu.Unlock()
				}
			}
		}()
	}
	return func() map[string]bool {
		wg.Wait()
		return acked
	}
}

// checkAcked waits until every live node applied every acknowledged command.
func checkAcked(t *testing.T, c *rafttest.Cluster, acked map[string]bool) {
	t.Helper()
	l := c.WaitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Node(l).Propose(ctx, []byte("final")); err != nil {
		t.Fatalf("final write: %v", err)
	}
	c.WaitConverged(10 * time.Second)
	for _, id := range c.Live() {
		have := map[string]bool{}
		for _, e := range c.StateMachine(id).Applied() {
			have[string(e.Data)] = true
		}
		for cmd := range acked {
			if !have[cmd] {
				t.Fatalf("node %d lost acknowledged write %q", id, cmd)
			}
		}
	}
}

func TestClusterSurvivesCutConnections(t *testing.T) {
	c, proxies := tcpCluster(t)
	c.WaitLeader(10 * time.Second)
	stop := make(chan struct{})
	wait := writeLoad(c, 8, stop)
	cuts := 0
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		for _, p := range proxies {
			cuts += p.cut()
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	acked := wait()
	if len(acked) == 0 || cuts == 0 {
		t.Fatalf("%d writes acknowledged, %d connections cut: the test did not exercise anything", len(acked), cuts)
	}
	checkAcked(t, c, acked)
	t.Logf("%d writes acknowledged across %d connection cuts", len(acked), cuts)
}

func TestClusterSurvivesPeerRestart(t *testing.T) {
	c, _ := tcpCluster(t)
	stop := make(chan struct{})
	wait := writeLoad(c, 4, stop)
	for round := 0; round < 2; round++ {
		l := c.WaitLeader(10 * time.Second)
		time.Sleep(200 * time.Millisecond)
		c.Crash(l) // the leader's process dies; its port closes
		c.WaitLeader(10 * time.Second)
		time.Sleep(200 * time.Millisecond)
		c.Restart(l) // comes back on a new port behind its proxy
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	acked := wait()
	if len(acked) == 0 {
		t.Fatal("no write acknowledged")
	}
	checkAcked(t, c, acked)
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []tcp.Config{
		{ID: 1, Listen: "127.0.0.1:0"},
		{ClusterID: 1, Listen: "127.0.0.1:0"},
		{ClusterID: 1, ID: 1},
		{ClusterID: 1, ID: 1, Listen: "127.0.0.1:0", MaxMessageBytes: 1000},
	} {
		if _, err := tcp.New(cfg); !errors.Is(err, tcp.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}
