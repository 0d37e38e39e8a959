package recipe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/client"
)

// TestRecipeBasics runs every recipe's plain operations on one cluster.
func TestRecipeBasics(t *testing.T) {
	c := startTestCluster(t, 3)
	t.Run("Lock", func(t *testing.T) { testLockBasics(t, c) })
	t.Run("LockWaiterKeyExpires", func(t *testing.T) { testLockWaiterKeyExpires(t, c) })
	t.Run("Election", func(t *testing.T) { testElectionBasics(t, c) })
	t.Run("Queue", func(t *testing.T) { testQueueBasics(t, c) })
	t.Run("Registry", func(t *testing.T) { testRegistryBasics(t, c) })
	t.Run("Session", func(t *testing.T) { testSessionLost(t, c) })
	t.Run("UncertainRefresh", func(t *testing.T) { testUncertainRefresh(t, c) })
}

// lossyTransport delivers every request, but when lose is set it throws
// the answer to the next refresh away: a refresh of unknown outcome that
// did apply.
type lossyTransport struct {
	base http.RoundTripper
	lose atomic.Bool
	// lostAt is when the lost refresh was sent (unix ns).
	lostAt atomic.Int64
}

func (l *lossyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	sent := time.Now()
	resp, err := l.base.RoundTrip(r)
	if err == nil && r.Method == http.MethodPut && l.lose.CompareAndSwap(true, false) {
		resp.Body.Close()
		l.lostAt.Store(sent.UnixNano())
		return nil, errors.New("connection reset (the answer was lost)")
	}
	return resp, err
}

// testUncertainRefresh: after a refresh whose answer was lost, later
// successful refreshes do not extend the session's belief past that
// refresh's send time + TTL (it may still apply late with that expiry).
func testUncertainRefresh(t *testing.T, c *testCluster) {
	ctx := testCtx(t, 20*time.Second)
	tr := &lossyTransport{base: client.NewTransport(nil, time.Second, 4)}
	cl, err := client.New(client.Config{Endpoints: c.endpoints[:1], Transport: tr})
	require.NoError(t, err)
	defer cl.Close()
	s, err := NewSession(cl, &SessionOptions{TTL: 2 * time.Second})
	require.NoError(t, err)
	defer s.Close(ctx)
	m, _ := NewMutex(s, "uncertain")
	require.NoError(t, m.Lock(ctx))
	tr.lose.Store(true)
	select {
	case <-m.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("the session kept believing past the uncertain refresh's TTL")
	}
	lostAt := time.Unix(0, tr.lostAt.Load())
	assert.WithinDuration(t, lostAt.Add(1800*time.Millisecond), time.Now(), 200*time.Millisecond,
		"lost at the uncertain refresh's send time + TTL - guard")
	assert.Contains(t, s.Err().Error(), "no refresh of")
}

