package rpc

import (
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/raftkv/raftkv/server"
)

// The series /metrics serves under etcd's own names, with etcd 3.5's types,
// labels and buckets, so that dashboards and alerts written for etcd work
// unchanged. They are served always, beside raftkv's own series, as etcd
// serves them always: an operator points the etcd dashboard at raftkv and
// it works, with no flag to find first. They cost nothing per request but
// the etcd_http_* counters, which share the cached series of raftkv's own
// (see httpMetrics.seriesOf); the rest are set once per event-loop round,
// per fsync, per heartbeat, or read when scraped.
//
// Where a series means something slightly different here, docs/metrics.md
// says what; in short:
//
//	etcd_server_has_leader, etcd_server_is_leader, etcd_server_is_learner      gauges
//	etcd_server_leader_changes_seen_total                                      counter
//	etcd_server_proposals_committed_total, etcd_server_proposals_applied_total gauges (as in etcd, despite _total)
//	etcd_server_proposals_pending                                              gauge: own proposals not applied yet
//	etcd_server_proposals_failed_total                                         counter: requests failed inside the member
//	etcd_server_slow_apply_total                                               counter: apply rounds over 100ms
//	etcd_server_heartbeat_send_failures_total                                  counter: heartbeats sent later than twice the interval
//	etcd_server_health_success, etcd_server_health_failures                    counters of /health answers
//	etcd_server_id{server_id}, etcd_server_version{server_version},
//	etcd_server_go_version{server_go_version}, etcd_cluster_version{cluster_version}   info gauges (1)
//	etcd_disk_wal_fsync_duration_seconds                                       histogram of WAL fsyncs
//	etcd_disk_wal_write_bytes_total                                            gauge: bytes written to the WAL
//	etcd_disk_backend_commit_duration_seconds                                  histogram: snapshot saves (the key space made durable)
//	etcd_debugging_snap_save_total_duration_seconds                            histogram: snapshot saves
//	etcd_snap_fsync_duration_seconds                                           histogram of snapshot file fsyncs
//	etcd_debugging_mvcc_keys_total                                             gauge: keys and directories in the key space
//	etcd_network_peer_sent_bytes_total{To}, etcd_network_peer_received_bytes_total{From}  counters
//	etcd_network_peer_sent_failures_total{To}                                  counter: messages the transport dropped
//	etcd_network_peer_round_trip_time_seconds{To}                              histogram: heartbeat round trips (leader only)
//	etcd_network_active_peers{Local,Remote}                                    gauge: 1 while the stream to the peer is up
//	etcd_network_disconnected_peers_total{Local,Remote}                        counter: streams re-established
//	etcd_http_received_total{method}, etcd_http_failed_total{method,code},
//	etcd_http_successful_duration_seconds{method}                              the v2 keys API's requests
//	process_*, go_*                                                            the standard collectors

// etcdSlowApply is etcd's warnApplyDuration: an apply slower than this
// counts in etcd_server_slow_apply_total.
const etcdSlowApply = 100 * time.Millisecond

// etcdServerMetrics are the etcd-named series fed through ServerMetrics.
type etcdServerMetrics struct {
	hasLeader, isLeader                  prometheus.Gauge
	leaderChanges                        prometheus.Counter
	proposalsCommitted, proposalsApplied prometheus.Gauge
	proposalsFailed, slowApplies         prometheus.Counter
	walFsync, snapFsync                  prometheus.Histogram
	backendCommit, snapSave              prometheus.Histogram
	walWriteBytes                        prometheus.Gauge
	peerSentFailures                     *prometheus.CounterVec
	heartbeatSendFailures                prometheus.Counter
	collectors                           []prometheus.Collector
}

