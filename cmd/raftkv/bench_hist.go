package main

import (
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
	"time"
)

// latencyHistogram counts latencies in log-linear buckets: exact below
// 64 ns, then 32 buckets per power of two, so that a bucket is at most
// 1/32 (3.1%) wide relative to its values. Recording is a few integer
// operations and no allocation; histograms of several clients merge by
// adding counts.
type latencyHistogram struct {
	// counts[b] is the number of latencies in bucket b.
	counts [histBuckets]uint64
	// total is the sum of counts. Invariant: total == sum(counts).
	total uint64
	// sum is the sum of the latencies recorded, in nanoseconds.
	sum time.Duration
	// max is the largest latency recorded.
	max time.Duration
}

const (
	// histSubBits sets 2^histSubBits buckets per power of two.
	histSubBits = 5
	histSub     = 1 << histSubBits
	// histBuckets covers latencies up to 2^40 ns (about 18 minutes); larger
	// ones are counted in the last bucket.
	histBuckets = 2*histSub + (40-histSubBits-1)*histSub
)

// histBucket is the bucket of a latency of ns nanoseconds.
func histBucket(ns uint64) int {
	if ns < 2*histSub {
		return int(ns)
	}
	shift := bits.Len64(ns) - histSubBits - 1 // >= 1
	top := ns >> shift                        // in [histSub, 2*histSub)
	b := 2*histSub + (shift-1)*histSub + int(top-histSub)
	return min(b, histBuckets-1)
}

// histBucketRange is the range [low, high] of latencies, in nanoseconds,
// that bucket b counts.
func histBucketRange(b int) (low, high uint64) {
	if b < 2*histSub {
		return uint64(b), uint64(b)
	}
	shift := (b-2*histSub)/histSub + 1
	top := uint64((b-2*histSub)%histSub + histSub)
	return top << shift, (top+1)<<shift - 1
}

// record counts one latency.
func (h *latencyHistogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histBucket(uint64(d))]++
	h.total++
	h.sum += d
	h.max = max(h.max, d)
}

// merge adds o's counts to h.
func (h *latencyHistogram) merge(o *latencyHistogram) {
	for b, n := range o.counts {
		h.counts[b] += n
	}
	h.total += o.total
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile is the latency below which a fraction q of the recorded ones
// fall: the middle of the bucket that holds the q-th latency, never above
// the largest latency seen.
func (h *latencyHistogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for b, n := range h.counts {
		seen += n
		if seen >= rank {
			low, high := histBucketRange(b)
			return min(time.Duration(low+(high-low)/2), h.max)
		}
	}
	return h.max
}

// mean is the average latency.
func (h *latencyHistogram) mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return h.sum / time.Duration(h.total)
}

// histRow is one row of the printed histogram: the latencies up to
// upTo (and above the previous row's).
type histRow struct {
	UpToMs float64 `json:"up_to_ms"`
	Count  uint64  `json:"count"`
}

// rows groups the buckets into rows whose upper bounds follow the 1-2-5
// sequence in milliseconds, from the row of the smallest latency to that of
// the largest.
func (h *latencyHistogram) rows() []histRow {
	if h.total == 0 {
		return nil
	}
	var rows []histRow
	// boundNs is the current row's bound: 1 µs, 2, 5, 10, 20, 50, ...
	boundNs := uint64(1000)
	step := 0
	next := func() {
		if step%3 == 1 {
			boundNs = boundNs * 5 / 2
		} else {
			boundNs *= 2
		}
		step++
	}
	for b, n := range h.counts {
		if n == 0 {
			continue
		}
		low, _ := histBucketRange(b)
		for low >= boundNs {
			next()
			if len(rows) > 0 {
				rows = append(rows, histRow{UpToMs: float64(boundNs) / 1e6}) // an empty row shows a gap
			}
		}
		if len(rows) == 0 {
			rows = append(rows, histRow{UpToMs: float64(boundNs) / 1e6})
		}
		rows[len(rows)-1].Count += n
	}
	return rows
}

// printHistogram draws the rows as bars of '#' scaled to the largest row.
func printHistogram(w io.Writer, rows []histRow, total uint64) {
	const width = 40
	var most uint64
	for _, r := range rows {
		most = max(most, r.Count)
	}
	prev := 0.0
	for _, r := range rows {
		bar := 0
		if most > 0 {
			bar = int(math.Round(float64(r.Count) / float64(most) * width))
		}
		if r.Count > 0 && bar == 0 {
			bar = 1
		}
		fmt.Fprintf(w, "  %9s - %-9s ms |%-*s| %9d  %5.1f%%\n", formatMs(prev), formatMs(r.UpToMs), width,
			strings.Repeat("#", bar), r.Count, 100*float64(r.Count)/float64(total))
		prev = r.UpToMs
	}
}

func formatMs(ms float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", ms), "0"), ".")
}