func testLockBasics(t *testing.T, c *testCluster) {
	ctx := testCtx(t, 20*time.Second)
	s1, s2 := c.session(2*time.Second), c.session(2*time.Second)
	m1, err := NewMutex(s1, "basics")
	require.NoError(t, err)
	m2, err := NewMutex(s2, "basics")
	require.NoError(t, err)
	_, err = NewMutex(s1, "")
	assert.Error(t, err, "a lock needs a name")

	require.NoError(t, m1.Lock(ctx))
	assert.ErrorIs(t, m1.Lock(ctx), ErrAlreadyLocking)
	assert.NoError(t, m1.CheckHeld())
	first := m1.Token()
	assert.NotZero(t, first)
	assert.Contains(t, m1.Key(), "/_recipes/locks/basics/")
	assert.ErrorIs(t, m2.TryLock(ctx), ErrLocked)

	acquired := make(chan error, 1)
	go func() { acquired <- m2.Lock(ctx) }()
	select {
	case err := <-acquired:
		t.Fatalf("the second locker got the lock while the first held it: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	// Hold past several TTL/3 refresh periods: the key must stay.
	time.Sleep(2500 * time.Millisecond)
	assert.NoError(t, m1.CheckHeld(), "the session keeps the key alive")
	require.NoError(t, m1.Unlock(ctx))
	require.NoError(t, <-acquired)
	assert.Greater(t, m2.Token(), first, "fencing tokens increase")
	assert.ErrorIs(t, m1.Unlock(ctx), ErrNotLocked)
	require.NoError(t, m2.Unlock(ctx))
	require.NoError(t, m1.TryLock(ctx))
	require.NoError(t, m1.Unlock(ctx))
}

// testLockWaiterKeyExpires: a waiter whose own key vanished must fail Lock
// with a clear error, not acquire.
func testLockWaiterKeyExpires(t *testing.T, c *testCluster) {
	ctx := testCtx(t, 20*time.Second)
	holder, waiter := c.session(time.Second), c.session(time.Second)
	mh, _ := NewMutex(holder, "expiry")
	mw, _ := NewMutex(waiter, "expiry")
	require.NoError(t, mh.Lock(ctx))
	errc := make(chan error, 1)
	go func() { errc <- mw.Lock(ctx) }()
	require.Eventually(t, func() bool {
		nodes, _, _ := listDir(ctx, c.client(), "/_recipes/locks/expiry")
		return len(nodes) == 2
	}, 5*time.Second, 10*time.Millisecond)
	// Delete the waiter's key behind its back (as an expiry would).
	nodes, _, err := listDir(ctx, c.client(), "/_recipes/locks/expiry")
	require.NoError(t, err)
	_, err = c.client().Delete(ctx, nodes[1].Key, nil)
	require.NoError(t, err)
	require.NoError(t, mh.Unlock(ctx))
	err = <-errc
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrSessionLost)
	assert.Contains(t, err.Error(), "lock expiry:")
	assert.Zero(t, mw.Token(), "the waiter does not hold")
}

func testElectionBasics(t *testing.T, c *testCluster) {
	ctx := testCtx(t, 20*time.Second)
	s1, s2 := c.session(2*time.Second), c.session(2*time.Second)
	e1, err := NewElection(s1, "basics")
	require.NoError(t, err)
	e2, _ := NewElection(s2, "basics")
	_, err = e1.Leader(ctx)
	assert.ErrorIs(t, err, ErrNoLeader)

	obsCtx, stopObs := context.WithCancel(ctx)
	defer stopObs()
	observed := Observe(obsCtx, c.client(), "basics")
	require.NoError(t, e1.Campaign(ctx, "one"))
	l := <-observed
	assert.Equal(t, "one", l.Value)
	assert.Equal(t, e1.Token(), l.Token)

	campaigned := make(chan error, 1)
	go func() { campaigned <- e2.Campaign(ctx, "two") }()
	require.NoError(t, e1.Proclaim(ctx, "one again"))
	l = <-observed
	assert.Equal(t, "one again", l.Value)
	leader, err := e2.Leader(ctx)
	require.NoError(t, err)
	assert.Equal(t, "one again", leader.Value)
	assert.ErrorIs(t, e2.Proclaim(ctx, "x"), ErrNotLeader)

	require.NoError(t, e1.Resign(ctx))
	require.NoError(t, <-campaigned)
	l = <-observed
	assert.Equal(t, "two", l.Value)
	assert.Greater(t, l.Token, e1.Token())
	require.NoError(t, e2.Resign(ctx))
}

func testQueueBasics(t *testing.T, c *testCluster) {
	ctx := testCtx(t, 20*time.Second)
	q, err := NewQueue(c.client(), "basics")
	require.NoError(t, err)
	for i := range 3 {
		_, err := q.Enqueue(ctx, fmt.Sprint("job", i))
		require.NoError(t, err)
	}
	n, err := q.Len(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	for i := range 3 {
		item, err := q.Dequeue(ctx)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint("job", i), item.Value)
		assert.Greater(t, item.Index, item.CreatedIndex)
	}
	// An empty queue blocks until an item comes.
	got := make(chan Item, 1)
	go func() {
		item, err := q.Dequeue(ctx)
		assert.NoError(t, err)
		got <- item
	}()
	time.Sleep(200 * time.Millisecond)
	_, err = q.Enqueue(ctx, "late")
	require.NoError(t, err)
	assert.Equal(t, "late", (<-got).Value)

	pq, err := NewPriorityQueue(c.client(), "prio")
	require.NoError(t, err)
	_, err = pq.Enqueue(ctx, "x")
	assert.Error(t, err, "a priority queue needs a priority")
	for _, p := range []uint16{5, 1, 5, 0} {
		_, err := pq.EnqueuePriority(ctx, fmt.Sprint("p", p), p)
		require.NoError(t, err)
	}
	var order []string
	for range 4 {
		item, err := pq.Dequeue(ctx)
		require.NoError(t, err)
		order = append(order, item.Value)
	}
	assert.Equal(t, []string{"p0", "p1", "p5", "p5"}, order)
}

func testRegistryBasics(t *testing.T, c *testCluster) {
	ctx := testCtx(t, 20*time.Second)
	r := NewRegistry(c.client(), "")
	var mu sync.Mutex
	var changes []string
	d, err := r.Discover(ctx, "web", func(ch Change) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, ch.Action+" "+ch.Key)
	})
	require.NoError(t, err)
	require.NoError(t, d.Wait(ctx))
	_, err = d.Pick()
	assert.ErrorIs(t, err, ErrNoInstance)

	a, err := r.Register(ctx, "web", "a", "10.0.0.1:80", time.Second)
	require.NoError(t, err)
	b, err := r.Register(ctx, "web", "b", "10.0.0.2:80", time.Second)
	require.NoError(t, err)
	_, err = r.Register(ctx, "web", "x/y", "z", time.Second)
	assert.Error(t, err)
	require.Eventually(t, func() bool { return len(d.Instances()) == 2 }, 5*time.Second, 10*time.Millisecond)
	// Past a few TTLs, refreshed in the background, with no watch noise.
	time.Sleep(2500 * time.Millisecond)
	list, err := r.List(ctx, "web")
	require.NoError(t, err)
	assert.Equal(t, []Instance{{"a", "10.0.0.1:80"}, {"b", "10.0.0.2:80"}}, list)
	picks := map[string]int{}
	for range 4 {
		in, err := d.Pick()
		require.NoError(t, err)
		picks[in.Name]++
	}
	assert.Equal(t, map[string]int{"a": 2, "b": 2}, picks, "round-robin")
	require.NoError(t, a.Close(ctx))
	require.Eventually(t, func() bool { return len(d.Instances()) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, b.Close(ctx))
	require.Eventually(t, func() bool { return len(d.Instances()) == 0 }, 5*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"set /_recipes/registry/web/a", "set /_recipes/registry/web/b",
		"compareAndDelete /_recipes/registry/web/a", "compareAndDelete /_recipes/registry/web/b"}, changes,
		"refreshes make no events")
}

