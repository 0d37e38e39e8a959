// Package recipe builds the classic coordination recipes on the etcd v2
// key operations of package client: a session that keeps TTL keys alive,
// a lock (Mutex) with fencing tokens, leader election, a FIFO and a
// priority queue, a service registry with round-robin picking, and a
// config watcher that never skips or repeats a change. They work against
// raftkv and against etcd's v2 API alike; docs/recipes.md shows each one
// as plain curl commands too.
//
// Keys live under the hidden directory /_recipes (locks/NAME,
// elections/NAME, queues/NAME, registry/SERVICE) unless a name starts with
// "/", which is then the directory itself.
//
// # Sessions
//
// A Session keeps the TTL keys of one participant alive: every TTL/3 it
// refreshes each key with refresh=true, which changes only the TTL — no
// new value, no event for watchers. The session believes a key alive until
// the send time of its last successful refresh plus the TTL, less a guard
// of TTL/10: the server computes the expiry from the time it received the
// write, which is later. A refresh whose answer was lost may still apply,
// late, with the expiry it was given when it arrived — earlier than a
// later refresh's — so from the first such refresh on the session counts
// on the key only until that refresh's send time plus the TTL. When a
// refresh finds the key gone (error 100), or
// no refresh succeeds before that deadline (a partition, a cluster without
// leader, a client paused by the scheduler), the session is lost: Done is
// closed, Context cancelled and Err says why. The holder of a lock or a
// leadership learns it there; it is never left believing it still holds.
//
// # Lock
//
// Waiters create in-order keys (POST) in the lock's directory, with the
// session's TTL. The waiter with the lowest key holds the lock. Every other
// waiter reads the directory (a linearizable, sorted read) and watches
// only its predecessor — the key just below its own — from the read's
// index + 1, so that no event is missed between the read and the watch and
// a release wakes one waiter, not all of them (no thundering herd). When
// the predecessor goes it reads the directory again: the predecessor may
// have been a waiter that gave up, not the holder. A waiter whose own key
// vanished (it expired while the waiter was paused) fails Lock with an
// error wrapping ErrSessionLost; it never takes the lock. Unlock deletes
// the holder's key with a compare-and-delete on the key's unique value
// (prevValue: the refreshes move modifiedIndex, so prevIndex would not do).
//
// The fencing token is the holder key's createdIndex. Each holder's key
// was created after every key that held before it was, so tokens strictly
// increase from holder to holder.
//
// What a lock does NOT guarantee: it is a lease. A holder that stops
// (a long GC pause, SIGSTOP, a VM migration) past its TTL loses the lock
// without running any code, and may resume believing, for a moment, that
// it holds — the session's watchdog tells it as soon as it runs again, but
// a write already on its way is not recalled. Mutual exclusion as seen by
// a protected resource therefore rests on the fencing token: pass Token
// with every write, and have the resource refuse a token lower than the
// highest it has seen. The lock also assumes that the members' clocks run
// at about the same rate as the client's (within the TTL/10 guard over a
// TTL), since the server measures the TTL with its own clock.
//
// # Election
//
// An Election is a lock whose holder is the leader and whose keys hold the
// candidates' values: Campaign waits as Lock does, Leader reads the lowest
// key, Proclaim updates the leader's own key (failing, and telling the
// leader it lost, if the key is gone), Resign deletes it, and Observe
// streams the leader and each change of leader or value by watching the
// directory. The token is again the createdIndex of the leader's key. The
// same caveat applies: a leader must stop acting when Lost closes, and
// whatever it leads should check its token.
//
// # Queue
//
// Enqueue is a POST: the server names the item by the index that created
// it, so names sort in arrival order. Dequeue reads the directory sorted,
// then deletes the head with a compare-and-delete on its modifiedIndex, so
// that of several consumers racing for the head exactly one succeeds; the
// others (error 100 or 101) read again. An empty queue is waited on with a
// watch. A delete whose answer was lost (a member failed mid-request) is
// sent again until it is answered: success means this consumer took the
// item; "gone" means this consumer or another took it, which the v2 API
// cannot tell apart, and Dequeue returns an *UnknownOutcomeError carrying
// the item so the application chooses at-least-once or at-most-once. An
// item dequeued by a consumer that then crashes is lost with it: the
// queue hands items out exactly once, it does not track their processing.
// An Enqueue whose answer was lost may or may not have added the item.
// PriorityQueue keeps a directory per priority (lowest first).
//
// # Service registry
//
// Register writes SERVICE/INSTANCE = address with a session's TTL and
// keeps it alive; Close deletes it; if the session is lost the
// registration is written again with a new session. Discover follows the
// service's directory with a ConfigWatcher, keeps the current set of
// instances, calls back on each change, and Pick hands instances out
// round-robin. A crashed instance stays listed until its TTL runs out.
//
// # Config watch
//
// A ConfigWatcher reads a directory recursively (the read's index I), then
// watches it recursively from I + 1, and each next watch from the last
// event's modifiedIndex + 1, so that every event is reported once and in
// order. The server keeps only the last 1000 events: a watcher that falls
// further behind gets error 401, reads the directory again and reports
// the differences — a snapshot marker, then a Resync change per key that
// changed or went. Events between the two reads are then reported only by
// their net effect: that is the one thing a v2 watcher cannot recover.
//
// Package recipecheck holds the checks the tests run on recorded
// histories of all of these under faults.
package recipe
