// Package nemesis runs a real raftkv cluster — one `raftkv serve` process
// per test host, real TCP, real fsync — on a network it makes and breaks
// itself, Jepsen-style.
package nemesis
