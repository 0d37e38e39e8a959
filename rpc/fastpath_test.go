package rpc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startFastAPI serves a fake member's API with Serve (so with the fast
// path) on a loopback listener.
func startFastAPI(t *testing.T) (addr string, api *API) {
	t.Helper()
	api, err := NewAPI(leanBackend{newFakeBackend(t)}, APIOptions{EnablePprof: true})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- api.Serve(l, nil) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, api.Shutdown(ctx))
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return l.Addr().String(), api
}

// exchange writes raw requests on conn and reads one answer each.
func exchange(t *testing.T, conn net.Conn, r *bufio.Reader, raw string) *http.Response {
	t.Helper()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err := conn.Write([]byte(raw))
	require.NoError(t, err)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err, raw)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

func bodyOf(t *testing.T, resp *http.Response) string {
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestFastPathAnswersAsNetHTTP sends the same requests to the fast path
// and to net/http alone (DisableFastPath) and compares the answers.
func TestFastPathAnswersAsNetHTTP(t *testing.T) {
	requests := []string{
		"PUT /v2/keys/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=1",
		"GET /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v2/keys/a?quorum=true HTTP/1.1\r\nHost: x\r\nOrigin: http://example.com\r\n\r\n",
		"PUT /v2/keys/a?prevValue=2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=3",
		"GET /v2/keys/missing HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT /v2/keys/d?dir=true HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"PUT /v2/keys/d HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=x",
		"GET /v2/keys/a?recursive=maybe HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v2/keys/./a HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v2/keys/ HTTP/1.1\r\nHost: x\r\n\r\n",
	}
	answers := func(disable bool) []string {
		api, err := NewAPI(leanBackend{newFakeBackend(t)}, APIOptions{DisableFastPath: disable, Clock: (&fakeClock{now: fakeEpoch}).Now})
		require.NoError(t, err)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go api.Serve(l, nil)
		defer api.Shutdown(context.Background())
		conn, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		r := bufio.NewReader(conn)
		var out []string
		for _, raw := range requests {
			resp := exchange(t, conn, r, raw)
			resp.Header.Del("Date")
			out = append(out, fmt.Sprintf("%d %v %s", resp.StatusCode, resp.Header, bodyOf(t, resp)))
		}
		return out
	}
	assert.Equal(t, answers(true), answers(false))
}

// TestFastPathHandsOverToNetHTTP checks that whatever the fast path does
// not serve still works on the same connection: a watch (chunked), an
// OPTIONS preflight, /version, pprof, a bad request.
func TestFastPathHandsOverToNetHTTP(t *testing.T) {
	addr, _ := startFastAPI(t)
	for _, tt := range []struct {
		name, raw string
		check     func(t *testing.T, resp *http.Response)
	}{
		{"version", "GET /version HTTP/1.1\r\nHost: x\r\n\r\n", func(t *testing.T, resp *http.Response) {
			assert.Equal(t, 200, resp.StatusCode)
			assert.Contains(t, bodyOf(t, resp), "etcdserver")
		}},
		{"preflight", "OPTIONS /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n", func(t *testing.T, resp *http.Response) {
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
		}},
		{"pprof", "GET /debug/pprof/cmdline HTTP/1.1\r\nHost: x\r\n\r\n", func(t *testing.T, resp *http.Response) {
			assert.Equal(t, 200, resp.StatusCode)
		}},
		{"http/1.0", "GET /v2/keys/a HTTP/1.0\r\n\r\n", func(t *testing.T, resp *http.Response) {
			assert.Equal(t, 200, resp.StatusCode, bodyOf(t, resp))
		}},
		{"chunked body", "PUT /v2/keys/c HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nvalue=9\r\n0\r\n\r\n", func(t *testing.T, resp *http.Response) {
			assert.Equal(t, 201, resp.StatusCode, bodyOf(t, resp))
		}},
		{"no host", "GET /v2/keys/a HTTP/1.1\r\n\r\n", func(t *testing.T, resp *http.Response) {
			assert.Equal(t, 400, resp.StatusCode)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			r := bufio.NewReader(conn)
			put := "PUT /v2/keys/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=1"
			assert.Contains(t, []int{200, 201}, exchange(t, conn, r, put).StatusCode) // on the fast path
			tt.check(t, exchange(t, conn, r, tt.raw))
			if tt.name != "http/1.0" && tt.name != "no host" { // those close the connection
				assert.Equal(t, 200, exchange(t, conn, r, put).StatusCode) // on net/http now
			}
		})
	}

	t.Run("watch", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer conn.Close()
		r := bufio.NewReader(conn)
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		first := exchange(t, conn, r, "PUT /v2/keys/w HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=a")
		require.Equal(t, 201, first.StatusCode)
		var index int
		_, err = fmt.Sscan(first.Header.Get("X-Etcd-Index"), &index)
		require.NoError(t, err)
		// waitIndex: the watch sees the next write even if it lands first.
		_, err = fmt.Fprintf(conn, "GET /v2/keys/w?wait=true&waitIndex=%d HTTP/1.1\r\nHost: x\r\n\r\n", index+1)
		require.NoError(t, err)
		other, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer other.Close()
		exchange(t, other, bufio.NewReader(other), "PUT /v2/keys/w HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nvalue=hey")
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		require.NoError(t, err)
		assert.Contains(t, line, `"value":"hey"`)
	})
}

