package rpc

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/server"
)

// The metrics /metrics serves. Every name has the raftkv_ prefix; where
// etcd has a metric for the same thing, its name is given (dashboards built
// for etcd map one to one).
//
// Served by the API itself:
//
//	raftkv_http_requests_total{handler,method,code}      counter: requests answered, by handler
//	                                                     (keys, watch, members, machines, stats,
//	                                                     version, health, metrics), method and status
//	raftkv_http_request_duration_seconds{handler,method} histogram: time to answer, watches excluded
//	                                                     (etcd_http_successful_duration_seconds)
//	raftkv_http_watchers                                 gauge: open watch responses
//
// Fed by the server wiring through ServerMetrics:
//
//	raftkv_server_proposals_committed_total   gauge: the raft commit index (etcd_server_proposals_committed_total)
//	raftkv_server_proposals_applied_total     gauge: the applied index (etcd_server_proposals_applied_total)
//	raftkv_server_proposals_failed_total      counter: proposals that failed or timed out (etcd_server_proposals_failed_total)
//	raftkv_server_apply_duration_seconds      histogram: time to apply a batch of committed entries
//	raftkv_disk_wal_fsync_duration_seconds    histogram: WAL fsync latency (etcd_disk_wal_fsync_duration_seconds)
//	raftkv_server_leader_changes_seen_total   counter: leader changes seen (etcd_server_leader_changes_seen_total)
//	raftkv_server_has_leader                  gauge: 1 if a leader is known (etcd_server_has_leader)
//	raftkv_server_is_leader                   gauge: 1 if this member leads (etcd_server_is_leader)
//	raftkv_network_peer_send_failures_total{to} counter: raft messages dropped on the way to a peer
//	                                          (etcd_network_peer_sent_failures_total)

// httpMetrics instruments the API's handlers.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// series caches the counter and the histogram of each (handler,
	// method, code): looking them up in the vectors hashes the labels and
	// allocates on every request. Copied on write; never modified once
	// stored.
	series atomic.Pointer[map[seriesKey]series]
	// seriesMu serialises the writers of series.
	seriesMu sync.Mutex
	// etcd are etcd's own series of the same requests (metrics_etcd.go).
	etcd *etcdHTTPMetrics
}

// seriesKey names the metrics of one kind of answer.
type seriesKey struct {
	handler, method string
	code            int
}

// series are the metrics of one kind of answer.
type series struct {
	requests prometheus.Counter
	// duration is nil for watches.
	duration prometheus.Observer
	etcd     etcdHTTPSeries
}

// maxCachedSeries bounds the cache (handlers × methods × codes is small,
// but codes come from handlers).
const maxCachedSeries = 512

// seriesOf returns the metrics of (handler, method, code).
func (m *httpMetrics) seriesOf(handler, method string, code int) series {
	key := seriesKey{handler, method, code}
	if cache := m.series.Load(); cache != nil {
		if s, ok := (*cache)[key]; ok {
			return s
		}
	}
	s := series{requests: m.requests.WithLabelValues(handler, method, strconv.Itoa(code)),
		etcd: m.etcd.seriesOf(handler, method, code)}
	if handler != "watch" { // watches are kept out of the histogram
		s.duration = m.duration.WithLabelValues(handler, method)
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	old := m.series.Load()
	if old != nil && len(*old) >= maxCachedSeries {
		return s
	}
	cache := make(map[seriesKey]series, 1)
	if old != nil {
		cache = make(map[seriesKey]series, len(*old)+1)
		for k, v := range *old {
			cache[k] = v
		}
	}
	cache[key] = s
	m.series.Store(&cache)
	return s
}

func newHTTPMetrics(reg prometheus.Registerer, watchers func() float64) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "raftkv", Subsystem: "http", Name: "requests_total",
			Help: "Client API requests answered, by handler, method and HTTP status.",
		}, []string{"handler", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "raftkv", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to answer a client API request (watches excluded).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 100µs .. 13s
		}, []string{"handler", "method"}),
		etcd: newEtcdHTTPMetrics(),
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "raftkv", Subsystem: "http", Name: "watchers",
		Help: "Open watch responses.",
	}, watchers)
	for _, c := range append([]prometheus.Collector{m.requests, m.duration, gauge}, m.etcd.collectors()...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// instrument counts and times the requests h answers.
func (m *httpMetrics) instrument(handler string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		name := handler
		if sw.watch {
			name = "watch"
		}
		s := m.seriesOf(name, methodLabel(r.Method), sw.status())
		s.requests.Inc()
		if s.etcd.received != nil {
			s.etcd.received.Inc()
		}
		if s.etcd.failed != nil {
			s.etcd.failed.Inc()
		}
		if !sw.watch {
			d := time.Since(start).Seconds()
			s.duration.Observe(d)
			if s.etcd.duration != nil {
				s.etcd.duration.Observe(d)
			}
		}
	}
}

