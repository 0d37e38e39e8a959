// Package linearizability checks that what clients saw of raftkv's key
// space could have come from one copy of it, changed by one operation at a
// time, each at an instant between its call and its return. That is
// linearizability, and the checking is done by porcupine
// (github.com/anishathalye/porcupine) against a model of the etcd v2 key
// space (../shared/spec/etcd-v2-api.md, §6-9).
//
// # Recording
//
// A Recorder takes each operation's call (Recorder.Call), then its answer
// (Recorder.Return), or the news that the answer will never come
// (Recorder.Unknown), or an answer learned another way (Recorder.Applied).
// A request retried until answered is one operation, from the first
// attempt's call to the answer.
// Times are int64 nanoseconds on any clock that never goes back: the
// simulator's virtual time or, in a real-cluster test, WallClock. A
// Recorder is safe for concurrent use. Annotations (Recorder.Annotate) mark
// faults, crashes and leader changes for the visualisation.
//
// Inputs come from kvstore commands (Write, which dispatches PUT and DELETE
// the way the store does) or are reads (Read); answers come from the
// member's event or error (OutputOf). Only linearizable reads belong in a
// history: a serializable read (quorum=false) may be stale by design.
//
// # What is checked
//
// The model is the key space itself, rule for rule: files and
// directories, implicit parent directories, hidden keys in listings, and
// the error codes 100, 101, 102, 104, 105, 107 and 108 where the store
// gives them. A read must see exactly the node (value, modifiedIndex, and
// for a directory its visible children, recursively if asked) that the
// model holds at some instant of the read; a write must succeed or fail as
// the model says, with the prevNode the model holds; an in-order create
// must name its node by the index it produced. Error 300 (an internal
// failure: a timeout, a stopped member) says nothing of the outcome and
// makes the operation unknown (below); any other code (2xx for a bad
// request) is taken to mean the operation never reached the key space.
//
// # Indexes
//
// The etcd index is one counter for the whole key space, so a part of the
// key space sees gaps: other keys' writes and expiries take indexes too.
// The model therefore never computes an index. It learns each node's
// modifiedIndex from the answers (a write's X-Etcd-Index, a read's node,
// a prevNode), and where it has not learned it yet it keeps a span of
// possible values, narrowed as answers come. It also keeps a lower bound
// of the counter: every index an operation produced or was served at
// bounds the operations after it, so a write must produce more, a read must
// be served at no less, and a compare-and-swap on prevIndex compares with
// what the node's index can be.
//
// Across keys, a second check needs no search at all: in any
// linearization the counter never goes down, so an operation that returned
// before another was called must not have seen or made a larger index, and
// no two writes may make the same one (IndexViolation). This is what
// catches a stale read of a key nobody wrote lately: the stale member's
// index is behind.
//
// # Partitions
//
// No operation on /a or below can see or change anything under /b, so the
// history is checked in parts, one per top-level key, each on its own;
// porcupine's cost grows exponentially with the operations that overlap in
// one part, so this is what makes long histories checkable. Directory
// operations (listings, recursive deletes, in-order creates) stay inside
// their top-level key's part, which models the whole subtree. Operations
// on the root itself (a listing of /, an in-order create under /) see every
// key, and a history with any of them is checked as one part: keep them to
// short histories, and give each workload its own top-level key (a queue
// its own directory).
//
// # Unknown outcomes
//
// An operation whose answer never came may have taken effect at any
// instant after its call, or never. It is given porcupine's usual
// treatment: it returns at the end of the history, and the model accepts it
// anywhere after its call, applying it as the key space would (it may
// succeed or fail there; its index is not known, beyond being above
// everything before it). Never taking effect is the same as taking effect
// after everything else. An in-order create with an unknown outcome leaves
// a pending node whose name the model learns when an answer shows it. A
// read whose answer never came constrains nothing and is left out.
//
// Unknown outcomes are what checking costs: porcupine tries each one at
// every place after its call, and proving a history illegal means trying
// them all. Two things keep that in hand. A write whose value no other
// write carries and which someone saw must have taken effect before it was
// first seen, so it returns there instead of at the end. And a harness that
// can learn the answer records it with Recorder.Applied: the operation
// still may have taken effect any time after its call, but its answer,
// index included, pins it down; one that also knows when the operation had
// taken effect by records it with Return at that time (the simulator sees
// every apply, and uses the first), and one that knows it never took
// effect records NoEffect. Use unique values, and these wherever possible.
//
// # TTLs and expiry
//
// Expiry is not a client operation: the leader proposes the expiry of
// every node due by its clock, whenever it gets round to it. So the model
// lets a node with a TTL vanish (with its subtree) at any point after it
// could first have expired, and never requires it to. The earliest point is
// E - ClockSkew in the recorder's clock, E being the expiration the write's
// answer gave (a member's clock instant), because the leader that removes
// the node reads a clock no more than ClockSkew ahead of the recorder's and
// its expiry command applies after it proposed it. If the write's answer
// is unknown, E is the receiving member's clock plus the TTL, at least
// call + TTL - ClockSkew, so the earliest point is call + TTL - 2 ClockSkew.
// Options.Epoch ties member clock instants to recorded times.
//
// What that checks: a key seen gone (with no delete) and then seen again,
// a key gone before it could have expired, a listing missing a child that
// cannot have expired, a create over a key that cannot have expired. What
// it cannot check: that a key does expire, since keys do not expire while
// there is no leader. The model decides an expiry lazily, at the first
// operation whose outcome depends on it, which is sound because nothing
// else can observe it.
//
// # Reading the visualisation
//
// A failing check writes porcupine's HTML page (Options.VisualizationPath,
// or a new file in os.TempDir(), named in Result.Visualization and on
// Options.Log). It shows the failing parts, one at a time (pick with the
// menu); within a part each row is a client and each bar an operation from
// call to return, described as
//
//	cas /x="b" if="a" → ok, index 12
//	get /d recursive → dir@7 [a b/], index 15
//	post /q="job" → ? (outcome unknown)
//
// Operations with unknown outcomes reach to the end of the history.
// Annotations sit in rows of their own below the clients, one row per tag
// ("network", "member 2", and "index order" for an IndexViolation). The
// longest partial linearization found is drawn over the bars; hovering an
// operation shows the model's state before and after it, such as
//
//	index≥12  /d/@3  /d/a="x"@12 ttl  /q/?="job"@13..
//
// (the counter's lower bound; a directory made at index 3; a file with a
// TTL; a pending in-order create whose index is at least 13). An operation
// marked as an illegal linearization point could not go next in that
// partial linearization: start there.
package linearizability
