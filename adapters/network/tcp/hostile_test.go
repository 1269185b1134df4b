package tcp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkit/raftkit/adapters/network/tcp"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/networktest"
	"github.com/raftkit/raftkit/raft/raftdata"
	"github.com/raftkit/raftkit/raft/wire"
)

// inbox is a Handler that keeps what arrives.
type inbox struct {
	mu   sync.Mutex
	msgs []raftdata.Message
}

func (b *inbox) Step(_ context.Context, msgs []raftdata.Message) error {
	b.mu.Lock()
	b.msgs = append(b.msgs, msgs...)
	b.mu.Unlock()
	return nil
}

func (b *inbox) has(ctx uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.msgs {
		if m.Context == ctx {
			return true
		}
	}
	return false
}

func (b *inbox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

func startTransport(t *testing.T, cfg tcp.Config, h raft.Handler) *tcp.Transport {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Logger = quiet()
	tr, err := tcp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	if err := tr.Start(h); err != nil {
		t.Fatal(err)
	}
	return tr
}

// eventually polls cond for up to 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hello(cluster uint64, from, to raftdata.NodeID) []byte {
	b := []byte{'R', 'K', 'T', 1}
	b = binary.LittleEndian.AppendUint64(b, cluster)
	b = binary.LittleEndian.AppendUint64(b, uint64(from))
	b = binary.LittleEndian.AppendUint64(b, uint64(to))
	return binary.LittleEndian.AppendUint16(b, 0)
}

func frame(payload []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(payload))), payload...)
}

// TestHostileInput sends garbage, truncated and lying frames to a node
// while a legitimate peer keeps talking to it: each bad connection is
// refused and counted, nothing bad is delivered, and the good peer is not
// disturbed.
func TestHostileInput(t *testing.T) {
	in := &inbox{}
	victim := startTransport(t, tcp.Config{ClusterID: 7, ID: 1}, in)
	good := startTransport(t, tcp.Config{ClusterID: 7, ID: 2}, &inbox{})
	good.SetPeers([]raftdata.Member{{ID: 1, Addr: victim.Addr()}})

	hb := func(from raftdata.NodeID, ctx uint64) raftdata.Message {
		return raftdata.Message{Type: raftdata.MsgHeartbeat, From: from, To: 1, Term: 1, Context: ctx}
	}
	valid := wire.AppendBatch(nil, 7, []raftdata.Message{hb(3, 1)})
	corrupt := append([]byte(nil), valid...)
	corrupt[len(corrupt)-1] ^= 0xff // trailing garbage in the last varint
	cases := []struct {
		name string
		data []byte
	}{
		{"garbage instead of a handshake", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"truncated handshake", hello(7, 3, 1)[:10]},
		{"handshake of another cluster", hello(8, 3, 1)},
		{"handshake for another node", hello(7, 3, 9)},
		{"garbage frame", append(hello(7, 3, 1), frame([]byte("not a wire batch at all"))...)},
		{"frame too large", append(hello(7, 3, 1), binary.LittleEndian.AppendUint32(nil, 1<<31)...)},
		{"truncated frame", append(hello(7, 3, 1), frame(valid)[:len(valid)-3]...)},
		{"corrupt frame", append(hello(7, 3, 1), frame(corrupt)...)},
		{"frame of another cluster", append(hello(7, 3, 1), frame(wire.AppendBatch(nil, 8, []raftdata.Message{hb(3, 2)}))...)},
		{"message claiming another sender", append(hello(7, 3, 1), frame(wire.AppendBatch(nil, 7, []raftdata.Message{hb(2, 3)}))...)},
	}
	for i, c := range cases {
		before := victim.Stats().Rejected
		conn, err := net.Dial("tcp", victim.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(c.data)
		if c.name == "truncated handshake" || c.name == "truncated frame" {
			_ = conn.(*net.TCPConn).CloseWrite() // the sender dies mid-message
		}
		// The victim must close the connection on its side.
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		for {
			if _, err := conn.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("%s: connection left open", c.name)
				}
				break
			}
		}
		_ = conn.Close()
		if c.name != "truncated frame" { // an early EOF is a lost peer, not an attack
			eventually(t, c.name+" counted as rejected", func() bool { return victim.Stats().Rejected > before })
		}
		// The good peer still gets through.
		tag := uint64(1000 + i)
		eventually(t, "the good peer's message after "+c.name, func() bool {
			good.Send([]raftdata.Message{hb(2, tag)})
			time.Sleep(2 * time.Millisecond)
			return in.has(tag)
		})
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, m := range in.msgs {
		if m.From != 2 {
			t.Fatalf("delivered a message from a hostile connection: %+v", m)
		}
	}
}

