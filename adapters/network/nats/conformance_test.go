package nats_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	rknats "github.com/raftkit/raftkit/adapters/network/nats"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/networktest"
)

// machineURL is the NATS server running on this machine;
// RAFTKIT_NATS_URL overrides it.
func machineURL() string {
	if u := os.Getenv("RAFTKIT_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// testPrefix keeps this process's subjects apart from any other run's on a
// shared server.
var testPrefix = fmt.Sprintf("raftkit-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1_000_000)

// embedded starts a NATS server in the test process on a free port (or on
// port, to restart one), shut down when the test ends.
func embedded(t testing.TB, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS server not ready within 10s")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// opener opens transports on url under the test prefix.
func opener(url string) networktest.Opener {
	return func(o networktest.Config) (raft.Network, string, error) {
		tr, err := rknats.New(context.Background(), rknats.Config{ClusterID: o.ClusterID, ID: o.ID, URL: url, Prefix: testPrefix})
		if err != nil {
			return nil, "", err
		}
		return tr, tr.Address(), nil
	}
}

func TestConformanceEmbedded(t *testing.T) {
	networktest.Run(t, func(t testing.TB) networktest.Opener { return opener(embedded(t, 0).ClientURL()) })
}

func TestConformanceMachineServer(t *testing.T) {
	networktest.Run(t, func(t testing.TB) networktest.Opener { return opener(machineURL()) })
}

func BenchmarkNetwork(b *testing.B) {
	networktest.Bench(b, func(t testing.TB) networktest.Opener { return opener(embedded(t, 0).ClientURL()) })
}
