// Package nats is a raft.Network over NATS, through
// github.com/nats-io/nats.go: nodes reach each other by subject, with no
// ports or addresses of their own to manage.
//
// Node N of cluster C listens on the subject "<prefix>.C.N". A sender packs
// many Raft messages, encoded with the project's wire codec and stamped with
// the cluster ID, into one NATS message of at most MaxMessageBytes (below
// the server's max_payload). Each NATS message carries a reply subject that
// receivers never answer: when nobody listens on the destination, the server
// answers it with a "no responders" status, and the transport counts the
// messages as dropped.
package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/wire"
)

// DefaultPrefix starts every subject unless Config.Prefix says otherwise.
const DefaultPrefix = "raftkit"

// headroom is what a NATS message needs beyond its payload (subject,
// reply, headers) when sized against the server's max_payload.
const headroom = 4 << 10

// minMessageBytes is the smallest usable MaxMessageBytes: a maximum
// snapshot chunk with its metadata must fit.
const minMessageBytes = raft.MaxSnapshotChunkBytes + 64<<10

// ErrConfig is returned by New for an invalid Config.
var ErrConfig = errors.New("nats: invalid config")

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Config configures a Transport. Set Conn, or URL (and any Options).
type Config struct {
	// ClusterID identifies the cluster: it is part of every subject and
	// stamped on every message, so clusters sharing a NATS deployment
	// never meet. It must not be zero.
	ClusterID uint64
	// ID is this node's ID.
	ID raftdata.NodeID

	// Conn is an existing connection to use; the Transport does not close
	// it. Give it nats.ReconnectBufSize(-1), or messages published while it
	// is disconnected are sent, stale, after it reconnects.
	Conn *natsgo.Conn
	// URL is the server (or comma-separated servers) to connect to when
	// Conn is nil. The Transport connects with ReconnectBufSize(-1) (no
	// stale messages replayed after a reconnect) and unlimited reconnects,
	// then applies Options: every nats.go option (user and password,
	// token, NKey, credentials file, TLS, timeouts) passes through, and
	// Options given here win.
	URL     string
	Options []natsgo.Option

	// Prefix starts every subject; DefaultPrefix when empty. NATS subject
	// tokens separated by dots, without wildcards.
	Prefix string

	// MaxMessageBytes caps one NATS message's payload. Default, and
	// maximum: the server's max_payload less a few KiB for subject and
	// headers. Raft messages larger than it cannot be sent: NewNode sizes
	// appends and snapshot chunks to fit (raft.BoundedNetwork).
	MaxMessageBytes int
	// QueueBytes bounds the messages waiting to be published (approximate
	// encoded size); beyond it Send drops and counts. Default 64 MiB.
	QueueBytes int

	// Logger receives connection events. Nil means silent, as everywhere
	// in raftkit: pass the application's logger to see them.
	Logger *slog.Logger
}

// Transport is a raft.Network (raft.MeasuredNetwork, raft.BoundedNetwork)
// over NATS. Create it with New and give it to raft.Config.Network; the node
// starts it.
type Transport struct {
	cfg     Config
	nc      *natsgo.Conn
	ownsNc  bool
	subject string // this node's
	prefix  string // "<prefix>.<cluster>."
	inbox   string // reply subjects: inbox.<seq>
	log     *slog.Logger
	limits  wire.Limits
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	closed  atomic.Bool

	mu     sync.Mutex
	queue  []raftdata.Message
	qbytes int
	wake   chan struct{}
	subs   []*natsgo.Subscription

	handler atomic.Pointer[handlerBox]

	// pubs remembers how many messages recent publishes carried, by
	// sequence number, so that a "no responders" answer counts them.
	pubMu sync.Mutex
	pubs  [4096]published
	seq   uint64

	stats counters
}

type handlerBox struct{ h raft.Handler }

type published struct {
	seq   uint64
	count int
}

type counters struct {
	sent, bytesSent, received, bytesReceived, dropped, rejected atomic.Uint64
}

