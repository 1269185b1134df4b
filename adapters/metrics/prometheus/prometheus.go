// Package prometheus exports a raft.Node's metrics to Prometheus, through
// github.com/prometheus/client_golang.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(raftprom.NewCollector(node))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The collector reads Node.Metrics at each scrape, so the figures are those
// the node last published (at once on every change of role, term, leader
// or membership, and at its MetricsInterval otherwise). Every series carries
// the node's group and ID as labels, so one registry can hold the
// collectors of many nodes and groups.
package prometheus

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Source is what the collector reads: a *raft.Node.
type Source interface {
	Metrics() raft.Metrics
}

// Collector is a prometheus.Collector for one node.
type Collector struct {
	src    Source
	labels prometheus.Labels
	descs  map[string]*prometheus.Desc
}

type metric struct {
	name, help string
	kind       prometheus.ValueType
	value      func(m *raft.Metrics) float64
}

// The node's own series. Names follow Prometheus conventions: counters end
// in _total, sizes in _bytes.
var nodeMetrics = []metric{
	{"term", "Current Raft term.", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return float64(m.Term) }},
	{"leader_id", "ID of the leader this node follows (0: none known).", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return float64(m.Leader) }},
	{"is_leader", "1 if this node is the leader.", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return b2f(m.Role == raftdata.RoleLeader) }},
	{"commit_index", "Highest log index known committed.", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return float64(m.CommitIndex) }},
	{"applied_index", "Highest log index applied to the state machine.", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return float64(m.AppliedIndex) }},
	{"last_index", "Highest log index appended.", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return float64(m.LastIndex) }},
	{"first_index", "First log index still held (after compaction).", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return float64(m.FirstIndex) }},
	{"snapshot_index", "Index of the latest snapshot (0: none).", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return float64(m.SnapshotIndex) }},
	{"removed", "1 once this node was removed from the membership.", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return b2f(m.Removed) }},
	{"voters", "Voters in the current (incoming) configuration.", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return float64(len(m.Membership.Voters)) }},
	{"snapshots_taken_total", "Snapshots of this node's state taken since it started.", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.SnapshotsTaken) }},
	{"snapshots_sent_total", "Snapshot transfers to followers started since the node started.", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.SnapshotsSent) }},
	{"snapshots_received_total", "Snapshots installed from a leader since the node started.", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.SnapshotsReceived) }},
	{"storage_errors_total", "Storage calls that failed since the node started (each retry counts).", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.StorageErrors) }},
	{"storage_stall_seconds", "How long the storage write in progress has been failing or waiting (0 when none).", prometheus.GaugeValue, func(m *raft.Metrics) float64 { return m.StorageStall.Seconds() }},
	{"network_sent_messages_total", "Messages handed to the network toward their peers.", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.Network.Sent) }},
	{"network_sent_bytes_total", "Encoded bytes written to the network.", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.Network.BytesSent) }},
	{"network_received_messages_total", "Inbound messages handed to the node.", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.Network.Received) }},
	{"network_received_bytes_total", "Encoded bytes read from the network.", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.Network.BytesReceived) }},
	{"network_dropped_messages_total", "Messages given to the network that were not sent.", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.Network.Dropped) }},
	{"network_rejected_total", "Inbound data the network refused (corrupt, oversized, another cluster's).", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.Network.Rejected) }},
	{"network_reconnects_total", "Connections re-established after being lost.", prometheus.CounterValue, func(m *raft.Metrics) float64 { return float64(m.Network.Reconnects) }},
}

// Per-peer series, on the leader only.
var peerMetrics = []struct {
	name, help string
	value      func(p *raft.PeerMetrics) float64
}{
	{"peer_match_index", "Highest log index known replicated on the peer (leader only).", func(p *raft.PeerMetrics) float64 { return float64(p.Match) }},
	{"peer_lag_entries", "Entries the peer is behind the leader's last index (leader only).", func(p *raft.PeerMetrics) float64 { return float64(p.Lag) }},
	{"peer_last_contact_seconds", "Time since the leader last heard from the peer (leader only).", func(p *raft.PeerMetrics) float64 { return p.LastContact.Seconds() }},
}

const namespace = "raft"

// NewCollector returns a collector of node's metrics. Register it with a
// prometheus.Registerer.
func NewCollector(node Source) *Collector {
	m := node.Metrics()
	c := &Collector{src: node, descs: map[string]*prometheus.Desc{}}
	c.labels = prometheus.Labels{"group": strconv.FormatUint(uint64(m.Group), 10), "node": strconv.FormatUint(uint64(m.ID), 10)}
	for _, nm := range nodeMetrics {
		c.descs[nm.name] = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", nm.name), nm.help, nil, c.labels)
	}
	c.descs["role"] = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "role"), "1 for the node's current role, 0 for the others.", []string{"role"}, c.labels)
	for _, pm := range peerMetrics {
		c.descs[pm.name] = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", pm.name), pm.help, []string{"peer", "voter", "state"}, c.labels)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

var roles = []raftdata.Role{raftdata.RoleFollower, raftdata.RolePreCandidate, raftdata.RoleCandidate, raftdata.RoleLeader, raftdata.RoleNonVoter}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	m := c.src.Metrics()
	for _, nm := range nodeMetrics {
		ch <- prometheus.MustNewConstMetric(c.descs[nm.name], nm.kind, nm.value(&m))
	}
	for _, r := range roles {
		ch <- prometheus.MustNewConstMetric(c.descs["role"], prometheus.GaugeValue, b2f(m.Role == r), r.String())
	}
	for i := range m.Peers {
		p := &m.Peers[i]
		labels := []string{strconv.FormatUint(uint64(p.ID), 10), strconv.FormatBool(p.Voter), p.State}
		for _, pm := range peerMetrics {
			ch <- prometheus.MustNewConstMetric(c.descs[pm.name], prometheus.GaugeValue, pm.value(p), labels...)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
