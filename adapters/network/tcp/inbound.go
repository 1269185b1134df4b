package tcp

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/wire"
)

// acceptLoop accepts connections until the listener closes.
func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	delay := time.Duration(0)
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary trouble (out of file descriptors, ...): back off.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("accepting a connection", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-t.ctx.Done():
				return
			}
		}
		delay = 0
		if !t.track(c) {
			_ = c.Close()
			return
		}
		t.wg.Add(1)
		go t.serve(c)
	}
}

// track registers an inbound connection for Close; false once closed.
func (t *Transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return false
	}
	t.inbound[c] = struct{}{}
	return true
}

func (t *Transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.inbound, c)
	t.mu.Unlock()
	_ = c.Close()
}

// serve runs one inbound connection: handshake, then frames until error.
func (t *Transport) serve(raw net.Conn) {
	defer t.wg.Done()
	defer t.untrack(raw)
	c := raw
	_ = c.SetDeadline(time.Now().Add(t.cfg.DialTimeout))
	if t.cfg.TLS != nil {
		tc := tls.Server(raw, t.cfg.TLS)
		if err := tc.HandshakeContext(t.ctx); err != nil {
			t.reject(raw, fmt.Errorf("TLS handshake: %w", handshakeErr(err)))
			return
		}
		c = tc
	}
	br := bufio.NewReaderSize(c, 64<<10)
	h, ver, err := readHello(br)
	if err != nil {
		if ver != 0 {
			_, _ = c.Write(encodeReply(statusBadVersion, t.cfg.ID))
		}
		t.reject(raw, err)
		return
	}
	switch {
	case h.cluster != t.cfg.ClusterID:
		_, _ = c.Write(encodeReply(statusWrongCluster, t.cfg.ID))
		t.reject(raw, fmt.Errorf("%w: node %d of cluster %#x (ours is %#x)", ErrWrongCluster, h.from, h.cluster, t.cfg.ClusterID))
		return
	case h.to != t.cfg.ID:
		_, _ = c.Write(encodeReply(statusWrongNode, t.cfg.ID))
		t.reject(raw, fmt.Errorf("%w: node %d dialled node %d here", ErrWrongNode, h.from, h.to))
		return
	}
	if _, err := c.Write(encodeReply(statusOK, t.cfg.ID)); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	t.learn(h.from, advertised(h.addr, raw.RemoteAddr()))
	if err := t.readFrames(br, h.from); err != nil && !t.closed.Load() && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		t.log.Warn("inbound connection closed", "peer", uint64(h.from), "remote", raw.RemoteAddr().String(), "err", err)
	}
}

// readFrame reads an n-byte frame. Memory grows with the bytes actually
// received, so a peer that announces a large frame and stalls pins little.
func readFrame(r io.Reader, n int) ([]byte, error) {
	const step = 1 << 20
	if n <= step {
		buf := make([]byte, n)
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf := make([]byte, 0, step)
	for len(buf) < n {
		k := min(n-len(buf), step)
		buf = append(buf, make([]byte, k)...)
		if _, err := io.ReadFull(r, buf[len(buf)-k:]); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// advertised returns the address a peer announced, with an unspecified
// host (it listens on all interfaces) replaced by the IP it connected from.
func advertised(announced string, remote net.Addr) string {
	host, port, err := net.SplitHostPort(announced)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		ta, ok := remote.(*net.TCPAddr)
		if !ok {
			return ""
		}
		return net.JoinHostPort(ta.IP.String(), port)
	}
	return announced
}

// reject counts and logs a refused connection.
func (t *Transport) reject(c net.Conn, err error) {
	if t.closed.Load() {
		return
	}
	t.stats.rejected.Add(1)
	t.log.Warn("refused a connection", "remote", c.RemoteAddr().String(), "err", err)
}

// readFrames reads frames from peer and hands their messages to the
// handler. A corrupt frame, or one claiming another sender or receiver,
// ends the connection.
func (t *Transport) readFrames(r *bufio.Reader, from raftdata.NodeID) error {
	var hdr [frameHeaderLen]byte
	maxFrame := t.cfg.MaxMessageBytes + frameTarget
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n64 := uint64(binary.LittleEndian.Uint32(hdr[:]))
		if n64 > uint64(maxFrame) {
			t.stats.rejected.Add(1)
			return fmt.Errorf("%w: frame of %d bytes, limit %d", wire.ErrTooLarge, n64, maxFrame)
		}
		n := int(n64)
		buf, err := readFrame(r, n) // the handler owns the messages, which alias it
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("truncated frame: %w", err)
		}
		msgs, err := wire.DecodeBatch(buf, t.cfg.ClusterID, t.limits)
		if err != nil {
			t.stats.rejected.Add(1)
			return err
		}
		for i := range msgs {
			if m := &msgs[i]; m.From != from || m.To != t.cfg.ID {
				t.stats.rejected.Add(1)
				return fmt.Errorf("%w: message from %d to %d on the connection of node %d", raft.ErrCorrupt, m.From, m.To, from)
			}
		}
		t.stats.bytesReceived.Add(uint64(n + frameHeaderLen))
		hb := t.handler.Load()
		if hb == nil || len(msgs) == 0 {
			continue
		}
		if err := hb.h.Step(t.ctx, msgs); err != nil {
			if t.closed.Load() {
				return nil
			}
			continue // the node stopped or refused them
		}
		t.stats.received.Add(uint64(len(msgs)))
	}
}
