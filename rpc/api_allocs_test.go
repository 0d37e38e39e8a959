package rpc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/server"
)

// The allocation budget of the client path: what serving one keep-alive
// PUT or GET over HTTP costs the server in heap allocations, beyond what
// the member itself (here the key space, applied in process) allocates for
// it. Measured by counting the process's mallocs while a raw-socket client,
// which allocates nothing per request, sends requests to a real
// net/http server. See benchmarks/RESULTS.md, "side by side with etcd".
// Measured: PUT 8, GET 5 (the fast path; a few more with net/http).
const (
	allocBudgetPut = 10
	allocBudgetGet = 7
)

// TestClientPathAllocationBudget fails when a PUT or a GET costs more
// allocations than the budget: a regression on the hot path.
func TestClientPathAllocationBudget(t *testing.T) {
	for _, tt := range []struct {
		name   string
		method string
		budget int
	}{
		{"PUT", "PUT", allocBudgetPut},
		{"GET", "GET", allocBudgetGet},
	} {
		t.Run(tt.name, func(t *testing.T) {
			perRequest, perBackend := measureAllocs(t, tt.method, 2000, false)
			t.Logf("%s: %.1f allocations per request over HTTP, %.1f of them the member's; budget %d for the client path",
				tt.name, perRequest, perBackend, tt.budget)
			require.LessOrEqual(t, perRequest-perBackend, float64(tt.budget),
				"%s: the client path allocates %.1f times per request (budget %d)", tt.name, perRequest-perBackend, tt.budget)
		})
	}
}

