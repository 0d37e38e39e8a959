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
