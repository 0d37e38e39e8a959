package server

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/storage"
)

// BenchmarkMemberApply measures one member's request pipeline in memory:
// writes of 256-byte values submitted in batches, proposed, written to the
// WAL on a memory file system, committed, applied to the key space and
// answered. It isolates the member's own cost from disks and networks.
func BenchmarkMemberApply(b *testing.B) {
	for _, batch := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			m, err := New(Config{ID: 1, Name: "m1", FS: storage.NewMemFS(), Dir: "data",
				Rand: rand.New(rand.NewPCG(1, 1)), ElectionTicks: 10, SnapshotEvery: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for m.Leader() == 0 {
				now = now.Add(100 * time.Millisecond)
				m.Tick(now)
				processAll(m)
			}
			value := string(make([]byte, 256))
			keys := make([]string, 1024)
			for i := range keys {
				keys[i] = fmt.Sprintf("/bench/key%04d", i)
			}
			answered := 0
			done := func(r Response) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
				answered++
			}
			b.ReportAllocs()
			b.ResetTimer()
			for submitted := 0; submitted < b.N; {
				n := min(batch, b.N-submitted)
				for i := range n {
					m.Submit(Request{Kind: RequestWrite, Now: now, Command: kvstore.Command{
						Op: kvstore.OpSet, Path: keys[(submitted+i)%len(keys)], Value: value}}, done)
				}
				submitted += n
				processAll(m)
			}
			b.StopTimer()
			if answered != b.N {
				b.Fatalf("answered %d of %d", answered, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// processAll runs the member until it has nothing to do, doing its disk
// work at once.
func processAll(m *Member) {
	for m.HasWork() {
		if out := m.Process(); out.Persist != nil {
			m.PersistDone(out.Persist, out.Persist.Run())
		}
	}
}
