package client_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/raftkv/raftkv/client"
)

// Example writes, compares-and-swaps, lists and watches keys of a
// one-member raftkv cluster started in this process.
func Example() {
	dir := tempDir()
	defer os.RemoveAll(dir)
	_, endpoints, stop, err := startMembers(1, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	set, _ := c.Set(ctx, "/config/colour", "blue", nil)
	fmt.Println(set.Action, set.Node.Key, set.Node.Value)

	// A compare-and-swap that loses, then one that wins.
	_, err = c.Set(ctx, "/config/colour", "red", &client.SetOptions{PrevValue: "green"})
	fmt.Println(client.HasCode(err, client.ErrorCodeTestFailed))
	cas, _ := c.Set(ctx, "/config/colour", "red", &client.SetOptions{PrevValue: "blue"})
	fmt.Println(cas.Action, cas.PrevNode.Value, "->", cas.Node.Value)

	// Watch the directory from the last write on, then change it.
	w := c.Watcher("/config", &client.WatcherOptions{Recursive: true, AfterIndex: cas.Index})
	_, _ = c.Set(ctx, "/config/size", "L", nil)
	ev, _ := w.Next(ctx)
	fmt.Println("watched:", ev.Action, ev.Node.Key, ev.Node.Value)

	list, _ := c.Get(ctx, "/config", &client.GetOptions{Sort: true})
	for _, n := range list.Node.Nodes {
		fmt.Println(n.Key, "=", n.Value)
	}

	_, err = c.Get(ctx, "/nothing", nil)
	fmt.Println(client.IsKeyNotFound(err))
	// Output:
	// set /config/colour blue
	// true
	// compareAndSwap blue -> red
	// watched: set /config/size L
	// /config/colour = red
	// /config/size = L
	// true
}
