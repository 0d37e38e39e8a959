package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchAgainstACluster runs raftkv bench briefly against a 3-member
// cluster: PUTs over every endpoint, reported as JSON, and quorum GETs at
// the leader, reported as text.
func TestBenchAgainstACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	eps := startCtlCluster(t, 3).endpoints

	out := ctlOK(t, eps, "bench", "--clients", "6", "--duration", "1s", "--warmup", "200ms", "--key-space", "100", "--output", "json")
	var res benchResult
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Equal(t, "put", res.Op)
	assert.Equal(t, eps, res.Endpoints)
	assert.Equal(t, 6, res.Clients)
	assert.Zero(t, res.Errors, "%v", res.ErrorsByKind)
	assert.Positive(t, res.Requests)
	assert.InDelta(t, 1.0, res.DurationS, 0.2)
	assert.InDelta(t, float64(res.Requests)/res.DurationS, res.RatePerS, 1)
	l := res.LatencyMs
	assert.True(t, 0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max, "%+v", l)
	var counted uint64
	for _, row := range res.Histogram {
		counted += row.Count
	}
	assert.Equal(t, res.Requests, counted)
	assert.Positive(t, res.Machine.CPUs)
	assert.NotEmpty(t, res.Machine.Go)

	text := ctlOK(t, eps, "bench", "--op", "get", "--quorum", "--leader-only", "--clients", "2", "--duration", "300ms",
		"--warmup", "0s", "--key-space", "50")
	assert.Contains(t, text, "raftkv bench: GETs with quorum=true from 2 clients to the leader, keys random over 50")
	assert.Regexp(t, `\n  requests   \d+ ok, 0 failed\n  rate       \d+ reads/s\n  latency    mean `, text)
	assert.Contains(t, text, "\n  latency histogram\n")
}

func TestBenchCountsErrorsByKind(t *testing.T) {
	refused := "http://" + loopbackAddr(t)
	conflict := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusPreconditionFailed)
		io.WriteString(w, `{"errorCode":101,"message":"Compare failed","cause":"[a != b]","index":9}`+"\n")
	}))
	defer conflict.Close()
	out := ctlOK(t, []string{refused, conflict.URL}, "bench", "--clients", "2", "--duration", "300ms", "--warmup", "0s", "-o", "json")
	var res benchResult
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	assert.Zero(t, res.LatencyMs.Count)
	assert.Equal(t, res.Requests, res.Errors)
	assert.Positive(t, res.ErrorsByKind["network: connection refused"], "%v", res.ErrorsByKind)
	assert.Positive(t, res.ErrorsByKind["HTTP 412, errorCode 101: Compare failed"], "%v", res.ErrorsByKind)

	r := ctl(t, nil, "bench", "--clients", "0")
	assert.NotZero(t, r.code)
}

