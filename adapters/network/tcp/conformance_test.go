package tcp_test

import (
	"crypto/tls"
	"io"
	"log/slog"
	"testing"

	"github.com/raftkit/raftkit/adapters/network/tcp"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/networktest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// factory opens plain transports on loopback.
func factory(t testing.TB) networktest.Opener { return opener(func() *tls.Config { return nil }) }

// opener opens transports on loopback with the TLS config tlsConfig returns.
func opener(tlsConfig func() *tls.Config) networktest.Opener {
	return func(o networktest.Config) (raft.Network, string, error) {
		addr := o.Addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		tr, err := tcp.New(tcp.Config{ClusterID: o.ClusterID, ID: o.ID, Listen: addr, TLS: tlsConfig(), Logger: quiet()})
		if err != nil {
			return nil, "", err
		}
		return tr, tr.Addr(), nil
	}
}

func TestConformance(t *testing.T) { networktest.Run(t, factory) }

func BenchmarkNetwork(b *testing.B) { networktest.Bench(b, factory) }
