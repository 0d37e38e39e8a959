package rpc

import (
	"context"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/server"
)

// A request deadline expires, then serves the next request afresh; a timer
// that fires late, after its request ended and the next began, leaves the
// next one alone.
func TestRequestDeadline(t *testing.T) {
	d := newRequestDeadline(context.Background(), 20*time.Millisecond)
	defer d.disarm()
	now := time.Now()
	d.arm(now)
	dl, ok := d.Deadline()
	assert.True(t, ok)
	assert.Equal(t, now.Add(20*time.Millisecond), dl)
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the deadline never passed")
	}
	assert.ErrorIs(t, d.Err(), context.DeadlineExceeded)
	d.disarm()

	d.arm(time.Now())
	assert.NoError(t, d.Err(), "the next request starts afresh")
	select {
	case <-d.Done():
		t.Fatal("the next request's context is done at once")
	default:
	}
	d.disarm()

	d = newRequestDeadline(context.Background(), time.Hour)
	d.arm(time.Now())
	d.disarm()
	d.arm(time.Now())
	d.expire() // the first request's timer, firing late
	assert.NoError(t, d.Err())
	d.disarm()
}

// slowFirstBackend never answers the first request (it waits for its
// context) and answers the others while their context is live; it keeps
// every request's context.
type slowFirstBackend struct {
	*fakeBackend
	mu   sync.Mutex
	ctxs []context.Context
}

func (b *slowFirstBackend) Do(ctx context.Context, req server.Request) (server.Response, error) {
	b.mu.Lock()
	b.ctxs = append(b.ctxs, ctx)
	first := len(b.ctxs) == 1
	b.mu.Unlock()
	if first {
		<-ctx.Done()
		return server.Response{}, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return server.Response{}, err // as Runtime.Do, if ctx is done
	}
	return b.fakeBackend.Do(ctx, req)
}

// On the fast path a request that the member does not answer times out
// with etcd's error after RequestTimeout, and the next request on the same
// connection gets a whole RequestTimeout of its own.
func TestFastPathRequestTimeout(t *testing.T) {
	backend := &slowFirstBackend{fakeBackend: newFakeBackend(t)}
	api, err := NewAPI(backend, APIOptions{RequestTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go api.Serve(l, nil)
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	var conns []string
	get := func() (int, string) {
		req, err := http.NewRequest("GET", "http://"+l.Addr().String()+"/v2/keys/a", nil)
		require.NoError(t, err)
		var local string
		req = req.WithContext(httptraceLocalAddr(req.Context(), &local))
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		conns = append(conns, local)
		var body [512]byte
		n, _ := resp.Body.Read(body[:])
		return resp.StatusCode, string(body[:n])
	}
	code, body := get()
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.Equal(t, `{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}`+"\n", body)
	code, body = get()
	assert.Equal(t, http.StatusNotFound, code, body)
	assert.Equal(t, conns[0], conns[1], "both requests on one connection")

	backend.mu.Lock()
	defer backend.mu.Unlock()
	require.Len(t, backend.ctxs, 2)
	assert.Same(t, backend.ctxs[0], backend.ctxs[1], "the fast path's context, reused")
	_, fast := backend.ctxs[0].(*requestDeadline)
	assert.True(t, fast, "served by the fast path")
}

// httptraceLocalAddr records the local address of the connection a
// request goes out on.
func httptraceLocalAddr(ctx context.Context, addr *string) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { *addr = info.Conn.LocalAddr().String() },
	})
}
