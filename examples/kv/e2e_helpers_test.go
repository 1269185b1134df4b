package main

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if kvBuild.dir != "" {
		_ = os.RemoveAll(kvBuild.dir)
	}
	os.Exit(code)
}

// kvBuild is the example's binary, built once for all the tests.
var kvBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// buildKV builds the example (once per test process) and returns the
// binary's path.
func buildKV(t *testing.T) string {
	t.Helper()
	kvBuild.once.Do(func() {
		if kvBuild.dir, kvBuild.err = os.MkdirTemp("", "kv-e2e-"); kvBuild.err != nil {
			return
		}
		kvBuild.bin = filepath.Join(kvBuild.dir, "kv")
		if out, err := exec.Command("go", "build", "-o", kvBuild.bin, ".").CombinedOutput(); err != nil {
			kvBuild.err = fmt.Errorf("building the example: %w\n%s", err, out)
		}
	})
	if kvBuild.err != nil {
		t.Fatal(kvBuild.err)
	}
	return kvBuild.bin
}

// ephemeralPorts returns the kernel's range of local ports for outbound
// connections (Linux's default if it cannot be read).
func ephemeralPorts() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l < 1 || l > h || h > 65535 {
		return lo, hi
	}
	return l, h
}

// portsGiven are the ports freeAddr handed out in this test process.
var portsGiven struct {
	sync.Mutex
	m map[int]bool
}

// freeAddr returns 127.0.0.1:port for a node (or a test proxy) to listen on
// later. The port is picked at random outside the kernel's ephemeral range,
// so no outbound connection (whose local port the kernel picks in that
// range) can take it before the node binds it, as could happen with the
// port of a closed 127.0.0.1:0 listener; it is free now, and not handed
// out before by this process.
func freeAddr(t *testing.T) string {
	t.Helper()
	lo, hi := ephemeralPorts()
	const first, last = 1024, 65535 // below 1024 needs privileges
	below, above := max(lo-first, 0), max(last-hi, 0)
	if below+above == 0 {
		t.Fatalf("no port outside the ephemeral range %d-%d", lo, hi)
	}
	for range 1000 {
		n := mrand.IntN(below + above)
		port := first + n
		if n >= below {
			port = hi + 1 + n - below
		}
		portsGiven.Lock()
		given := portsGiven.m[port]
		if portsGiven.m == nil {
			portsGiven.m = map[int]bool{}
		}
		portsGiven.m[port] = true
		portsGiven.Unlock()
		if given {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // in use
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return addr
	}
	t.Fatalf("no free port outside the ephemeral range %d-%d after 1000 tries", lo, hi)
	return ""
}

// syncBuffer is a bytes.Buffer that a process's output and the test can
// share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond every 50ms until it holds, failing the test with what
// after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tcpProxy listens on a free address and forwards each connection to
// target, as a NAT or a TCP proxy in front of a node would; it returns the
// address it listens on.
func tcpProxy(t *testing.T, target string) string {
	t.Helper()
	addr := freeAddr(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", target, 2*time.Second)
			if err != nil {
				_ = in.Close()
				continue
			}
			track(in, true)
			track(out, true)
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				_ = dst.Close()
				_ = src.Close()
				track(dst, false)
				track(src, false)
			}
			go pipe(in, out)
			go pipe(out, in)
		}
	}()
	return addr
}

// spanLog is a stand-in OpenTelemetry collector: it decodes the OTLP/HTTP
// exports of the node processes and keeps each span's trace, name and
// raft.node attribute.
type spanLog struct {
	t    *testing.T
	addr string // host:port for -otlp
	mu   sync.Mutex
	// spans by trace ID
	traces map[string][]loggedSpan
}

type loggedSpan struct {
	name string
	node int64 // the raft.node attribute, 0 if none
}

func newSpanLog(t *testing.T) *spanLog {
	l := &spanLog{t: t, traces: map[string][]loggedSpan{}}
	srv := httptest.NewServer(http.HandlerFunc(l.export))
	t.Cleanup(srv.Close)
	l.addr = strings.TrimPrefix(srv.URL, "http://")
	return l
}

func (l *spanLog) export(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	var req coltrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &req)
	}
	if err != nil {
		l.t.Errorf("collector: undecodable OTLP export: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				ls := loggedSpan{name: s.Name}
				for _, a := range s.Attributes {
					if a.Key == "raft.node" {
						ls.node = a.Value.GetIntValue()
					}
				}
				id := hex.EncodeToString(s.TraceId)
				l.traces[id] = append(l.traces[id], ls)
			}
		}
	}
	l.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// waitForwardedTrace waits for one trace holding a write forwarded from
// one node to another: a follower's request span, its forward, and on
// another node the /internal/propose request span, the raft.Propose span
// and its raft.replicate child.
func (l *spanLog) waitForwardedTrace(timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l.mu.Lock()
		n := len(l.traces)
		for _, spans := range l.traces {
			has := map[string]int64{}
			for _, s := range spans {
				has[s.name] = s.node
			}
			entry, ok1 := has["kv PUT /kv/{key}"]
			leader, ok2 := has["kv POST /internal/propose"]
			_, ok3 := has["kv forward"]
			proposer, ok4 := has["raft.Propose"]
			_, ok5 := has["raft.replicate"]
			if ok1 && ok2 && ok3 && ok4 && ok5 && entry != leader && proposer == leader {
				l.mu.Unlock()
				return
			}
		}
		l.mu.Unlock()
		if time.Now().After(deadline) {
			l.t.Fatalf("no forwarded write traced across processes among %d traces", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testPKI is a throwaway CA and one certificate it signed for 127.0.0.1,
// usable as server and client certificate, written as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	cert                      tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kv test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kv node"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "node.pem"), keyFile: filepath.Join(dir, "node-key.pem")}
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.caFile, "CERTIFICATE", caDER)
	write(p.certFile, "CERTIFICATE", der)
	write(p.keyFile, "EC PRIVATE KEY", keyDER)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(caCert)
	if p.cert, err = tls.LoadX509KeyPair(p.certFile, p.keyFile); err != nil {
		t.Fatal(err)
	}
	return p
}

// client returns an HTTPS client trusting the CA, presenting the
// certificate when withCert (as an operator or a node would).
func (p *testPKI) client(withCert bool) *http.Client {
	cfg := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if withCert {
		cfg.Certificates = []tls.Certificate{p.cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
}
