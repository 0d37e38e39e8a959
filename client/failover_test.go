package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeMember is an httptest server that answers with handle and counts
// the requests it got.
type fakeMember struct {
	*httptest.Server
	hits atomic.Int64
}

func newFakeMember(t *testing.T, handle http.HandlerFunc) *fakeMember {
	f := &fakeMember{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		handle(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// answer writes an etcd JSON answer.
func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Etcd-Index", "7")
	w.WriteHeader(status)
	io.WriteString(w, body+"\n")
}

const timedOut = `{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}`

func okGet(w http.ResponseWriter, _ *http.Request) {
	answer(w, http.StatusOK, `{"action":"get","node":{"key":"/a","value":"1","modifiedIndex":5,"createdIndex":5}}`)
}

func failing(w http.ResponseWriter, _ *http.Request) {
	answer(w, http.StatusInternalServerError, timedOut)
}

// closedEndpoint is a loopback URL nothing listens at.
func closedEndpoint(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

func newTestClient(t *testing.T, eps ...string) *Client {
	c, err := New(Config{Endpoints: eps})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func TestFailoverOn5xxAndNetworkErrors(t *testing.T) {
	bad := newFakeMember(t, failing)
	good := newFakeMember(t, okGet)
	c := newTestClient(t, closedEndpoint(t), bad.URL, good.URL)
	resp, err := c.Get(context.Background(), "/a", nil)
	require.NoError(t, err)
	assert.Equal(t, "1", resp.Node.Value)
	assert.Equal(t, uint64(7), resp.Index)
	assert.Equal(t, good.URL, c.Endpoints()[0], "the endpoint that answered is tried first from now on")

	_, err = c.Get(context.Background(), "/a", nil)
	require.NoError(t, err)
	assert.Equal(t, int64(1), bad.hits.Load(), "a pinned endpoint is asked first")
}

func TestAllEndpointsFailingIsAClusterError(t *testing.T) {
	bad := newFakeMember(t, failing)
	c := newTestClient(t, closedEndpoint(t), bad.URL)
	_, err := c.Get(context.Background(), "/a", nil)
	var cerr *ClusterError
	require.ErrorAs(t, err, &cerr)
	require.Len(t, cerr.Errors, 2)
	assert.Contains(t, err.Error(), "client: etcd cluster is unavailable or misconfigured; error #0: ")
	assert.True(t, HasCode(err, ErrorCodeRaftInternal), "the server's error is kept: %v", err)
}

// TestOneShotWritesAreNotRepeated: a create, a compare-and-swap, an
// in-order create and a delete that failed at a member that received them
// are not sent to the next one; one that could not connect is.
func TestOneShotWritesAreNotRepeated(t *testing.T) {
	ctx := context.Background()
	writes := map[string]func(c *Client) error{
		"create": func(c *Client) error { _, err := c.Create(ctx, "/a", "1", nil); return err },
		"cas": func(c *Client) error {
			_, err := c.Set(ctx, "/a", "2", &SetOptions{PrevValue: "1"})
			return err
		},
		"in-order": func(c *Client) error { _, err := c.CreateInOrder(ctx, "/q", "1", nil); return err },
		"delete":   func(c *Client) error { _, err := c.Delete(ctx, "/a", nil); return err },
		"member add": func(c *Client) error {
			_, err := c.Members().Add(ctx, "http://127.0.0.1:1")
			return err
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			bad := newFakeMember(t, failing)
			next := newFakeMember(t, okGet)
			err := write(newTestClient(t, bad.URL, next.URL))
			require.Error(t, err)
			assert.Equal(t, int64(0), next.hits.Load(), "a write that reached a member is not repeated")
			if name != "member add" {
				var e *Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, ErrorCodeRaftInternal, e.Code)
			}

			reset := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			})
			next = newFakeMember(t, okGet)
			err = write(newTestClient(t, reset.URL, next.URL))
			var cerr *ClusterError
			require.ErrorAs(t, err, &cerr)
			assert.Equal(t, int64(0), next.hits.Load(), "a write whose connection broke is not repeated")

			next = newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
				answer(w, http.StatusCreated, `{"action":"create","node":{"key":"/a","value":"1","modifiedIndex":5,"createdIndex":5}}`)
			})
			_ = write(newTestClient(t, closedEndpoint(t), next.URL))
			assert.Equal(t, int64(1), next.hits.Load(), "a write that could not connect goes to the next member")
		})
	}
}

func TestPlainSetIsRetriedElsewhere(t *testing.T) {
	bad := newFakeMember(t, failing)
	good := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusCreated, `{"action":"set","node":{"key":"/a","value":"1","modifiedIndex":5,"createdIndex":5}}`)
	})
	resp, err := newTestClient(t, bad.URL, good.URL).Set(context.Background(), "/a", "1", nil)
	require.NoError(t, err)
	assert.Equal(t, "set", resp.Action)
}

