package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// benchSweep is the JSON of `raftkv bench --sweep ... --output json`, and
// what --from reads back: the runs of one target at several client counts.
type benchSweep struct {
	// Name labels the target in reports (--name).
	Name string `json:"name"`
	// Runs are in the order of --sweep.
	Runs []*benchResult `json:"runs"`
}

// parseSweep reads --sweep's comma-separated client counts.
func parseSweep(s string) ([]int, error) {
	var counts []int
	for _, field := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 || n > benchMaxClients {
			return nil, fmt.Errorf("--sweep %q: want client counts from 1 to %d, comma-separated", s, benchMaxClients)
		}
		if slices.Contains(counts, n) {
			return nil, fmt.Errorf("--sweep %q: %d twice", s, n)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// benchMaxSweeps bounds the client counts of a sweep and the targets of a
// report.
const benchMaxSweeps = 32

// loadSweep reads a target's saved runs from "name=file" (or "file",
// named after the file): a sweep, an array of results, or one result, as
// `raftkv bench --output json` writes them.
func loadSweep(spec string) (benchSweep, error) {
	name, file, named := strings.Cut(spec, "=")
	if !named {
		file = spec
		name = strings.TrimSuffix(file[strings.LastIndex(file, "/")+1:], ".json")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return benchSweep{}, fmt.Errorf("--from %s: %w", spec, err)
	}
	s, err := decodeSweep(b)
	if err != nil {
		return benchSweep{}, fmt.Errorf("--from %s: %w", spec, err)
	}
	if named || s.Name == "" {
		s.Name = name
	}
	return s, nil
}

// decodeSweep accepts the three shapes bench writes.
func decodeSweep(b []byte) (benchSweep, error) {
	var s benchSweep
	trimmed := strings.TrimSpace(string(b))
	switch {
	case strings.HasPrefix(trimmed, "["):
		if err := json.Unmarshal(b, &s.Runs); err != nil {
			return s, err
		}
	case strings.Contains(trimmed, `"runs"`):
		if err := json.Unmarshal(b, &s); err != nil {
			return s, err
		}
	default:
		var r benchResult
		if err := json.Unmarshal(b, &r); err != nil {
			return s, err
		}
		s.Runs = []*benchResult{&r}
	}
	if len(s.Runs) == 0 {
		return s, errors.New("no runs in it")
	}
	for _, r := range s.Runs {
		if r == nil || r.Clients < 1 {
			return s, errors.New("a run without its client count")
		}
	}
	return s, nil
}

// writeSweepText prints a sweep as one table.
func writeSweepText(w io.Writer, s benchSweep) {
	if len(s.Runs) == 0 {
		return
	}
	first := s.Runs[0]
	unit := "writes/s"
	if first.Op == "get" {
		unit = "reads/s"
	}
	fmt.Fprintf(w, "raftkv bench --sweep: %s, %s over %s, %d-byte values, keys over %d, %.1fs per step after %.1fs of warm-up\n",
		s.Name, first.Op, strings.Join(first.Endpoints, ", "), first.ValueSize, first.KeySpace, first.DurationS, first.WarmupS)
	m := first.Machine
	fmt.Fprintf(w, "  machine %d CPUs, GOMAXPROCS %d, %s/%s, %s\n\n", m.CPUs, m.GOMAXPROCS, m.OS, m.Arch, m.Go)
	fmt.Fprintf(w, "  %7s %10s %8s %8s %8s %8s %8s %8s %7s  %s\n", "clients", unit, "mean", "p50", "p90", "p99", "p99.9", "max ms", "errors", "load")
	for _, r := range s.Runs {
		l := r.LatencyMs
		fmt.Fprintf(w, "  %7d %10.0f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %7d  %s\n",
			r.Clients, r.RatePerS, l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max, r.Errors, r.Machine.LoadAverage)
	}
}
