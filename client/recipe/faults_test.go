package recipe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/client/recipe/recipecheck"
)

// The fault tests run many contending clients against a 3-member cluster
// while members are stopped and restarted and clients are paused past
// their TTL, record every critical section, term, item or change, and
// check the history with recipecheck. Each planted bug must make the same
// check fail (a test of the test). RAFTKV_RECIPE_SOAK=<duration> makes
// each run that long (make soak-recipes).

// soak returns how long a fault run lasts: d, or RAFTKV_RECIPE_SOAK.
func soak(t *testing.T, d time.Duration) time.Duration {
	if v := os.Getenv("RAFTKV_RECIPE_SOAK"); v != "" {
		s, err := time.ParseDuration(v)
		require.NoError(t, err, "RAFTKV_RECIPE_SOAK")
		return s
	}
	return d
}

// memberFaults stops and restarts the leader, then a follower, within d.
func memberFaults(t *testing.T, c *testCluster, d time.Duration, stop <-chan struct{}) {
	for round := 0; ; round++ {
		phase := func(frac float64) bool {
			select {
			case <-stop:
				return false
			case <-time.After(time.Duration(frac * float64(d))):
				return true
			}
		}
		if !phase(0.15) {
			return
		}
		lead := c.leader()
		t.Logf("fault: stop m%d (leader)", lead+1)
		c.stop(lead)
		if !phase(0.15) {
			c.start(lead)
			return
		}
		c.start(lead)
		t.Logf("fault: restart m%d", lead+1)
		if !phase(0.1) {
			return
		}
		follower := (c.leader() + 1) % len(c.members)
		t.Logf("fault: stop m%d (follower)", follower+1)
		c.stop(follower)
		if !phase(0.1) {
			c.start(follower)
			return
		}
		c.start(follower)
		t.Logf("fault: restart m%d", follower+1)
	}
}

// contender is a lock or an election as the history runner drives it.
type contender interface {
	acquire(ctx context.Context) error
	release(ctx context.Context) error
	token() uint64
	lost() <-chan struct{}
}

type mutexContender struct{ m *Mutex }

func (c mutexContender) acquire(ctx context.Context) error { return c.m.Lock(ctx) }
func (c mutexContender) release(ctx context.Context) error { return c.m.Unlock(ctx) }
func (c mutexContender) token() uint64                     { return c.m.Token() }
func (c mutexContender) lost() <-chan struct{}             { return c.m.Lost() }

type electionContender struct {
	e    *Election
	name string
}

func (c electionContender) acquire(ctx context.Context) error { return c.e.Campaign(ctx, c.name) }
func (c electionContender) release(ctx context.Context) error { return c.e.Resign(ctx) }
func (c electionContender) token() uint64                     { return c.e.Token() }
func (c electionContender) lost() <-chan struct{}             { return c.e.Lost() }

// contentionRun describes a run of contending clients.
type contentionRun struct {
	clients  int
	duration time.Duration
	ttl      time.Duration
	// hold is the longest a holder keeps the lock (uniformly from 0).
	hold time.Duration
	// pauseEvery pauses a holder's keep-alive at every that many
	// acquisitions of a client (0: never): it then holds for 3 TTLs or
	// until told it lost.
	pauseEvery int
	// make returns client i's contender on session s.
	make func(s *Session, i int) contender
}

// runContention runs r and returns every section as its holder saw it.
func runContention(t *testing.T, c *testCluster, r contentionRun) []recipecheck.Section {
	var mu sync.Mutex
	var sections []recipecheck.Section
	end := time.Now().Add(r.duration)
	var wg sync.WaitGroup
	for i := range r.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := c.client()
			rng := rand.New(rand.NewPCG(uint64(i), 13))
			acquisitions := 0
			for time.Now().Before(end) {
				s, err := NewSession(cl, &SessionOptions{TTL: r.ttl})
				if !assert.NoError(t, err) {
					return
				}
				k := r.make(s, i)
				for s.Err() == nil && time.Now().Before(end) {
					ctx, cancel := context.WithDeadline(context.Background(), end)
					err := k.acquire(ctx)
					cancel()
					if err != nil {
						continue
					}
					sec := recipecheck.Section{Holder: fmt.Sprintf("client%d", i), Token: k.token(), Enter: time.Now()}
					acquisitions++
					hold := time.Duration(rng.Int64N(int64(r.hold) + 1))
					paused := r.pauseEvery > 0 && acquisitions%r.pauseEvery == 0
					if paused {
						s.hooks.pauseKeepAlive.Store(true)
						hold = 3 * r.ttl
					}
					select {
					case <-time.After(hold):
						sec.Exit = time.Now()
					case <-k.lost():
						sec.Lost = time.Now()
					}
					ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
					_ = k.release(ctx)
					cancel()
					mu.Lock()
					sections = append(sections, sec)
					mu.Unlock()
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = s.Close(ctx)
				cancel()
			}
		}()
	}
	wg.Wait()
	return sections
}