// methodLabel bounds the method label to the methods the API knows.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete:
		return method
	}
	return "OTHER"
}

// statusWriter records the status a handler answered with. It passes
// Flush through (watches flush their headers and events) and unwraps for
// http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code int
	// watch is set by the watch handler, so that long polls are counted
	// apart and kept out of the latency histogram.
	watch bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// markWatch tells the instrumentation that w carries a watch.
func markWatch(w http.ResponseWriter) {
	if sw, ok := w.(*statusWriter); ok {
		sw.watch = true
	}
}

// ServerMetrics are a member's own metrics (see the list above). The server
// wiring creates them on the API's registry and feeds them: ObserveRound
// from the runtime's OnRound hook, the others from where the events
// happen. All methods are safe for concurrent use.
type ServerMetrics struct {
	proposalsCommitted prometheus.Gauge
	proposalsApplied   prometheus.Gauge
	proposalsFailed    prometheus.Counter
	applyDuration      prometheus.Histogram
	walFsyncDuration   prometheus.Histogram
	leaderChanges      prometheus.Counter
	hasLeader          prometheus.Gauge
	isLeader           prometheus.Gauge
	peerSendFailures   *prometheus.CounterVec
	// etcd are the same figures under etcd's names (metrics_etcd.go).
	etcd *etcdServerMetrics

	// leader is the last leader seen by ObserveLeader (0: none yet).
	leader atomic.Uint64
}

