package simulator

import (
	"fmt"
	"io"
	"time"
)

// ShrinkResult is the smallest configuration Shrink found that still fails.
type ShrinkResult struct {
	Config  Config
	Result  Result
	Tries   int
	Removed []FaultClass
}

// Shrink looks for a smaller configuration of a failing run that still
// fails the same kind of check: a shorter fault phase (a safety failure at
// time t needs no fault phase beyond t), then fault classes removed one at
// a time, then fewer clients and members. log, if set, follows its
// progress. The seed stays the same: each PRNG stream is per concern, so
// removing one fault class leaves the others' draws alone.
func Shrink(cfg Config, failed Result, log io.Writer) ShrinkResult {
	if failed.Failure == nil {
		panic("simulator: Shrink of a run that did not fail")
	}
	cfg = cfg.withDefaultsForReplay()
	// Allowing exactly the classes the run drew gives the same run (every
	// class's draw is made whether it is allowed or not), and a replay
	// command that names only what matters.
	cfg.Faults, cfg.NoFaults = failed.Params.Faults, failed.Params.Faults == 0
	best := ShrinkResult{Config: cfg, Result: failed}
	kind := failed.Failure.Kind
	try := func(c Config, what string) bool {
		best.Tries++
		c.Log, c.Trace = nil, nil
		r := Run(c)
		ok := r.Failure != nil && r.Failure.Kind == kind
		if log != nil {
			verdict := "passes"
			if ok {
				verdict = "still fails: " + r.Failure.Invariant
			}
			fmt.Fprintf(log, "shrink: %s: %s\n", what, verdict)
		}
		if ok {
			best.Config, best.Result = c, r
		}
		return ok
	}
	shorten := func() {
		if best.Result.Failure.Kind == FailSafety || best.Result.Failure.Kind == FailPanic {
			d := (best.Result.Failure.At/(100*time.Millisecond) + 1) * 100 * time.Millisecond
			if d < best.Config.Duration {
				c := best.Config
				c.Duration = d
				try(c, fmt.Sprintf("duration %v", d))
			}
		}
		for best.Config.Duration > 200*time.Millisecond {
			c := best.Config
			c.Duration = (c.Duration / 2).Round(time.Millisecond)
			if !try(c, fmt.Sprintf("duration %v", c.Duration)) {
				break
			}
		}
	}
	shorten()
	for _, fc := range best.Result.Params.Faults.Classes() {
		c := best.Config
		c.Faults = c.Faults.Without(fc)
		if c.Faults == 0 {
			c.NoFaults = true
		}
		if try(c, "without "+fc.String()) {
			best.Removed = append(best.Removed, fc)
		}
	}
	if n := best.Result.Params.Clients; n > 1 {
		c := best.Config
		c.Clients = 1
		try(c, "one client")
	}
	if n := best.Result.Params.Members; n > 3 {
		c := best.Config
		c.Members = 3
		try(c, "three members")
	}
	shorten()
	return best
}

// withDefaultsForReplay fills in the defaults that a replay command must
// spell out for the shrunk configuration to mean the same thing.
func (c Config) withDefaultsForReplay() Config {
	d := c.withDefaults()
	c.Duration, c.Faults = d.Duration, d.Faults
	return c
}
