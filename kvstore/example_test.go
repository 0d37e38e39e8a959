package kvstore_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/raftkv/raftkv/kvstore"
)

func Example() {
	store, err := kvstore.New(kvstore.Config{})
	if err != nil {
		panic(err)
	}
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

	// Watch a directory before anything exists in it.
	watcher, _ := store.Watch("/services", kvstore.WatchOptions{Recursive: true})

	// Register a service with a 30-second TTL. The command is what a Raft
	// log entry would carry: index 1 is the Raft log index.
	result := store.Apply(1, kvstore.Command{
		Op: kvstore.OpSet, Path: "/services/web", Value: "10.0.0.1:80",
		HasTTL: true, TTL: 30, Now: now,
	})
	body, _ := json.Marshal(result.Event)
	fmt.Println(string(body))

	// The watcher got the same event.
	event := <-watcher.EventChan()
	fmt.Println(event.Action, event.Node.Key, event.Index())

	// A create on an existing key fails with etcd's error.
	result = store.Apply(2, kvstore.Command{Op: kvstore.OpCreate, Path: "/services/web", Now: now})
	body, _ = json.Marshal(result.Err)
	fmt.Println(result.Err.StatusCode(), string(body))

	// Forty seconds later the leader proposes an expiry sweep.
	result = store.Apply(3, kvstore.Command{Op: kvstore.OpExpire, Now: now.Add(40 * time.Second)})
	fmt.Println(result.Expired[0].Action, result.Expired[0].Node.Key, store.CurrentIndex())

	// Output:
	// {"action":"set","node":{"key":"/services/web","value":"10.0.0.1:80","expiration":"2024-05-01T10:00:30Z","ttl":30,"modifiedIndex":1,"createdIndex":1}}
	// set /services/web 1
	// 412 {"errorCode":105,"message":"Key already exists","cause":"/services/web","index":1}
	// expire /services/web 2
}