// TestOversizedMessageDropped: a message over MaxMessageBytes is dropped
// and counted at the sender; the rest of the batch goes through.
func TestOversizedMessageDropped(t *testing.T) {
	in := &inbox{}
	a := startTransport(t, tcp.Config{ClusterID: 1, ID: 1, MaxMessageBytes: 4 << 20}, &inbox{})
	b := startTransport(t, tcp.Config{ClusterID: 1, ID: 2, MaxMessageBytes: 4 << 20}, in)
	a.SetPeers([]raftdata.Member{{ID: 2, Addr: b.Addr()}})
	big := raftdata.Message{Type: raftdata.MsgApp, From: 1, To: 2, Context: 1, Entries: []raftdata.Entry{{Index: 1, Term: 1, Data: make([]byte, 5<<20)}}}
	small := raftdata.Message{Type: raftdata.MsgHeartbeat, From: 1, To: 2, Context: 2}
	a.Send([]raftdata.Message{small, big, {Type: raftdata.MsgHeartbeat, From: 1, To: 2, Context: 3}})
	eventually(t, "the small messages", func() bool { return in.has(2) && in.has(3) })
	if in.has(1) {
		t.Fatal("an oversized message was delivered")
	}
	if d := a.Stats().Dropped; d != 1 {
		t.Fatalf("Dropped = %d, want 1", d)
	}
}

// pki is a throwaway certificate authority.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t testing.TB, name string) *pki {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &pki{cert: cert, key: key, pool: pool}
}

// config returns a mutual-TLS config for a node, its certificate signed by
// p, trusting only p.
func (p *pki) config(t testing.TB) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      p.pool, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS13,
	}
}

// TestTLSConformance runs the whole suite over mutual TLS.
func TestTLSConformance(t *testing.T) {
	ca := newPKI(t, "raftkit test CA")
	networktest.Run(t, func(t testing.TB) networktest.Opener {
		return opener(func() *tls.Config { return ca.config(t) })
	})
}

// TestTLSRefusesOtherCA: a node whose certificate comes from another CA
// neither reaches the cluster nor is reached by it.
func TestTLSRefusesOtherCA(t *testing.T) {
	ca, other := newPKI(t, "cluster CA"), newPKI(t, "other CA")
	in, strangerIn := &inbox{}, &inbox{}
	member := startTransport(t, tcp.Config{ClusterID: 1, ID: 1, TLS: ca.config(t)}, in)
	peer := startTransport(t, tcp.Config{ClusterID: 1, ID: 2, TLS: ca.config(t)}, &inbox{})
	stranger := startTransport(t, tcp.Config{ClusterID: 1, ID: 3, TLS: other.config(t)}, strangerIn)
	peer.SetPeers([]raftdata.Member{{ID: 1, Addr: member.Addr()}})
	stranger.SetPeers([]raftdata.Member{{ID: 1, Addr: member.Addr()}})
	member.SetPeers([]raftdata.Member{{ID: 3, Addr: stranger.Addr()}})

	hb := func(from, to raftdata.NodeID, ctx uint64) []raftdata.Message {
		return []raftdata.Message{{Type: raftdata.MsgHeartbeat, From: from, To: to, Term: 1, Context: ctx}}
	}
	eventually(t, "the member with the cluster's CA", func() bool {
		peer.Send(hb(2, 1, 1))
		time.Sleep(5 * time.Millisecond)
		return in.has(1)
	})
	for i := 0; i < 20; i++ {
		stranger.Send(hb(3, 1, 99))
		member.Send(hb(1, 3, 98))
		time.Sleep(10 * time.Millisecond)
	}
	eventually(t, "the refusals to be counted", func() bool {
		return member.Stats().Rejected > 0 && stranger.Stats().Dropped > 0 && member.Stats().Dropped > 0
	})
	if in.has(99) || strangerIn.len() > 0 {
		t.Fatal("a node with another CA's certificate exchanged messages with the cluster")
	}
}

// logRecords is a slog handler that keeps every record's message and
// attributes as text.
type logRecords struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	return nil
}

func (l *logRecords) find(sub string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}

// TestSilentConnectionIsAHandshakeTimeout: a client that connects and says
// nothing is refused after DialTimeout and logged as a handshake timeout,
// not as an invalid handshake.
func TestSilentConnectionIsAHandshakeTimeout(t *testing.T) {
	logs := &logRecords{}
	tr, err := tcp.New(tcp.Config{ClusterID: 7, ID: 1, Listen: "127.0.0.1:0", DialTimeout: 100 * time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Start(&inbox{}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", tr.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eventually(t, "the silent connection refused", func() bool { return tr.Stats().Rejected > 0 })
	line := logs.find("refused a connection")
	if !strings.Contains(line, tcp.ErrHandshakeTimeout.Error()) || strings.Contains(line, "invalid handshake") {
		t.Fatalf("logged %q, want a handshake timeout", line)
	}
}
