// Package kvstore is raftkv's key space: the hierarchical store that etcd v2
// serves, with its exact semantics (see ../shared/spec/etcd-v2-api.md).
//
// Keys are paths ("/config/db/host"). A node is either a file, holding a
// string value, or a directory, holding other nodes. Directories are made
// explicitly (Dir) or implicitly as the parents of a new key. A node whose
// own name starts with '_' is hidden: it never appears in listings, but can
// be read, written and watched by its path.
//
// # A deterministic state machine
//
// Every change is a Command, applied with Store.Apply in the order the Raft
// log commits it. The store never reads a clock: a command carries the
// proposer's time (Command.Now), from which TTLs become absolute
// expirations, and expiry itself is a command (OpExpire) that the leader
// proposes when Store.NextExpiration says some node is due. So every member
// that applies the same commands holds the same key space, produces the
// same events, and reports the same Hash. Commands travel in log entries
// through Command.MarshalBinary.
//
// # Indexes and events
//
// The store keeps one counter, the etcd index (CurrentIndex). Every change
// advances it by exactly one — each set, create, update, compare-and-swap,
// delete, compare-and-delete, refresh, and each expired node — and the
// change's Event carries it as node.modifiedIndex. A failed command changes
// nothing and returns an *Error with etcd's code, message and cause. Event,
// Node and Error marshal to exactly the JSON etcd serves.
//
// # Watches
//
// Store.Watch registers a Watcher on a key, or recursively on a directory,
// from the next change or from a past index: the last 1000 events are kept
// in a history, and an index older than that is etcd's error 401. Watchers
// are indexed by the path they watch, so an event costs one map lookup per
// segment of its key however many watchers wait elsewhere. Delivery never
// blocks: a watcher whose buffer is full is dropped and its channel closed.
//
// # Snapshots
//
// Store.Save writes the whole state — tree, TTLs, index, event history — in
// a versioned, checksummed binary form; Store.Restore reads it back, or
// fails with a clear error and leaves the store as it was.
//
// The pieces live one per file: node.go and path.go (the tree), ttl_heap.go
// (pending expirations), history.go (the event ring), watcher.go (the
// watcher hub), apply.go (dispatch and the commit of an event), create.go,
// update.go and remove.go (the operations), command.go and codec.go
// (commands and their encoding), store.go (reads and watches), snapshot.go,
// hash.go, config.go and errors.go.
package kvstore
