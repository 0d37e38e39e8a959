package rpc

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/server"
)

// newTestAPI serves an API over a fake member on a loopback port.
func newTestAPI(t *testing.T, opts APIOptions) (*API, *fakeBackend, *httptest.Server) {
	t.Helper()
	backend := newFakeBackend(t)
	if opts.Clock == nil {
		clock := &fakeClock{now: fakeEpoch}
		opts.Clock = clock.Now
	}
	api, err := NewAPI(backend, opts)
	require.NoError(t, err)
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.Close()
		srv.Close()
	})
	return api, backend, srv
}

// send makes one request and returns the status, headers and body.
func send(t *testing.T, method, target, contentType string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

const formType = "application/x-www-form-urlencoded"

// TestKeysDispatch checks which member request each HTTP request becomes
// (spec §6.1): reads linearizable unless asked otherwise, HEAD local,
// writes with the parameters passed through and the API's clock as Now.
func TestKeysDispatch(t *testing.T) {
	tests := []struct {
		name, method, target, body string
		serializableReads          bool
		want                       server.Request
	}{
		{name: "plain GET is linearizable", method: "GET", target: "/v2/keys/a?recursive=true&sorted=true",
			want: server.Request{Kind: server.RequestRead, Path: "/a", Get: kvstore.GetOptions{Recursive: true, Sorted: true}}},
		{name: "quorum GET", method: "GET", target: "/v2/keys/a?quorum=true",
			want: server.Request{Kind: server.RequestRead, Path: "/a"}},
		{name: "serializable reads", method: "GET", target: "/v2/keys/a", serializableReads: true,
			want: server.Request{Kind: server.RequestRead, Path: "/a", Serializable: true}},
		{name: "quorum overrides serializable reads", method: "GET", target: "/v2/keys/a?quorum=true", serializableReads: true,
			want: server.Request{Kind: server.RequestRead, Path: "/a"}},
		{name: "quorum ignores wait", method: "GET", target: "/v2/keys/a?quorum=true&wait=true",
			want: server.Request{Kind: server.RequestRead, Path: "/a"}},
		{name: "HEAD is local", method: "HEAD", target: "/v2/keys/a?quorum=true",
			want: server.Request{Kind: server.RequestRead, Path: "/a", Serializable: true}},
		{name: "watch", method: "GET", target: "/v2/keys/a/?wait=true&recursive=true&stream=true&waitIndex=7",
			want: server.Request{Kind: server.RequestWatch, Path: "/a", Watch: kvstore.WatchOptions{Recursive: true, Stream: true, SinceIndex: 7}}},
		{name: "root", method: "GET", target: "/v2/keys",
			want: server.Request{Kind: server.RequestRead, Path: "/"}},
		{name: "PUT carries every parameter", method: "PUT",
			target: "/v2/keys/a?prevValue=p&prevIndex=3&prevExist=true&dir=false&sorted=true", body: "value=v&ttl=9",
			want: server.Request{Kind: server.RequestWrite, Path: "/a", Command: kvstore.Command{
				Op: kvstore.OpSet, Path: "/a", Value: "v", PrevValue: "p", PrevIndex: 3,
				PrevExist: kvstore.PrevExistTrue, HasTTL: true, TTL: 9}}},
		{name: "PUT create", method: "PUT", target: "/v2/keys/a?prevExist=false&dir=true",
			want: server.Request{Kind: server.RequestWrite, Path: "/a", Command: kvstore.Command{
				Op: kvstore.OpSet, Path: "/a", Dir: true, PrevExist: kvstore.PrevExistFalse}}},
		{name: "PUT refresh", method: "PUT", target: "/v2/keys/a?refresh=true&ttl=5",
			want: server.Request{Kind: server.RequestWrite, Path: "/a", Command: kvstore.Command{
				Op: kvstore.OpSet, Path: "/a", Refresh: true, HasTTL: true, TTL: 5}}},
		{name: "POST ignores comparisons", method: "POST", target: "/v2/keys/q?prevExist=true&prevValue=x&prevIndex=2", body: "value=v&ttl=0",
			want: server.Request{Kind: server.RequestWrite, Path: "/q", Command: kvstore.Command{
				Op: kvstore.OpCreateInOrder, Path: "/q", Value: "v", HasTTL: true}}},
		{name: "DELETE", method: "DELETE", target: "/v2/keys/a?recursive=true&dir=true&prevIndex=4&prevValue=x",
			want: server.Request{Kind: server.RequestWrite, Path: "/a", Command: kvstore.Command{
				Op: kvstore.OpDelete, Path: "/a", Dir: true, Recursive: true, PrevValue: "x", PrevIndex: 4}}},
		{name: "DELETE ignores its body", method: "DELETE", target: "/v2/keys/a", body: "prevValue=x",
			want: server.Request{Kind: server.RequestWrite, Path: "/a", Command: kvstore.Command{Op: kvstore.OpDelete, Path: "/a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, backend, srv := newTestAPI(t, APIOptions{SerializableReads: tt.serializableReads})
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			if tt.want.Kind == server.RequestWatch {
				// The watch stays open: take the headers and leave.
				ctx, cancel := context.WithCancel(context.Background())
				req, err := http.NewRequestWithContext(ctx, tt.method, srv.URL+tt.target, nil)
				require.NoError(t, err)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				cancel()
				resp.Body.Close()
			} else {
				send(t, tt.method, srv.URL+tt.target, formType, body)
			}
			got := backend.lastRequest()
			want := tt.want
			want.Now = fakeEpoch
			assert.Equal(t, want, got)
		})
	}
}

// TestKeysBodyLimits covers the request and value size limits (spec §3.1).
func TestKeysBodyLimits(t *testing.T) {
	t.Run("etcd's 10 MiB form limit", func(t *testing.T) {
		_, _, srv := newTestAPI(t, APIOptions{})
		body := "value=" + strings.Repeat("x", 11<<20)
		code, h, got := send(t, "PUT", srv.URL+"/v2/keys/big", formType, strings.NewReader(body))
		assert.Equal(t, http.StatusBadRequest, code)
		assert.Equal(t, "0", h.Get("X-Etcd-Index"))
		assert.Equal(t, `{"errorCode":210,"message":"Invalid POST form","cause":"http: POST too large","index":0}`+"\n", got)
	})
	t.Run("a 2 MiB value is accepted", func(t *testing.T) {
		_, backend, srv := newTestAPI(t, APIOptions{})
		value := strings.Repeat("v", 2<<20)
		code, _, _ := send(t, "PUT", srv.URL+"/v2/keys/big", formType, strings.NewReader("value="+value))
		assert.Equal(t, http.StatusCreated, code)
		assert.Equal(t, value, backend.lastRequest().Command.Value)
	})
	t.Run("a smaller body limit", func(t *testing.T) {
		_, _, srv := newTestAPI(t, APIOptions{MaxBodyBytes: 1024})
		code, _, got := send(t, "PUT", srv.URL+"/v2/keys/big", formType, strings.NewReader("value="+strings.Repeat("x", 2000)))
		assert.Equal(t, http.StatusBadRequest, code)
		assert.Equal(t, `{"errorCode":210,"message":"Invalid POST form","cause":"http: request body too large","index":0}`+"\n", got)
	})
	t.Run("value size limit, before proposing", func(t *testing.T) {
		_, backend, srv := newTestAPI(t, APIOptions{MaxValueSize: 10})
		code, _, got := send(t, "PUT", srv.URL+"/v2/keys/v", formType, strings.NewReader("value=12345678901"))
		assert.Equal(t, http.StatusBadRequest, code)
		assert.Equal(t, `{"errorCode":209,"message":"Invalid field","cause":"value is 11 bytes long, the limit is 10","index":0}`+"\n", got)
		assert.Empty(t, backend.requests, "nothing proposed")
		code, _, _ = send(t, "POST", srv.URL+"/v2/keys/q", formType, strings.NewReader("value=1234567890"))
		assert.Equal(t, http.StatusCreated, code)
	})
}

// TestKeysMemberFailures covers answers when the member fails: always
// error 300 with etcd's cause, HTTP 500 (etcd clients then try another
// member), index 0.
func TestKeysMemberFailures(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		cause string
	}{
		{"timeout from the member", kvstore.NewError(kvstore.CodeRaftInternal, server.ErrTimeout.Error(), 0), "etcdserver: request timed out"},
		{"no answer in time", context.DeadlineExceeded, "etcdserver: request timed out"},
		{"member stopped", server.ErrRuntimeStopped, "etcdserver: server stopped"},
		{"anything else", errors.New("disk on fire"), "disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, backend, srv := newTestAPI(t, APIOptions{})
			backend.doErr = tt.err
			code, h, got := send(t, "PUT", srv.URL+"/v2/keys/a", formType, strings.NewReader("value=1"))
			assert.Equal(t, http.StatusInternalServerError, code)
			assert.Equal(t, "0", h.Get("X-Etcd-Index"))
			assert.Empty(t, h.Get("X-Raft-Index"))
			assert.Equal(t, `{"errorCode":300,"message":"Raft Internal Error","cause":"`+tt.cause+`","index":0}`+"\n", got)
		})
	}
}