// NewServerMetrics creates the member's metrics and registers them on reg
// (usually API.Registry()).
func NewServerMetrics(reg prometheus.Registerer) (*ServerMetrics, error) {
	latency := prometheus.ExponentialBuckets(0.0001, 2, 16) // 100µs .. 3.3s
	m := &ServerMetrics{
		proposalsCommitted: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "raftkv", Subsystem: "server", Name: "proposals_committed_total",
			Help: "The raft commit index: entries committed so far.",
		}),
		proposalsApplied: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "raftkv", Subsystem: "server", Name: "proposals_applied_total",
			Help: "The applied index: entries applied to the key space so far.",
		}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "raftkv", Subsystem: "server", Name: "proposals_failed_total",
			Help: "Proposals that failed or timed out.",
		}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "raftkv", Subsystem: "server", Name: "apply_duration_seconds",
			Help: "Time to apply one batch of committed entries.", Buckets: latency,
		}),
		walFsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "raftkv", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
			Help: "Latency of WAL fsyncs.", Buckets: latency,
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "raftkv", Subsystem: "server", Name: "leader_changes_seen_total",
			Help: "Leader changes this member has seen.",
		}),
		hasLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "raftkv", Subsystem: "server", Name: "has_leader",
			Help: "1 if this member knows a leader, else 0.",
		}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "raftkv", Subsystem: "server", Name: "is_leader",
			Help: "1 if this member is the leader, else 0.",
		}),
		peerSendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "raftkv", Subsystem: "network", Name: "peer_send_failures_total",
			Help: "Raft messages that could not be sent to a peer (queue full, connection down).",
		}, []string{"to"}),
		etcd: newEtcdServerMetrics(),
	}
	for _, c := range append([]prometheus.Collector{
		m.proposalsCommitted, m.proposalsApplied, m.proposalsFailed, m.applyDuration,
		m.walFsyncDuration, m.leaderChanges, m.hasLeader, m.isLeader, m.peerSendFailures,
	}, m.etcd.collectors...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveRound records what one round of the member's event loop did: its
// commit and applied indexes and its leader. Pass it to
// server.RuntimeOptions.OnRound.
func (m *ServerMetrics) ObserveRound(out server.Output) {
	m.proposalsCommitted.Set(float64(out.HardState.Commit))
	m.etcd.proposalsCommitted.Set(float64(out.HardState.Commit))
	if n := len(out.Applied); n > 0 {
		m.proposalsApplied.Set(float64(out.Applied[n-1].Index))
		m.etcd.proposalsApplied.Set(float64(out.Applied[n-1].Index))
	}
	m.ObserveLeader(out.SoftState.Lead, out.SoftState.State == raft.StateLeader)
}

// ObserveLeader records the leader the member knows (0: none) and whether it
// is this member; a change to a different, known leader counts as a leader
// change.
func (m *ServerMetrics) ObserveLeader(leader uint64, self bool) {
	if leader != 0 && m.leader.Swap(leader) != leader {
		m.leaderChanges.Inc()
		m.etcd.leaderChanges.Inc()
	}
	m.hasLeader.Set(boolGauge(leader != 0))
	m.isLeader.Set(boolGauge(self))
	m.etcd.hasLeader.Set(boolGauge(leader != 0))
	m.etcd.isLeader.Set(boolGauge(self))
}

// ProposalsFailed counts n proposals that failed or timed out.
func (m *ServerMetrics) ProposalsFailed(n int) {
	m.proposalsFailed.Add(float64(n))
	m.etcd.proposalsFailed.Add(float64(n))
}

// ObserveApply records the time one batch of committed entries took to
// apply.
func (m *ServerMetrics) ObserveApply(d time.Duration) {
	m.applyDuration.Observe(d.Seconds())
	if d > etcdSlowApply {
		m.etcd.slowApplies.Inc()
	}
}

// ObserveWALFsync records the latency of one WAL fsync.
func (m *ServerMetrics) ObserveWALFsync(d time.Duration) {
	m.walFsyncDuration.Observe(d.Seconds())
	m.etcd.walFsync.Observe(d.Seconds())
}

// AddWALBytes counts n bytes written to the WAL.
func (m *ServerMetrics) AddWALBytes(n int) { m.etcd.walWriteBytes.Add(float64(n)) }

// ObserveSnapshotFsync records the latency of one fsync of a snapshot
// file.
func (m *ServerMetrics) ObserveSnapshotFsync(d time.Duration) { m.etcd.snapFsync.Observe(d.Seconds()) }

// ObserveSnapshotSave records the time one snapshot took to save, from
// creating its file to the rename that makes it the latest: the moment the
// key space is durable outside the WAL, the nearest raftkv has to etcd's
// backend commit.
func (m *ServerMetrics) ObserveSnapshotSave(d time.Duration) {
	m.etcd.backendCommit.Observe(d.Seconds())
	m.etcd.snapSave.Observe(d.Seconds())
}

// PeerSendFailed counts a raft message that could not be sent to peer to.
func (m *ServerMetrics) PeerSendFailed(to uint64) { m.PeerSendFailures(to, 1) }

// PeerSendFailures counts n raft messages that could not be sent to peer
// to. n may be 0: the peer's series then exist, at 0, before any failure
// (so that rates and alerts over them start from the beginning).
func (m *ServerMetrics) PeerSendFailures(to uint64, n uint64) {
	m.peerSendFailures.WithLabelValues(formatID(to)).Add(float64(n))
	m.etcd.peerSentFailures.WithLabelValues(formatID(to)).Add(float64(n))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
