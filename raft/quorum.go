package raft

import (
	"slices"
)

// The majority rule, in one place. Raft decides by majorities of voters:
// an entry is committed once a majority stores it (§5.3), a candidate wins
// once a majority votes for it (§5.2). During a change of membership the
// decision needs a majority of the old voters AND of the new ones (joint
// consensus, §6 of the paper); JointConfig says so.

// MajorityConfig is a set of voter IDs.
type MajorityConfig map[uint64]struct{}

// VoteResult is the outcome of an election, or of any yes/no poll.
type VoteResult uint8

const (
	// VotePending: neither a majority for nor against yet.
	VotePending VoteResult = iota + 1
	// VoteLost: a majority answered no (or cannot say yes any more).
	VoteLost
	// VoteWon: a majority answered yes.
	VoteWon
)

func (v VoteResult) String() string {
	switch v {
	case VotePending:
		return "VotePending"
	case VoteLost:
		return "VoteLost"
	case VoteWon:
		return "VoteWon"
	}
	return "VoteResult(?)"
}

// Slice returns the voters in increasing order.
func (c MajorityConfig) Slice() []uint64 {
	ids := make([]uint64, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// CommittedIndex returns the largest index that a majority of c has
// acknowledged, given each voter's acknowledged index. A voter missing from
// acked counts as 0. An empty configuration returns the largest uint64, so
// that in a joint configuration an empty half never holds the other back.
func (c MajorityConfig) CommittedIndex(acked func(id uint64) uint64) uint64 {
	n := len(c)
	if n == 0 {
		return ^uint64(0)
	}
	// Stack space for the common cluster sizes keeps this allocation-free.
	var stack [7]uint64
	var idx []uint64
	if n <= len(stack) {
		idx = stack[:n]
	} else {
		idx = make([]uint64, n)
	}
	i := 0
	for id := range c {
		idx[i] = acked(id)
		i++
	}
	slices.Sort(idx)
	// Sorted ascending, the value at n - (n/2 + 1) is held by a majority.
	return idx[n-(n/2+1)]
}

// VoteResult returns the outcome of a poll given each voter's answer
// (true: yes; missing: no answer yet).
func (c MajorityConfig) VoteResult(votes map[uint64]bool) VoteResult {
	if len(c) == 0 {
		return VoteWon
	}
	var yes, missing int
	for id := range c {
		v, ok := votes[id]
		switch {
		case !ok:
			missing++
		case v:
			yes++
		}
	}
	q := len(c)/2 + 1
	if yes >= q {
		return VoteWon
	}
	if yes+missing >= q {
		return VotePending
	}
	return VoteLost
}

// JointConfig is the voters of a configuration: the incoming set [0] and,
// while a joint change is under way, the outgoing set [1] (empty otherwise).
type JointConfig [2]MajorityConfig

// IDs returns every voter of either half, in increasing order.
func (c JointConfig) IDs() []uint64 {
	set := map[uint64]struct{}{}
	for _, half := range c {
		for id := range half {
			set[id] = struct{}{}
		}
	}
	return MajorityConfig(set).Slice()
}

// Contains reports whether id votes in either half.
func (c JointConfig) Contains(id uint64) bool {
	_, in := c[0][id]
	_, out := c[1][id]
	return in || out
}

// IsJoint reports whether a joint change is under way.
func (c JointConfig) IsJoint() bool { return len(c[1]) > 0 }

// CommittedIndex is the largest index acknowledged by a majority of each half.
func (c JointConfig) CommittedIndex(acked func(id uint64) uint64) uint64 {
	return min(c[0].CommittedIndex(acked), c[1].CommittedIndex(acked))
}

// VoteResult combines the halves: won only if both are won, lost if either
// is lost.
func (c JointConfig) VoteResult(votes map[uint64]bool) VoteResult {
	r0, r1 := c[0].VoteResult(votes), c[1].VoteResult(votes)
	if r0 == r1 {
		return r0
	}
	if r0 == VoteLost || r1 == VoteLost {
		return VoteLost
	}
	return VotePending
}