func newEtcdServerMetrics() *etcdServerMetrics {
	// etcd's disk histograms: 1ms .. 8.192s.
	disk := prometheus.ExponentialBuckets(0.001, 2, 14)
	m := &etcdServerMetrics{
		hasLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "has_leader",
			Help: "Whether or not a leader exists. 1 is existence, 0 is not."}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "is_leader",
			Help: "Whether or not this member is a leader. 1 if is, 0 otherwise."}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "leader_changes_seen_total",
			Help: "The number of leader changes seen."}),
		proposalsCommitted: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_committed_total",
			Help: "The total number of consensus proposals committed (the raft commit index)."}),
		proposalsApplied: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_applied_total",
			Help: "The total number of consensus proposals applied (the applied index)."}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_failed_total",
			Help: "The total number of failed proposals seen."}),
		slowApplies: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "slow_apply_total",
			Help: "The total number of slow apply requests (likely overloaded from slow disk)."}),
		heartbeatSendFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "heartbeat_send_failures_total",
			Help: "The total number of leader heartbeat send failures (likely overloaded from slow disk)."}),
		walFsync: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
			Help: "The latency distributions of fsync called by WAL.", Buckets: disk}),
		walWriteBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "disk", Name: "wal_write_bytes_total",
			Help: "Total number of bytes written in WAL."}),
		backendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "backend_commit_duration_seconds",
			Help: "The latency distributions of commit called by backend (raftkv: saving a snapshot of the key space).", Buckets: disk}),
		snapSave: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd_debugging", Subsystem: "snap", Name: "save_total_duration_seconds",
			Help: "The total latency distributions of save called by snapshot.", Buckets: disk}),
		snapFsync: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "snap", Name: "fsync_duration_seconds",
			Help: "The latency distributions of fsync called by snap.", Buckets: disk}),
		peerSentFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "network", Name: "peer_sent_failures_total",
			Help: "The total number of send failures from peers."}, []string{"To"}),
	}
	m.collectors = []prometheus.Collector{
		m.hasLeader, m.isLeader, m.leaderChanges, m.proposalsCommitted, m.proposalsApplied, m.proposalsFailed,
		m.slowApplies, m.heartbeatSendFailures, m.walFsync, m.walWriteBytes, m.backendCommit, m.snapSave, m.snapFsync,
		m.peerSentFailures,
	}
	return m
}

// EtcdSources are what the etcd-named series read when scraped.
type EtcdSources struct {
	// ID is this member's ID (etcd_server_id, the Local label).
	ID uint64
	// Status is the member's state (server.Runtime.Status).
	Status func() server.RuntimeStatus
	// Transport is the peer transport (the etcd_network_* series); nil
	// means none.
	Transport *PeerTransport
	// Messages measures heartbeat round trips
	// (etcd_network_peer_round_trip_time_seconds) and counts late
	// heartbeats; nil means none.
	Messages *MessageStats
	// ServerVersion and ClusterVersion are what /version reports (empty:
	// DefaultServerVersion, DefaultClusterVersion).
	ServerVersion, ClusterVersion string
}

// RegisterEtcd registers the etcd-named series that read the member's state
// when scraped, and Go's process and runtime collectors, on reg. Call it
// once, after NewServerMetrics on the same registry.
func (m *ServerMetrics) RegisterEtcd(reg prometheus.Registerer, src EtcdSources) error {
	if src.ServerVersion == "" {
		src.ServerVersion = DefaultServerVersion
	}
	if src.ClusterVersion == "" {
		src.ClusterVersion = DefaultClusterVersion
	}
	status := src.Status
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_pending",
			Help: "The current number of pending proposals to commit."},
			func() float64 { return float64(status().PendingProposals) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "is_learner",
			Help: "Whether or not this member is a learner. 1 if is, 0 otherwise."},
			func() float64 { return boolGauge(status().IsLearner) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd_debugging", Subsystem: "mvcc", Name: "keys_total",
			Help: "Total number of keys (raftkv: keys and directories of the v2 key space)."},
			func() float64 { return float64(status().Nodes) }),
		infoGauge("etcd", "server", "id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
			"server_id", formatID(src.ID)),
		infoGauge("etcd", "server", "version", "Which version is running. 1 for 'server_version' label with current version.",
			"server_version", src.ServerVersion),
		infoGauge("etcd", "server", "go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.",
			"server_go_version", runtime.Version()),
		infoGauge("etcd", "cluster", "version", "Which version is running. 1 for 'cluster_version' label with current cluster version",
			"cluster_version", src.ClusterVersion),
	}
	if src.Transport != nil {
		cs = append(cs, newPeerCollector(src.ID, src.Transport))
	}
	if src.Messages != nil {
		rtt := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "network", Name: "peer_round_trip_time_seconds",
			Help: "Round-Trip-Time histogram between peers",
			// etcd 3.4 and 3.5: 0.1ms .. 3.2768s.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"To"})
		cs = append(cs, rtt)
		src.Messages.setMetrics(rtt, m.etcd.heartbeatSendFailures)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// infoGauge is a gauge of constant 1 whose one label carries the
// information.
func infoGauge(namespace, subsystem, name, help, label, value string) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}, []string{label})
	g.WithLabelValues(value).Set(1)
	return g
}

