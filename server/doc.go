// Package server is a raftkv member: a raft node, the key space it
// replicates and its durable storage, glued by a deterministic request
// pipeline (Member), and the event loop that runs it in production
// (Runtime).
//
// # The member is a state machine
//
// Member never starts a goroutine, reads a clock or touches a socket. Its
// inputs are Tick (with the shell's clock), Receive (a peer's message, with it too),
// Submit (a client request with a completion callback) and PersistDone (the
// disk finished a job); Process does the work they cause and returns what
// must leave the member: messages, and disk work (a PersistJob) for the
// shell to run. The Runtime runs it on one goroutine, with the disk work on
// a second one, so that a leader streams appends and applies commits while
// its own fsync is under way; the simulator runs many members in one
// goroutine on virtual time.
//
// # A write's way
//
// Submit encodes the command with a header naming the proposing member, its
// incarnation and a request ID, and queues it; Process proposes everything
// queued as one batch (followers forward to the leader). The entry is
// applied by every member in log order; the member that proposed it answers
// the request with the key space's result. A write times out (etcd's error
// 300, outcome unknown) if it does not apply within RequestTimeoutTicks.
//
// # At most once
//
// Every proposal is identified by (proposer, incarnation, request ID), and
// every member keeps the same table of the proposals applied (it is built
// from the log and carried in snapshots): a proposal the log holds twice —
// a forwarded proposal duplicated by the network, or a write proposed again
// to a new leader after the old one vanished — applies once. What this
// promises to clients, operation by operation:
//
//   - set (PUT without conditions), update, delete of a key, refresh: the
//     member never applies one request twice. A client that retries after a
//     timeout sends a new request; retrying these is safe, since applying
//     them again leaves the same value (only the index moves).
//   - create (prevExist=false), compare-and-swap, compare-and-delete,
//     in-order create (POST): applied at most once per request. A client's
//     retry after a timeout is a new request: it may fail (the key exists,
//     the comparison fails) because the first one did apply, or, for POST,
//     create a second key. Clients that must know should read before they
//     retry, as with etcd.
//   - reads and watches change nothing and may be retried freely.
//
// # Reads
//
// A read is linearizable unless Serializable is set: the member batches the
// reads that arrive while a ReadIndex round is being set up into one round
// (§6.4 of the Raft thesis), waits until it has applied the index the round
// returns, and serves them all from its key space. A serializable read is
// answered from the local key space at once.
//
// # Durability and recovery
//
// The member writes through storage's WAL and snapshot files, in the order
// raft's persistence contract asks, before any message that vouches for
// them leaves. Every SnapshotEvery applied entries it snapshots the key
// space (with the deduplication and member tables) and compacts the log,
// keeping SnapshotKeep entries for followers that are only a little behind.
// A restarted member loads the latest snapshot and replays the WAL after it.
// A full disk refuses new writes and retries the refused one after a tick;
// a snapshot that finds it full is tried again an election timeout later
// (the WAL still holds what it covers); nothing acknowledged is lost.
//
// # Membership
//
// Changes go through the log as raft configuration changes whose context
// carries the member's information (membership.go). A member added through
// the API is a learner until it has caught up; then the leader promotes it.
package server