func lostCount(sections []recipecheck.Section) int {
	n := 0
	for _, s := range sections {
		if !s.Lost.IsZero() {
			n++
		}
	}
	return n
}

// TestLockUnderFaults: 8 clients contend for one lock with 1 s sessions
// while the leader and then a follower are stopped and restarted, and
// every fifth acquisition of a client pauses its keep-alive past the TTL.
func TestLockUnderFaults(t *testing.T) {
	c := startTestCluster(t, 3)
	d := soak(t, 7*time.Second)
	stop := make(chan struct{})
	faults := make(chan struct{})
	go func() { defer close(faults); memberFaults(t, c, d, stop) }()
	sections := runContention(t, c, contentionRun{
		clients: 8, duration: d, ttl: time.Second, hold: 20 * time.Millisecond, pauseEvery: 5,
		make: func(s *Session, i int) contender { m, _ := NewMutex(s, "faults"); return mutexContender{m} },
	})
	close(stop)
	<-faults
	t.Logf("%d critical sections, %d ended by a lost session", len(sections), lostCount(sections))
	require.NoError(t, recipecheck.CheckLock(sections))
	assert.Greater(t, len(sections), 20, "the lock makes progress under faults")
	assert.Positive(t, lostCount(sections), "paused holders were told they lost")
}

// TestElectionUnderFaults: the same with an election, plus an observer
// whose stream of leaders must follow the terms in order.
func TestElectionUnderFaults(t *testing.T) {
	c := startTestCluster(t, 3)
	d := soak(t, 6*time.Second)
	stop := make(chan struct{})
	faults := make(chan struct{})
	go func() { defer close(faults); memberFaults(t, c, d, stop) }()
	obsCtx, stopObserving := context.WithCancel(context.Background())
	var observed []Leader
	observing := make(chan struct{})
	go func() {
		defer close(observing)
		for l := range Observe(obsCtx, c.client(), "faults") {
			observed = append(observed, l)
		}
	}()
	terms := runContention(t, c, contentionRun{
		clients: 5, duration: d, ttl: time.Second, hold: 100 * time.Millisecond, pauseEvery: 4,
		make: func(s *Session, i int) contender {
			e, _ := NewElection(s, "faults")
			return electionContender{e, fmt.Sprint("candidate", i)}
		},
	})
	close(stop)
	<-faults
	stopObserving()
	<-observing
	t.Logf("%d terms, %d ended by a lost session; the observer saw %d leaders", len(terms), lostCount(terms), len(observed))
	require.NoError(t, recipecheck.CheckElection(terms))
	assert.Greater(t, len(terms), 10)
	for i := 1; i < len(observed); i++ {
		assert.Greater(t, observed[i].Token, observed[i-1].Token, "observed leaders in term order")
	}
}

