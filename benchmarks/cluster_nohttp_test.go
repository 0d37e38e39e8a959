package benchmarks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/server"
)

// BenchmarkClusterWritesNoHTTP is BenchmarkClusterWrites without the HTTP
// layer: clients call the leader's runtime directly. The difference between
// the two is what HTTP (net/http, the v2 API's parsing and JSON) costs on
// this machine; this one is the ceiling of the replication pipeline itself
// (raft, WAL with fsync, peer transport, key space) on 3 members.
func BenchmarkClusterWritesNoHTTP(b *testing.B) {
	for _, clients := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			members := startCluster(b)
			var leader *server.Runtime
			for _, m := range members {
				if m.Runtime().Status().Leader == m.ID() {
					leader = m.Runtime()
				}
			}
			if leader == nil {
				leader = members[0].Runtime()
			}
			value := strings.Repeat("v", 256)
			var next atomic.Int64
			lat := make([][]time.Duration, clients)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						r, err := leader.Do(context.Background(), server.Request{Kind: server.RequestWrite,
							Command: kvstore.Command{Op: kvstore.OpSet, Path: fmt.Sprintf("/k%d", c), Value: value}})
						if err != nil || r.Err != nil {
							b.Error(err, r.Err)
							return
						}
						lat[c] = append(lat[c], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			slices.Sort(all)
			b.ReportMetric(float64(len(all))/el.Seconds(), "writes/s")
			b.ReportMetric(float64(all[len(all)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(all[len(all)*99/100])/1e6, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
