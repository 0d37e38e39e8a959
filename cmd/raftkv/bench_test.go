package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
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
	refused := "http://" + ctlFreeAddr(t)
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
	t.Logf("allocations per request: bench worker %.0f, bare http.Client %.0f", ours, bare)
	assert.Less(t, ours, bare)
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