// blockingBackend never answers: requests wait for their context.
type blockingBackend struct{ *fakeBackend }

func (b blockingBackend) Do(ctx context.Context, req server.Request) (server.Response, error) {
	<-ctx.Done()
	return server.Response{}, ctx.Err()
}

func TestKeysRequestTimeout(t *testing.T) {
	api, err := NewAPI(blockingBackend{newFakeBackend(t)}, APIOptions{RequestTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	srv := httptest.NewServer(api)
	defer srv.Close()
	start := time.Now()
	code, _, got := send(t, "GET", srv.URL+"/v2/keys/a", "", nil)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.Equal(t, `{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}`+"\n", got)
}

func TestCORS(t *testing.T) {
	t.Run("every origin by default", func(t *testing.T) {
		_, _, srv := newTestAPI(t, APIOptions{})
		_, h, _ := send(t, "GET", srv.URL+"/v2/keys/", "", nil)
		assert.Equal(t, "*", h.Get("Access-Control-Allow-Origin"))
		assert.Equal(t, "POST, GET, OPTIONS, PUT, DELETE", h.Get("Access-Control-Allow-Methods"))
		assert.Equal(t, "accept, content-type, authorization", h.Get("Access-Control-Allow-Headers"))
	})
	t.Run("listed origins only", func(t *testing.T) {
		_, _, srv := newTestAPI(t, APIOptions{CORSOrigins: []string{"http://ok.example"}})
		req, err := http.NewRequest("OPTIONS", srv.URL+"/v2/keys/a", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", "http://ok.example")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "http://ok.example", resp.Header.Get("Access-Control-Allow-Origin"))
		req.Header.Set("Origin", "http://evil.example")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	})
}

func TestNewAPIRefusesBadOptions(t *testing.T) {
	_, err := NewAPI(nil, APIOptions{})
	assert.Error(t, err)
	_, err = NewAPI(newFakeBackend(t), APIOptions{MaxBodyBytes: -1})
	assert.Error(t, err)
}

// TestKeysPercentDecoding: keys are the decoded URL path (spec §2).
func TestKeysPercentDecoding(t *testing.T) {
	_, backend, srv := newTestAPI(t, APIOptions{})
	send(t, "PUT", srv.URL+"/v2/keys/"+url.PathEscape("a b")+"/%E2%9C%93", formType, strings.NewReader("value=1"))
	assert.Equal(t, "/a b/✓", backend.lastRequest().Path)
}

// newServer serves api on a loopback port until the test ends.
func newServer(t testing.TB, api *API) string {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		api.Close()
		srv.Close()
	})
	return srv.URL
}

// TestCORSSharedValuesStayPut: the CORS values every answer shares are
// never written through: adding to one of their headers on one answer
// leaves the next answer's as they were.
func TestCORSSharedValuesStayPut(t *testing.T) {
	first := httptest.NewRecorder()
	addCORSHeaders(first, "*")
	first.Header().Add("Access-Control-Allow-Origin", "https://example.com")
	first.Header().Add("Access-Control-Allow-Methods", "PATCH")
	second := httptest.NewRecorder()
	addCORSHeaders(second, "*")
	assert.Equal(t, []string{"*"}, second.Header()["Access-Control-Allow-Origin"])
	assert.Equal(t, []string{"POST, GET, OPTIONS, PUT, DELETE"}, second.Header()["Access-Control-Allow-Methods"])
	assert.Equal(t, []string{"*", "https://example.com"}, first.Header()["Access-Control-Allow-Origin"])
	assert.Equal(t, []string{"POST, GET, OPTIONS, PUT, DELETE", "PATCH"}, first.Header()["Access-Control-Allow-Methods"])
}