// TestLockCheckerCatchesPlantedBugs: the lock's check fails on a waiter
// that watches the holder instead of its predecessor, and on a session
// that forgets its TTL (never tells a paused holder it lost).
func TestLockCheckerCatchesPlantedBugs(t *testing.T) {
	c := startTestCluster(t, 3)
	t.Run("watch the holder", func(t *testing.T) {
		sections := runContention(t, c, contentionRun{
			clients: 6, duration: 2 * time.Second, ttl: 2 * time.Second, hold: 30 * time.Millisecond,
			make: func(s *Session, i int) contender {
				m, _ := NewMutex(s, "planted-watch")
				m.bugs.watchHolder = true
				return mutexContender{m}
			},
		})
		err := recipecheck.CheckLock(sections)
		require.Error(t, err, "%d sections", len(sections))
		t.Log(err)
	})
	t.Run("forget the TTL", func(t *testing.T) {
		sections := runContention(t, c, contentionRun{
			clients: 3, duration: 2500 * time.Millisecond, ttl: time.Second, hold: 20 * time.Millisecond, pauseEvery: 2,
			make: func(s *Session, i int) contender {
				s.hooks.bugIgnoreDeadline = true
				m, _ := NewMutex(s, "planted-ttl")
				return mutexContender{m}
			},
		})
		err := recipecheck.CheckLock(sections)
		require.Error(t, err, "%d sections", len(sections))
		t.Log(err)
	})
	t.Run("election forgets the TTL", func(t *testing.T) {
		terms := runContention(t, c, contentionRun{
			clients: 3, duration: 2500 * time.Millisecond, ttl: time.Second, hold: 20 * time.Millisecond, pauseEvery: 2,
			make: func(s *Session, i int) contender {
				s.hooks.bugIgnoreDeadline = true
				e, _ := NewElection(s, "planted-ttl")
				return electionContender{e, strconv.Itoa(i)}
			},
		})
		err := recipecheck.CheckElection(terms)
		require.Error(t, err, "%d terms", len(terms))
		t.Log(err)
	})
}

// queueRun enqueues items from producers and dequeues them with
// consumers until every producer is done and the queue is drained.
// Producers pause up to gap between items.
func queueRun(t *testing.T, c *testCluster, name string, producers, items, consumers int, gap time.Duration, plant func(q *Queue)) ([]recipecheck.Enqueued, []recipecheck.Dequeued, []string) {
	var mu sync.Mutex
	var enq []recipecheck.Enqueued
	var deq []recipecheck.Dequeued
	var pwg, cwg sync.WaitGroup
	for p := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			q, _ := NewQueue(c.client(), name)
			rng := rand.New(rand.NewPCG(uint64(p), 5))
			for seq := range items {
				time.Sleep(time.Duration(rng.Int64N(int64(gap) + 1)))
				item := fmt.Sprintf("p%d-%d", p, seq)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				got, err := q.Enqueue(ctx, item)
				cancel()
				mu.Lock()
				enq = append(enq, recipecheck.Enqueued{Producer: fmt.Sprint("p", p), Seq: seq, Item: item, Acked: err == nil, Index: got.CreatedIndex})
				mu.Unlock()
			}
		}()
	}
	ctx, stopConsumers := context.WithCancel(context.Background())
	for i := range consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			q, _ := NewQueue(c.client(), name)
			if plant != nil {
				plant(q)
			}
			for ctx.Err() == nil {
				item, err := q.Dequeue(ctx)
				var unknown *UnknownOutcomeError
				switch {
				case err == nil:
					mu.Lock()
					deq = append(deq, recipecheck.Dequeued{Consumer: fmt.Sprint("c", i), Item: item.Value, Index: item.Index})
					mu.Unlock()
				case errors.As(err, &unknown):
					mu.Lock()
					deq = append(deq, recipecheck.Dequeued{Consumer: fmt.Sprint("c", i), Item: unknown.Item.Value, Unknown: true})
					mu.Unlock()
				}
			}
		}()
	}
	pwg.Wait()
	q, _ := NewQueue(c.client(), name)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n, err := q.Len(cctx)
		cancel()
		if err == nil && n == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	stopConsumers()
	cwg.Wait()
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nodes, _, err := listDir(cctx, c.client(), q.Dir())
	require.NoError(t, err)
	var pending []string
	for _, n := range nodes {
		pending = append(pending, n.Value)
	}
	return enq, deq, pending
}

