package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syntheticSweep is a sweep of made-up runs whose latencies are drawn from
// a seeded source, summarised by the bench's own code.
func syntheticSweep(name string, seed uint64, counts []int) benchSweep {
	rng := rand.New(rand.NewPCG(seed, 0))
	s := benchSweep{Name: name}
	for _, c := range counts {
		r := newBenchResult(benchFlags{op: "put", clients: c, valueSize: 8, keySpace: 100, warmup: time.Second})
		r.Endpoints = []string{"http://127.0.0.1:1"}
		for range 2000 {
			r.hist.record(time.Duration(float64(c)*1e5*(1+rng.ExpFloat64())) + 300*time.Microsecond)
		}
		r.Errors = uint64(c % 3)
		r.elapsed = 2 * time.Second
		r.finish()
		s.Runs = append(s.Runs, r)
	}
	return s
}

// reportCells reads the figures table of a report: target → clients →
// field → exact value.
func reportCells(t *testing.T, html string) map[string]map[int]map[string]float64 {
	rowRE := regexp.MustCompile(`<tr data-target="([^"]+)" data-clients="(\d+)">(.*?)</tr>`)
	cellRE := regexp.MustCompile(`<td data-field="([a-z0-9_]+)" data-value="([^"]+)">`)
	out := map[string]map[int]map[string]float64{}
	for _, row := range rowRE.FindAllStringSubmatch(html, -1) {
		clients, err := strconv.Atoi(row[2])
		require.NoError(t, err)
		if out[row[1]] == nil {
			out[row[1]] = map[int]map[string]float64{}
		}
		fields := map[string]float64{}
		for _, cell := range cellRE.FindAllStringSubmatch(row[3], -1) {
			v, err := strconv.ParseFloat(cell[2], 64)
			require.NoError(t, err, cell[0])
			fields[cell[1]] = v
		}
		out[row[1]][clients] = fields
	}
	return out
}

// checkReportMatchesJSON checks every figure of the report's table against
// the sweeps' JSON, and that the page loads nothing from anywhere.
func checkReportMatchesJSON(t *testing.T, html string, sweeps []benchSweep) {
	t.Helper()
	cells := reportCells(t, html)
	for _, s := range sweeps {
		require.Contains(t, cells, s.Name)
		require.Len(t, cells[s.Name], len(s.Runs), s.Name)
		for _, r := range s.Runs {
			got := cells[s.Name][r.Clients]
			l := r.LatencyMs
			want := map[string]float64{
				"rate_per_s": r.RatePerS, "mean": l.Mean, "p50": l.P50, "p90": l.P90, "p99": l.P99,
				"p99_9": l.P999, "max": l.Max, "errors": float64(r.Errors), "requests": float64(r.Requests),
			}
			assert.Equal(t, want, got, "%s at %d clients", s.Name, r.Clients)
		}
	}
	// Self-contained: no script, stylesheet, image or frame from elsewhere
	// (the only URLs are the SVG namespaces).
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", "url("} {
		assert.NotContains(t, html, bad)
	}
	for _, u := range regexp.MustCompile(`https?://[^"' )]+`).FindAllString(html, -1) {
		assert.Contains(t, []string{"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, u)
	}
	// Throughput, latency, and per client count a percentile curve and a
	// histogram.
	counts := allClientCounts(sweeps)
	assert.Equal(t, 2+2*len(counts), strings.Count(html, "<svg"))
	assert.NotContains(t, html, "(no data)")
}

// TestBenchReportMatchesJSON writes two targets' sweeps as JSON in the
// shapes bench writes, makes the report from them with --from, and reads
// the report's figures back.
func TestBenchReportMatchesJSON(t *testing.T) {
	dir := t.TempDir()
	a := syntheticSweep("raftkv", 1, []int{1, 16, 64, 256})
	b := syntheticSweep("etcd", 2, []int{1, 16, 64, 256})
	aJSON, err := json.Marshal(a) // a sweep object
	require.NoError(t, err)
	bJSON, err := json.Marshal(b.Runs) // an array of runs, as bench-compare saves them
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.json"), aJSON, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.json"), bJSON, 0o644))

	report := filepath.Join(dir, "report.html")
	var stdout, stderr bytes.Buffer
	f := benchFlags{clients: 1, duration: time.Second, valueSize: 1, keySpace: 1, keyPrefix: "/b", op: "put", output: "text", httpClient: "raw",
		report: report, from: []string{filepath.Join(dir, "a.json"), "etcd=" + filepath.Join(dir, "b.json")}}
	require.NoError(t, runBenchCommand(context.Background(), &stdout, &stderr, f, false))
	html, err := os.ReadFile(report)
	require.NoError(t, err)
	// a.json named its target itself; b.json's runs were named by --from.
	checkReportMatchesJSON(t, string(html), []benchSweep{a, b})
	assert.Contains(t, string(html), "<title>raftkv bench: raftkv vs etcd</title>")
}

func TestBenchSweepFlags(t *testing.T) {
	counts, err := parseSweep("1, 16,64,256")
	require.NoError(t, err)
	assert.Equal(t, []int{1, 16, 64, 256}, counts)
	for _, bad := range []string{"", "0", "1,x", "4,4", "-3", "20000"} {
		_, err := parseSweep(bad)
		assert.Error(t, err, bad)
	}
	_, err = loadSweep(filepath.Join(t.TempDir(), "missing.json"))
	assert.ErrorContains(t, err, "--from")
	empty := filepath.Join(t.TempDir(), "empty.json")
	require.NoError(t, os.WriteFile(empty, []byte("[]"), 0o644))
	_, err = loadSweep(empty)
	assert.ErrorContains(t, err, "no runs")
	err = runBenchCommand(context.Background(), &bytes.Buffer{}, &bytes.Buffer{},
		benchFlags{clients: 1, duration: time.Second, keySpace: 1, keyPrefix: "/b", op: "put", output: "text", httpClient: "raw", from: []string{empty}}, false)
	assert.Error(t, err)
}

// TestBenchSweepAgainstACluster runs a short sweep against a 3-member
// cluster with --report and --output json, and checks the report's
// figures against the JSON printed.
func TestBenchSweepAgainstACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	eps := startCtlCluster(t, 3).endpoints
	report := filepath.Join(t.TempDir(), "out.html")
	out := ctlOK(t, eps, "bench", "--sweep", "1,4", "--duration", "300ms", "--warmup", "100ms", "--key-space", "50",
		"--value-size", "8", "--name", "raftkv-3", "--report", report, "--output", "json")
	s, err := decodeSweep([]byte(out))
	require.NoError(t, err, out)
	assert.Equal(t, "raftkv-3", s.Name)
	require.Len(t, s.Runs, 2)
	for i, want := range []int{1, 4} {
		r := s.Runs[i]
		assert.Equal(t, want, r.Clients)
		assert.Positive(t, r.RatePerS)
		assert.Zero(t, r.Errors, "%v", r.ErrorsByKind)
		require.Len(t, r.Percentiles, len(reportPercentiles))
		assert.Equal(t, r.LatencyMs.P50, r.Percentiles[0].Ms)
	}
	html, err := os.ReadFile(report)
	require.NoError(t, err)
	checkReportMatchesJSON(t, string(html), []benchSweep{s})

	text := ctlOK(t, eps, "bench", "--op", "get", "--sweep", "2,1", "--duration", "200ms", "--warmup", "0s", "--key-space", "20")
	assert.Regexp(t, `(?s)raftkv bench --sweep: raftkv, get over .*\n  clients    reads/s .*\n        2 .*\n        1 `, text)
}
