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
// tear the last write, corrupt a record, or fill up. Today the member is
// [NewRaftMember]: a raft.Node with an in-memory log-appending state machine
// over a memory disk with a durable/volatile split. The full server.Member
// over a WAL on a faulty file system plugs in as another [Factory].
//
// # Checks
//
// After every event: election safety, one vote per term, leader
// append-only, log matching, leader completeness, state-machine safety and
// committed-is-durable. After the fault phase, liveness: heal everything and
// require a leader and agreement on the applied index within a bound. At
// the end, the clients' history must be linearizable (porcupine). A failure
// reports the seed, the event number, the invariant, and the command that
// replays it; [Shrink] looks for a smaller configuration that still fails.
package simulator
