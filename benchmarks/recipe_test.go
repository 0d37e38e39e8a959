package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/client/recipe"
)

// The coordination recipes on a 3-member cluster on loopback (data on the
// real disk): lock acquisitions per second, election failover time, queue
// throughput.

func recipeClient(b *testing.B, endpoints []string) *client.Client {
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

func clusterEndpoints(b *testing.B) []string {
	var eps []string
	for _, m := range startCluster(b) {
		eps = append(eps, m.ClientURLs()[0])
	}
	return eps
}

// BenchmarkRecipeLock measures lock acquisitions per second (each a Lock
// and an Unlock with an empty critical section) with 1, 16 and 64
// contenders, each with its own client and session. One op is one
// acquisition.
func BenchmarkRecipeLock(b *testing.B) {
	for _, contenders := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("contenders=%d", contenders), func(b *testing.B) {
			eps := clusterEndpoints(b)
			var mutexes []*recipe.Mutex
			for range contenders {
				s, err := recipe.NewSession(recipeClient(b, eps), &recipe.SessionOptions{TTL: 10 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = s.Close(context.Background()) })
				m, err := recipe.NewMutex(s, "bench")
				if err != nil {
					b.Fatal(err)
				}
				mutexes = append(mutexes, m)
			}
			var next atomic.Int64
			latencies := make([][]time.Duration, contenders)
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i, m := range mutexes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						if err := m.Lock(ctx); err != nil {
							b.Error(err)
							return
						}
						latencies[i] = append(latencies[i], time.Since(t0))
						if err := m.Unlock(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(latencies...)
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "acquisitions/s")
			b.ReportMetric(percentileMs(all, 0.50), "p50-wait-ms")
			b.ReportMetric(percentileMs(all, 0.99), "p99-wait-ms")
		})
	}
}

// BenchmarkRecipeElectionFailover measures how long an election stays
// without a leader after the leader's session is lost (its keep-alive
// stops, as when its process is paused or dies): from the leader's last
// successful refresh (or election) to the moment the next candidate's
// Campaign returns. The floor is the TTL (the key must expire) plus up to
// one expiry sweep (500 ms). One op is one failover.
func BenchmarkRecipeElectionFailover(b *testing.B) {
	const ttl = time.Second
	eps := clusterEndpoints(b)
	ctx := context.Background()
	var failovers []time.Duration
	newCandidate := func() (*recipe.Session, *recipe.Election, *breakable) {
		tr := &breakable{base: client.NewTransport(nil, time.Second, 4)}
		c, err := client.New(client.Config{Endpoints: eps, Transport: tr})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		s, err := recipe.NewSession(c, &recipe.SessionOptions{TTL: ttl})
		if err != nil {
			b.Fatal(err)
		}
		e, err := recipe.NewElection(s, "failover")
		if err != nil {
			b.Fatal(err)
		}
		return s, e, tr
	}
	// The leader is cut off without resigning: its key is left to expire,
	// as a crashed or paused process's would be.
	_, leader, leaderNet := newCandidate()
	if err := leader.Campaign(ctx, "first"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		_, next, nextNet := newCandidate()
		elected := make(chan time.Time, 1)
		go func() {
			if err := next.Campaign(ctx, fmt.Sprint("candidate", i)); err != nil {
				b.Error(err)
			}
			elected <- time.Now()
		}()
		time.Sleep(50 * time.Millisecond) // the candidate is queued
		leaderNet.broken.Store(true)
		<-leader.Lost()
		failovers = append(failovers, (<-elected).Sub(time.Unix(0, leaderNet.lastWrite.Load())))
		leader, leaderNet = next, nextNet
	}
	b.StopTimer()
	b.ReportMetric(ttl.Seconds()*1000, "ttl-ms")
	b.ReportMetric(percentileMs(failovers, 0), "min-failover-ms")
	b.ReportMetric(percentileMs(failovers, 0.50), "p50-failover-ms")
	b.ReportMetric(percentileMs(failovers, 0.99), "p99-failover-ms")
	b.ReportMetric(percentileMs(failovers, 1), "max-failover-ms")
}

// breakable is a transport that fails every request once broken, and
// remembers when the last write that succeeded was sent (the start of a
// key's TTL).
type breakable struct {
	base      http.RoundTripper
	broken    atomic.Bool
	lastWrite atomic.Int64
}

func (t *breakable) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.broken.Load() {
		return nil, errors.New("cut off")
	}
	sent := time.Now()
	resp, err := t.base.RoundTrip(r)
	if err == nil && r.Method != http.MethodGet && resp.StatusCode < 300 {
		t.lastWrite.Store(sent.UnixNano())
	}
	return resp, err
}

// BenchmarkRecipeQueue measures queue throughput: producers enqueue and
// consumers dequeue concurrently (1 and 1, 4 and 4). Consumers race for
// the head: all but one of them read again. One op is one item through
// the queue.
func BenchmarkRecipeQueue(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("producers=%d,consumers=%d", n, n), func(b *testing.B) { benchmarkQueue(b, n, n) })
	}
}

func benchmarkQueue(b *testing.B, producers, consumers int) {
	eps := clusterEndpoints(b)
	ctx := context.Background()
	var enqueued, dequeued atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, _ := recipe.NewQueue(recipeClient(b, eps), "bench")
			for enqueued.Add(1) <= int64(b.N) {
				if _, err := q.Enqueue(ctx, "item"); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, _ := recipe.NewQueue(recipeClient(b, eps), "bench")
			for dequeued.Add(1) <= int64(b.N) {
				if _, err := q.Dequeue(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "items/s")
}

func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}
