package embed

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/raft"
)

// get fetches rawURL and returns the status and body.
func get(t *testing.T, rawURL string) (int, string) {
	t.Helper()
	resp, err := http.Get(rawURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// leaderOf waits for a leader among members and returns it and the others.
func leaderOf(t *testing.T, members []*Member) (*Member, []*Member) {
	t.Helper()
	var leader *Member
	require.Eventually(t, func() bool {
		for _, m := range members {
			if m.Runtime().Status().State == raft.StateLeader {
				leader = m
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	var followers []*Member
	for _, m := range members {
		if m != leader {
			followers = append(followers, m)
		}
	}
	return leader, followers
}

// sample returns the value of the series named exactly series (name and
// labels as exposed) in a /metrics body, or -1 if absent.
func sample(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// TestEtcdMetricsOnACluster checks the etcd-named series a real member
// serves, with values that follow what the cluster did.
func TestEtcdMetricsOnACluster(t *testing.T) {
	members := startCluster(t, 3)
	leader, followers := leaderOf(t, members)
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 5 {
		code, body, err := put(client, leader.ClientURLs()[0]+fmt.Sprintf("/v2/keys/dir/k%d", i), url.Values{"value": {"v"}})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, code, body)
	}
	follower := fmt.Sprintf("%x", followers[0].ID())
	var body string
	require.Eventually(t, func() bool {
		_, body = get(t, leader.ClientURLs()[0]+"/metrics")
		return sample(body, `etcd_network_peer_round_trip_time_seconds_count{To="`+follower+`"}`) > 0
	}, 10*time.Second, 20*time.Millisecond, "the leader measures heartbeat round trips")

	leaderID := fmt.Sprintf("%x", leader.ID())
	for series, check := range map[string]func(float64) bool{
		"etcd_server_has_leader":                                                        func(v float64) bool { return v == 1 },
		"etcd_server_is_leader":                                                         func(v float64) bool { return v == 1 },
		"etcd_server_is_learner":                                                        func(v float64) bool { return v == 0 },
		"etcd_server_leader_changes_seen_total":                                         func(v float64) bool { return v >= 1 },
		"etcd_server_proposals_committed_total":                                         func(v float64) bool { return v >= 5 },
		"etcd_server_proposals_applied_total":                                           func(v float64) bool { return v >= 5 },
		"etcd_server_proposals_pending":                                                 func(v float64) bool { return v == 0 },
		"etcd_server_proposals_failed_total":                                            func(v float64) bool { return v == 0 },
		"etcd_debugging_mvcc_keys_total":                                                func(v float64) bool { return v == 6 }, // dir and 5 keys
		"etcd_disk_wal_fsync_duration_seconds_count":                                    func(v float64) bool { return v >= 5 },
		"etcd_disk_wal_write_bytes_total":                                               func(v float64) bool { return v > 0 },
		"etcd_disk_backend_commit_duration_seconds_count":                               func(v float64) bool { return v == 0 }, // no snapshot yet
		`etcd_network_peer_sent_bytes_total{To="` + follower + `"}`:                     func(v float64) bool { return v > 0 },
		`etcd_network_peer_received_bytes_total{From="` + follower + `"}`:               func(v float64) bool { return v > 0 },
		`etcd_network_active_peers{Local="` + leaderID + `",Remote="` + follower + `"}`: func(v float64) bool { return v == 1 },
		`etcd_server_id{server_id="` + leaderID + `"}`:                                  func(v float64) bool { return v == 1 },
		`etcd_http_received_total{method="PUT"}`:                                        func(v float64) bool { return v == 5 },
	} {
		v := sample(body, series)
		assert.True(t, check(v), "%s is %v", series, v)
	}
	// A follower knows the leader but measures no round trip.
	_, fbody := get(t, followers[0].ClientURLs()[0]+"/metrics")
	assert.Equal(t, 1.0, sample(fbody, "etcd_server_has_leader"))
	assert.Equal(t, 0.0, sample(fbody, "etcd_server_is_leader"))
	assert.Equal(t, 6.0, sample(fbody, "etcd_debugging_mvcc_keys_total"), "the follower applied the same keys")
	assert.NotContains(t, fbody, "etcd_network_peer_round_trip_time_seconds_count")
}

// The fields of etcd's /v2/stats answers and their JSON types (spec
// §11.2); "?" marks the fields etcd leaves out when zero.
var (
	storeStatsFields = []string{"getsSuccess", "getsFail", "setsSuccess", "setsFail", "deleteSuccess", "deleteFail",
		"updateSuccess", "updateFail", "createSuccess", "createFail", "compareAndSwapSuccess", "compareAndSwapFail",
		"compareAndDeleteSuccess", "compareAndDeleteFail", "expireCount", "watchers"}
	selfStatsFields = map[string]string{"name": "string", "id": "string", "state": "string", "startTime": "string",
		"leaderInfo": "object", "recvAppendRequestCnt": "number", "sendAppendRequestCnt": "number",
		"recvPkgRate?": "number", "recvBandwidthRate?": "number", "sendPkgRate?": "number", "sendBandwidthRate?": "number"}
	leaderInfoFields = map[string]string{"leader": "string", "uptime": "string", "startTime": "string"}
	latencyFields    = []string{"current", "average", "standardDeviation", "minimum", "maximum"}
)

// jsonType is the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case map[string]any:
		return "object"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// checkFields asserts that obj has exactly the fields of want (optional
// ones, marked "?", may be missing) with their types.
func checkFields(t *testing.T, what string, obj map[string]any, want map[string]string) {
	t.Helper()
	for name, typ := range want {
		field, optional := strings.CutSuffix(name, "?")
		v, ok := obj[field]
		if !ok {
			assert.True(t, optional, "%s: no field %q", what, field)
			continue
		}
		assert.Equal(t, typ, jsonType(v), "%s: field %q", what, field)
	}
	for field := range obj {
		_, known := want[field]
		_, optional := want[field+"?"]
		assert.True(t, known || optional, "%s: field %q is not etcd's", what, field)
	}
}

func numbers(names []string) map[string]string {
	out := map[string]string{}
	for _, n := range names {
		out[n] = "number"
	}
	return out
}

func getJSON(t *testing.T, rawURL string, wantCode int) map[string]any {
	t.Helper()
	code, body := get(t, rawURL)
	require.Equal(t, wantCode, code, body)
	var obj map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &obj), body)
	return obj
}

// TestStatsOnACluster checks /v2/stats/store, /self and /leader of real
// members against etcd's fields and types (spec §11.2), and that their
// counts follow what happened: writes count on every member, reads where
// served, expirations everywhere; append requests on both sides; the
// followers' heartbeat round trips on the leader, 403 elsewhere.
func TestStatsOnACluster(t *testing.T) {
	checkSpecNames(t)
	members := startCluster(t, 3)
	leader, followers := leaderOf(t, members)
	client := &http.Client{Timeout: 10 * time.Second}
	code, body, err := put(client, followers[0].ClientURLs()[0]+"/v2/keys/a", url.Values{"value": {"1"}})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code, body)
	code, _, err = put(client, leader.ClientURLs()[0]+"/v2/keys/t", url.Values{"value": {"1"}, "ttl": {"1"}})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code)
	get(t, followers[1].ClientURLs()[0]+"/v2/keys/a")
	get(t, followers[1].ClientURLs()[0]+"/v2/keys/missing")

	require.Eventually(t, func() bool {
		for _, m := range members {
			if getJSON(t, m.ClientURLs()[0]+"/v2/stats/store", 200)["expireCount"] != 1.0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "the TTL key expires on every member")
	for _, m := range members {
		store := getJSON(t, m.ClientURLs()[0]+"/v2/stats/store", 200)
		checkFields(t, "/v2/stats/store", store, numbers(storeStatsFields))
		assert.Equal(t, 2.0, store["setsSuccess"], "every member counts every write")
		wantGets := []float64{0, 0}
		if m == followers[1] {
			wantGets = []float64{1, 1}
		}
		assert.Equal(t, wantGets, []float64{store["getsSuccess"].(float64), store["getsFail"].(float64)}, "reads count where served")
	}

	self := getJSON(t, followers[0].ClientURLs()[0]+"/v2/stats/self", 200)
	checkFields(t, "/v2/stats/self", self, selfStatsFields)
	checkFields(t, "leaderInfo", self["leaderInfo"].(map[string]any), leaderInfoFields)
	assert.Equal(t, "StateFollower", self["state"])
	assert.Equal(t, fmt.Sprintf("%x", leader.ID()), self["leaderInfo"].(map[string]any)["leader"])
	assert.Greater(t, self["recvAppendRequestCnt"], 0.0)
	leaderSelf := getJSON(t, leader.ClientURLs()[0]+"/v2/stats/self", 200)
	assert.Equal(t, "StateLeader", leaderSelf["state"])
	assert.Greater(t, leaderSelf["sendAppendRequestCnt"], 0.0)

	code, body = get(t, followers[0].ClientURLs()[0]+"/v2/stats/leader")
	assert.Equal(t, http.StatusForbidden, code)
	assert.Equal(t, `{"message":"not current leader"}`, body)
	var stats map[string]any
	require.Eventually(t, func() bool {
		stats = getJSON(t, leader.ClientURLs()[0]+"/v2/stats/leader", 200)
		for _, f := range followers {
			fs, ok := stats["followers"].(map[string]any)[fmt.Sprintf("%x", f.ID())].(map[string]any)
			if !ok || fs["counts"].(map[string]any)["success"].(float64) < 3 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "the leader hears its heartbeats answered")
	checkFields(t, "/v2/stats/leader", stats, map[string]string{"leader": "string", "followers": "object"})
	assert.Equal(t, fmt.Sprintf("%x", leader.ID()), stats["leader"])
	for id, f := range stats["followers"].(map[string]any) {
		fs := f.(map[string]any)
		checkFields(t, "follower "+id, fs, map[string]string{"latency": "object", "counts": "object"})
		lat := fs["latency"].(map[string]any)
		checkFields(t, "latency", lat, numbers(latencyFields))
		checkFields(t, "counts", fs["counts"].(map[string]any), numbers([]string{"fail", "success"}))
		assert.Greater(t, lat["average"], 0.0)
		assert.LessOrEqual(t, lat["minimum"], lat["average"])
		assert.GreaterOrEqual(t, lat["maximum"], lat["average"])
	}
	code, body = get(t, leader.ClientURLs()[0]+"/health")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, `{"health":"true","reason":""}`, body)
}

// specPath is the etcd v2 API specification, next to the repository.
const specPath = "../../shared/spec/etcd-v2-api.md"

// checkSpecNames checks that every field name above is one the spec's
// §11.2 names, when the spec is at hand (it lives beside the repository,
// not in it).
func checkSpecNames(t *testing.T) {
	spec, err := os.ReadFile(specPath)
	if err != nil {
		t.Logf("no spec at %s: the field lists are not checked against it", specPath)
		return
	}
	section := string(spec)
	start := strings.Index(section, "### 11.2")
	require.GreaterOrEqual(t, start, 0, "the spec has no §11.2")
	section = section[start:]
	if end := strings.Index(section[1:], "\n### "); end > 0 {
		section = section[:end+1]
	}
	var names []string
	names = append(names, storeStatsFields...)
	names = append(names, latencyFields...)
	for n := range selfStatsFields {
		names = append(names, strings.TrimSuffix(n, "?"))
	}
	for n := range leaderInfoFields {
		names = append(names, n)
	}
	names = append(names, "followers", "fail", "success")
	slices.Sort(names)
	for _, n := range slices.Compact(names) {
		assert.Regexp(t, regexp.MustCompile(`\b`+n+`\b`), section, "spec §11.2 names %q", n)
	}
}

// TestIdentityHandlerAddsEachAttributeOnce checks that every line gets the
// member's identity, and that a line naming one of those keys itself keeps
// its own value and no duplicate key.
func TestIdentityHandlerAddsEachAttributeOnce(t *testing.T) {
	var buf strings.Builder
	id := &logIdentity{name: "m1", dataDir: "m1.data"}
	logger := withIdentity(slog.New(slog.NewJSONHandler(&buf, nil)), id)
	logger.Info("before the IDs are known")
	id.memberID.Store(0xab)
	id.clusterID.Store(0xcd)
	urls := []string{"http://c"}
	id.clientURLs.Store(&urls)
	logger.With("k", "v").Info("after", "cluster-id", "ef")
	out := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, out, 2)
	assert.Contains(t, out[0], `"name":"m1"`)
	assert.NotContains(t, out[0], "local-member-id")
	assert.Contains(t, out[1], `"local-member-id":"ab"`)
	assert.Contains(t, out[1], `"advertise-client-urls":["http://c"]`)
	assert.Equal(t, 1, strings.Count(out[1], `"cluster-id"`))
	assert.Contains(t, out[1], `"cluster-id":"ef"`)
}
