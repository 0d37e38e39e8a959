package rpc

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/server"
)

// scrape returns the lines of /metrics that start with one of the names,
// leaving out the scrapes' own requests.
func scrape(t *testing.T, url string, names ...string) string {
	t.Helper()
	code, h, body := send(t, "GET", url+"/metrics", "", nil)
	require.Equal(t, 200, code)
	require.Contains(t, h.Get("Content-Type"), "text/plain")
	var out []string
	for _, line := range strings.Split(body, "\n") {
		for _, name := range names {
			if (strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{")) &&
				!strings.Contains(line, `handler="metrics"`) {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "\n")
}

func TestHTTPMetrics(t *testing.T) {
	_, _, srv := newTestAPI(t, APIOptions{})
	send(t, "PUT", srv.URL+"/v2/keys/a", formType, strings.NewReader("value=1"))
	send(t, "PUT", srv.URL+"/v2/keys/a", formType, strings.NewReader("value=2"))
	send(t, "GET", srv.URL+"/v2/keys/missing", "", nil)
	send(t, "PATCH", srv.URL+"/v2/keys/a", "", nil)
	resp, cancel := openWatch(t, srv.URL+"/v2/keys/a?wait=true")
	require.Equal(t, 200, resp.StatusCode)

	assert.Equal(t, `raftkv_http_requests_total{code="200",handler="keys",method="PUT"} 1
raftkv_http_requests_total{code="201",handler="keys",method="PUT"} 1
raftkv_http_requests_total{code="404",handler="keys",method="GET"} 1
raftkv_http_requests_total{code="405",handler="keys",method="OTHER"} 1
raftkv_http_watchers 1`, scrape(t, srv.URL, "raftkv_http_requests_total", "raftkv_http_watchers"))

	cancel()
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, srv.URL, "raftkv_http_requests_total"),
			`raftkv_http_requests_total{code="200",handler="watch",method="GET"} 1`)
	}, 5*time.Second, 10*time.Millisecond)
	// Watches stay out of the latency histogram.
	assert.Equal(t, `raftkv_http_request_duration_seconds_count{handler="keys",method="GET"} 1
raftkv_http_request_duration_seconds_count{handler="keys",method="OTHER"} 1
raftkv_http_request_duration_seconds_count{handler="keys",method="PUT"} 2`,
		scrape(t, srv.URL, "raftkv_http_request_duration_seconds_count"))
}

func TestServerMetrics(t *testing.T) {
	api, _, srv := newTestAPI(t, APIOptions{})
	m, err := NewServerMetrics(api.Registry())
	require.NoError(t, err)
	m.ObserveRound(server.Output{
		HardState: raft.HardState{Commit: 42, Term: 3},
		SoftState: raft.SoftState{Lead: 1, State: raft.StateFollower},
		Applied:   []raft.Entry{{Index: 40}, {Index: 41}},
	})
	m.ObserveRound(server.Output{HardState: raft.HardState{Commit: 43}, SoftState: raft.SoftState{Lead: 1}})
	m.ObserveLeader(0, false)
	m.ObserveLeader(2, true)
	m.ProposalsFailed(2)
	m.ObserveApply(3 * time.Millisecond)
	m.ObserveWALFsync(200 * time.Microsecond)
	m.PeerSendFailed(0x1a)
	m.PeerSendFailed(0x1a)

	assert.Equal(t, `raftkv_disk_wal_fsync_duration_seconds_count 1
raftkv_network_peer_send_failures_total{to="1a"} 2
raftkv_server_apply_duration_seconds_count 1
raftkv_server_has_leader 1
raftkv_server_is_leader 1
raftkv_server_leader_changes_seen_total 2
raftkv_server_proposals_applied_total 41
raftkv_server_proposals_committed_total 43
raftkv_server_proposals_failed_total 2`, scrape(t, srv.URL,
		"raftkv_server_proposals_committed_total", "raftkv_server_proposals_applied_total",
		"raftkv_server_proposals_failed_total", "raftkv_server_leader_changes_seen_total",
		"raftkv_server_has_leader", "raftkv_server_is_leader", "raftkv_network_peer_send_failures_total",
		"raftkv_disk_wal_fsync_duration_seconds_count", "raftkv_server_apply_duration_seconds_count"))

	// Registering twice on one registry is an error, not a panic.
	_, err = NewServerMetrics(api.Registry())
	assert.Error(t, err)
}

