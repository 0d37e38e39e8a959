package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/client/recipe"
	"github.com/raftkv/raftkv/client/recipe/recipecheck"
)

// TestLockRecipeOnRealProcesses contends for a lock through client/recipe
// against a cluster of real member processes while the leader is killed
// with SIGKILL and restarted, and a follower is frozen with SIGSTOP past
// the sessions' TTL, then thawed; every critical section is recorded and
// checked: no two holders at once unless the first was told it lost the
// lock first, and fencing tokens that grow.
func TestLockRecipeOnRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-process cluster")
	}
	c := startProcCluster(t, 3)
	const ttl = time.Second
	end := time.Now().Add(9 * time.Second)
	var mu sync.Mutex
	var sections []recipecheck.Section
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := client.New(client.Config{Endpoints: c.endpoints()})
			if err != nil {
				t.Error(err)
				return
			}
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for time.Now().Before(end) {
				s, err := recipe.NewSession(cl, &recipe.SessionOptions{TTL: ttl})
				if err != nil {
					time.Sleep(50 * time.Millisecond) // no leader for now
					continue
				}
				m, err := recipe.NewMutex(s, "process-test")
				if err != nil {
					t.Error(err)
					return
				}
				for s.Err() == nil && time.Now().Before(end) {
					ctx, cancel := context.WithDeadline(context.Background(), end)
					err := m.Lock(ctx)
					cancel()
					if err != nil {
						continue
					}
					sec := recipecheck.Section{Holder: fmt.Sprintf("client%d", i), Token: m.Token(), Enter: time.Now()}
					select {
					case <-time.After(time.Duration(rng.Int64N(int64(80 * time.Millisecond)))):
						sec.Exit = time.Now()
					case <-m.Lost():
						sec.Lost = time.Now()
					}
					ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
					_ = m.Unlock(ctx)
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
	// The nemesis: kill the leader and bring it back; freeze a follower
	// for longer than the TTL, then thaw it.
	time.Sleep(1500 * time.Millisecond)
	lead := c.leader()
	c.kill(lead)
	time.Sleep(time.Second)
	c.start(lead)
	time.Sleep(1500 * time.Millisecond)
	follower := c.members[0]
	if follower == c.leader() {
		follower = c.members[1]
	}
	if err := follower.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * ttl)
	if err := follower.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	if len(sections) < 20 {
		t.Fatalf("only %d acquisitions in 9 s", len(sections))
	}
	if err := recipecheck.CheckLock(sections); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d critical sections checked", len(sections))
}