// TestQueueUnderFaults: 3 producers and 3 consumers while the leader and
// a follower are stopped and restarted: every item dequeued exactly once
// (or by a dequeue of unknown outcome), in order per producer.
func TestQueueUnderFaults(t *testing.T) {
	c := startTestCluster(t, 3)
	stop := make(chan struct{})
	faults := make(chan struct{})
	go func() { defer close(faults); memberFaults(t, c, soak(t, 5*time.Second), stop) }()
	items := 60
	if os.Getenv("RAFTKV_RECIPE_SOAK") != "" {
		items = 600
	}
	enq, deq, pending := queueRun(t, c, "faults", 3, items, 3, 100*time.Millisecond, nil)
	close(stop)
	<-faults
	unknown := 0
	for _, d := range deq {
		if d.Unknown {
			unknown++
		}
	}
	t.Logf("%d enqueued, %d dequeued (%d of unknown outcome), %d left", len(enq), len(deq), unknown, len(pending))
	require.NoError(t, recipecheck.CheckQueue(enq, deq, pending))
	assert.Empty(t, pending)
}

// TestQueueCheckerCatchesPlantedBug: a dequeue without compare-and-delete
// hands items out twice.
func TestQueueCheckerCatchesPlantedBug(t *testing.T) {
	c := startTestCluster(t, 3)
	enq, deq, pending := queueRun(t, c, "planted", 1, 60, 4, 0, func(q *Queue) { q.bugs.noCompare = true })
	err := recipecheck.CheckQueue(enq, deq, pending)
	require.Error(t, err)
	t.Log(err)
}

// truthOf reads the key space's history of dir after index from the
// server's event history (the run must stay within its 1000 events).
func truthOf(t *testing.T, cl *client.Client, dir string, after, last uint64) []recipecheck.WatchEvent {
	ctx := testCtx(t, 10*time.Second)
	w := cl.Watcher(dir, &client.WatcherOptions{AfterIndex: after, Recursive: true})
	var out []recipecheck.WatchEvent
	for {
		ev, err := w.Next(ctx)
		require.NoError(t, err)
		out = append(out, toWatchEvent(Change{Action: ev.Action, Key: ev.Node.Key, Value: ev.Node.Value, Dir: ev.Node.Dir, Index: ev.Node.ModifiedIndex}))
		if ev.Node.ModifiedIndex >= last {
			return out
		}
	}
}

func toWatchEvent(ch Change) recipecheck.WatchEvent {
	return recipecheck.WatchEvent{Index: ch.Index, Key: ch.Key, Action: ch.Action, Value: ch.Value, Dir: ch.Dir, Resync: ch.Resync}
}

// configWriter changes keys under dir n times (sets, compare-and-swaps,
// deletes), pausing up to 40 ms between changes.
func configWriter(cl *client.Client, dir string, n int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range n {
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		key := fmt.Sprintf("%s/k%d", dir, rng.IntN(5))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		switch rng.IntN(4) {
		case 0:
			_, _ = cl.Delete(ctx, key, nil)
		case 1:
			if r, err := cl.Get(ctx, key, nil); err == nil {
				_, _ = cl.Set(ctx, key, fmt.Sprint("cas", i), &client.SetOptions{PrevIndex: r.Node.ModifiedIndex})
			}
		default:
			_, _ = cl.Set(ctx, key, fmt.Sprint("v", i), nil)
		}
		cancel()
	}
}

// watchRun follows dir with a ConfigWatcher and records what it reports.
type watchRun struct {
	w    *ConfigWatcher
	mu   sync.Mutex
	seen []recipecheck.WatchEvent
	stop context.CancelFunc
	done chan error
	// gate, if set, is waited for before each change is taken.
	gate chan struct{}
}

