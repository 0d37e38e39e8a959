package benchmarks

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/embed"
)

// startCluster starts a 3-member cluster on loopback with its data on the
// real disk (b.TempDir), and waits for a leader.
func startCluster(b *testing.B) []*embed.Member {
	b.Helper()
	peers := make([]string, 3)
	var initial []string
	for i := range peers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		peers[i] = "http://" + ln.Addr().String()
		ln.Close()
		initial = append(initial, fmt.Sprintf("m%d=%s", i+1, peers[i]))
	}
	var members []*embed.Member
	for i := range peers {
		m, err := embed.Start(embed.Config{
			Name: fmt.Sprintf("m%d", i+1), DataDir: b.TempDir(),
			ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{peers[i]},
			InitialCluster: strings.Join(initial, ","),
		})
		if err != nil {
			b.Fatal(err)
		}
		members = append(members, m)
	}
	b.Cleanup(func() {
		for _, m := range members {
			m.Stop()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for members[0].Runtime().Status().Leader == 0 {
		if time.Now().After(deadline) {
			b.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return members
}

// BenchmarkClusterWrites measures fsynced writes through the etcd v2 API
// of a 3-member cluster on loopback: each of C clients keeps one
// keep-alive connection to one member (spread over all three) and PUTs
// 256-byte values, one request at a time. It reports writes/s and latency
// percentiles. One op is one write.
func BenchmarkClusterWrites(b *testing.B) {
	for _, clients := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			members := startCluster(b)
			var endpoints []string
			for _, m := range members {
				endpoints = append(endpoints, m.ClientURLs()[0])
			}
			body := "value=" + strings.Repeat("v", 256)
			var next atomic.Int64
			latencies := make([][]time.Duration, clients)
			var failures atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
					defer hc.CloseIdleConnections()
					url := fmt.Sprintf("%s/v2/keys/bench/c%d", endpoints[c%len(endpoints)], c)
					for next.Add(1) <= int64(b.N) {
						req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
						req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
						t0 := time.Now()
						resp, err := hc.Do(req)
						if err != nil {
							failures.Add(1)
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode >= 300 {
							failures.Add(1)
							continue
						}
						latencies[c] = append(latencies[c], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			var all []time.Duration
			for _, l := range latencies {
				all = append(all, l...)
			}
			if f := failures.Load(); f > 0 {
				b.Fatalf("%d writes failed", f)
			}
			slices.Sort(all)
			pct := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))]) / 1e6 }
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "writes/s")
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(pct(0.999), "p999-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
