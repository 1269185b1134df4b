// Package tcp is raftkit's embedded network: Raft messages between nodes
// over persistent TCP connections, optionally with TLS.
//
// Each node listens on one address. For every peer it keeps one outbound
// connection, fed by a queue: Send only enqueues and never blocks, and one
// goroutine per peer drains the queue, writing many messages per frame and
// many frames per system call, without waiting for answers (pipelining).
// Answers come back on the peer's own connection to us. A connection opens
// with a handshake that checks the cluster ID and the peer's node ID; a
// lost connection is re-established with exponential backoff, and while a
// peer is unreachable its messages are dropped (and counted), which Raft
// tolerates. Frames are decoded by package wire with size limits; a corrupt
// frame closes only the connection it came on.
//
// See README.md for the guarantees and the configuration.
package tcp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/wire"
)

// Config configures a Transport. ClusterID, ID and one of Listen or
// Listener are required.
type Config struct {
	// ClusterID identifies the cluster; a connection or frame stamped
	// with another is refused. It must not be zero.
	ClusterID uint64
	// ID is this node's ID.
	ID raftdata.NodeID
	// Listen is the address to listen on, such as ":7000" or
	// "10.0.0.5:7000" ("127.0.0.1:0" picks a free port).
	Listen string
	// Listener, if set, is used instead of Listen; the Transport closes it.
	Listener net.Listener
	// Advertise is the address peers reach this node at, announced in the
	// handshake so that a peer that does not have it in its membership yet
	// (a joining node) can answer. Default: the listener's address.
	Advertise string
	// TLS enables TLS on both sides when set. The same config serves
	// accepted connections (Certificates, ClientCAs, ClientAuth: set
	// ClientAuth to tls.RequireAndVerifyClientCert for mutual TLS) and
	// dialled ones (Certificates as the client certificate, RootCAs;
	// ServerName defaults to the host of the peer's address).
	TLS *tls.Config
	// MaxMessageBytes is the largest encoded message sent or accepted;
	// larger ones are dropped at the sender and counted. Both ends must
	// agree, and it must exceed the node's largest append message
	// (raft.Config MaxAppendBytes plus MaxEntryBytes). Default 16 MiB,
	// at least 4 MiB.
	MaxMessageBytes int
	// QueueBytes bounds the messages queued for one peer (approximate
	// encoded size); beyond it, Send drops and counts. Default 64 MiB.
	QueueBytes int
	// DialTimeout bounds connecting and the handshake. Default 2s.
	DialTimeout time.Duration
	// WriteTimeout bounds one write: a peer that reads nothing for that
	// long is disconnected and its pending messages dropped. Default 5s.
	WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before redialling a peer,
	// which doubles after each failure. Defaults 50ms and 2s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives connection events. Nil means silent, as everywhere
	// in raftkit: pass the application's logger to see them.
	Logger *slog.Logger
}

// Errors returned by New.
var (
	// ErrConfig is returned for an invalid Config.
	ErrConfig = errors.New("tcp: invalid config")
)

const (
	minMaxMessageBytes = 4 << 20
	// maxLearned bounds the addresses learned from handshakes.
	maxLearned = 1024
	// frameTarget is the size at which the writer closes a frame; one
	// message larger than it travels alone.
	frameTarget = 1 << 20
	// writeTarget is how much the writer takes from the queue per write.
	writeTarget = 4 << 20
)

func (c Config) withDefaults() (Config, error) {
	if c.ClusterID == 0 {
		return c, fmt.Errorf("%w: ClusterID must be set (any value other than zero, the same on every node)", ErrConfig)
	}
	if c.ID == 0 {
		return c, fmt.Errorf("%w: ID must be set", ErrConfig)
	}
	if c.Listener == nil && c.Listen == "" {
		return c, fmt.Errorf("%w: Listen or Listener must be set", ErrConfig)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxMessageBytes, 16<<20)
	if c.MaxMessageBytes < minMaxMessageBytes {
		return c, fmt.Errorf("%w: MaxMessageBytes %d below %d (an append of the node's default MaxAppendBytes plus one entry of MaxEntryBytes must fit)", ErrConfig, c.MaxMessageBytes, minMaxMessageBytes)
	}
	if len(c.Advertise) > maxAdvertise {
		return c, fmt.Errorf("%w: Advertise address longer than %d bytes", ErrConfig, maxAdvertise)
	}
	def(&c.QueueBytes, 64<<20)
	c.QueueBytes = max(c.QueueBytes, c.MaxMessageBytes)
	defd(&c.DialTimeout, 2*time.Second)
	defd(&c.WriteTimeout, 5*time.Second)
	defd(&c.MinBackoff, 50*time.Millisecond)
	defd(&c.MaxBackoff, 2*time.Second)
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Transport is a raft.Network (and raft.MeasuredNetwork) over TCP. Create
// it with New, give it to raft.Config.Network; the node starts it.
type Transport struct {
	cfg    Config
	ln     net.Listener
	addr   string
	log    *slog.Logger
	limits wire.Limits
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	handler atomic.Pointer[handlerBox]
	closed  atomic.Bool
	once    sync.Once

	stats counters

	mu      sync.Mutex
	peers   map[raftdata.NodeID]*peer // outbound, one per known peer
	static  map[raftdata.NodeID]string
	learned map[raftdata.NodeID]string // from inbound handshakes
	inbound map[net.Conn]struct{}
	route   atomic.Pointer[map[raftdata.NodeID]*peer] // copy of peers for Send
}

type handlerBox struct{ h raft.Handler }

type counters struct {
	sent, bytesSent, received, bytesReceived, dropped, rejected, reconnects atomic.Uint64
}

// New listens and returns the transport. Messages are delivered once the
// node calls Start.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("tcp: listening on %s: %w", cfg.Listen, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg: cfg, ln: ln, addr: ln.Addr().String(), ctx: ctx, cancel: cancel,
		log:     cfg.Logger.With("node", uint64(cfg.ID)),
		limits:  wire.Limits{MaxMessageBytes: cfg.MaxMessageBytes},
		peers:   map[raftdata.NodeID]*peer{},
		static:  map[raftdata.NodeID]string{},
		learned: map[raftdata.NodeID]string{},
		inbound: map[net.Conn]struct{}{},
	}
	if cfg.Advertise == "" {
		t.cfg.Advertise = t.addr
	}
	t.publishRoute()
	return t, nil
}

