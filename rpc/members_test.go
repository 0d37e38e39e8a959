package rpc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/server"
)

// changingBackend is a fake member that can change membership.
type changingBackend struct {
	*fakeBackend
	err error
	// got records the last change asked.
	got string
}

func (b *changingBackend) AddMember(ctx context.Context, peerURLs []string) (server.MemberInfo, error) {
	b.got = "add " + strings.Join(peerURLs, ",")
	if b.err != nil {
		return server.MemberInfo{}, b.err
	}
	return server.MemberInfo{ID: 0xbeef, PeerURLs: peerURLs}, nil
}

func (b *changingBackend) RemoveMember(ctx context.Context, id uint64) error {
	b.got = "remove " + formatID(id)
	return b.err
}

func (b *changingBackend) UpdateMember(ctx context.Context, id uint64, peerURLs []string) error {
	b.got = "update " + formatID(id) + " " + strings.Join(peerURLs, ",")
	return b.err
}

func (b *changingBackend) PromoteMember(ctx context.Context, id uint64) error {
	b.got = "promote " + formatID(id)
	return b.err
}

// TestMembershipChanges: the members handler maps a MembershipChanger's
// answers to etcd's statuses and bodies (spec §11.1).
func TestMembershipChanges(t *testing.T) {
	tests := []struct {
		name, method, target, body string
		err                        error
		wantCode                   int
		wantBody, wantCall         string
	}{
		{"promote", "POST", "/v2/members/beef/promote", "", nil, http.StatusNoContent, "", "promote beef"},
		{"promote a voter", "POST", "/v2/members/beef/promote", "", server.ErrNotLearner,
			http.StatusBadRequest, `{"message":"membership: can only promote a learner member"}`, "promote beef"},
		{"add", "POST", "/v2/members", `{"peerURLs":["http://b:2380","http://a:2380"]}`, nil,
			http.StatusCreated, `{"id":"beef","name":"","peerURLs":["http://a:2380","http://b:2380"],"clientURLs":[]}` + "\n",
			"add http://a:2380,http://b:2380"},
		{"add, peer URL taken", "POST", "/v2/members", `{"peerURLs":["http://a:2380"]}`, ErrPeerURLExists,
			http.StatusConflict, `{"message":"membership: peerURL exists"}`, "add http://a:2380"},
		{"add, ID taken", "POST", "/v2/members", `{"peerURLs":["http://a:2380"]}`, ErrMemberExists,
			http.StatusConflict, `{"message":"membership: ID exists"}`, "add http://a:2380"},
		{"add fails", "POST", "/v2/members", `{"peerURLs":["http://a:2380"]}`, errors.New("timeout"),
			http.StatusInternalServerError, `{"message":"Internal Server Error"}`, "add http://a:2380"},
		{"remove", "DELETE", "/v2/members/1a2b", "", nil, http.StatusNoContent, "", "remove 1a2b"},
		{"remove, removed before", "DELETE", "/v2/members/0ab", "", ErrMemberRemoved,
			http.StatusGone, `{"message":"Member permanently removed: ab"}`, "remove ab"},
		{"remove, unknown", "DELETE", "/v2/members/ab", "", ErrMemberNotFound,
			http.StatusNotFound, `{"message":"No such member: ab"}`, "remove ab"},
		{"update", "PUT", "/v2/members/1a2b", `{"peerURLs":["http://c:2380"]}`, nil,
			http.StatusNoContent, "", "update 1a2b http://c:2380"},
		{"update, peer URL taken", "PUT", "/v2/members/1a2b", `{"peerURLs":["http://c:2380"]}`, ErrPeerURLExists,
			http.StatusConflict, `{"message":"membership: peerURL exists"}`, "update 1a2b http://c:2380"},
		{"update, unknown", "PUT", "/v2/members/ab", `{"peerURLs":["http://c:2380"]}`, ErrMemberNotFound,
			http.StatusNotFound, `{"message":"No such member: ab"}`, "update ab http://c:2380"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := &changingBackend{fakeBackend: newFakeBackend(t), err: tt.err}
			api, err := NewAPI(backend, APIOptions{})
			require.NoError(t, err)
			url := newServer(t, api)
			code, h, body := send(t, tt.method, url+tt.target, "application/json", strings.NewReader(tt.body))
			assert.Equal(t, tt.wantCode, code)
			assert.Equal(t, tt.wantBody, body)
			assert.Equal(t, tt.wantCall, backend.got)
			assert.Equal(t, "cafe0123", h.Get("X-Etcd-Cluster-Id"))
		})
	}
}

func TestMembersLeader(t *testing.T) {
	_, backend, srv := newTestAPI(t, APIOptions{})
	backend.leader = 0
	code, _, body := send(t, "GET", srv.URL+"/v2/members/leader", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, `{"message":"During election"}`, body)

	backend.members = append(backend.members, server.MemberInfo{ID: 0x3c, PeerURLs: []string{"http://127.0.0.1:2381"}})
	backend.leader = 0x3c
	code, _, body = send(t, "GET", srv.URL+"/v2/members/leader", "", nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, `{"id":"3c","name":"","peerURLs":["http://127.0.0.1:2381"],"clientURLs":[]}`+"\n", body)

	code, _, body = send(t, "GET", srv.URL+"/v2/members", "", nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, `{"members":[{"id":"1a2b","name":"one","peerURLs":["http://127.0.0.1:2380"],"clientURLs":["http://127.0.0.1:2379"]},`+
		`{"id":"3c","name":"","peerURLs":["http://127.0.0.1:2381"],"clientURLs":[]}]}`+"\n", body)
}