// New connects (unless cfg.Conn is set) and returns the transport.
// Messages are delivered once the node calls Start. ctx bounds the
// connection attempt: its deadline, when it has one, is nats.go's connect
// timeout (an explicit nats.Timeout in cfg.Options wins), and New fails if
// ctx ended by the time the connection is up. ctx is not kept.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	if cfg.ClusterID == 0 {
		return nil, fmt.Errorf("%w: ClusterID must be set (any value other than zero, the same on every node)", ErrConfig)
	}
	if cfg.ID == 0 {
		return nil, fmt.Errorf("%w: ID must be set", ErrConfig)
	}
	if (cfg.Conn == nil) == (cfg.URL == "") {
		return nil, fmt.Errorf("%w: set exactly one of Conn and URL", ErrConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !prefixPattern.MatchString(cfg.Prefix) {
		return nil, fmt.Errorf("%w: prefix %q is not a NATS subject without wildcards", ErrConfig, cfg.Prefix)
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 64 << 20
	}
	if cfg.MaxMessageBytes < 0 {
		cfg.MaxMessageBytes = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Transport{cfg: cfg, log: cfg.Logger.With("node", uint64(cfg.ID)), wake: make(chan struct{}, 1)}
	t.prefix = fmt.Sprintf("%s.%d.", cfg.Prefix, cfg.ClusterID)
	t.subject = t.prefix + strconv.FormatUint(uint64(cfg.ID), 10)
	if cfg.Conn != nil {
		t.nc = cfg.Conn
	} else {
		opts := []natsgo.Option{
			natsgo.ReconnectBufSize(-1),
			natsgo.MaxReconnects(-1),
			natsgo.Name(fmt.Sprintf("raftkit node %d of cluster %d", cfg.ID, cfg.ClusterID)),
			natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
				if err != nil {
					t.log.Warn("nats: disconnected", "err", err)
				}
			}),
			natsgo.ErrorHandler(func(_ *natsgo.Conn, sub *natsgo.Subscription, err error) {
				// A slow consumer: the node's inbox and the client's
				// pending buffer are full, and NATS drops inbound messages.
				t.log.Warn("nats: asynchronous error", "subject", subjectOf(sub), "err", err)
			}),
		}
		if deadline, ok := ctx.Deadline(); ok {
			opts = append(opts, natsgo.Timeout(max(time.Until(deadline), time.Millisecond)))
		}
		opts = append(opts, cfg.Options...)
		nc, err := natsgo.Connect(cfg.URL, opts...)
		if err != nil {
			return nil, fmt.Errorf("nats: connecting to %s: %w", cfg.URL, err)
		}
		t.nc, t.ownsNc = nc, true
		if err := ctx.Err(); err != nil {
			t.closeConn()
			return nil, fmt.Errorf("nats: connecting to %s: %w", cfg.URL, err)
		}
	}
	payload := int(t.nc.MaxPayload())
	switch {
	case payload <= 0 && cfg.MaxMessageBytes == 0:
		t.closeConn()
		return nil, fmt.Errorf("%w: the connection is not up, so the server's max_payload is unknown; connect first or set MaxMessageBytes", ErrConfig)
	case payload > 0 && (cfg.MaxMessageBytes == 0 || cfg.MaxMessageBytes > payload-headroom):
		cfg.MaxMessageBytes = payload - headroom
	}
	cfg.QueueBytes = max(cfg.QueueBytes, cfg.MaxMessageBytes)
	if cfg.MaxMessageBytes < minMessageBytes {
		t.closeConn()
		return nil, fmt.Errorf("%w: MaxMessageBytes %d (server max_payload %d) is below %d, which a snapshot chunk needs; raise max_payload",
			ErrConfig, cfg.MaxMessageBytes, t.nc.MaxPayload(), minMessageBytes)
	}
	t.cfg = cfg
	t.limits = wire.DefaultLimits
	t.inbox = t.nc.NewInbox() // honours the connection's inbox prefix
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t, nil
}

