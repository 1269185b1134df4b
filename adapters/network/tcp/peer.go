package tcp

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/wire"
)

// maxFrameMessages caps the messages in one frame at what a receiver's
// wire decoder accepts by default.
var maxFrameMessages = wire.DefaultLimits.MaxBatchMessages

// peer is the outbound side toward one node: a bounded queue that Send
// fills and one goroutine (run) that connects and writes it out.
type peer struct {
	t    *Transport
	id   raftdata.NodeID
	wake chan struct{} // cap 1: work or a state change for run
	quit chan struct{} // closed by stop
	once sync.Once

	mu      sync.Mutex
	addr    string
	addrGen uint64 // bumped when addr changes: run reconnects
	queue   []raftdata.Message
	head    int // queue[:head] is already taken
	qbytes  int
	down    bool // the last dial failed: Send drops until the next attempt
	stopped bool
	conn    net.Conn // current connection, closed by stop and setAddress
	broken  net.Conn // a connection the peer closed
	ever    bool     // a connection was established once
}

func newPeer(t *Transport, id raftdata.NodeID, addr string) *peer {
	return &peer{t: t, id: id, addr: addr, wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *peer) address() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// setAddress points the peer at a new address; the current connection
// is closed and run dials the new one.
func (p *peer) setAddress(a string) {
	p.mu.Lock()
	p.addr = a
	p.addrGen++
	p.down = false
	if p.conn != nil {
		_ = p.conn.Close()
	}
	p.mu.Unlock()
	p.signal()
}

// stop ends run and drops the queue. It does not wait.
func (p *peer) stop() {
	p.once.Do(func() { close(p.quit) })
	p.mu.Lock()
	p.stopped = true
	p.dropQueueLocked()
	if p.conn != nil {
		_ = p.conn.Close()
	}
	p.mu.Unlock()
}

func (p *peer) dropQueueLocked() {
	if k := len(p.queue) - p.head; k > 0 {
		p.t.stats.dropped.Add(uint64(k))
	}
	clear(p.queue)
	p.queue, p.head, p.qbytes = p.queue[:0], 0, 0
}

// enqueue queues msgs, all for this peer, or drops them.
func (p *peer) enqueue(msgs []raftdata.Message) {
	limit := p.t.cfg.QueueBytes
	p.mu.Lock()
	if p.down || p.stopped {
		p.mu.Unlock()
		p.t.stats.dropped.Add(uint64(len(msgs)))
		return
	}
	if p.head > 0 && p.head >= len(p.queue)/2 {
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue, p.head = p.queue[:n], 0
	}
	dropped := 0
	for i := range msgs {
		sz := msgs[i].Size()
		if p.qbytes+sz > limit {
			dropped++
			continue
		}
		p.queue = append(p.queue, msgs[i])
		p.qbytes += sz
	}
	p.mu.Unlock()
	if dropped > 0 {
		p.t.stats.dropped.Add(uint64(dropped))
	}
	p.signal()
}

// take removes up to writeTarget bytes of messages from the queue into
// out; ok is false when the queue is empty.
func (p *peer) take(out []raftdata.Message) ([]raftdata.Message, bool) {
	q := p.queue[p.head:]
	if len(q) == 0 {
		return out, false
	}
	k, bytes := 0, 0
	for k < len(q) && (k == 0 || bytes < writeTarget) {
		bytes += q[k].Size()
		k++
	}
	out = append(out, q[:k]...)
	clear(q[:k])
	p.head += k
	p.qbytes -= bytes
	if p.head == len(p.queue) {
		p.queue, p.head, p.qbytes = p.queue[:0], 0, 0
	}
	return out, true
}

// run connects to the peer and writes its queue out until stopped.
func (p *peer) run() {
	t := p.t
	defer t.wg.Done()
	var (
		conn     net.Conn
		gen      uint64
		backoff  time.Duration // grows with consecutive dial failures
		wait     time.Duration // before the next dial
		failures int
		batch    []raftdata.Message
		buf      []byte
	)
	closeConn := func() {
		if conn != nil {
			_ = conn.Close()
			conn = nil
		}
	}
	defer closeConn()
	for {
		if conn == nil {
			if wait > 0 && !p.sleep(wait, gen) {
				return
			}
			wait = 0
			p.mu.Lock()
			if p.stopped {
				p.mu.Unlock()
				return
			}
			p.down = false // queue while we try
			if len(p.queue) == p.head {
				// Dial only with something to send: an idle or departed
				// peer costs no connection attempts.
				p.mu.Unlock()
				select {
				case <-p.wake:
				case <-p.quit:
					return
				}
				continue
			}
			addr := p.addr
			gen = p.addrGen
			p.mu.Unlock()
			c, err := p.dial(addr)
			p.mu.Lock()
			if p.stopped {
				p.mu.Unlock()
				if c != nil {
					_ = c.Close()
				}
				return
			}
			if err != nil {
				p.down = gen == p.addrGen
				p.dropQueueLocked()
				p.mu.Unlock()
				failures++
				if failures == 1 {
					t.log.Warn("peer unreachable", "peer", uint64(p.id), "addr", addr, "err", err)
				} else {
					t.log.Debug("peer still unreachable", "peer", uint64(p.id), "addr", addr, "err", err, "attempts", failures)
				}
				backoff = min(max(2*backoff, t.cfg.MinBackoff), t.cfg.MaxBackoff)
				wait = backoff
				continue
			}
			if p.ever {
				t.stats.reconnects.Add(1)
			}
			p.ever = true
			p.conn = c
			p.mu.Unlock()
			if failures > 0 {
				t.log.Info("peer reachable again", "peer", uint64(p.id), "addr", addr, "after_attempts", failures)
			}
			conn, backoff, failures = c, 0, 0
			t.wg.Add(1)
			go p.watch(c)
		}

		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		if p.addrGen != gen || p.broken == conn {
			p.broken = nil
			p.conn = nil
			p.mu.Unlock()
			closeConn()
			wait = t.cfg.MinBackoff // do not spin on a peer that accepts and drops us
			continue
		}
		var ok bool
		batch, ok = p.take(batch[:0])
		p.mu.Unlock()
		if !ok {
			select {
			case <-p.wake:
			case <-p.quit:
				return
			}
			continue
		}
		var sent int
		buf, sent = p.encode(buf[:0], batch)
		_ = conn.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		if _, err := conn.Write(buf); err != nil {
			t.stats.dropped.Add(uint64(sent))
			t.log.Warn("writing to peer", "peer", uint64(p.id), "err", err)
			p.mu.Lock()
			p.conn = nil
			p.mu.Unlock()
			closeConn()
			wait = t.cfg.MinBackoff
		} else {
			t.stats.sent.Add(uint64(sent))
			t.stats.bytesSent.Add(uint64(len(buf)))
		}
		clear(batch) // release the messages
		if cap(buf) > 4*writeTarget {
			buf = nil
		}
	}
}

// sleep waits about d before a redial, cut short by a new address; false
// once the peer is stopped.
func (p *peer) sleep(d time.Duration, gen uint64) bool {
	timer := time.NewTimer(jitter(d))
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case <-p.quit:
			return false
		case <-p.wake:
			p.mu.Lock()
			moved := p.addrGen != gen
			p.mu.Unlock()
			if moved {
				return true
			}
		}
	}
}