func startWatch(cl *client.Client, dir string, plant func(w *ConfigWatcher), gate chan struct{}) *watchRun {
	r := &watchRun{w: NewConfigWatcher(cl, dir), done: make(chan error, 1), gate: gate}
	if plant != nil {
		plant(r.w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() {
		r.done <- r.w.Run(ctx, func(ch Change) error {
			if r.gate != nil && ch.Action != ActionSnapshot {
				<-r.gate
			}
			r.mu.Lock()
			r.seen = append(r.seen, toWatchEvent(ch))
			r.mu.Unlock()
			return nil
		})
	}()
	return r
}

// waitFor waits until the watcher has reported index (or passed it) and
// stops it; when reach is false, a watcher that does not is stopped after
// a second (a planted bug may never get there).
func (r *watchRun) waitFor(t *testing.T, index uint64, reach bool) []recipecheck.WatchEvent {
	reached := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.seen) > 0 && r.seen[len(r.seen)-1].Index >= index
	}
	if reach {
		require.Eventually(t, reached, 20*time.Second, 10*time.Millisecond, "the watcher does not reach index %d", index)
	} else {
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && !reached(); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	r.stop()
	require.NoError(t, <-r.done)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen
}

// TestConfigWatchUnderFaults: a watcher's changes equal the directory's
// history while two writers change it and members are stopped and
// restarted.
func TestConfigWatchUnderFaults(t *testing.T) {
	c := startTestCluster(t, 3)
	cl := c.client()
	ctx := testCtx(t, 30*time.Second)
	start, err := cl.Get(ctx, "/", nil)
	require.NoError(t, err)
	watch := startWatch(cl, "/cfg", nil, nil)
	stop := make(chan struct{})
	faults := make(chan struct{})
	go func() { defer close(faults); memberFaults(t, c, 4*time.Second, stop) }()
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); configWriter(c.client(), "/cfg", 150, uint64(i)) }()
	}
	wg.Wait()
	close(stop)
	<-faults
	_, err = cl.Set(ctx, "/cfg/end", "end", nil)
	require.NoError(t, err)
	last, err := cl.Get(ctx, "/cfg/end", nil)
	require.NoError(t, err)
	seen := watch.waitFor(t, last.Node.ModifiedIndex, true)
	truth := truthOf(t, cl, "/cfg", start.Index, last.Node.ModifiedIndex)
	t.Logf("%d events in the history, %d changes reported", len(truth), len(seen))
	require.NoError(t, recipecheck.CheckWatch(truth, seen))
}

// TestConfigWatchRecoversFrom401: a watcher held up past the server's
// 1000-event history re-reads the directory and reports the differences;
// the planted bug (carry on from the current index) is caught.
func TestConfigWatchRecoversFrom401(t *testing.T) {
	c := startTestCluster(t, 3)
	for _, planted := range []bool{false, true} {
		t.Run(fmt.Sprint("planted=", planted), func(t *testing.T) {
			cl := c.client()
			ctx := testCtx(t, 60*time.Second)
			dir := fmt.Sprintf("/cfg401-%v", planted)
			var truth []recipecheck.WatchEvent
			record := func(resp *client.Response, err error) {
				require.NoError(t, err)
				truth = append(truth, toWatchEvent(Change{Action: resp.Action, Key: resp.Node.Key, Value: resp.Node.Value, Index: resp.Node.ModifiedIndex}))
			}
			record(cl.Set(ctx, dir+"/a", "1", nil))
			record(cl.Set(ctx, dir+"/b", "1", nil))
			gate := make(chan struct{})
			var plant func(w *ConfigWatcher)
			if planted {
				plant = func(w *ConfigWatcher) { w.bugs.skipOn401 = true }
			}
			watch := startWatch(cl, dir, plant, gate)
			time.Sleep(200 * time.Millisecond)
			record(cl.Set(ctx, dir+"/a", "2", nil)) // the watcher is held up on this one
			record(cl.Delete(ctx, dir+"/b", nil))
			record(cl.Set(ctx, dir+"/c", "1", nil))
			// 1100 events elsewhere push those out of the history.
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 70 {
						_, err := cl.Set(ctx, fmt.Sprintf("/noise/%d", w), strconv.Itoa(i), nil)
						assert.NoError(t, err)
					}
				}()
			}
			wg.Wait()
			record(cl.Set(ctx, dir+"/a", "3", nil))
			close(gate)
			seen := watch.waitFor(t, truth[len(truth)-1].Index, !planted)
			err := recipecheck.CheckWatch(truth, seen)
			if planted {
				require.Error(t, err)
				t.Log(err)
				return
			}
			require.NoError(t, err)
			resynced := false
			for _, s := range seen {
				resynced = resynced || s.Action == ActionSnapshot && s.Index > truth[1].Index
			}
			assert.True(t, resynced, "the watcher re-read after the 401: %+v", seen)
		})
	}
}
