package simulator

import (
	"testing"
	"time"
)

// benchmarkLoad runs the standard load — 5 members, 10 clients each
// issuing one operation every 10ms of virtual time — and reports simulated
// events per wall second and simulated seconds per wall second (both for
// the event loop on one core; the linearizability check is excluded and
// reported on its own).
func benchmarkLoad(b *testing.B, faults bool) {
	var events uint64
	var sim, loop, check time.Duration
	var ops int
	for i := 0; b.Loop(); i++ {
		cfg := Config{Seed: uint64(i + 1), Members: 5, Clients: 10, OpInterval: 10 * time.Millisecond, Duration: 10 * time.Second}
		if faults {
			cfg.NoSwarm = true
			cfg.Faults = AllFaults.Without(FaultCorrupt)
		} else {
			cfg.NoFaults = true
		}
		res := Run(cfg)
		if res.Failure != nil {
			b.Fatalf("seed %d: %v", cfg.Seed, res.Failure)
		}
		events += res.Events
		sim += res.SimTime
		loop += res.LoopWall
		check += res.Wall - res.LoopWall
		ops += res.Stats.Ops
	}
	b.ReportMetric(float64(events)/loop.Seconds(), "events/s")
	b.ReportMetric(sim.Seconds()/loop.Seconds(), "sim-s/wall-s")
	b.ReportMetric(float64(events)/float64(b.N), "events/run")
	b.ReportMetric(float64(ops)/float64(b.N), "ops/run")
	b.ReportMetric(check.Seconds()*1000/float64(b.N), "lincheck-ms/run")
}

func BenchmarkStandardLoadFaults(b *testing.B)   { benchmarkLoad(b, true) }
func BenchmarkStandardLoadNoFaults(b *testing.B) { benchmarkLoad(b, false) }