// TestBenchRequestsAreCheap: a worker's request costs fewer allocations
// than a bare http.Client PUT of the same body (both counts include the
// in-process server's).
func TestBenchRequestsAreCheap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"action":"set"}`)
	}))
	defer srv.Close()
	f := benchFlags{clients: 1, valueSize: 256, keySpace: 1000, keyPrefix: "/bench", op: "put", seed: 1, requestTimeout: time.Second}
	plan := newBenchPlan(f)
	w := newBenchWorker(plan, srv.URL, nil, f, 0)
	defer w.transport.CloseIdleConnections()
	ours := testing.AllocsPerRun(200, func() {
		_, ok := w.send(http.MethodPut, w.rng.IntN(len(plan.paths)))
		require.True(t, ok)
	})

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	bare := testing.AllocsPerRun(200, func() {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+plan.paths[rand.IntN(len(plan.paths))], bytes.NewReader(plan.putBody))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := hc.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	})
	f.httpClient = "raw"
	rw := newBenchWorker(plan, srv.URL, nil, f, 0)
	defer rw.raw.close()
	raw := testing.AllocsPerRun(200, func() {
		_, ok := rw.send(http.MethodPut, rw.rng.IntN(len(plan.paths)))
		require.True(t, ok)
	})
	t.Logf("allocations per request (the in-process server's included): bench worker %.0f with net/http, %.0f with its own client, bare http.Client %.0f", ours, raw, bare)
	assert.Less(t, ours, bare)
	assert.Less(t, raw, ours)
}

// TestBenchRawClientReadsEveryFraming checks the bench's own HTTP client
// on answers framed by Content-Length, chunked, or by closing the
// connection, on refusals, and over TLS.
func TestBenchRawClientReadsEveryFraming(t *testing.T) {
	var requests atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPut && (r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || !strings.HasPrefix(string(body), "value=")) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "0"):
			w.Header().Set("Connection", "close")
		case strings.HasSuffix(r.URL.Path, "1"):
			w.Write([]byte(`{"action":`))
			w.(http.Flusher).Flush() // chunked from here
			w.Write([]byte(strings.Repeat(" ", 5000) + `"set"}`))
			return
		case strings.HasSuffix(r.URL.Path, "2"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusPreconditionFailed)
			w.Write([]byte(`{"errorCode":101,"message":"Compare failed","cause":"[x != y]","index":7}`))
			return
		}
		w.Write([]byte(`{"action":"set"}`))
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	secure := httptest.NewTLSServer(handler)
	defer secure.Close()
	pool := x509.NewCertPool()
	pool.AddCert(secure.Certificate())

	for _, tt := range []struct {
		name string
		url  string
		tls  *tls.Config
	}{{"http", plain.URL, nil}, {"https", secure.URL, &tls.Config{RootCAs: pool}}} {
		t.Run(tt.name, func(t *testing.T) {
			f := benchFlags{clients: 1, valueSize: 8, keySpace: 4, keyPrefix: "/b", op: "put", seed: 1, requestTimeout: time.Second, httpClient: "raw"}
			w := newBenchWorker(newBenchPlan(f), tt.url, tt.tls, f, 0)
			defer w.raw.close()
			before := requests.Load()
			for round := range 3 {
				for _, k := range []int{0, 1, 3} {
					kind, ok := w.send(http.MethodPut, k)
					require.True(t, ok, "round %d key %d: %s", round, k, kind)
					kind, ok = w.send(http.MethodGet, k)
					require.True(t, ok, "round %d key %d: %s", round, k, kind)
				}
				kind, ok := w.send(http.MethodPut, 2)
				require.False(t, ok)
				assert.Equal(t, "HTTP 412, errorCode 101: Compare failed", kind)
			}
			assert.Equal(t, int64(3*7), requests.Load()-before)
		})
	}
}

func TestLatencyHistogram(t *testing.T) {
	// Every bucket's range holds the values that map to it, and the
	// ranges tile the line.
	var prevHigh uint64
	for b := range histBuckets - 1 {
		low, high := histBucketRange(b)
		if b > 0 {
			assert.Equal(t, prevHigh+1, low, "bucket %d", b)
		}
		assert.Equal(t, b, histBucket(low))
		assert.Equal(t, b, histBucket(high))
		assert.LessOrEqual(t, float64(high-low), float64(low)/histSub+1, "bucket %d is at most 1/32 wide", b)
		prevHigh = high
	}

	// Quantiles are within a bucket's width of the exact ones.
	rng := rand.New(rand.NewPCG(3, 4))
	var h latencyHistogram
	values := make([]time.Duration, 20000)
	for i := range values {
		values[i] = time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond))
		h.record(values[i])
	}
	slices.Sort(values)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := values[int(q*float64(len(values)))-1]
		assert.InEpsilon(t, float64(exact), float64(h.quantile(q)), 0.04, "q %v", q)
	}
	assert.Equal(t, values[len(values)-1], h.max)
	assert.Equal(t, h.max, h.quantile(1))

	var other latencyHistogram
	other.record(time.Hour)
	h.merge(&other)
	assert.Equal(t, uint64(len(values)+1), h.total)
	var counted uint64
	rows := h.rows()
	for i, r := range rows {
		counted += r.Count
		if i > 0 {
			assert.Greater(t, r.UpToMs, rows[i-1].UpToMs)
		}
	}
	assert.Equal(t, h.total, counted)
	var buf strings.Builder
	printHistogram(&buf, rows, h.total)
	assert.Contains(t, buf.String(), "|########################################|", "the largest row is a full bar")
}

func TestBenchFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "0"}, {"--duration", "0s"}, {"--value-size", "-1"}, {"--key-space", "0"},
		{"--op", "delete"}, {"--output", "yaml"}, {"--key-prefix", "bench"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r := newCtlCommand(nil, "", append([]string{"bench"}, args...)...).run(ctx)
		cancel()
		assert.NotZero(t, r.code, "%v", args)
	}
}
