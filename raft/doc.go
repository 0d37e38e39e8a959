// Package raft is the Raft consensus algorithm as a pure state machine.
//
// A Node holds one member's consensus state. It never starts a goroutine,
// reads a clock, touches a disk or a socket, or draws a random number from
// anywhere but the seeded source in its Config. The application drives it:
//
//   - Tick, at a fixed interval, is the only notion of time;
//   - Step hands it a message from a peer;
//   - Propose, ProposeConfChange, ReadIndex and TransferLeadership are
//     requests from the application;
//   - Ready hands back what to do: state to persist, messages to send,
//     committed entries to apply, reads to serve; Advance says it is done.
//
// Because the whole member is a function of its inputs, a test or a
// simulator can run a cluster of them in one goroutine and replay any run
// from its seed. The persistence contract — what must be durable before
// which message leaves — is the doc comment of Ready.
//
// # Reading the code next to the paper
//
// The paper is "In Search of an Understandable Consensus Algorithm"
// (Ongaro and Ousterhout, extended version); "the thesis" is Ongaro's
// "Consensus: Bridging Theory and Practice".
//
//	Figure 2, all servers       raft.go: Step, stepHigherTerm, stepLowerTerm
//	§5.2 leader election        raft.go: tickElection, campaign, handleVoteRequest
//	§5.3 log replication        leader.go: maybeSendAppend, handleAppendAccepted;
//	                            follower.go: handleAppendEntries; log.go: maybeAppend
//	§5.4.1 election restriction log.go: isUpToDate
//	§5.4.2 / Figure 8           log.go: maybeCommit; raft.go: becomeLeader (no-op)
//	§6 membership changes       confchange.go, tracker.go, quorum.go
//	thesis §4.2.2 removal       raft.go: removed, handOver (a removed member
//	                            still campaigns, without its own vote)
//	§7 log compaction           snapshot.go, storage.go
//	§8 client interaction       read_only.go (ReadIndex, §6.4 of the thesis)
//	thesis §6.4.1 leases        config.go: leaseTicks (the bound, with clock
//	                            drift); raft.go: promising
//	thesis §3.10 transfer       leader.go: handleTransferLeader
//	thesis §6.2 CheckQuorum     raft.go: quorumActive
//	thesis §9.6 PreVote         raft.go: becomePreCandidate, stepHigherTerm
//	thesis §10.2.1 pipelining   node.go: Ready.Messages vs MessagesAfterPersist
//
// The stories in testdata/*.txt run these rules step by step; paper_test.go
// checks each rule of Figure 2 on its own; property_test.go checks the
// safety properties of Figure 3 under random schedules; regression_test.go
// holds a test for every bug found after the fact, each of which failed
// before its fix.
//
// # Testing the tests
//
// planted.go is a catalogue of one-line deviations from the paper (no
// Figure 8 check, a vote not persisted, a lease without margin, ...) that
// a test can plant in a member (Config.PlantedBug): the simulator must
// catch every one within a bounded campaign (simulator.TestPlantedBugs).
// buggify.go has fault points that stay within the rules but reach paths
// that runs rarely take by chance (Config.Buggify).
//
// # What is ours
//
// The shape of the API follows etcd's raft (go.etcd.io/raft): Step, Tick,
// Ready, Advance, progress states, the majority rule in its own type. The
// code is written here, with differences worth knowing: randomness comes
// from Config.Rand, never a global source; Ready splits messages into those
// that may leave at once and those that must wait for the write, so a
// leader writes its log in parallel with its followers; CheckQuorum and
// leases are measured in ticks since each member was last heard from;
// snapshots travel in acknowledged chunks.//
// # A known limit
//
// A configuration takes effect where it is applied, as in etcd, not where
// it is appended as in §6 of the paper. So a member learns that it was
// promoted, or that a member joined, only from a leader's commit index.
// If the leader that committed a change fails for good before any other
// member learned of the commit, and the survivors are a majority only of
// the new configuration, no one can be elected: the promoted learner does
// not know it votes, the others still count the lost leader. etcd shares
// this limit (its operators recover with --force-new-cluster); the
// simulator's operator therefore fails a disk for good only while every
// member's own configuration keeps a working majority.
package raft
