package raft

import (
	"slices"
)

// TrackerConfig is a membership configuration: who votes, who only learns.
type TrackerConfig struct {
	Voters JointConfig
	// Learners receive the log but do not vote.
	// Invariant: Learners and Voters are disjoint.
	Learners map[uint64]struct{}
	// LearnersNext are members that vote in the outgoing half of a joint
	// configuration and become learners when it is left.
	// Invariant: every member of LearnersNext is in Voters[1].
	LearnersNext map[uint64]struct{}
	// AutoLeave makes the leader leave a joint configuration on its own.
	AutoLeave bool
}

// clone returns a deep copy of c.
func (c TrackerConfig) clone() TrackerConfig {
	return TrackerConfig{
		Voters:       JointConfig{cloneSet(c.Voters[0]), cloneSet(c.Voters[1])},
		Learners:     cloneSet(c.Learners),
		LearnersNext: cloneSet(c.LearnersNext),
		AutoLeave:    c.AutoLeave,
	}
}

func cloneSet[S ~map[uint64]struct{}](s S) S {
	c := make(S, len(s))
	for id := range s {
		c[id] = struct{}{}
	}
	return c
}

// ConfState returns c in the form that snapshots carry.
func (c TrackerConfig) ConfState() ConfState {
	return ConfState{
		Voters:         c.Voters[0].Slice(),
		VotersOutgoing: c.Voters[1].Slice(),
		Learners:       MajorityConfig(c.Learners).Slice(),
		LearnersNext:   MajorityConfig(c.LearnersNext).Slice(),
		AutoLeave:      c.AutoLeave,
	}
}

// tracker is the leader's bookkeeping of the configuration, of each
// member's progress and (in any role) of votes received.
type tracker struct {
	config TrackerConfig
	// progress holds one entry per member of config (voters, learners).
	// Invariant: the keys of progress are exactly the members of config.
	progress map[uint64]*Progress
	// ids is the keys of progress in increasing order, so that everything
	// done "for each member" happens in the same order on every run.
	ids []uint64
	// votes records the answers received in the current election.
	votes map[uint64]bool

	maxInflight      int
	maxInflightBytes uint64
}

func newTracker(maxInflight int, maxInflightBytes uint64) tracker {
	return tracker{
		config: TrackerConfig{
			Voters:       JointConfig{MajorityConfig{}, MajorityConfig{}},
			Learners:     map[uint64]struct{}{},
			LearnersNext: map[uint64]struct{}{},
		},
		progress:         map[uint64]*Progress{},
		votes:            map[uint64]bool{},
		maxInflight:      maxInflight,
		maxInflightBytes: maxInflightBytes,
	}
}

// setConfig installs cfg with progress, keeping the sorted ID list true.
func (t *tracker) setConfig(cfg TrackerConfig, progress map[uint64]*Progress) {
	t.config, t.progress = cfg, progress
	t.ids = t.ids[:0]
	for id := range progress {
		t.ids = append(t.ids, id)
	}
	slices.Sort(t.ids)
}

// visit calls f for every member, in increasing order of ID.
func (t *tracker) visit(f func(id uint64, pr *Progress)) {
	for _, id := range t.ids {
		f(id, t.progress[id])
	}
}

// committed returns the largest index durable on a quorum of voters.
func (t *tracker) committed() uint64 {
	return t.config.Voters.CommittedIndex(func(id uint64) uint64 {
		if pr, ok := t.progress[id]; ok {
			return pr.Match
		}
		return 0
	})
}

// committedCountingLearners is committed with the learners counted as
// voters: wrong, for BugLearnerInQuorum.
func (t *tracker) committedCountingLearners() uint64 {
	all := MajorityConfig{}
	for id := range t.progress {
		all[id] = struct{}{}
	}
	return all.CommittedIndex(func(id uint64) uint64 { return t.progress[id].Match })
}

// voterIDs returns the voters in increasing order.
func (t *tracker) voterIDs() []uint64 { return t.config.Voters.IDs() }

// isLoneVoter reports whether id is the only voter: it decides alone.
func (t *tracker) isLoneVoter(id uint64) bool {
	_, in := t.config.Voters[0][id]
	return in && len(t.config.Voters[0]) == 1 && len(t.config.Voters[1]) == 0
}

func (t *tracker) resetVotes() { clear(t.votes) }

// recordVote records id's answer unless it has already answered.
func (t *tracker) recordVote(id uint64, granted bool) {
	if _, ok := t.votes[id]; !ok {
		t.votes[id] = granted
	}
}

// tallyVotes counts the answers and says how the election stands.
func (t *tracker) tallyVotes() (granted, rejected int, result VoteResult) {
	for _, id := range t.ids {
		pr := t.progress[id]
		if pr.IsLearner {
			continue
		}
		v, voted := t.votes[id]
		if !voted {
			continue
		}
		if v {
			granted++
		} else {
			rejected++
		}
	}
	return granted, rejected, t.config.Voters.VoteResult(t.votes)
}