func TestMachines(t *testing.T) {
	_, backend, srv := newTestAPI(t, APIOptions{})
	backend.members = []server.MemberInfo{
		{ID: 1, ClientURLs: []string{"http://b:2379", "http://a:2379"}},
		{ID: 2, ClientURLs: []string{"http://0:2379"}},
		{ID: 3},
	}
	code, _, body := send(t, "GET", srv.URL+"/v2/machines", "", nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "http://0:2379, http://a:2379, http://b:2379", body)
}

// TestHealth covers /health's unhealthy answers: 503, the JSON and a
// newline, as plain text (spec §11.2), in etcd's order of checks, and the
// counters of etcd_server_health_success and _failures.
func TestHealth(t *testing.T) {
	t.Run("no leader", func(t *testing.T) {
		_, backend, srv := newTestAPI(t, APIOptions{})
		backend.leader = 0
		code, h, body := send(t, "GET", srv.URL+"/health", "", nil)
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Equal(t, "text/plain; charset=utf-8", h.Get("Content-Type"))
		assert.Equal(t, `{"health":"false","reason":"RAFT NO LEADER"}`+"\n", body)
		// serializable=true skips the leader check and reads locally.
		code, _, body = send(t, "GET", srv.URL+"/health?serializable=true", "", nil)
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, `{"health":"true","reason":""}`, body)
		assert.True(t, backend.lastRequest().Serializable)
		assert.Equal(t, "etcd_server_health_failures 1\netcd_server_health_success 1",
			scrape(t, srv.URL, "etcd_server_health_failures", "etcd_server_health_success"))
	})
	t.Run("alarm first", func(t *testing.T) {
		_, backend, srv := newTestAPI(t, APIOptions{})
		backend.leader, backend.noSpace = 0, true
		code, _, body := send(t, "GET", srv.URL+"/health", "", nil)
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Equal(t, `{"health":"false","reason":"ALARM NOSPACE"}`+"\n", body)
		// Excluding the alarm leaves the leader check.
		_, _, body = send(t, "GET", srv.URL+"/health?exclude=NOSPACE", "", nil)
		assert.Equal(t, `{"health":"false","reason":"RAFT NO LEADER"}`+"\n", body)
		backend.leader = fakeSelf
		code, _, _ = send(t, "GET", srv.URL+"/health?exclude=NOSPACE", "", nil)
		assert.Equal(t, http.StatusOK, code)
	})
	t.Run("read fails", func(t *testing.T) {
		_, backend, srv := newTestAPI(t, APIOptions{})
		backend.doErr = kvstore.NewError(kvstore.CodeRaftInternal, server.ErrTimeout.Error(), 0)
		code, _, body := send(t, "GET", srv.URL+"/health", "", nil)
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Equal(t, `{"health":"false","reason":"QGET ERROR:etcdserver: request timed out"}`+"\n", body)
		got := backend.lastRequest()
		assert.Equal(t, server.RequestRead, got.Kind)
		assert.False(t, got.Serializable, "the health read is linearizable")
	})
}

func TestStats(t *testing.T) {
	_, backend, srv := newTestAPI(t, APIOptions{})
	// The member counts; the API maps each count to etcd's field.
	backend.storeStats = server.StoreStats{
		GetsSuccess: 1, GetsFail: 2, SetsSuccess: 3, SetsFail: 4, DeleteSuccess: 5, DeleteFail: 6,
		UpdateSuccess: 7, UpdateFail: 8, CreateSuccess: 9, CreateFail: 10, CompareAndSwapSuccess: 11,
		CompareAndSwapFail: 12, CompareAndDeleteSuccess: 13, CompareAndDeleteFail: 14, ExpireCount: 15,
	}
	_, _ = openWatch(t, srv.URL+"/v2/keys/w?wait=true")
	code, _, body := send(t, "GET", srv.URL+"/v2/stats/store", "", nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, `{"getsSuccess":1,"getsFail":2,"setsSuccess":3,"setsFail":4,"deleteSuccess":5,"deleteFail":6,`+
		`"updateSuccess":7,"updateFail":8,"createSuccess":9,"createFail":10,"compareAndSwapSuccess":11,"compareAndSwapFail":12,`+
		`"compareAndDeleteSuccess":13,"compareAndDeleteFail":14,"expireCount":15,"watchers":1}`, body)

	// The member has led since 90 s before the API started: the uptime
	// counts from then, not from the first request.
	backend.leaderSince = fakeEpoch.Add(-90 * time.Second)
	code, _, body = send(t, "GET", srv.URL+"/v2/stats/self", "", nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, `{"name":"one","id":"1a2b","state":"StateLeader","startTime":"2024-05-01T10:00:00.123456789Z",`+
		`"leaderInfo":{"leader":"1a2b","uptime":"1m30s","startTime":"2024-05-01T09:58:30.123456789Z"},`+
		`"recvAppendRequestCnt":0,"sendAppendRequestCnt":0}`, body)

	backend.state = raft.StateFollower
	code, _, body = send(t, "GET", srv.URL+"/v2/stats/leader", "", nil)
	assert.Equal(t, http.StatusForbidden, code)
	assert.Equal(t, `{"message":"not current leader"}`, body)
}