// TestRequestsAreTheOfficialClientsRequests checks the wire form of each
// request against spec §11.3.
func TestRequestsAreTheOfficialClientsRequests(t *testing.T) {
	var got *http.Request
	var form url.Values
	f := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		require.NoError(t, r.ParseForm())
		form = r.PostForm
		answer(w, http.StatusOK, `{"action":"set","node":{"key":"/a b","value":"v","modifiedIndex":5,"createdIndex":5}}`)
	})
	c := newTestClient(t, f.URL)
	ctx := context.Background()

	_, err := c.Get(ctx, "a b", &GetOptions{Recursive: true, Sort: true})
	require.NoError(t, err)
	assert.Equal(t, "GET /v2/keys/a%20b", got.Method+" "+got.URL.EscapedPath())
	assert.Equal(t, url.Values{"quorum": {"false"}, "recursive": {"true"}, "sorted": {"true"}}, got.URL.Query())

	_, err = c.Set(ctx, "/a", "v", &SetOptions{PrevValue: "p", PrevIndex: 3, PrevExist: PrevExist, TTL: 1500 * time.Millisecond, NoValueOnSuccess: true})
	require.NoError(t, err)
	assert.Equal(t, "PUT", got.Method)
	assert.Equal(t, formContentType, got.Header.Get("Content-Type"))
	assert.Equal(t, url.Values{"prevValue": {"p"}, "prevIndex": {"3"}, "prevExist": {"true"}, "noValueOnSuccess": {"true"}}, got.URL.Query())
	assert.Equal(t, url.Values{"value": {"v"}, "ttl": {"2"}}, form, "a TTL goes in whole seconds, rounded up")

	_, err = c.Set(ctx, "/d", "ignored", &SetOptions{Dir: true, TTL: time.Second, Refresh: true})
	require.NoError(t, err)
	assert.Equal(t, url.Values{"dir": {"true"}}, got.URL.Query())
	assert.Equal(t, url.Values{"ttl": {"1"}, "refresh": {"true"}}, form, "a directory sends no value")

	_, err = c.Delete(ctx, "/d/../x", &DeleteOptions{PrevIndex: 4, Recursive: true, Dir: true})
	require.NoError(t, err)
	assert.Equal(t, "DELETE /v2/keys/x", got.Method+" "+got.URL.Path, "keys are cleaned, so that the server has no redirect to send")
	assert.Equal(t, url.Values{"prevIndex": {"4"}, "dir": {"true"}, "recursive": {"true"}}, got.URL.Query())

	_, err = c.CreateInOrder(ctx, "/q", "job", &CreateInOrderOptions{TTL: 3 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, "POST /v2/keys/q", got.Method+" "+got.URL.Path)
	assert.Equal(t, url.Values{"value": {"job"}, "ttl": {"3"}}, form)
}

func TestWatcherFollowsTheIndexAndSurvivesEmptyAnswers(t *testing.T) {
	var waitIndexes []string
	calls := 0
	f := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
		calls++
		waitIndexes = append(waitIndexes, r.URL.Query().Get("waitIndex"))
		assert.Equal(t, "true", r.URL.Query().Get("wait"))
		assert.Equal(t, "true", r.URL.Query().Get("recursive"))
		switch calls {
		case 1:
			w.WriteHeader(http.StatusOK) // the server ended the watch without an event
		case 2:
			answer(w, http.StatusOK, `{"action":"set","node":{"key":"/d/a","value":"1","modifiedIndex":12,"createdIndex":12}}`)
		default:
			answer(w, http.StatusBadRequest, `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [1013/13]","index":2012}`)
		}
	})
	w := newTestClient(t, f.URL).Watcher("/d", &WatcherOptions{AfterIndex: 9, Recursive: true})
	ev, err := w.Next(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "/d/a", ev.Node.Key)
	_, err = w.Next(context.Background())
	assert.True(t, IsIndexCleared(err), "%v", err)
	assert.Equal(t, []string{"10", "10", "13"}, waitIndexes)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, uint64(2012), e.Index)
}

func TestWatcherNextHonoursItsContext(t *testing.T) {
	f := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := newTestClient(t, f.URL).Watcher("/a", nil).Next(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestErrorsCarryEtcdsFields(t *testing.T) {
	f := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusNotFound, `{"errorCode":100,"message":"Key not found","cause":"/foo","index":12}`)
	})
	_, err := newTestClient(t, f.URL).Get(context.Background(), "/foo", nil)
	assert.True(t, IsKeyNotFound(err))
	assert.EqualError(t, err, "100: Key not found (/foo) [12]")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusNotFound, e.StatusCode)
}

func TestPromoteAgainstAServerWithoutLearners(t *testing.T) {
	// etcd reads any POST under /v2/members as an add and refuses one
	// without a JSON body.
	f := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Empty(t, r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusUnsupportedMediaType)
		io.WriteString(w, `{"message":"Bad Content-Type , accept application/json"}`)
	})
	err := newTestClient(t, f.URL).Members().Promote(context.Background(), "beef")
	assert.ErrorIs(t, err, ErrPromoteUnsupported)
	assert.Error(t, newTestClient(t, f.URL).Members().Promote(context.Background(), "xyz"), "not a hex ID")
}

func TestEndpointsWithoutSchemeAreHTTP(t *testing.T) {
	c, err := New(Config{Endpoints: []string{"127.0.0.1:2379", "https://h:1/"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"http://127.0.0.1:2379", "https://h:1"}, c.Endpoints())
	_, err = New(Config{})
	assert.ErrorIs(t, err, ErrNoEndpoints)
	_, err = New(Config{Endpoints: []string{"ftp://x:1"}})
	assert.Error(t, err)
}

func TestContextEndsTheCallAtOnce(t *testing.T) {
	f := newFakeMember(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newTestClient(t, f.URL, f.URL).Get(ctx, "/a", nil)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), fmt.Sprint(err))
	assert.Less(t, time.Since(start), time.Second)
}