// MaxMessageBytes is the largest encoded Raft message the transport can
// carry (raft.BoundedNetwork).
func (t *Transport) MaxMessageBytes() int {
	return t.cfg.MaxMessageBytes - wire.BatchHeaderSize(1)
}

// Subject returns the subject this node listens on.
func (t *Transport) Subject() string { return t.subject }

// Start subscribes to this node's subject and to its reply inbox, and
// starts the publisher.
func (t *Transport) Start(h raft.Handler) error {
	if t.closed.Load() {
		return fmt.Errorf("nats: start: transport closed")
	}
	if !t.handler.CompareAndSwap(nil, &handlerBox{h}) {
		return fmt.Errorf("nats: start: already started")
	}
	sub, err := t.nc.Subscribe(t.subject, t.receive)
	if err != nil {
		return fmt.Errorf("nats: subscribing to %s: %w", t.subject, err)
	}
	// Let the client buffer generously rather than drop: Step blocks while
	// the node's inbox is full.
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	nr, err := t.nc.Subscribe(t.inbox+".*", t.noResponders)
	if err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("nats: subscribing to the reply inbox: %w", err)
	}
	if err := t.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		_ = nr.Unsubscribe()
		return fmt.Errorf("nats: subscribing to %s: %w", t.subject, err)
	}
	t.mu.Lock()
	t.subs = []*natsgo.Subscription{sub, nr}
	t.mu.Unlock()
	t.wg.Add(1)
	go t.publisher()
	return nil
}

// SetPeers is a no-op: a peer's subject follows from its ID, so any node,
// member or not, is reachable.
func (t *Transport) SetPeers([]raftdata.Member) {}

// Address returns the address this node gives its peers: its subject.
func (t *Transport) Address() string { return t.subject }

// receive hands one NATS message's Raft messages to the node.
func (t *Transport) receive(m *natsgo.Msg) {
	t.stats.bytesReceived.Add(uint64(len(m.Data)))
	msgs, err := wire.DecodeBatch(m.Data, t.cfg.ClusterID, t.limits)
	if err != nil {
		t.stats.rejected.Add(1)
		t.log.Warn("nats: rejected a message", "subject", m.Subject, "err", err)
		return
	}
	k := 0
	for _, msg := range msgs {
		if msg.To != t.cfg.ID {
			t.stats.rejected.Add(1)
			continue
		}
		msgs[k] = msg
		k++
	}
	hb := t.handler.Load()
	if hb == nil || k == 0 {
		return
	}
	if err := hb.h.Step(t.ctx, msgs[:k]); err == nil {
		t.stats.received.Add(uint64(k))
	}
}

// noResponders counts the messages of a publish nobody received.
func (t *Transport) noResponders(m *natsgo.Msg) {
	if m.Header.Get("Status") != "503" {
		return
	}
	i := strings.LastIndexByte(m.Subject, '.')
	seq, err := strconv.ParseUint(m.Subject[i+1:], 10, 64)
	if err != nil {
		return
	}
	t.pubMu.Lock()
	p := t.pubs[seq%uint64(len(t.pubs))]
	t.pubMu.Unlock()
	if p.seq == seq && p.count > 0 {
		t.stats.dropped.Add(uint64(p.count))
	}
}

