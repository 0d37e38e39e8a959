// Package recipecheck checks recorded histories of the coordination
// recipes (package recipe) against the properties they promise. It takes
// plain records — who held a lock with which fencing token from when to
// when, which items were enqueued and dequeued, which changes a config
// watcher reported — and imports nothing of raftkv, so that real-cluster
// tests, benchmarks and the deterministic simulator can all feed it.
//
// The checks:
//
//   - CheckLock / CheckElection: no two holders' sections overlap, unless
//     the earlier holder had been told it lost before the later one entered;
//     fencing tokens strictly increase with each acquisition.
//   - CheckQueue: every enqueued item is dequeued at most once, every item
//     whose enqueue was acknowledged is accounted for (dequeued, or taken by
//     a dequeue whose outcome its consumer could not learn), nothing is
//     dequeued that was never enqueued, and each producer's acknowledged
//     items leave the queue in the order that producer put them in.
//   - CheckWatch: a watcher's sequence of changes equals the key space's
//     history of the directory: no event skipped, none repeated, none out of
//     order, except across a declared re-read ("snapshot"), after which the
//     watcher's view must equal the directory's state at that index.
//
// Every check returns nil or a *Violations listing what is wrong in words
// that name the records at fault. Times are time.Time values; a simulator
// can pass its virtual clock as time.Unix(0, nanoseconds).
package recipecheck
