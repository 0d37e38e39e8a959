package simulator

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time the process has used (user and system, all
// threads: the run's goroutine and the garbage collector). On a machine
// shared with other work it measures the simulator better than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchmarkLoad runs the standard load — 5 members, 10 clients each
// issuing one operation every 10ms of virtual time — and reports simulated
// events per wall second and simulated seconds per wall second (both for
// the event loop on one core; the linearizability check is excluded and
// reported on its own).
func benchmarkLoad(b *testing.B, kind MemberKind, faults bool) {
	var events uint64
	var sim, loop, check time.Duration
	var ops int
	var cpu time.Duration
	for i := 0; b.Loop(); i++ {
		cfg := Config{Seed: uint64(i + 1), Kind: kind, Members: 5, Clients: 10, OpInterval: 10 * time.Millisecond, Duration: 10 * time.Second}
		if faults {
			cfg.NoSwarm = true
			cfg.Faults = AllFaults.Without(FaultCorrupt)
		} else {
			cfg.NoFaults = true
		}
		cpu0 := cpuTime()
		cfg.NoLinearizability = true
		res := Run(cfg)
		cpu += cpuTime() - cpu0
		if faults || i < 3 {
			// The history check, timed on its own (porcupine runs in
			// goroutines of its own).
			cfg.NoLinearizability = false
			r := Run(cfg)
			if r.Failure != nil {
				b.Fatalf("seed %d: %v", cfg.Seed, r.Failure)
			}
			check += r.Wall - r.LoopWall
		}
		if res.Failure != nil {
			b.Fatalf("seed %d: %v", cfg.Seed, res.Failure)
		}
		events += res.Events
		sim += res.SimTime
		loop += res.LoopWall
		ops += res.Stats.Ops
	}
	b.ReportMetric(float64(events)/loop.Seconds(), "events/s")
	b.ReportMetric(sim.Seconds()/loop.Seconds(), "sim-s/wall-s")
	b.ReportMetric(float64(events)/float64(b.N), "events/run")
	b.ReportMetric(float64(ops)/float64(b.N), "ops/run")
	b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(sim.Seconds()/cpu.Seconds(), "sim-s/cpu-s")
	checked := b.N
	if !faults {
		checked = min(b.N, 3)
	}
	b.ReportMetric(check.Seconds()*1000/float64(checked), "lincheck-ms/run")
}

// Full members (server.Member, key space, WAL on FaultyFS), then raft
// members with a log-appending state machine.
func BenchmarkStandardLoadFaults(b *testing.B)          { benchmarkLoad(b, KindKV, true) }
func BenchmarkStandardLoadNoFaults(b *testing.B)        { benchmarkLoad(b, KindKV, false) }
func BenchmarkStandardLoadFaultsRaftAlone(b *testing.B) { benchmarkLoad(b, KindLog, true) }
func BenchmarkStandardLoadNoFaultsRaftAlone(b *testing.B) {
	benchmarkLoad(b, KindLog, false)
}

// countingWriter counts what is written to it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkTraceWriting runs the standard fault-free load of full members
// with the version-2 trace written (to a counter): what a viewer's trace
// costs, beside BenchmarkStandardLoadNoFaults without one.
func BenchmarkTraceWriting(b *testing.B) {
	var events uint64
	var loop time.Duration
	var w countingWriter
	for i := 0; b.Loop(); i++ {
		cfg := Config{Seed: uint64(i + 1), Members: 5, Clients: 10, OpInterval: 10 * time.Millisecond, Duration: 10 * time.Second,
			NoFaults: true, NoLinearizability: true, Trace: &w}
		res := Run(cfg)
		if res.Failure != nil {
			b.Fatalf("seed %d: %v", cfg.Seed, res.Failure)
		}
		events += res.Events
		loop += res.LoopWall
	}
	b.ReportMetric(float64(events)/loop.Seconds(), "events/s")
	b.ReportMetric(float64(w.n)/float64(events), "trace-bytes/event")
}