// Send queues msgs for the publisher; it never waits for NATS.
func (t *Transport) Send(msgs []raftdata.Message) {
	if len(msgs) == 0 {
		return
	}
	if t.closed.Load() {
		t.stats.dropped.Add(uint64(len(msgs)))
		return
	}
	dropped := 0
	t.mu.Lock()
	for i := range msgs {
		sz := msgs[i].Size()
		if t.qbytes+sz > t.cfg.QueueBytes {
			dropped++
			continue
		}
		t.queue = append(t.queue, msgs[i])
		t.qbytes += sz
	}
	t.mu.Unlock()
	if dropped > 0 {
		t.stats.dropped.Add(uint64(dropped))
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// publisher packs queued messages per destination into NATS messages and
// publishes them.
func (t *Transport) publisher() {
	defer t.wg.Done()
	var batch []raftdata.Message
	var buf []byte
	for {
		select {
		case <-t.wake:
		case <-t.ctx.Done():
			return
		}
		t.mu.Lock()
		batch, t.queue = t.queue, batch[:0]
		t.qbytes = 0
		t.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		// Group by destination, keeping each peer's messages in order.
		byPeer := map[raftdata.NodeID][]raftdata.Message{}
		var order []raftdata.NodeID
		for _, m := range batch {
			if _, ok := byPeer[m.To]; !ok {
				order = append(order, m.To)
			}
			byPeer[m.To] = append(byPeer[m.To], m)
		}
		for _, to := range order {
			buf = t.publish(to, byPeer[to], buf)
		}
		clear(batch)
		if cap(buf) > 4*t.cfg.MaxMessageBytes {
			buf = nil
		}
	}
}

// publish sends msgs to node to in NATS messages of at most
// MaxMessageBytes; a Raft message too large for one is dropped and logged.
func (t *Transport) publish(to raftdata.NodeID, msgs []raftdata.Message, buf []byte) []byte {
	subject := t.prefix + strconv.FormatUint(uint64(to), 10)
	limit := t.cfg.MaxMessageBytes
	for i := 0; i < len(msgs); {
		j, size := i, 0
		for j < len(msgs) {
			ms := wire.MessageSize(&msgs[j])
			if wire.BatchHeaderSize(j-i+1)+size+ms > limit || j-i >= wire.DefaultLimits.MaxBatchMessages {
				break
			}
			size += ms
			j++
		}
		if j == i {
			t.stats.dropped.Add(1)
			t.log.Error("nats: message larger than MaxMessageBytes dropped", "peer", uint64(to),
				"type", msgs[i].Type.String(), "bytes", wire.MessageSize(&msgs[i]), "limit", limit)
			i++
			continue
		}
		buf = wire.AppendBatch(buf[:0], t.cfg.ClusterID, msgs[i:j])
		t.pubMu.Lock()
		t.seq++
		seq := t.seq
		t.pubs[seq%uint64(len(t.pubs))] = published{seq: seq, count: j - i}
		t.pubMu.Unlock()
		if err := t.nc.PublishMsg(&natsgo.Msg{Subject: subject, Reply: t.inbox + "." + strconv.FormatUint(seq, 10), Data: buf}); err != nil {
			t.stats.dropped.Add(uint64(j - i))
			t.log.Debug("nats: publish failed", "peer", uint64(to), "err", err)
		} else {
			t.stats.sent.Add(uint64(j - i))
			t.stats.bytesSent.Add(uint64(len(buf)))
		}
		i = j
	}
	return buf
}

// Stats returns the transport's counters.
func (t *Transport) Stats() raft.NetworkStats {
	s := &t.stats
	reconnects := t.nc.Stats().Reconnects
	return raft.NetworkStats{
		Sent: s.sent.Load(), BytesSent: s.bytesSent.Load(),
		Received: s.received.Load(), BytesReceived: s.bytesReceived.Load(),
		Dropped: s.dropped.Load(), Rejected: s.rejected.Load(), Reconnects: reconnects,
	}
}

// Close unsubscribes, stops the publisher and closes the connection if New
// made it. Queued messages are dropped. It is safe to call more than once.
func (t *Transport) Close() error {
	t.once.Do(func() {
		t.closed.Store(true)
		if t.cancel != nil {
			t.cancel()
		}
		t.mu.Lock()
		subs := t.subs
		t.subs = nil
		t.stats.dropped.Add(uint64(len(t.queue)))
		t.queue = nil
		t.mu.Unlock()
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		if len(subs) > 0 {
			// A round trip: once Close returns the server routes nothing
			// to this node, and senders hear "no responders".
			_ = t.nc.FlushTimeout(time.Second)
		}
		t.wg.Wait()
		t.closeConn()
	})
	return nil
}

func (t *Transport) closeConn() {
	if t.ownsNc {
		t.nc.Close()
	}
}

func subjectOf(sub *natsgo.Subscription) string {
	if sub == nil {
		return ""
	}
	return sub.Subject
}
