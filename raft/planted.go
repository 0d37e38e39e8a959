package raft

import "fmt"

// PlantedBug names one known deviation from the paper that a test can
// plant in a member (Config.PlantedBug) to check that the tests and the
// simulator catch it: mutation testing. Each is a one-line change at the
// rule it breaks; grep for its name to find the line. Never set one outside
// tests.
type PlantedBug uint8

const (
	// NoBug is the algorithm as the paper has it.
	NoBug PlantedBug = iota
	// BugNoFigure8: a leader commits an entry of an earlier term by
	// counting its replicas (§5.4.2, Figure 8).
	BugNoFigure8
	// BugNoUpToDateCheck: a member votes for a candidate whose log is less
	// up to date than its own (§5.4.1).
	BugNoUpToDateCheck
	// BugKeepConflictingSuffix: a follower keeps its entries that conflict
	// with the leader's instead of deleting them (Figure 2, AppendEntries
	// rule 3), appending only what lies beyond its log.
	BugKeepConflictingSuffix
	// BugReadIndexNoHeartbeat: a leader answers ReadIndex from its commit
	// index without a round of heartbeats confirming it still leads (§6.4
	// of the thesis, step 3).
	BugReadIndexNoHeartbeat
	// BugSelfVoteBeforePersist: a candidate counts its own vote before the
	// term and vote are durable (Figure 2: persist before responding).
	BugSelfVoteBeforePersist
	// BugVoteNotPersisted: the vote is left out of the hard state handed
	// out to persist (Figure 2: votedFor is persistent state).
	BugVoteNotPersisted
	// BugCommitPastLastNew: a follower takes the leader's commit index as
	// its own, past the last entry the leader's append vouched for (Figure
	// 2, AppendEntries rule 5: min(leaderCommit, index of last new entry)).
	BugCommitPastLastNew
	// BugSnapshotOverNewerEntries: a follower installs a snapshot without
	// looking at what its log already holds — entries after the snapshot,
	// or a commit index beyond it — and discards them (§7: "if existing
	// log entry has same index and term as snapshot's last included entry,
	// retain log entries following it").
	BugSnapshotOverNewerEntries
	// BugLeaseNoMargin: a lease lasts a whole election timeout, with no
	// margin for clock drift or tick granularity (§6.4.1 of the thesis).
	BugLeaseNoMargin
	// BugLearnerInQuorum: a leader counts learners in the majority that
	// commits an entry (§4.2.1 of the thesis: learners do not vote).
	BugLearnerInQuorum
	numPlantedBugs
)

var plantedBugNames = [numPlantedBugs]string{
	"none", "no-figure8", "no-up-to-date-check", "keep-conflicting-suffix",
	"read-index-no-heartbeat", "self-vote-before-persist", "vote-not-persisted",
	"commit-past-last-new", "snapshot-over-newer-entries", "lease-no-margin",
	"learner-in-quorum",
}

func (b PlantedBug) String() string {
	if b < numPlantedBugs {
		return plantedBugNames[b]
	}
	return fmt.Sprintf("PlantedBug(%d)", uint8(b))
}

// PlantedBugs returns every planted bug, NoBug excluded.
func PlantedBugs() []PlantedBug {
	bugs := make([]PlantedBug, 0, numPlantedBugs-1)
	for b := NoBug + 1; b < numPlantedBugs; b++ {
		bugs = append(bugs, b)
	}
	return bugs
}

// ParsePlantedBug reads a planted bug's name.
func ParsePlantedBug(name string) (PlantedBug, bool) {
	for b, n := range plantedBugNames {
		if n == name {
			return PlantedBug(b), true
		}
	}
	return NoBug, false
}

// planted reports whether bug b is planted in this member.
func (r *raft) planted(b PlantedBug) bool { return r.cfg.PlantedBug == b }
