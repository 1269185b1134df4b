package prometheus_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	raftprom "github.com/raftkit/raftkit/adapters/metrics/prometheus"
	"github.com/raftkit/raftkit/raft/rafttest"
)

// TestScrapeParses registers the collectors of a 3-node cluster in one
// registry, scrapes it over HTTP, parses the text format, and checks the
// leader's figures.
func TestScrapeParses(t *testing.T) {
	c := rafttest.NewCluster(t, 3, rafttest.ClusterConfig{})
	l := c.WaitLeader(10 * time.Second)
	reg := prometheus.NewPedanticRegistry()
	for _, id := range c.IDs() {
		reg.MustRegister(raftprom.NewCollector(c.Node(id)))
	}
	// Wait for the leader to publish its peers.
	deadline := time.Now().Add(5 * time.Second)
	for len(c.Node(l).Metrics().Peers) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the scrape does not parse as Prometheus text format: %v\n%s", err, body)
	}
	leaders := 0
	for _, m := range families["raft_is_leader"].GetMetric() {
		if m.GetGauge().GetValue() == 1 {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("raft_is_leader is 1 on %d nodes", leaders)
	}
	if got := len(families["raft_peer_match_index"].GetMetric()); got != 2 {
		t.Fatalf("%d peer series, want 2 (the leader's two followers)", got)
	}
	if got := len(families["raft_term"].GetMetric()); got != 3 {
		t.Fatalf("%d raft_term series, want one per node", got)
	}
	for _, name := range []string{"raft_commit_index", "raft_snapshots_taken_total", "raft_network_sent_messages_total", "raft_role"} {
		if families[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}