// watch reads the connection's far end, which never writes after the
// handshake: it returns when the peer closes, and then tells run.
func (p *peer) watch(c net.Conn) {
	defer p.t.wg.Done()
	_, _ = io.Copy(io.Discard, c)
	_ = c.Close()
	p.mu.Lock()
	if p.conn == c {
		p.broken = c
	}
	p.mu.Unlock()
	p.signal()
}

// encode appends batch to buf as frames of up to frameTarget bytes and
// returns buf and the number of messages written; messages over
// MaxMessageBytes are dropped.
func (p *peer) encode(buf []byte, batch []raftdata.Message) ([]byte, int) {
	t := p.t
	sent := 0
	for i := 0; i < len(batch); {
		j, size := i, 0
		for j < len(batch) {
			ms := wire.MessageSize(&batch[j])
			if ms > t.cfg.MaxMessageBytes {
				if j > i {
					break // close the frame first
				}
				t.stats.dropped.Add(1)
				t.log.Error("message over MaxMessageBytes dropped", "peer", uint64(p.id), "type", batch[j].Type.String(), "bytes", ms, "limit", t.cfg.MaxMessageBytes)
				i++
				j++
				continue
			}
			if j > i && (size+ms > frameTarget || j-i >= maxFrameMessages) {
				break
			}
			size += ms
			j++
		}
		if j == i {
			continue
		}
		start := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		buf = wire.AppendBatch(buf, t.cfg.ClusterID, batch[i:j])
		binary.LittleEndian.PutUint32(buf[start:], uint32(len(buf)-start-frameHeaderLen))
		sent += j - i
		i = j
	}
	return buf, sent
}

// dial connects to addr and runs the handshake.
func (p *peer) dial(addr string) (net.Conn, error) {
	t := p.t
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if t.cfg.TLS != nil {
		cfg := t.cfg.TLS.Clone()
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		c = tc
	}
	h := hello{cluster: t.cfg.ClusterID, from: t.cfg.ID, to: p.id, addr: t.cfg.Advertise}
	if _, err := c.Write(h.encode()); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	if err := readReply(c, p.id); err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// jitter spreads d by ±20% so that peers do not redial in lockstep.
func jitter(d time.Duration) time.Duration {
	return d*4/5 + time.Duration(rand.Int64N(int64(d)*2/5+1))
}
