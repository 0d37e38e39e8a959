package simulator

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// CampaignConfig runs many seeds: Base with seeds First, First+1, ...
type CampaignConfig struct {
	Base  Config
	First uint64
	Seeds int
	// Workers run seeds in parallel (each run is one goroutine); 0 means
	// GOMAXPROCS.
	Workers int
	// Skip lists seeds not to run (known failures awaiting a fix).
	Skip map[uint64]string
	// Progress, if set, is called after each run (from the campaign's
	// goroutine, in no particular order of seeds).
	Progress func(done, total, failed int)
}

// CampaignResult sums a campaign up.
type CampaignResult struct {
	Runs, Skipped int
	// Failures are the failed runs, by seed.
	Failures []Result
	Events   uint64
	SimTime  time.Duration
	// Wall is the campaign's real time; RunWall the sum of the runs' real
	// times (CPU time, roughly, since each run is one goroutine).
	Wall, RunWall time.Duration
	// FaultRuns counts, per class, the runs that had it on.
	FaultRuns [numFaultClasses]int
	// Sizes counts runs by cluster size.
	Sizes map[int]int
	// LinUnknown counts runs whose linearizability check timed out.
	LinUnknown int
	// Coverage sums up which interesting states the runs reached.
	Coverage CampaignCoverage
}

// Campaign runs cc.
func Campaign(cc CampaignConfig) CampaignResult {
	start := time.Now()
	workers := cc.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var seeds []uint64
	res := CampaignResult{Sizes: map[int]int{}}
	for i := range cc.Seeds {
		seed := cc.First + uint64(i)
		if _, skip := cc.Skip[seed]; skip {
			res.Skipped++
			continue
		}
		seeds = append(seeds, seed)
	}
	results := make([]Result, len(seeds))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done, failed := 0, 0
	for range workers {
		wg.Go(func() {
			for i := range next {
				cfg := cc.Base
				cfg.Seed = seeds[i]
				r := Run(cfg)
				results[i] = r
				mu.Lock()
				done++
				if r.Failure != nil {
					failed++
				}
				if cc.Progress != nil {
					cc.Progress(done, len(seeds), failed)
				}
				mu.Unlock()
			}
		})
	}
	for i := range seeds {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, r := range results {
		res.Runs++
		res.Events += r.Events
		res.SimTime += r.SimTime
		res.RunWall += r.Wall
		res.Sizes[r.Params.Members]++
		res.Coverage.add(&r.Coverage)
		for _, c := range r.Params.Faults.Classes() {
			res.FaultRuns[c]++
		}
		if r.Stats.Linearizability == "unknown" {
			res.LinUnknown++
		}
		if r.Failure != nil {
			res.Failures = append(res.Failures, r)
		}
	}
	res.Wall = time.Since(start)
	return res
}

// WriteSummary writes the campaign's summary table.
func (r CampaignResult) WriteSummary(w io.Writer) {
	byKind := map[FailureKind]int{}
	for _, f := range r.Failures {
		byKind[f.Failure.Kind]++
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "runs\t%d\n", r.Runs)
	if r.Skipped > 0 {
		fmt.Fprintf(tw, "skipped (known failures)\t%d\n", r.Skipped)
	}
	fmt.Fprintf(tw, "failures\t%d\n", len(r.Failures))
	for _, k := range []FailureKind{FailSafety, FailLiveness, FailLinearizability, FailPanic, FailDeterminism} {
		if byKind[k] > 0 {
			fmt.Fprintf(tw, "  %s\t%d\n", k, byKind[k])
		}
	}
	sizes := make([]int, 0, len(r.Sizes))
	for n := range r.Sizes {
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	var parts []string
	for _, n := range sizes {
		parts = append(parts, fmt.Sprintf("%d×%d", r.Sizes[n], n))
	}
	fmt.Fprintf(tw, "cluster sizes\t%s\n", strings.Join(parts, " "))
	parts = parts[:0]
	for c := range numFaultClasses {
		parts = append(parts, fmt.Sprintf("%s %d", c, r.FaultRuns[c]))
	}
	fmt.Fprintf(tw, "runs per fault class\t%s\n", strings.Join(parts, ", "))
	if r.LinUnknown > 0 {
		fmt.Fprintf(tw, "linearizability checks timed out\t%d\n", r.LinUnknown)
	}
	fmt.Fprintf(tw, "simulated time\t%v\n", r.SimTime.Round(time.Millisecond))
	fmt.Fprintf(tw, "wall time\t%v (%v of run time)\n", r.Wall.Round(time.Millisecond), r.RunWall.Round(time.Millisecond))
	fmt.Fprintf(tw, "events\t%d\n", r.Events)
	if r.RunWall > 0 {
		fmt.Fprintf(tw, "events per second (per core)\t%.0f\n", float64(r.Events)/r.RunWall.Seconds())
		fmt.Fprintf(tw, "simulated / wall time (per core)\t%.0f×\n", r.SimTime.Seconds()/r.RunWall.Seconds())
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	r.Coverage.WriteTable(w)
	for _, f := range r.Failures {
		fmt.Fprintf(w, "\nseed %d (%v):\n%v\n", f.Seed, f.Params, f.Failure)
	}
}

// CheckDeterminism runs cfg twice and compares the trace hash after every
// event. It returns a Failure naming the first event that differs, or nil.
func CheckDeterminism(cfg Config) *Failure {
	run := func() (Result, *bytes.Buffer) {
		var buf bytes.Buffer
		c := cfg
		c.RecordHashes, c.Trace, c.Log = true, &buf, nil
		return Run(c), &buf
	}
	a, traceA := run()
	b, traceB := run()
	if a.TraceHash == b.TraceHash && len(a.Hashes) == len(b.Hashes) {
		return nil
	}
	n := min(len(a.Hashes), len(b.Hashes))
	first := n
	for i := range n {
		if a.Hashes[i] != b.Hashes[i] {
			first = i
			break
		}
	}
	event := uint64(first + 1)
	return &Failure{
		Kind: FailDeterminism, Invariant: "determinism", Event: event,
		Detail: fmt.Sprintf("two runs of seed %d differ first at event %d (of %d and %d):\n  first run:  %s\n  second run: %s",
			cfg.Seed, event, len(a.Hashes), len(b.Hashes), traceLines(traceA, event), traceLines(traceB, event)),
		Replay: ReplayCommand(cfg), ReplayTest: ReplayTestCommand(cfg),
	}
}

// traceLines returns the trace lines of event n.
func traceLines(buf *bytes.Buffer, n uint64) string {
	prefix := []byte(fmt.Sprintf(`{"n":%d,`, n))
	var out []string
	for line := range bytes.Lines(buf.Bytes()) {
		if bytes.HasPrefix(line, prefix) {
			out = append(out, strings.TrimSpace(string(line)))
		}
	}
	if len(out) == 0 {
		return "(a tick, or no such event)"
	}
	return strings.Join(out, " ")
}