// peerCollector reads the transport's per-peer counters when scraped.
type peerCollector struct {
	local                                string
	transport                            *PeerTransport
	sent, received, active, disconnected *prometheus.Desc
}

func newPeerCollector(local uint64, t *PeerTransport) *peerCollector {
	return &peerCollector{
		local: formatID(local), transport: t,
		sent: prometheus.NewDesc("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.",
			[]string{"To"}, nil),
		received: prometheus.NewDesc("etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.",
			[]string{"From"}, nil),
		active: prometheus.NewDesc("etcd_network_active_peers", "The current number of active peer connections.",
			[]string{"Local", "Remote"}, nil),
		disconnected: prometheus.NewDesc("etcd_network_disconnected_peers_total", "The total number of disconnected peers.",
			[]string{"Local", "Remote"}, nil),
	}
}

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sent
	ch <- c.received
	ch <- c.active
	ch <- c.disconnected
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.transport.Stats().Peers {
		remote := formatID(p.ID)
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(p.SentBytes), remote)
		ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(p.ReceivedBytes), remote)
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, boolGauge(p.Connected), c.local, remote)
		ch <- prometheus.MustNewConstMetric(c.disconnected, prometheus.CounterValue, float64(p.Reconnects), c.local, remote)
	}
}

// etcdHTTPSeries are etcd's v2 API request series for one kind of answer.
type etcdHTTPSeries struct {
	received prometheus.Counter
	// failed is nil for a success; duration nil for a failure or a watch.
	failed   prometheus.Counter
	duration prometheus.Observer
}

// etcdHTTPMetrics are etcd's v2 API request series (v2http/metrics.go).
type etcdHTTPMetrics struct {
	received, failed *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	healthSuccess    prometheus.Counter
	healthFailures   prometheus.Counter
}

func newEtcdHTTPMetrics() *etcdHTTPMetrics {
	return &etcdHTTPMetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "http", Name: "received_total",
			Help: "Counter of requests received into the system (successfully parsed and authd)."}, []string{"method"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "http", Name: "failed_total",
			Help: "Counter of handle failures of requests (non-watches), by method (GET/PUT etc.) and code (400, 500 etc.)."},
			[]string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "http", Name: "successful_duration_seconds",
			Help: "Bucketed histogram of processing time (s) of successfully handled requests (non-watches), by method (GET/PUT etc.).",
			// etcd's: 0.5ms .. 2.048s.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 13)}, []string{"method"}),
		healthSuccess: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "health_success",
			Help: "The total number of successful health checks"}),
		healthFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "health_failures",
			Help: "The total number of failed health checks"}),
	}
}

func (m *etcdHTTPMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.received, m.failed, m.duration, m.healthSuccess, m.healthFailures}
}

// seriesOf returns etcd's series for a key-space answer (handler "keys"
// or "watch"); the zero value for other handlers.
func (m *etcdHTTPMetrics) seriesOf(handler, method string, code int) etcdHTTPSeries {
	if handler != "keys" && handler != "watch" {
		return etcdHTTPSeries{}
	}
	s := etcdHTTPSeries{received: m.received.WithLabelValues(method)}
	switch {
	case code >= 400:
		s.failed = m.failed.WithLabelValues(method, strconv.Itoa(code))
	case handler == "keys":
		s.duration = m.duration.WithLabelValues(method)
	}
	return s
}
