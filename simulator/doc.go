// Package simulator runs whole raftkv clusters in one goroutine on virtual
// time, with a faulty network and faulty disks, and checks Raft's safety
// properties after every event.
//
// # How a run works
//
// A run is a function of its seed. One seeded PRNG (math/rand/v2's PCG)
// draws the run's parameters (cluster size, fault mix, timeouts: "swarm
// testing"), and separate PCG streams derived from the same seed draw every
// later random choice, one stream per concern (network, each fault class,
// clients, each member's raft), so that switching one fault class off does
// not reshuffle the others. Events — a message delivered, a member's tick, a
// member doing its pending work, a client operation, a fault — wait in a
// priority queue ordered by (virtual time, sequence number). The loop pops
// one, carries it out, and checks the invariants. Nothing reads the wall
// clock, starts a goroutine or iterates over a map on the way, so the same
// seed gives the same trace, byte for byte, which [Result.TraceHash] lets a
// test verify.
//
// # Members
//
// The simulator drives members through the [Member] interface, shaped on
// server.Member: Tick, Receive, Submit for client operations, and Process to
// let the member do its pending work (persist, send, apply). Members write to
// a [Disk] the simulator owns, so that a crash can drop what was not synced,
// tear the last write, corrupt a record, or fill up. Two kinds exist
// ([Config.Kind]):
//
//   - full members (the default, [NewKVMember]): the real server.Member —
//     the key space, batching, read-index reads, TTL expiry, snapshots — over
//     the real WAL and snapshot files on the storage package's FaultyFS
//     ([FSDisk]). A crash loses unsynced writes and may tear the last one;
//     a restart replays the WAL; a flipped bit in a synced record makes the
//     member refuse to start, and it stays down. Clients read and write a
//     few keys and an in-order queue; the history is checked by the
//     linearizability package, and a failure writes porcupine's page with
//     the faults drawn in ([Config.VisualizationDir]).
//   - raft members ([NewRaftMember], -kind=log): a raft.Node with a
//     log-appending state machine over a memory disk with a durable/volatile
//     split. Raft alone, several times faster, where the planted vote bug
//     lives.
//
// Full members also take membership changes as a fault class
// (membership.go): members added (as learners or voters), removed (the
// leader too), replaced and promoted through the member's request API,
// with spare member slots that start once added and removed members that
// stop once a new leader took over (and has taken over: a removed member
// that crashed during its hand-over is restarted, not stopped).
//
// # Faults aimed at Raft's dangerous histories
//
// Besides faults drawn blind, some are aimed (nemesis.go): a leader is cut
// off just after it sent new entries, of which only some reach their
// follower (strand); a leader is cut off or crashed as soon as it is
// elected (churn), which with strand builds the partially replicated logs
// of the paper's Figure 8; clients follow a leader that is cut off or
// superseded with reads (chase), so that reads race the change of
// leadership. Clock drift goes to the bound (with lease reads on, the bound
// raft's lease is computed for), where a slow leader and fast followers
// overlap the most. Learner-heavy runs pile learners up and partition them
// with the leader. And fault points within the rules ("buggify", drawn per
// seed): raft sends snapshots where entries would do (raft.Buggify), a
// member's disk is slower than its CPU, the last message of a batch is lost.
//
// # Checks
//
// After every event: election safety, one vote per term, leader
// append-only, log matching, leader completeness, state-machine safety and
// committed-is-durable (on a member of every quorum of the newest
// configuration), and for full members state agreement: members that
// applied up to the same index hold the same key space (a hash). After the
// fault phase, liveness: heal everything and
// require a leader and agreement on the applied index within a bound. At
// the end, the clients' history must be linearizable (porcupine). Writes
// whose client never learned the outcome are settled from what members
// applied (the simulator sees every apply): the answer the key space gave,
// or no effect at all; only deletes, which carry no value of their own,
// stay unknown. That keeps porcupine's search small however many requests
// time out.
//
// Those properties show a bug only once a rare schedule turns it into a
// bad outcome. The rule checks (checker.go, InvCommitOwnTerm and after)
// catch a deviation from the paper when it first acts, from what members
// send, write and answer: a leader's commit index moves only to an entry of
// its term (Figure 8) and only to what a majority of voters acknowledged; a
// vote goes only to an up-to-date candidate and is durable first; a leader
// sends nothing of a term that is not durable; a member keeps what it
// acknowledged, and never discards a committed entry it holds; a read
// reflects everything committed before it was issued, and no superseded
// leader answers one; a leader trusts its lease only while a quorum is
// bound by its promise. Each is sound: a correct member never breaks it.
//
// A failure reports the seed, the event number, the invariant, and the
// command that replays it; [Shrink] looks for a smaller configuration that
// still fails.
//
// # Measuring the campaign: planted bugs
//
// [PlantedBugs] is a catalogue of known bugs (raft.PlantedBug's one-line
// deviations from the paper, and two of the simulator's own), and
// [CatchBug] runs the default campaign against one until a seed fails.
// TestPlantedBugs requires every one to be caught within 200 seeds; the
// table is in benchmarks/RESULTS.md. `raftkv sim --bug NAME` plants one.
//
// # Coverage
//
// Passing checks say little about a campaign whose runs never reached the
// states the checks are about. Every run counts how often it reached each
// of a short list of them ([CoverageState], coverage.go: a leader elected
// over older uncommitted entries, an entry committed indirectly, a
// conflicting suffix truncated, a read racing a change of leader, a
// snapshot installed, a torn write recovered, a membership change, ...)
// into [Result.Coverage], from what the simulator observes anyway, without
// touching the trace. A campaign's summary prints, per state, the runs that
// reached it and its occurrences, and flags the states no run reached.
//
// # The lock and queue recipes under faults
//
// With [Config.LockRecipe] (raftkv sim --lock-recipe), lock clients run
// the lock recipe of client/recipe against the key space, and producers and
// consumers its queue (recipes.go, recipes_queue.go). The lock:
// in-order keys with a TTL under one directory, the lowest holds the lock,
// the holder refreshes its key and counts on it only until the earliest
// expiry any of its refreshes may have set. The queue: in-order keys
// taken by compare-and-delete of the head. At the end of the run the
// recipes' own checkers (client/recipe/recipecheck) require that no two
// holders overlap, fencing tokens grow, and every item went to one
// consumer, none lost, in each producer's order; [RecipeBugs] are planted
// deviations they must catch (TestRecipeBugsCaught). One such run found that a refresh whose answer
// never came may apply late and set an earlier expiry than a later
// refresh did: a holder must count from the first refresh of unknown
// outcome.
//
// # The trace
//
// [Config.Trace] receives the run as JSON lines, one object per line, from
// which the state of every member at every event can be rebuilt
// ([Rebuild] does it in Go, the viewer in the page). The first line is a
// header:
//
//	{"kind":"header","format":"raftkv-trace","version":2,"seed":7,"members":3,"slots":4,
//	 "member_kind":"kv","tick_us":10000,"election_tick":10,"heartbeat_tick":1,
//	 "duration_us":10000000,"replay":"raftkv sim --seed 7 ..."}
//
// slots counts the member IDs that may appear (1..slots: the founders, then
// members a membership change may add). Every other line carries n, the
// number of the event it belongs to (the one a failure names; several lines
// may share it), t_us, its virtual time in microseconds, and kind. Fields
// that do not apply, or are 0, false or empty, are left out. The kinds:
//
//   - member: one member's whole state after it changed: member, status (up,
//     down, paused, failed: its disk is corrupt and it stays down, removed),
//     role (follower, candidate, precandidate, leader), term, vote, lead,
//     commit (raft's), applied. A member's first line is a member line.
//   - log: the member's log changed (the log as written: what a crash
//     keeps). first, when present, drops the entries before it (compaction
//     or a snapshot); snap_index and snap_term name the snapshot the log
//     starts after. from, when present, drops the entries from that index
//     on and appends runs, a list of [term, count, type] (type "n" normal,
//     "e" empty, the leader's first entry of its term, "c" a configuration
//     change): count entries of that term and type, from index from on. A
//     log line with first == from replaces the whole log (a restart, a
//     snapshot installed).
//   - conf: the configuration member applied: voters, learners, outgoing
//     (the old voters while joint).
//   - send: a message leaves: id (unique in the run), from, to, msg (raft's
//     type, such as MsgApp), term, log_term and index (of the entry before
//     the entries), entries (how many), commit, reject, hint (the
//     rejection's hint), granted (a vote given), snap_index and snap_term (a
//     snapshot chunk's), offset and total (the chunk's bytes in the
//     snapshot), dup (a second copy made by the network). Every send is followed, later, by exactly one deliver or
//     drop line with its id.
//   - deliver: message id arrives at its receiver (from, to and msg
//     repeated for readers).
//   - drop: message id is lost: why is cut (a partitioned link), loss
//     (random), down (the receiver was down), stale (its sender crashed
//     before it left), lost (dropped by the buggify point or a crash of a
//     paused receiver), lab (a drop-next action) or end (the run ended
//     with it in flight).
//   - commit: the cluster's commit index (the highest any member applied
//     as committed) rose to commit.
//   - call, return, timeout: a client operation: id, client, member (where
//     it was sent), op (readable, such as "set /k/1 v17" or "append 42");
//     return has result (readable) and outcome (ok, failed: it certainly did
//     not take effect, unknown); timeout means the client gave up (the
//     outcome stays unknown).
//   - fault, heal: class (crash, partition, ...), member (its target, if
//     one), detail (readable), cut (on the lines of link faults and their
//     heal: every directed link cut after it, as [from, to] pairs, written
//     even when empty); heal ends the fault of class on member.
//   - crash, restart: member goes down or comes back (detail says why;
//     member and log lines follow).
//   - action: a lab or tour action was carried out (do, member, to,
//     groups, key, value), see [Script].
//   - phase: the run moved on (detail): the liveness phase after the
//     faults heal, the end.
//   - recipe: a lock client (client) acquired, released or lost the lock
//     (detail), with its fencing token.
//
// The trace is written only when Config.Trace is set: with it off, the
// simulator builds none of these lines.
package simulator