// Addr returns the address the transport listens on.
func (t *Transport) Addr() string { return t.addr }

// Start begins accepting connections and handing inbound messages to h.
func (t *Transport) Start(h raft.Handler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrConfig)
	}
	if t.closed.Load() {
		return fmt.Errorf("tcp: Start: %w", net.ErrClosed)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return fmt.Errorf("tcp: Start: %w", net.ErrClosed)
	}
	if !t.handler.CompareAndSwap(nil, &handlerBox{h}) {
		return errors.New("tcp: Start called twice")
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return nil
}

// SetPeers sets the address of every member. A peer whose address changed
// is reconnected; a peer no longer listed (and not known from a handshake)
// is disconnected and its queue dropped.
func (t *Transport) SetPeers(members []raftdata.Member) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return
	}
	t.static = make(map[raftdata.NodeID]string, len(members))
	for _, m := range members {
		if m.ID != t.cfg.ID && m.Addr != "" {
			t.static[m.ID] = m.Addr
		}
	}
	t.syncPeersLocked()
}

// learn records the address a peer announced in its handshake.
func (t *Transport) learn(id raftdata.NodeID, addr string) {
	if addr == "" || id == t.cfg.ID {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() || t.learned[id] == addr {
		return
	}
	if _, ok := t.learned[id]; !ok && len(t.learned) >= maxLearned {
		t.log.Warn("not learning a peer's address: too many learned", "peer", uint64(id), "limit", maxLearned)
		return
	}
	t.learned[id] = addr
	t.syncPeersLocked()
}

// syncPeersLocked makes the outbound peers match the known addresses:
// the membership's first, then learned ones.
func (t *Transport) syncPeersLocked() {
	want := make(map[raftdata.NodeID]string, len(t.static)+len(t.learned))
	for id, a := range t.learned {
		want[id] = a
	}
	for id, a := range t.static {
		want[id] = a
	}
	for id, p := range t.peers {
		if a, ok := want[id]; !ok {
			p.stop()
			delete(t.peers, id)
		} else if a != p.address() {
			p.setAddress(a)
		}
	}
	for id, a := range want {
		if t.peers[id] == nil {
			p := newPeer(t, id, a)
			t.peers[id] = p
			t.wg.Add(1)
			go p.run()
		}
	}
	t.publishRoute()
}

func (t *Transport) publishRoute() {
	m := make(map[raftdata.NodeID]*peer, len(t.peers))
	for id, p := range t.peers {
		m[id] = p
	}
	t.route.Store(&m)
}

// Send queues msgs for their peers and returns at once. Messages to a
// peer without an address, unreachable, or whose queue is full are
// dropped and counted.
func (t *Transport) Send(msgs []raftdata.Message) {
	if len(msgs) == 0 {
		return
	}
	if t.closed.Load() {
		t.stats.dropped.Add(uint64(len(msgs)))
		return
	}
	route := *t.route.Load()
	for i := 0; i < len(msgs); {
		to := msgs[i].To
		j := i + 1
		for j < len(msgs) && msgs[j].To == to {
			j++
		}
		if p := route[to]; p != nil {
			p.enqueue(msgs[i:j])
		} else {
			t.stats.dropped.Add(uint64(j - i))
		}
		i = j
	}
}

// Stats returns the transport's counters.
func (t *Transport) Stats() raft.NetworkStats {
	s := &t.stats
	return raft.NetworkStats{
		Sent: s.sent.Load(), BytesSent: s.bytesSent.Load(),
		Received: s.received.Load(), BytesReceived: s.bytesReceived.Load(),
		Dropped: s.dropped.Load(), Rejected: s.rejected.Load(), Reconnects: s.reconnects.Load(),
	}
}

// Close stops the listener, every connection and goroutine. Messages still
// queued are dropped. It is safe to call more than once.
func (t *Transport) Close() error {
	var err error
	t.once.Do(func() {
		t.mu.Lock()
		t.closed.Store(true)
		t.cancel()
		if e := t.ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) {
			err = fmt.Errorf("tcp: closing listener: %w", e)
		}
		for _, p := range t.peers {
			p.stop()
		}
		t.peers = map[raftdata.NodeID]*peer{}
		t.publishRoute()
		for c := range t.inbound {
			_ = c.Close()
		}
		t.mu.Unlock()
		t.wg.Wait()
	})
	return err
}

var _ raft.MeasuredNetwork = (*Transport)(nil)

// MaxMessageBytes is the largest encoded message the transport sends
// (Config.MaxMessageBytes): raft.NewNode checks the node's append and
// snapshot sizes against it (raft.BoundedNetwork).
func (t *Transport) MaxMessageBytes() int { return t.cfg.MaxMessageBytes }
