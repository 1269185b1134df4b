package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// tlsFiles are the -tls-* flags: PEM files of this node's certificate and
// key and of the CA that signed every node's certificate.
type tlsFiles struct{ cert, key, ca string }

func (f tlsFiles) enabled() bool { return f.cert != "" || f.key != "" || f.ca != "" }

// tlsConfigs are the TLS settings of one node, all from the same files.
type tlsConfigs struct {
	// raft is the TCP transport's: mutual TLS, each side verifying the
	// other's certificate against the CA.
	raft *tls.Config
	// http serves the API over HTTPS. Clients need not present a
	// certificate, but /admin/* and /internal/* require one the CA signed
	// (requireClientCert).
	http *tls.Config
	// client is what a node uses to call another node's API (forwarded
	// writes): it trusts the CA and presents the node's certificate.
	client *tls.Config
}

// load reads the files. All three are needed: a node both proves who it is
// and checks who its peers are.
func (f tlsFiles) load() (*tlsConfigs, error) {
	if f.cert == "" || f.key == "" || f.ca == "" {
		return nil, errors.New("TLS needs all of -tls-cert, -tls-key and -tls-ca")
	}
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
	}
	pool, err := loadCA(f.ca)
	if err != nil {
		return nil, err
	}
	return &tlsConfigs{
		raft: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13},
		http: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
			ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12},
		client: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12},
	}, nil
}

// loadCA reads a PEM bundle of CA certificates.
func loadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("-tls-ca %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// requireClientCert refuses, when the API serves HTTPS, requests that did
// not present a certificate signed by the cluster's CA: the admin and
// internal endpoints are for operators and nodes only. Over plain HTTP
// (no -tls-* flags) it lets everything through: then bind the API to a
// private network.
func (k *kvNode) requireClientCert(h http.HandlerFunc) http.HandlerFunc {
	if k.tls == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			fail(w, http.StatusForbidden, errors.New("this endpoint needs a client certificate signed by the cluster's CA"))
			return
		}
		h(w, r)
	}
}
