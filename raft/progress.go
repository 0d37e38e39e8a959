package raft

import "fmt"

// ProgressState is how a leader is replicating to one follower (§5.3; the
// three states are etcd's refinement of nextIndex/matchIndex).
type ProgressState uint8

const (
	// StateProbe: the leader does not know where the follower's log matches
	// its own, and sends one append per heartbeat interval until it finds
	// out (the backtracking of §5.3).
	StateProbe ProgressState = iota
	// StateReplicate: the logs match up to Match; the leader streams appends
	// optimistically, bounded by the in-flight window.
	StateReplicate
	// StateSnapshot: the follower needs entries the leader has compacted;
	// a snapshot is being sent (§7).
	StateSnapshot
)

func (s ProgressState) String() string {
	switch s {
	case StateProbe:
		return "Probe"
	case StateReplicate:
		return "Replicate"
	case StateSnapshot:
		return "Snapshot"
	}
	return "ProgressState(?)"
}

// Progress is a leader's view of one member: Figure 2's nextIndex[] and
// matchIndex[], plus flow control.
type Progress struct {
	// Match is the highest index known to be durable on the member.
	// Next is the index of the next entry to send.
	// Invariant: Match < Next.
	Match, Next uint64
	State       ProgressState
	// sentCommit is the highest commit index the member has been told of
	// (by appends and heartbeats), as far as its log lets it take it.
	sentCommit uint64
	// ProbeSent, in StateProbe, says an append is out and no other will be
	// sent until a reply or the next heartbeat.
	ProbeSent bool
	// PendingSnapshot, in StateSnapshot, is the index of the snapshot being
	// sent; SnapshotSent and SnapshotAcked are byte offsets into it.
	// Invariant: SnapshotAcked <= SnapshotSent.
	PendingSnapshot uint64
	SnapshotSent    uint64
	SnapshotAcked   uint64
	// snapshotStalled counts heartbeat intervals without an acknowledged
	// chunk; a stalled transfer restarts from SnapshotAcked.
	snapshotStalled int
	// snapshotRewound says the transfer went back to SnapshotAcked after a
	// lost chunk in this stall period (see handleSnapshotChunkAck).
	snapshotRewound bool
	// LastHeard is the leader's tick count when it last heard from the
	// member (or when it started tracking it).
	LastHeard uint64
	// IsLearner marks a member that receives the log but does not vote.
	IsLearner bool
	// inflights bounds the appends in flight in StateReplicate.
	inflights *inflights
}

func (p *Progress) String() string {
	s := fmt.Sprintf("%s match=%d next=%d", p.State, p.Match, p.Next)
	if p.inflights != nil && p.inflights.count > 0 {
		s += fmt.Sprintf(" inflight=%d", p.inflights.count)
	}
	if p.State == StateSnapshot {
		s += fmt.Sprintf(" snapshot=%d sent=%d acked=%d", p.PendingSnapshot, p.SnapshotSent, p.SnapshotAcked)
	}
	return s
}

// becomeProbe starts backtracking from just after Match (or after the
// snapshot just sent).
func (p *Progress) becomeProbe() {
	if p.State == StateSnapshot {
		p.Next = max(p.Match+1, p.PendingSnapshot+1)
	} else {
		p.Next = p.Match + 1
	}
	p.resetState(StateProbe)
}

// becomeReplicate starts streaming after Match.
func (p *Progress) becomeReplicate() {
	p.Next = p.Match + 1
	p.resetState(StateReplicate)
}

// becomeSnapshot starts sending the snapshot at index snapshotIndex.
func (p *Progress) becomeSnapshot(snapshotIndex uint64) {
	p.resetState(StateSnapshot)
	p.PendingSnapshot = snapshotIndex
}

func (p *Progress) resetState(state ProgressState) {
	p.State = state
	p.ProbeSent = false
	if state == StateProbe {
		// We lost track of the member: tell it the commit index again.
		p.sentCommit = 0
	}
	p.PendingSnapshot, p.SnapshotSent, p.SnapshotAcked, p.snapshotStalled = 0, 0, 0, 0
	p.snapshotRewound = false
	p.inflights.reset()
}

// maybeUpdate records that the member holds the log up to n. It returns
// false if that is old news.
func (p *Progress) maybeUpdate(n uint64) bool {
	updated := false
	if p.Match < n {
		p.Match = n
		updated = true
		p.ProbeSent = false
	}
	p.Next = max(p.Next, n+1)
	return updated
}

// sentEntries records an append of entries up to lastIndex carrying bytes
// bytes, in flight until acknowledged.
func (p *Progress) sentEntries(lastIndex, bytes uint64) {
	switch p.State {
	case StateReplicate:
		if lastIndex >= p.Next {
			p.Next = lastIndex + 1
			p.inflights.add(lastIndex, bytes)
		}
	case StateProbe:
		p.ProbeSent = true
	default:
		panic(fmt.Sprintf("raft: sending entries in state %s", p.State))
	}
}

// maybeDecrTo handles a rejected append of prevLogIndex rejected: Next moves
// back to just after matchHint, the follower's guess of where the logs may
// match. It returns false if the rejection is stale.
func (p *Progress) maybeDecrTo(rejected, matchHint uint64) bool {
	if p.State == StateReplicate {
		// Appends are pipelined, so a rejection of an index at or before
		// Match is old news; otherwise the follower lost entries (or never
		// had them) and backtracking restarts from Match.
		if rejected <= p.Match {
			return false
		}
		p.Next = p.Match + 1
		return true
	}
	// In probe state only the last probe's rejection counts.
	if p.Next-1 != rejected {
		return false
	}
	p.Next = max(min(rejected, matchHint+1), p.Match+1)
	p.ProbeSent = false
	return true
}

// canBumpCommit reports whether an append (even an empty one) would let
// the member advance its commit index: it commits at most up to the last
// index the leader has sent it.
func (p *Progress) canBumpCommit(committed uint64) bool {
	return min(committed, p.Next-1) > p.sentCommit
}

// isPaused reports whether the leader must hold back appends to the member.
func (p *Progress) isPaused() bool {
	switch p.State {
	case StateProbe:
		return p.ProbeSent
	case StateReplicate:
		return p.inflights.full()
	default:
		return true
	}
}
