package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"
)

// benchResult is what a bench run reports.
type benchResult struct {
	Op         string   `json:"op"`
	Endpoints  []string `json:"endpoints"`
	Clients    int      `json:"clients"`
	ValueSize  int      `json:"value_size"`
	KeySpace   int      `json:"key_space"`
	Quorum     bool     `json:"quorum"`
	LeaderOnly bool     `json:"leader_only"`
	// HTTPClient is the load generator's HTTP client: raw or net/http.
	HTTPClient string `json:"http_client"`
	// DurationS is the measured time, WarmupS the load before it.
	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
	// Requests and Errors count the requests that ended within the
	// measured time, successful or not.
	Requests     uint64            `json:"requests"`
	Errors       uint64            `json:"errors"`
	ErrorsByKind map[string]uint64 `json:"errors_by_kind"`
	// RatePerS is successful requests per second.
	RatePerS  float64        `json:"rate_per_s"`
	LatencyMs benchLatencies `json:"latency_ms"`
	Histogram []histRow      `json:"histogram"`
	// Percentiles are the latencies at reportPercentiles, for curves.
	Percentiles []percentilePoint `json:"percentiles"`
	Machine     machineFacts      `json:"machine"`

	elapsed time.Duration
	hist    latencyHistogram
}

// benchLatencies are the latencies of the successful requests.
type benchLatencies struct {
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
	Count uint64  `json:"count"`
}

func newBenchResult(f benchFlags) *benchResult {
	return &benchResult{
		Op: f.op, Clients: f.clients, ValueSize: f.valueSize, KeySpace: f.keySpace,
		Quorum: f.quorum, LeaderOnly: f.leaderOnly, HTTPClient: f.httpClient, WarmupS: f.warmup.Seconds(),
		ErrorsByKind: map[string]uint64{}, Machine: currentMachine(),
	}
}

// add takes a worker's counts.
func (r *benchResult) add(w *benchWorker) {
	r.hist.merge(&w.hist)
	r.Errors += w.failed
	for kind, n := range w.errors {
		r.ErrorsByKind[kind] += n
	}
}

// finish computes the summary figures from the counts.
func (r *benchResult) finish() {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	r.DurationS = r.elapsed.Seconds()
	r.Requests = r.hist.total + r.Errors
	if r.DurationS > 0 {
		r.RatePerS = float64(r.hist.total) / r.DurationS
	}
	h := &r.hist
	r.LatencyMs = benchLatencies{
		Mean: ms(h.mean()), P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)),
		P999: ms(h.quantile(0.999)), Max: ms(h.max), Count: h.total,
	}
	r.Percentiles = make([]percentilePoint, 0, len(reportPercentiles))
	for _, q := range reportPercentiles {
		r.Percentiles = append(r.Percentiles, percentilePoint{Q: q, Ms: ms(h.quantile(q))})
	}
	r.Histogram = h.rows()
	if r.Histogram == nil {
		r.Histogram = []histRow{}
	}
}

func (r *benchResult) writeJSON(w io.Writer) error {
	r.finish()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func (r *benchResult) writeText(w io.Writer) {
	r.finish()
	what, unit := fmt.Sprintf("PUTs of %d-byte values", r.ValueSize), "writes/s"
	if r.Op == "get" {
		what, unit = "GETs", "reads/s"
		if r.Quorum {
			what = "GETs with quorum=true"
		}
	}
	target := fmt.Sprintf("over %d endpoints", len(r.Endpoints))
	if r.LeaderOnly {
		target = "to the leader"
	}
	fmt.Fprintf(w, "raftkv bench: %s from %d clients %s, keys random over %d, %.1fs measured after %.1fs of warm-up\n",
		what, r.Clients, target, r.KeySpace, r.DurationS, r.WarmupS)
	fmt.Fprintf(w, "  endpoints  %s\n", strings.Join(r.Endpoints, ", "))
	m := r.Machine
	fmt.Fprintf(w, "  machine    %d CPUs, GOMAXPROCS %d, load average %s, %s/%s, %s\n\n", m.CPUs, m.GOMAXPROCS, m.LoadAverage, m.OS, m.Arch, m.Go)
	fmt.Fprintf(w, "  requests   %d ok, %d failed\n", r.hist.total, r.Errors)
	fmt.Fprintf(w, "  rate       %.0f %s\n", r.RatePerS, unit)
	l := r.LatencyMs
	fmt.Fprintf(w, "  latency    mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms\n", l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max)
	if r.hist.total > 0 {
		fmt.Fprintln(w, "\n  latency histogram")
		printHistogram(w, r.Histogram, r.hist.total)
	}
	if len(r.ErrorsByKind) > 0 {
		fmt.Fprintln(w, "\n  errors")
		kinds := make([]string, 0, len(r.ErrorsByKind))
		for k := range r.ErrorsByKind {
			kinds = append(kinds, k)
		}
		slices.SortFunc(kinds, func(a, b string) int { return int(r.ErrorsByKind[b]) - int(r.ErrorsByKind[a]) })
		for _, k := range kinds {
			fmt.Fprintf(w, "  %9d  %s\n", r.ErrorsByKind[k], k)
		}
	}
}

// networkErrorKind names a failure to get an answer.
func networkErrorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "network: connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "network: connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "network: connection closed by the server"
	case errors.As(err, &ne) && ne.Timeout():
		return "network: timeout"
	}
	return "network: " + err.Error()
}

// httpErrorKind names a refusal: its status and etcd's error code and
// message when the body has them.
func httpErrorKind(status int, body []byte) string {
	var e struct {
		Code    int    `json:"errorCode"`
		Message string `json:"message"`
		Cause   string `json:"cause"`
	}
	kind := fmt.Sprintf("HTTP %d", status)
	if json.Unmarshal(body, &e) != nil || (e.Code == 0 && e.Message == "") {
		return kind + " " + http.StatusText(status)
	}
	if e.Code == 0 {
		return kind + ": " + e.Message
	}
	kind = fmt.Sprintf("%s, errorCode %d: %s", kind, e.Code, e.Message)
	if e.Code == 300 && e.Cause != "" {
		kind += " (" + e.Cause + ")"
	}
	return kind
}
