package linearizability

import (
	"io"
	"testing"
)

// BenchmarkCheck checks a history of 200 operations on five keys, reads
// answered by a leader or by a follower after ReadIndex: the shape of a
// short simulator run.
func BenchmarkCheck(b *testing.B) {
	h, _ := runFollowerReads(b, 1, true)
	opts := Options{Log: io.Discard, VisualizationPath: "/dev/null"}
	b.ResetTimer()
	for b.Loop() {
		if res := Check(h, opts); !res.Ok {
			b.Fatal(res)
		}
	}
	b.ReportMetric(float64(len(h.Operations))*float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkCheckUnknown is BenchmarkCheck with one write in ten answered
// unknown: the price of unknown outcomes.
func BenchmarkCheckUnknown(b *testing.B) {
	h, _ := runFollowerReads(b, 1, true)
	n := 0
	for i := range h.Operations {
		if op := &h.Operations[i]; op.Input.isWrite() {
			if n%10 == 0 {
				op.Unknown = true
			}
			n++
		}
	}
	opts := Options{Log: io.Discard, VisualizationPath: "/dev/null"}
	b.ResetTimer()
	for b.Loop() {
		if res := Check(h, opts); !res.Ok {
			b.Fatal(res)
		}
	}
	b.ReportMetric(float64(len(h.Operations))*float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