// BenchmarkClientPath reports the client path's allocations per request
// and the process's CPU time per request (the raw client's share is two
// system calls) as metrics, for benchstat.
func BenchmarkClientPath(b *testing.B) {
	for _, method := range []string{"PUT", "GET"} {
		for _, path := range []string{"fast", "nethttp"} {
			b.Run(method+"/"+path, func(b *testing.B) {
				n := max(b.N, 100)
				cpuBefore := processCPU()
				perRequest, perBackend := measureAllocs(b, method, n, path == "nethttp")
				b.ReportMetric(perRequest-perBackend, "allocs/request")
				b.ReportMetric(float64((processCPU()-cpuBefore).Microseconds())/float64(n), "cpu-µs/request")
			})
		}
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		panic(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// leanBackend is the fake member without the fake's request log, so that
// its own allocations per request do not grow.
type leanBackend struct{ *fakeBackend }

func (l leanBackend) Do(ctx context.Context, req server.Request) (server.Response, error) {
	resp, err := l.fakeBackend.Do(ctx, req)
	l.mu.Lock()
	l.requests = l.requests[:0]
	l.mu.Unlock()
	return resp, err
}

// measureAllocs sends n requests of method over one keep-alive connection
// and returns the process's mallocs per request, and those of the backend
// alone for the same requests.
func measureAllocs(t testing.TB, method string, n int, disableFastPath bool) (perRequest, perBackend float64) {
	fake := newFakeBackend(t)
	fake.requests = make([]server.Request, 0, 4)
	backend := leanBackend{fake}
	api, err := NewAPI(backend, APIOptions{DisableFastPath: disableFastPath})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go api.Serve(l, nil)
	t.Cleanup(func() { api.Shutdown(context.Background()) })

	put := fmt.Sprintf("PUT /v2/keys/bench/k HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 14\r\n\r\nvalue=abcdefgh", l.Addr())
	get := fmt.Sprintf("GET /v2/keys/bench/k HTTP/1.1\r\nHost: %s\r\n\r\n", l.Addr())
	c := &rawClient{buf: make([]byte, 8192)}
	c.conn, err = net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.conn.Close()
	c.roundTrip(t, []byte(put)) // the key exists for GETs
	request := []byte(put)
	if method == "GET" {
		request = []byte(get)
	}
	for range 50 { // warm up: pools, maps and buffers reach their size
		c.roundTrip(t, request)
	}
	perRequest = mallocsPer(n, func() { c.roundTrip(t, request) })

	req := server.Request{Kind: server.RequestWrite, Path: "/bench/k"}
	req.Command.Path, req.Command.Value = "/bench/k", "abcdefgh"
	if method == "GET" {
		req = server.Request{Kind: server.RequestRead, Path: "/bench/k"}
	}
	perBackend = mallocsPer(n, func() { backend.Do(context.Background(), req) })
	return perRequest, perBackend
}

// mallocsPer runs f n times and returns the mallocs per run.
func mallocsPer(n int, f func()) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(n)
}

// rawClient speaks just enough HTTP/1.1 over one connection to send a
// prepared request and read its answer (Content-Length framed), without
// allocating.
type rawClient struct {
	conn net.Conn
	buf  []byte
}

var headerEnd = []byte("\r\n\r\n")

func (c *rawClient) roundTrip(t testing.TB, request []byte) {
	if _, err := c.conn.Write(request); err != nil {
		t.Fatal(err)
	}
	have := 0
	for {
		m, err := c.conn.Read(c.buf[have:])
		if err != nil {
			t.Fatal(err)
		}
		have += m
		end := bytes.Index(c.buf[:have], headerEnd)
		if end < 0 {
			continue
		}
		if !bytes.HasPrefix(c.buf, []byte("HTTP/1.1 20")) {
			t.Fatalf("answer: %q", c.buf[:have])
		}
		if have >= end+4+contentLength(c.buf[:end]) {
			return
		}
	}
}

// contentLength is the Content-Length of a response head.
func contentLength(head []byte) int {
	i := bytes.Index(head, []byte("Content-Length: "))
	if i < 0 {
		panic("no Content-Length in " + string(head))
	}
	n := 0
	for _, ch := range head[i+len("Content-Length: "):] {
		if ch < '0' || ch > '9' {
			break
		}
		n = n*10 + int(ch-'0')
	}
	return n
}

// BenchmarkClientPathParallel is BenchmarkClientPath with 16 raw clients
// at once, each on its own connection, so that the server is busy, as a
// member under load is, rather than woken for every request: the process's
// CPU per request and the requests per second, for the fast path and for
// net/http alone.
func BenchmarkClientPathParallel(b *testing.B) {
	const clients = 16
	for _, method := range []string{"PUT", "GET"} {
		for _, path := range []string{"fast", "nethttp"} {
			b.Run(method+"/"+path, func(b *testing.B) {
				api, err := NewAPI(leanBackend{newFakeBackend(b)}, APIOptions{DisableFastPath: path == "nethttp"})
				require.NoError(b, err)
				l, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(b, err)
				go api.Serve(l, nil)
				defer api.Shutdown(context.Background())
				request := []byte(fmt.Sprintf("PUT /v2/keys/bench/k HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 14\r\n\r\nvalue=abcdefgh", l.Addr()))
				if method == "GET" {
					request = []byte(fmt.Sprintf("GET /v2/keys/bench/k HTTP/1.1\r\nHost: %s\r\n\r\n", l.Addr()))
				}
				cs := make([]*rawClient, clients)
				for i := range cs {
					cs[i] = &rawClient{buf: make([]byte, 8192)}
					cs[i].conn, err = net.Dial("tcp", l.Addr().String())
					require.NoError(b, err)
					defer cs[i].conn.Close()
					cs[i].roundTrip(b, []byte(fmt.Sprintf("PUT /v2/keys/bench/k HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=1")))
				}
				per := max(b.N/clients, 10)
				b.ResetTimer()
				cpuBefore, start := processCPU(), time.Now()
				var wg sync.WaitGroup
				for _, c := range cs {
					wg.Go(func() {
						for range per {
							c.roundTrip(b, request)
						}
					})
				}
				wg.Wait()
				n := float64(per * clients)
				b.ReportMetric(float64((processCPU()-cpuBefore).Microseconds())/n, "cpu-µs/request")
				b.ReportMetric(n/time.Since(start).Seconds(), "requests/s")
			})
		}
	}
}
