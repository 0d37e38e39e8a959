// Package benchmarks measures raftkv end to end: a real 3-member cluster on
// loopback, every write fsynced, driven over HTTP as clients drive it.
// Results, with the machine they ran on, are in RESULTS.md. The raft core,
// the key space, the WAL and the simulator measure themselves in their own
// packages.
package benchmarks
