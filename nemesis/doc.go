// Package nemesis runs a real raftkv cluster — one `raftkv serve` process
// per test host, real TCP, real fsync — on a network it makes and breaks
// itself, Jepsen-style, while clients use it through the client package,
// and then checks everything the clients saw.
//
// # Test hosts
//
// Each member runs in a Linux network namespace of its own, with one
// address in 10.211.0.0/16 (see network.go for the plan). Every pair of
// members has a veth pair of its own, so that one direction of one link
// can be cut or thinned without touching the others: a two-instruction
// classic BPF program on the link's egress drops every packet (a cut) or
// a random share (loss), silently, as a real partition does. Nothing has
// to be installed: ip, tc and a kernel with clsact and cls_bpf suffice.
// Packet delay needs netem, which not every kernel has; the run says so
// and leaves delay out. The clients reach each member from the root
// namespace over a link of its own that faults never touch.
//
// Everything a run makes — namespaces, links, the tmpfs of the member
// whose disk fills up, processes — belongs to a slot whose lock file the
// run holds (flock) for its whole life. The kernel drops the lock when the
// process dies, however it dies, so the next run that takes the lock knows
// that whatever the slot still holds is a crashed run's and removes it.
// Members are started with PR_SET_PDEATHSIG, so they die with the run.
//
// # Faults
//
// A schedule drawn from a seed (NewSchedule), printed before the run:
// every kind once in a seeded order, then again, each for 3 to 6 seconds,
// followed by a heal and a quiet second or two. Kinds: partitions into
// halves, one member isolated (the leader on purpose half the time), a
// ring of overlapping majorities (with 3 members: a bridge), one-way cuts,
// packet loss, delay (netem), SIGKILL and restart, SIGSTOP and SIGCONT,
// member removal under load and re-addition as a new member, a member
// SIGKILLed with its data directory wiped (it must refuse to come back
// under its old identity; the operator's steps follow: member remove,
// member add, start with --initial-cluster-state existing on the empty
// directory), and a full disk (a ballast file fills the member's tmpfs).
//
// # Clients and checks
//
// Two clients per member, each bound to its member alone (a request is
// never re-sent elsewhere, so every outcome is its own), write — set,
// create, compare-and-swap, compare-and-delete, in-order create — and read
// linearizably (quorum=true) and serializably (a plain GET; members run
// with --serializable-reads, etcd's default). One watch per member follows
// every change of the whole key space. The keys move to a fresh generation
// every 8 seconds, which keeps each unknown outcome's cost to porcupine
// within its generation. A request whose connection was refused never left,
// and is known to have had no effect; a timeout leaves the outcome unknown,
// unless the applied history settles it at the end: an in-order create it
// holds took effect as it shows, and a value it lacks, which no final
// listing shows either, never took effect within the history.
//
// After the last heal the clients stop, a last write marks the end, and
// the checks run:
//   - the history of linearizable operations, with porcupine
//     (../linearizability), unknown outcomes as such;
//   - the applied history — the change at each index, pieced together from
//     every watch and every acknowledged write — must be one: no two
//     different changes at an index, no watch out of order, every watch
//     holding every change in the stretch it covered (error 401 gaps
//     excepted), no value that no client wrote;
//   - serializable reads may be stale but must show a state that was: the
//     change at their modifiedIndex, and never going back for one client
//     of one member process;
//   - every member's final key space must be the applied history replayed
//     up to the index its listing was read at (a write the clients gave up
//     on may still land after the last acknowledged one), and every
//     acknowledged in-order create must still be there;
//   - liveness: after each heal a write must succeed within a bound (five
//     election timeouts), or the run fails with every member's /v2/stats
//     and the end of its log.
//
// A failure writes porcupine's visualisation of the history with the
// faults drawn in a row of their own, keeps the members' logs and the
// schedule, and prints the seed that replays the schedule.
//
// TestNemesis is the bounded run of `make test`; `raftkv nemesis` (make
// nemesis) the long one. TestNemesisCatchesPlantedBug shows the checks
// catching a planted bug (raftkv serve's hidden --planted-bug flag).
package nemesis