// TestFastPathShutdown checks that Shutdown closes idle fast connections
// and returns.
func TestFastPathShutdown(t *testing.T) {
	api, err := NewAPI(leanBackend{newFakeBackend(t)}, APIOptions{})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- api.Serve(l, nil) }()
	conn, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	exchange(t, conn, bufio.NewReader(conn), "GET /v2/keys/ HTTP/1.1\r\nHost: x\r\n\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, api.Shutdown(ctx))
	require.ErrorIs(t, <-served, http.ErrServerClosed)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
}

// fastParseCases seed FuzzFastPathParse.
var fastParseCases = []string{
	"GET /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n",
	"PUT /v2/keys/a?ttl=5 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\n",
	"GET /v2/keys/a HTTP/1.1\r\nhost: x\r\nX-Odd:  v \r\nx-odd: w\r\n\r\n",
	"GET /v2/keys/a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
	"PUT /v2/keys/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
	"GET /v2/keys/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
	"GET /v2/keys/a HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
	"GET /v2/keys/a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /v2/keys/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET /v2/keys/a HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
	"GET  /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n",
}

// FuzzFastPathParse checks the fast path's request parser against
// net/http's on arbitrary heads: whatever it accepts, net/http must read
// the same method, target, host, length and headers from.
func FuzzFastPathParse(f *testing.F) {
	for _, c := range fastParseCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, head string) {
		if !strings.HasSuffix(head, "\r\n\r\n") || strings.Count(head, "\r\n\r\n") != 1 {
			head = strings.ReplaceAll(head, "\r\n\r\n", "\r\n") + "\r\n\r\n"
		}
		if len(head) > fastHeadMax {
			return
		}
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		fc := &fastConn{conn: server}
		fc.req.Header = http.Header{}
		if !fc.parse([]byte(head)) {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatalf("fast path accepted what net/http refuses (%v): %q", err, head)
		}
		got := &fc.req
		if got.Method != want.Method || got.URL.Path != want.URL.Path || got.URL.RawQuery != want.URL.RawQuery ||
			got.URL.RawPath != want.URL.RawPath || got.Host != want.Host || got.ContentLength != want.ContentLength ||
			got.RequestURI != want.RequestURI {
			t.Fatalf("%q:\n got %s %+v host %q length %d\nwant %s %+v host %q length %d", head,
				got.Method, *got.URL, got.Host, got.ContentLength, want.Method, *want.URL, want.Host, want.ContentLength)
		}
		delete(want.Header, "Host")
		if fmt.Sprint(got.Header) != fmt.Sprint(want.Header) {
			t.Fatalf("%q: headers\n got %v\nwant %v", head, got.Header, want.Header)
		}
	})
}

// TestFastPathParseKeepsNothingStale: what parse reuses between a
// connection's requests (the Host string, the header map) never carries a
// request's values into the next one.
func TestFastPathParseKeepsNothingStale(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	fc := &fastConn{conn: a}
	fc.req.Header = http.Header{}
	fc.remoteAddr = "192.0.2.1:5"
	heads := []struct{ head, host, ua string }{
		{"PUT /v2/keys/a HTTP/1.1\r\nHost: one:2379\r\nUser-Agent: x\r\nContent-Length: 7\r\n\r\n", "one:2379", "x"},
		{"GET /v2/keys/a HTTP/1.1\r\nHost: one:2379\r\n\r\n", "one:2379", ""},
		{"GET /v2/keys/b HTTP/1.1\r\nHost: two:2379\r\nUser-Agent: y\r\n\r\n", "two:2379", "y"},
	}
	for i, h := range heads {
		require.True(t, fc.parse([]byte(h.head)), "request %d", i)
		assert.Equal(t, h.host, fc.req.Host, "request %d", i)
		assert.Equal(t, h.ua, fc.req.Header.Get("User-Agent"), "request %d", i)
		assert.Equal(t, "192.0.2.1:5", fc.req.RemoteAddr, "request %d", i)
	}
	assert.Equal(t, int64(0), fc.req.ContentLength, "the last request had no body")
}