// TestEtcdNamedMetrics checks the series served under etcd's names: fed by
// the same calls as raftkv's own, with etcd's types and buckets.
func TestEtcdNamedMetrics(t *testing.T) {
	api, _, srv := newTestAPI(t, APIOptions{})
	m, err := NewServerMetrics(api.Registry())
	require.NoError(t, err)
	status := server.RuntimeStatus{PendingProposals: 3, Nodes: 7, IsLearner: true}
	require.NoError(t, m.RegisterEtcd(api.Registry(), EtcdSources{ID: 0x1a2b, Status: func() server.RuntimeStatus { return status }}))
	m.ObserveRound(server.Output{HardState: raft.HardState{Commit: 43}, SoftState: raft.SoftState{Lead: 2},
		Applied: []raft.Entry{{Index: 41}}})
	m.ObserveLeader(3, true)
	m.ProposalsFailed(2)
	m.ObserveApply(3 * time.Millisecond)
	m.ObserveApply(150 * time.Millisecond) // slow
	m.ObserveWALFsync(1500 * time.Microsecond)
	m.AddWALBytes(512)
	m.ObserveSnapshotSave(20 * time.Millisecond)
	m.ObserveSnapshotFsync(time.Millisecond)
	m.PeerSendFailures(0x1a, 4)
	send(t, "PUT", srv.URL+"/v2/keys/a", formType, strings.NewReader("value=1"))
	send(t, "GET", srv.URL+"/v2/keys/missing", "", nil)

	assert.Equal(t, `etcd_cluster_version{cluster_version="3.5.0"} 1
etcd_debugging_mvcc_keys_total 7
etcd_debugging_snap_save_total_duration_seconds_count 1
etcd_disk_backend_commit_duration_seconds_count 1
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 0
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"} 1
etcd_disk_wal_fsync_duration_seconds_count 1
etcd_disk_wal_write_bytes_total 512
etcd_http_failed_total{code="404",method="GET"} 1
etcd_http_received_total{method="GET"} 1
etcd_http_received_total{method="PUT"} 1
etcd_http_successful_duration_seconds_count{method="PUT"} 1
etcd_network_peer_sent_failures_total{To="1a"} 4
etcd_server_has_leader 1
etcd_server_id{server_id="1a2b"} 1
etcd_server_is_leader 1
etcd_server_is_learner 1
etcd_server_leader_changes_seen_total 2
etcd_server_proposals_applied_total 41
etcd_server_proposals_committed_total 43
etcd_server_proposals_failed_total 2
etcd_server_proposals_pending 3
etcd_server_slow_apply_total 1
etcd_server_version{server_version="3.5.33"} 1
etcd_snap_fsync_duration_seconds_count 1`, scrape(t, srv.URL,
		"etcd_cluster_version", "etcd_debugging_mvcc_keys_total", "etcd_debugging_snap_save_total_duration_seconds_count",
		"etcd_disk_backend_commit_duration_seconds_count", `etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"}`,
		`etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"}`, "etcd_disk_wal_fsync_duration_seconds_count",
		"etcd_disk_wal_write_bytes_total", "etcd_http_failed_total", "etcd_http_received_total",
		"etcd_http_successful_duration_seconds_count", "etcd_network_peer_sent_failures_total", "etcd_server_has_leader",
		"etcd_server_id", "etcd_server_is_leader", "etcd_server_is_learner", "etcd_server_leader_changes_seen_total",
		"etcd_server_proposals_applied_total", "etcd_server_proposals_committed_total", "etcd_server_proposals_failed_total",
		"etcd_server_proposals_pending", "etcd_server_slow_apply_total", "etcd_server_version", "etcd_snap_fsync_duration_seconds_count"))

	// etcd's types and bucket counts.
	_, _, all := send(t, "GET", srv.URL+"/metrics", "", nil)
	for _, want := range []string{
		"# TYPE etcd_server_proposals_committed_total gauge", "# TYPE etcd_server_proposals_applied_total gauge",
		"# TYPE etcd_server_proposals_failed_total counter", "# TYPE etcd_server_leader_changes_seen_total counter",
		"# TYPE etcd_disk_wal_fsync_duration_seconds histogram", "# TYPE etcd_disk_wal_write_bytes_total gauge",
		"# TYPE etcd_debugging_mvcc_keys_total gauge", `etcd_disk_wal_fsync_duration_seconds_bucket{le="8.192"}`,
		`etcd_disk_backend_commit_duration_seconds_bucket{le="8.192"}`, "go_goroutines ", "process_start_time_seconds ",
	} {
		assert.Contains(t, all, want)
	}
	assert.NotContains(t, all, `etcd_disk_wal_fsync_duration_seconds_bucket{le="16.384"}`, "14 buckets, as etcd")
}
