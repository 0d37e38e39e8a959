package raft

// Buggify names fault points in raft: paths that stay within the rules but
// that tests and simulations reach too rarely by chance (FoundationDB's
// "buggify"). A test turns points on (Config.Buggify); each then fires at
// random, drawn from Config.Rand, so runs still replay from their seed.
// Tests only.
type Buggify uint8

const (
	// BuggifySnapshot makes a leader send a follower its latest snapshot
	// instead of entries, now and then, when the snapshot lies beyond what
	// the follower is known to hold: the path of a slow follower, taken by
	// followers that may hold the snapshot's entries and more (appends in
	// flight, acknowledgements lost; §7: they keep what follows).
	BuggifySnapshot Buggify = 1 << iota
)

// buggify reports whether fault point b fires now.
func (r *raft) buggify(b Buggify) bool {
	return r.cfg.Buggify&b != 0 && r.rand.IntN(4) == 0
}

// buggifySnapshot reports whether to send the latest snapshot to the
// follower of progress pr instead of entries (BuggifySnapshot).
func (r *raft) buggifySnapshot(pr *Progress) bool {
	if !r.buggify(BuggifySnapshot) {
		return false
	}
	snap, err := r.log.snapshot()
	return err == nil && snap.Metadata.Index > pr.Match && snap.Metadata.Index < r.log.lastIndex()
}
