package main

import (
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

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
