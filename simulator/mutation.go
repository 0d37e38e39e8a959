package simulator

import (
	"fmt"
	"io"
	"runtime"
	"sync"
	"text/tabwriter"
	"time"
)

// Mutation testing: plant a known bug (PlantedBugs) in every member and
// run the campaign until a seed fails. The number of seeds that takes
// measures the campaign's power to find that class of bug; a campaign that
// needs many seeds, or never fails, would let such a bug through.

// Catch is how a campaign fared against one planted bug.
type Catch struct {
	Bug PlantedBug
	// Seeds is how many seeds ran, up to and including the first that
	// failed (all of them if none did); Caught says whether one did.
	Seeds  int
	Caught bool
	// First is the first failing run.
	First Result
	Wall  time.Duration
}

// CatchBug runs base with bug planted on seeds first, first+1, ... until
// one fails or maxSeeds have run, workers at a time (0: GOMAXPROCS). The
// seeds run in batches of workers, so the first failing seed is found
// exactly, as in a sequential run.
func CatchBug(base Config, bug PlantedBug, first uint64, maxSeeds, workers int) Catch {
	start := time.Now()
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	base.Bug = bug
	c := Catch{Bug: bug}
	for done := 0; done < maxSeeds; {
		n := min(workers, maxSeeds-done)
		results := make([]Result, n)
		var wg sync.WaitGroup
		for k := range n {
			wg.Go(func() {
				cfg := base
				cfg.Seed = first + uint64(done+k)
				results[k] = Run(cfg)
			})
		}
		wg.Wait()
		for k, r := range results {
			if r.Failure != nil {
				c.Seeds, c.Caught, c.First, c.Wall = done+k+1, true, r, time.Since(start)
				return c
			}
		}
		done += n
	}
	c.Seeds, c.Wall = maxSeeds, time.Since(start)
	return c
}

// WriteCatchTable writes catches as a table: the bug, the seeds it took,
// and the first failure's check.
func WriteCatchTable(w io.Writer, catches []Catch) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "planted bug\tseeds to catch\tcaught by\tseed\twall")
	for _, c := range catches {
		if !c.Caught {
			fmt.Fprintf(tw, "%s\tnot in %d\t-\t-\t%v\n", c.Bug, c.Seeds, c.Wall.Round(time.Millisecond))
			continue
		}
		f := c.First.Failure
		fmt.Fprintf(tw, "%s\t%d\t%s (%s)\t%d\t%v\n", c.Bug, c.Seeds, f.Invariant, f.Kind, c.First.Seed, c.Wall.Round(time.Millisecond))
	}
	_ = tw.Flush()
}