// testSessionLost: a session whose refreshes stop is told it is lost
// before its key can expire, and its key then expires.
func testSessionLost(t *testing.T, c *testCluster) {
	ctx := testCtx(t, 20*time.Second)
	s := c.session(time.Second)
	m, _ := NewMutex(s, "lost")
	require.NoError(t, m.Lock(ctx))
	locked := time.Now()
	s.hooks.pauseKeepAlive.Store(true)
	select {
	case <-m.Lost():
	case <-time.After(3 * time.Second):
		t.Fatal("the holder was never told")
	}
	assert.Less(t, time.Since(locked), time.Second, "told before the TTL runs out")
	assert.ErrorIs(t, s.Err(), ErrSessionLost)
	assert.Error(t, m.CheckHeld())
	other := c.session(time.Second)
	m2, _ := NewMutex(other, "lost")
	require.NoError(t, m2.Lock(ctx), "the key expires and the lock passes on")
	assert.GreaterOrEqual(t, time.Since(locked), time.Second, "not before the TTL")
	err := m.Unlock(ctx)
	assert.True(t, errors.Is(err, ErrSessionLost), "unlock tells the lock was lost: %v", err)
	require.NoError(t, m2.Unlock(ctx))
	_, err = NewMutex(other, "/")
	assert.Error(t, err)
}

// abandoningTransport delivers every request; once armed, it ends the
// caller's context as the answer to the next request of method arrives
// and throws that answer away: a write that applied while its caller gave
// up (Ctrl-C, a deadline).
type abandoningTransport struct {
	base   http.RoundTripper
	method string
	cancel atomic.Pointer[context.CancelFunc]
}

func (a *abandoningTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.base.RoundTrip(r)
	if err == nil && r.Method == a.method {
		if cancel := a.cancel.Swap(nil); cancel != nil {
			resp.Body.Close()
			(*cancel)()
			return nil, context.Canceled
		}
	}
	return resp, err
}

// TestAbandonedCreateTakenBack: a lock waiter or a registration whose
// caller gives up while its key's create is in flight takes the key back
// at once, instead of leaving it to block the lock's queue or stay listed
// until its TTL runs out.
func TestAbandonedCreateTakenBack(t *testing.T) {
	c := startTestCluster(t, 3)
	for _, tc := range []struct {
		name, method, dir string
		attempt           func(ctx context.Context, cl *client.Client) error
	}{
		{"Lock", http.MethodPost, "/_recipes/locks/abandoned", func(ctx context.Context, cl *client.Client) error {
			s, err := NewSession(cl, &SessionOptions{TTL: 10 * time.Second})
			require.NoError(t, err)
			defer s.Close(context.Background())
			m, err := NewMutex(s, "abandoned")
			require.NoError(t, err)
			return m.Lock(ctx)
		}},
		{"Registry", http.MethodPut, "/_recipes/registry/abandoned", func(ctx context.Context, cl *client.Client) error {
			_, err := NewRegistry(cl, "").Register(ctx, "abandoned", "a", "10.0.0.1:80", 10*time.Second)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &abandoningTransport{base: client.NewTransport(nil, time.Second, 4), method: tc.method}
			cl, err := client.New(client.Config{Endpoints: c.endpoints[:1], Transport: tr})
			require.NoError(t, err)
			defer cl.Close()
			ctx, cancel := context.WithCancel(testCtx(t, 20*time.Second))
			tr.cancel.Store(&cancel)
			require.ErrorIs(t, tc.attempt(ctx, cl), context.Canceled)
			resp, err := c.client().Get(testCtx(t, 5*time.Second), tc.dir, nil)
			if err == nil {
				assert.Empty(t, resp.Node.Nodes, "the abandoned key is still there (its TTL is 10 s)")
			} else {
				assert.True(t, client.IsKeyNotFound(err), "%v", err)
			}
		})
	}
}
