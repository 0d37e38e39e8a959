package recipe_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/client/recipe"
	"github.com/raftkv/raftkv/embed"
)

// exampleCluster starts a one-member raftkv cluster in this process and
// returns a client of it and a function that stops it.
func exampleCluster() (*client.Client, func()) {
	dir, err := os.MkdirTemp("", "raftkv-recipe-example-")
	if err != nil {
		panic(err)
	}
	m, err := embed.Start(embed.Config{
		Name: "m1", DataDir: dir, ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{"http://127.0.0.1:0"},
		HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	c, err := client.New(client.Config{Endpoints: m.ClientURLs()})
	if err != nil {
		panic(err)
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Set(ctx, "/_ready", "", nil)
		cancel()
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c, func() { c.Close(); m.Stop(); os.RemoveAll(dir) }
}

// ExampleMutex takes a lock, does guarded work with its fencing token, and
// releases it.
func ExampleMutex() {
	c, stop := exampleCluster()
	defer stop()
	ctx := context.Background()

	s, _ := recipe.NewSession(c, &recipe.SessionOptions{TTL: 10 * time.Second})
	defer s.Close(ctx)
	m, _ := recipe.NewMutex(s, "reports")
	if err := m.Lock(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("holding:", strings.HasPrefix(m.Key(), "/_recipes/locks/reports/"), m.Token() > 0)
	// Work in the session's context: it is cancelled if the lock is lost.
	// A resource should also check the token: write(ctx, m.Token(), ...).
	select {
	case <-m.Lost():
		fmt.Println("lost the lock")
	default:
	}
	fmt.Println(m.Unlock(ctx))
	// Output:
	// holding: true true
	// <nil>
}

// ExampleElection campaigns, observes the leader, proclaims a new value and
// resigns.
func ExampleElection() {
	c, stop := exampleCluster()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s, _ := recipe.NewSession(c, nil)
	defer s.Close(ctx)
	e, _ := recipe.NewElection(s, "scheduler")
	leaders := recipe.Observe(ctx, c, "scheduler")
	if err := e.Campaign(ctx, "http://10.0.0.1:8080"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("observed:", (<-leaders).Value)
	_ = e.Proclaim(ctx, "http://10.0.0.1:9090")
	fmt.Println("observed:", (<-leaders).Value)
	fmt.Println(e.Resign(ctx))
	// Output:
	// observed: http://10.0.0.1:8080
	// observed: http://10.0.0.1:9090
	// <nil>
}

// ExampleQueue enqueues jobs and dequeues them in order.
func ExampleQueue() {
	c, stop := exampleCluster()
	defer stop()
	ctx := context.Background()

	q, _ := recipe.NewQueue(c, "jobs")
	for _, job := range []string{"resize a.png", "resize b.png"} {
		_, _ = q.Enqueue(ctx, job)
	}
	for range 2 {
		item, _ := q.Dequeue(ctx)
		fmt.Println(item.Value)
	}
	pq, _ := recipe.NewPriorityQueue(c, "urgent")
	_, _ = pq.EnqueuePriority(ctx, "later", 9)
	_, _ = pq.EnqueuePriority(ctx, "now", 0)
	item, _ := pq.Dequeue(ctx)
	fmt.Println(item.Value)
	// Output:
	// resize a.png
	// resize b.png
	// now
}

// ExampleRegistry registers two instances of a service, discovers them and
// picks them in turn.
func ExampleRegistry() {
	c, stop := exampleCluster()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	r := recipe.NewRegistry(c, "")
	a, _ := r.Register(ctx, "api", "a", "10.0.0.1:80", 5*time.Second)
	defer a.Close(ctx)
	b, _ := r.Register(ctx, "api", "b", "10.0.0.2:80", 5*time.Second)
	defer b.Close(ctx)
	d, _ := r.Discover(ctx, "api", nil)
	_ = d.Wait(ctx)
	for range 3 {
		in, _ := d.Pick()
		fmt.Println(in.Name, in.Addr)
	}
	// Output:
	// a 10.0.0.1:80
	// b 10.0.0.2:80
	// a 10.0.0.1:80
}

// ExampleConfigWatcher follows a configuration directory: first its
// contents as a snapshot, then every change.
func ExampleConfigWatcher() {
	c, stop := exampleCluster()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, _ = c.Set(ctx, "/config/colour", "blue", nil)
	w := recipe.NewConfigWatcher(c, "/config")
	changes := 0
	_ = w.Run(ctx, func(ch recipe.Change) error {
		switch {
		case ch.Action == recipe.ActionSnapshot:
			fmt.Println("snapshot")
			_, _ = c.Set(ctx, "/config/colour", "red", nil) // a change after the snapshot
		case ch.Resync:
			fmt.Println("  ", ch.Key, "=", ch.Value)
		default:
			fmt.Println(ch.Action, ch.Key, ch.PrevValue, "->", ch.Value)
			changes++
		}
		if changes == 1 {
			return context.Canceled // enough
		}
		return nil
	})
	// Output:
	// snapshot
	//    /config/colour = blue
	// set /config/colour blue -> red
}
