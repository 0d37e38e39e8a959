// Package client is a small Go client of the etcd v2 HTTP API
// (../shared/spec/etcd-v2-api.md): it talks to raftkv and to a real etcd
// alike, and uses nothing but the standard library.
//
// # Keys
//
// A Client reads and writes keys with the operations of the v2 API:
//
//	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
//	_, err = c.Set(ctx, "/config/colour", "blue", nil)                           // set
//	_, err = c.Create(ctx, "/lock", "me", &client.SetOptions{TTL: 10 * time.Second}) // only if absent
//	_, err = c.Set(ctx, "/config/colour", "red", &client.SetOptions{PrevValue: "blue"}) // compare-and-swap
//	resp, err := c.Get(ctx, "/config", &client.GetOptions{Recursive: true, Sort: true})
//	_, err = c.Delete(ctx, "/config", &client.DeleteOptions{Recursive: true})
//
// A refusal of the server is an *Error carrying etcd's code, message, cause
// and index ("100: Key not found (/foo) [12]"); IsKeyNotFound and HasCode
// test for codes.
//
// # Endpoints and failover
//
// The client knows several endpoints (members' client URLs) and sends each
// request to the one that answered last. When a request fails there with a
// network error or a 5xx answer (etcd's "no leader", error 300 "Raft
// Internal Error"), it tries the next endpoint, as the official client
// does; when every endpoint failed the error is a *ClusterError listing
// each attempt.
//
// Writes that must not happen twice are never re-sent to another endpoint
// once they may have reached a server: Create, CreateInOrder, Delete,
// every compare-and-swap (Set with PrevValue or PrevIndex), member Add,
// Remove and Promote. Re-sending them after a lost answer could run them
// twice — two in-order keys, or a compare that fails because its first try
// succeeded. They move on only when the connection could not be set up at
// all. Their failure after that point (a network error, or error 300) means
// the outcome is unknown: read the key to find out.
//
// # Watches
//
// A Watcher reports a key's changes one at a time, continuing from the last
// event's modifiedIndex + 1 so that none is missed between two calls of
// Next. The server keeps the last 1000 events; a watcher that falls further
// behind gets error 401 (IsIndexCleared) and should read the key again and
// watch from that read's Index:
//
//	w := c.Watcher("/config", &client.WatcherOptions{Recursive: true})
//	for {
//		ev, err := w.Next(ctx)
//		if client.IsIndexCleared(err) {
//			resp, err := c.Get(ctx, "/config", &client.GetOptions{Recursive: true})
//			// ... handle resp, then:
//			w = c.Watcher("/config", &client.WatcherOptions{Recursive: true, AfterIndex: resp.Index})
//			continue
//		}
//		// ... handle ev
//	}
//
// # Members, version, health
//
// c.Members() lists the members and the leader, adds, removes and updates
// members, and promotes a learner (raftkv's own addition: raftkv adds a
// member as a learner and promotes it once it has caught up; Promote does
// it at once). Make membership changes one at a time; raftkv members
// forward a change to the leader, which drops one that arrives while the
// previous change is still pending there, so send changes to the leader
// (SetEndpoints with LeaderEndpoint first, as raftkv's member commands do).
// The member list a member answers with may lag the leader's for a moment.
// Version and Health report on the members.
//
// # Connections
//
// Connections are kept alive and reused (up to Config.MaxIdleConnsPerHost
// per endpoint). Every call takes a context, which bounds the whole call
// across endpoints; Config.HeaderTimeoutPerRequest bounds each attempt.
// https endpoints use Config.TLS (NewTLSConfig reads a CA and a client
// certificate from files).
package client
