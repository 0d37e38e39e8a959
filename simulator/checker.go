package simulator

import (
	"fmt"
	"strings"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// The invariants, by the names a failure reports.
const (
	InvElectionSafety     = "election-safety"       // at most one leader per term (§5.2)
	InvVoteOnce           = "vote-once"             // a member grants at most one vote per term (§5.2)
	InvLeaderAppendOnly   = "leader-append-only"    // a leader never overwrites or deletes its entries (§5.3)
	InvLogMatching        = "log-matching"          // same index and term ⇒ same log up to there (§5.3)
	InvLeaderCompleteness = "leader-completeness"   // a leader holds every committed entry (§5.4)
	InvStateMachineSafety = "state-machine-safety"  // no two members apply different entries at an index (§5.4.3)
	InvCommittedDurable   = "committed-is-durable"  // a committed entry is durable on a member of every quorum
	InvDurability         = "durability"            // what a member synced survives its crash
	InvTermMonotonic      = "term-monotonic"        // a member's term never goes back
	InvApplyCommitted     = "apply-committed"       // only committed entries are applied, in order
	InvLinearizable       = "linearizability"       // the clients' history is linearizable
	InvRefusedNoEffect    = "refused-has-no-effect" // an operation a member refused never takes effect
	InvBoundedTraffic     = "bounded-traffic"       // messages in flight stay bounded (no storm)
	InvStateAgreement     = "state-agreement"       // members that applied index i hold the same state machine

	// The rules below check, as each happens, a step that Raft's safety
	// rests on, rather than a bad outcome that needs a rare schedule to
	// show (a deviation from the paper is caught when it first acts).
	InvCommitOwnTerm  = "commit-own-term"     // a leader moves its commit index only to an entry of its own term (§5.4.2, Figure 8)
	InvCommitQuorum   = "commit-quorum"       // a leader commits only what a majority of voters acknowledged to it (§5.3)
	InvVoteUpToDate   = "vote-up-to-date"     // a vote goes only to a candidate whose log is at least as up to date (§5.4.1)
	InvVoteDurable    = "vote-durable"        // a vote is durable before it is granted (Figure 2)
	InvTermDurable    = "leader-term-durable" // a leader sends nothing of its term before the term is durable
	InvAckedKept      = "acknowledged-kept"   // in one term, a member keeps the entries it acknowledged (§5.3)
	InvReadFresh      = "read-fresh"          // a linearizable read reflects every entry committed before it was issued (§6.4 of the thesis)
	InvLeaseExclusive = "lease-exclusive"     // a leader trusts its lease only while a quorum is bound by its promise (§6.4.1 of the thesis)
	InvLockExclusive  = "lock-exclusive"      // the lock recipe: one holder at a time, fencing tokens grow (recipes.go)
	InvQueueOnce      = "queue-once"          // the queue recipe: each item to one consumer, none lost, in order (recipes_queue.go)
)

// checker keeps what it needs to check Raft's safety properties
// incrementally: every member's log as a chain of hashes (the chain hash of
// entry i covers entries 1..i, so two logs agree up to i exactly when their
// chain hashes at i agree), the committed prefix, and what was applied.
type checker struct {
	// conf is the newest configuration applied anywhere (the founders' at
	// first), confIndex the index it was applied at.
	conf      raft.ConfState
	confIndex uint64
	// bootstrap is the index of the last bootstrap entry (one per founding
	// voter), committed by construction.
	bootstrap uint64
	views     []memberView
	// chains[i] holds, for every term of an entry written at index i
	// anywhere, its chain hash (as first written): usually one.
	chains [][]termChain
	// committed[i] is the chain hash of committed entry i (0: unknown).
	// Invariant: len(committed)-1 is the highest commit index seen.
	committed []uint64
	// commitTerms[i] is the term of the member whose commit index first
	// covered entry i: at least the term in which i was committed.
	commitTerms []uint64
	// applied[i] is the identity (term and data hash) of the entry applied
	// at i; appliedOps[i] its operation, if it is a client's append.
	applied    []uint64
	appliedOps []uint64
	// stateHashes[i] is the hash of the state machine of the first member
	// seen to have applied exactly up to i (full members).
	stateHashes map[uint64]stateSeen
	// leaders[t] is the member that led term t (0: none seen), elected[t]
	// when it was first seen leading.
	leaders []uint64
	elected []time.Duration
	// votes maps (voter, term) to the candidate the voter granted.
	votes map[[2]uint64]uint64
	// voteRequests maps (voter, candidate, term, type) to what the vote
	// requests so keyed say, over all their deliveries (see voteRequest).
	voteRequests map[[4]uint64]voteRequest
	// acks maps (leader, member) to the highest index the member
	// acknowledged to the leader, and in which term.
	acks map[[2]uint64]termIndex
	// fail is called with the first violation.
	fail func(invariant, detail string)
	// rules turns on the rule checks (InvCommitOwnTerm and after).
	rules bool
	// now is the virtual clock.
	now func() time.Duration
}

// supersededBefore reports whether a leader of a later term than term had
// been seen by time t.
func (c *checker) supersededBefore(term uint64, t time.Duration) bool {
	for later := term + 1; later < uint64(len(c.elected)); later++ {
		if c.elected[later] >= 0 && c.elected[later] < t {
			return true
		}
	}
	return false
}

// memberView is the checker's picture of one member.
type memberView struct {
	id uint64
	// chain[i] is the chain hash of entry i in the member's log, for
	// known <= i <= last; terms[i] its term.
	chain, terms []uint64
	known, last  uint64
	hs           raft.HardState
	ss           raft.SoftState
	applied      uint64
	// syncedTerm is the term of the last synced hard state.
	syncedTerm uint64
	down       bool
	// commit is raft's commit index as last reported (Activity.Commit).
	commit uint64
	// ackTerm and ackIndex are the term of the member's last successful
	// append acknowledgement and the highest index it acknowledged in it.
	ackTerm, ackIndex uint64
	// conf is the configuration the member had applied at the end of its
	// last round of work.
	conf raft.ConfState
	// confEntries are the indexes of the configuration changes in its log,
	// in order.
	confEntries []uint64
}

// voteRequest sums up the deliveries of vote requests with one key: the
// most up to date last entry a candidate named, and the least up to date
// last entry the voter's log had at a delivery. A request may
// arrive several times (duplicates; pre-votes repeat their term), and a
// grant answers one of them: the check flags it only if it could answer
// none.
type voteRequest struct {
	logTerm, index       uint64
	voterTerm, voterLast uint64
}

// upToDate is §5.4.1's order of logs by their last entries.
func upToDate(term, index, thanTerm, thanIndex uint64) bool {
	return term > thanTerm || term == thanTerm && index >= thanIndex
}

// newChecker checks a cluster of n member slots, the first founders of
// which found it (the others may join by membership changes).
func newChecker(n, founders int, fail func(invariant, detail string)) *checker {
	c := &checker{
		bootstrap: uint64(founders), views: make([]memberView, n),
		committed: []uint64{0}, commitTerms: []uint64{0}, applied: []uint64{0}, appliedOps: []uint64{0},
		votes: map[[2]uint64]uint64{}, voteRequests: map[[4]uint64]voteRequest{}, acks: map[[2]uint64]termIndex{}, fail: fail,
	}
	for i := range c.views {
		c.views[i] = memberView{id: uint64(i + 1), chain: []uint64{0}, terms: []uint64{0}}
	}
	for i := range founders {
		c.conf.Voters = append(c.conf.Voters, uint64(i+1))
	}
	// The founders' configuration is applied at the last bootstrap entry:
	// a member that restarts and applies the bootstrap entries again
	// passes through the smaller configurations before it.
	c.confIndex = c.bootstrap
	return c
}

func (c *checker) failf(invariant, format string, args ...any) {
	c.fail(invariant, fmt.Sprintf(format, args...))
}

type termChain struct{ term, chain uint64 }

type termIndex struct{ term, index uint64 }

// chainOf returns the chain hash of the entry (index, term) as first
// written anywhere.
func (c *checker) chainOf(index, term uint64) (uint64, bool) {
	if index < uint64(len(c.chains)) {
		for _, tc := range c.chains[index] {
			if tc.term == term {
				return tc.chain, true
			}
		}
	}
	return 0, false
}

// recordChain records the chain hash h of (index, term), or checks it
// against the one recorded.
func (c *checker) recordChain(index, term, h uint64) bool {
	for uint64(len(c.chains)) <= index {
		c.chains = append(c.chains, nil)
	}
	for _, tc := range c.chains[index] {
		if tc.term == term {
			return tc.chain == h
		}
	}
	c.chains[index] = append(c.chains[index], termChain{term, h})
	return true
}

func entryHash(e *raft.Entry) uint64 {
	return hashBytes(mix(hashInit, uint64(e.Type)<<56|e.Term), e.Data)
}

func chainHash(prev uint64, index, term, dataHash uint64) uint64 {
	return mix(mix(mix(prev, index), term), dataHash)
}

// setLen makes v's arrays hold index i.
func (v *memberView) setLen(i uint64) {
	for uint64(len(v.chain)) <= i {
		v.chain = append(v.chain, 0)
		v.terms = append(v.terms, 0)
	}
}

// holds reports whether v's log holds the entry whose chain hash at index i
// is h (or a snapshot past it).
func (v *memberView) holds(i, h uint64) bool {
	if i < v.known || i == 0 || h == 0 {
		return true // inside the snapshot (committed and applied), or unknown
	}
	return i <= v.last && v.chain[i] == h
}

// observe checks what member idx did in one round of work.
func (c *checker) observe(idx int, act *Activity) {
	v := &c.views[idx]
	if act.Conf != nil && act.AppliedIndex > c.confIndex {
		// First: entries may have committed under it in the same round.
		c.conf, c.confIndex = *act.Conf, act.AppliedIndex
	}
	wasLeader := v.ss.State == raft.StateLeader
	leaderTerm := v.hs.Term
	if act.Snapshot.Index != 0 {
		if wasLeader && act.HardState.Term == leaderTerm {
			c.failf(InvLeaderAppendOnly, "member %d, leader of term %d, installed snapshot %d", v.id, leaderTerm, act.Snapshot.Index)
			return
		}
		if c.rules && act.Snapshot.Index < v.ackIndex && act.HardState.Term == v.ackTerm {
			c.failf(InvAckedKept, "member %d acknowledged entries up to %d in term %d, then installed snapshot %d over them",
				v.id, v.ackIndex, v.ackTerm, act.Snapshot.Index)
			return
		}
		// §7: a member that holds the snapshot's last entry keeps what
		// follows it; and no member may discard a committed entry it holds
		// (every later leader holds it too, so it never conflicts).
		if top := min(v.last, uint64(len(c.committed))-1); top > act.Snapshot.Index && top >= v.known &&
			c.committed[top] != 0 && v.chain[top] == c.committed[top] {
			c.failf(InvCommittedDurable, "member %d installed snapshot %d over committed entries up to %d that it held", v.id, act.Snapshot.Index, top)
			return
		}
		h, ok := c.chainOf(act.Snapshot.Index, act.Snapshot.Term)
		if !ok {
			c.failf(InvLogMatching, "member %d installed snapshot %d/%d of an entry nobody wrote", v.id, act.Snapshot.Index, act.Snapshot.Term)
			return
		}
		v.setLen(act.Snapshot.Index)
		v.chain[act.Snapshot.Index], v.terms[act.Snapshot.Index] = h, act.Snapshot.Term
		v.known, v.last = act.Snapshot.Index, act.Snapshot.Index
		v.applied = act.Snapshot.Index
	}
	if len(act.Entries) > 0 {
		if first := act.Entries[0].Index; c.rules && first <= v.ackIndex && first <= v.last && act.HardState.Term == v.ackTerm {
			c.failf(InvAckedKept, "member %d acknowledged entries up to %d in term %d, then overwrote its log from %d in that term",
				v.id, v.ackIndex, v.ackTerm, first)
			return
		}
		c.observeEntries(v, act.Entries, wasLeader && act.SoftState.State == raft.StateLeader && act.HardState.Term == leaderTerm)
	}
	if c.rules && act.SoftState.State == raft.StateLeader && act.Commit > v.commit && act.CommitTerm != act.HardState.Term {
		// Figure 8: counting replicas commits only entries of the
		// leader's term; earlier ones commit with them.
		c.failf(InvCommitOwnTerm, "member %d, leader of term %d, moved its commit index from %d to %d, an entry of term %d",
			v.id, act.HardState.Term, v.commit, act.Commit, act.CommitTerm)
		return
	}
	v.commit = act.Commit
	c.observeState(v, act.HardState, act.SoftState, act.Synced)
	for i := range act.Applied {
		c.observeApply(v, &act.Applied[i])
	}
	if act.StateHash != 0 {
		c.observeStateHash(v.id, act.AppliedIndex, act.StateHash)
	}
}

type stateSeen struct{ member, hash uint64 }

// observeStateHash checks that every member that applied exactly up to
// index holds the same state machine.
func (c *checker) observeStateHash(member, index, hash uint64) {
	if c.stateHashes == nil {
		c.stateHashes = map[uint64]stateSeen{}
	}
	seen, ok := c.stateHashes[index]
	if !ok {
		c.stateHashes[index] = stateSeen{member: member, hash: hash}
		return
	}
	if seen.hash != hash {
		c.failf(InvStateAgreement, "members %d and %d applied up to index %d but hold different key spaces (%x, %x)",
			seen.member, member, index, seen.hash, hash)
	}
}

func (c *checker) observeEntries(v *memberView, ents []raft.Entry, stillLeader bool) {
	first := ents[0].Index
	if first > v.last+1 || first <= v.known && v.known > 0 {
		c.failf(InvLogMatching, "member %d wrote entries from %d onto a log of [%d, %d]", v.id, first, v.known+1, v.last)
		return
	}
	if stillLeader && first <= v.last {
		c.failf(InvLeaderAppendOnly, "member %d, leader of term %d, overwrote its log from %d (last %d)", v.id, v.hs.Term, first, v.last)
		return
	}
	v.setLen(ents[len(ents)-1].Index)
	for len(v.confEntries) > 0 && v.confEntries[len(v.confEntries)-1] >= first {
		v.confEntries = v.confEntries[:len(v.confEntries)-1]
	}
	for i := range ents {
		if ents[i].Type == raft.EntryConfChange {
			v.confEntries = append(v.confEntries, ents[i].Index)
		}
	}
	prev := v.chain[first-1]
	for i := range ents {
		e := &ents[i]
		h := chainHash(prev, e.Index, e.Term, entryHash(e))
		if !c.recordChain(e.Index, e.Term, h) {
			c.failf(InvLogMatching, "member %d holds entry %d/%d with a different log before it than another member", v.id, e.Index, e.Term)
			return
		}
		// A member may replace an entry committed in a later term than the
		// leader that sent the new one (a late append of an old leader
		// reaching a member that never saw the later term: the majority
		// that committed it is elsewhere, in that term). Every leader of the
		// commit's term or later holds the committed entry, so an entry
		// whose own term (at most its sender's) reaches the commit's term
		// may not replace it. commitTerms overestimate the commit's term,
		// which keeps this sound.
		if e.Index < uint64(len(c.committed)) && e.Index <= v.last && e.Index >= v.known && e.Term >= c.commitTerms[e.Index] {
			if ch := c.committed[e.Index]; ch != 0 && v.chain[e.Index] == ch && h != ch {
				c.failf(InvCommittedDurable, "member %d overwrote committed entry %d (committed by term %d) with %d/%d", v.id, e.Index, c.commitTerms[e.Index], e.Index, e.Term)
				return
			}
		}
		v.chain[e.Index], v.terms[e.Index] = h, e.Term
		prev = h
	}
	v.last = ents[len(ents)-1].Index
}

func (c *checker) observeState(v *memberView, hs raft.HardState, ss raft.SoftState, synced bool) {
	if hs.Term < v.hs.Term {
		c.failf(InvTermMonotonic, "member %d went from term %d back to %d", v.id, v.hs.Term, hs.Term)
		return
	}
	becameLeader := ss.State == raft.StateLeader && (v.ss.State != raft.StateLeader || hs.Term != v.hs.Term)
	v.hs, v.ss = hs, ss
	if synced {
		v.syncedTerm = hs.Term
	}
	if ss.State == raft.StateLeader {
		for uint64(len(c.leaders)) <= hs.Term {
			c.leaders = append(c.leaders, 0)
			c.elected = append(c.elected, -1)
		}
		if c.elected[hs.Term] < 0 {
			c.elected[hs.Term] = c.now()
		}
		if l := c.leaders[hs.Term]; l != 0 && l != v.id {
			c.failf(InvElectionSafety, "members %d and %d are both leaders of term %d", l, v.id, hs.Term)
			return
		}
		c.leaders[hs.Term] = v.id
	}
	if becameLeader {
		// The leader must hold every entry committed in an earlier term.
		// Its election may have been observed late (a Ready held up by a
		// full disk), so entries committed in its term or later are left
		// out; commitTerms overestimate the term, which keeps this sound.
		ci := uint64(len(c.committed)) - 1
		for ci > 0 && c.commitTerms[ci] >= hs.Term {
			ci--
		}
		if ci > c.bootstrap && !v.holds(ci, c.committed[ci]) {
			c.failf(InvLeaderCompleteness, "member %d became leader of term %d without entry %d committed in term %d or earlier", v.id, hs.Term, ci, c.commitTerms[ci])
			return
		}
	}
	if hs.Commit > v.last {
		c.failf(InvApplyCommitted, "member %d has commit index %d beyond its last entry %d", v.id, hs.Commit, v.last)
		return
	}
	c.observeCommit(v, hs.Commit)
}

// observeCommit checks a member's commit index against the committed
// prefix, and extends that prefix.
func (c *checker) observeCommit(v *memberView, commit uint64) {
	top := uint64(len(c.committed)) - 1
	if commit <= top {
		if commit >= v.known && commit > 0 && c.committed[commit] != 0 && v.chain[commit] != c.committed[commit] {
			c.failf(InvStateMachineSafety, "member %d committed a different entry %d than another member", v.id, commit)
		}
		return
	}
	if top >= v.known && top > 0 && c.committed[top] != 0 && v.chain[top] != c.committed[top] {
		c.failf(InvStateMachineSafety, "member %d committed a different entry %d than another member", v.id, top)
		return
	}
	for i := top + 1; i <= commit; i++ {
		h := uint64(0)
		if i >= v.known {
			h = v.chain[i]
		}
		c.committed = append(c.committed, h)
		c.commitTerms = append(c.commitTerms, v.hs.Term)
	}
	c.checkCommittedDurable()
	if c.committed[commit] == 0 {
		return
	}
	// Leader completeness for leaders elected before this commit became
	// known: a leader of a later term than the commit's must hold it.
	term := v.hs.Term
	for j := range c.views {
		w := &c.views[j]
		if !w.down && w.ss.State == raft.StateLeader && w.hs.Term > term && !w.holds(commit, c.committed[commit]) {
			c.failf(InvLeaderCompleteness, "member %d leads term %d without entry %d committed in term %d", w.id, w.hs.Term, commit, term)
			return
		}
	}
}

// checkCommittedDurable checks that the last committed entry is in the
// log of a member of every quorum of the newest configuration (of a down
// member, in the log it had synced when it crashed), so that no leader can
// be elected without it. Raft commits an entry on a majority of the
// configuration of its time; membership changes preserve the property,
// since the majorities of two configurations one change apart intersect.
// A joint configuration elects only with majorities of both halves, so it
// is enough that one half's every majority holds the entry: an entry
// committed just before the joint configuration was entered is on a
// majority of the outgoing half, not yet of the incoming one. For the
// founders' configuration it says: durable on a majority.
func (c *checker) checkCommittedDurable() {
	ci := uint64(len(c.committed)) - 1
	h := c.committed[ci]
	if ci <= c.bootstrap || h == 0 {
		// Every founding member writes the bootstrap entries itself.
		return
	}
	var failed []string
	for _, voters := range [][]uint64{c.conf.Voters, c.conf.VotersOutgoing} {
		if len(voters) == 0 {
			continue
		}
		n := 0
		for _, id := range voters {
			if v := &c.views[id-1]; v.holds(ci, h) {
				n++
			}
		}
		// A majority without a holder has len - n >= len/2+1 members.
		if len(voters)-n < len(voters)/2+1 {
			return
		}
		failed = append(failed, fmt.Sprintf("%d of voters %v", n, voters))
	}
	if len(failed) > 0 {
		c.failf(InvCommittedDurable, "committed entry %d is held by %s, so a majority lacks it", ci, strings.Join(failed, " and by "))
	}
}

func (c *checker) observeApply(v *memberView, e *raft.Entry) {
	if e.Index != v.applied+1 {
		c.failf(InvApplyCommitted, "member %d applied entry %d after %d", v.id, e.Index, v.applied)
		return
	}
	if e.Index > v.hs.Commit && e.Index >= uint64(len(c.committed)) {
		c.failf(InvApplyCommitted, "member %d applied entry %d beyond every commit index (its own is %d)", v.id, e.Index, v.hs.Commit)
		return
	}
	v.applied = e.Index
	id := entryHash(e)
	for uint64(len(c.applied)) <= e.Index {
		c.applied = append(c.applied, 0)
		c.appliedOps = append(c.appliedOps, 0)
	}
	if old := c.applied[e.Index]; old == 0 {
		c.applied[e.Index] = id
		if e.Type == raft.EntryNormal && len(e.Data) >= 8 {
			c.appliedOps[e.Index] = decodeOp(e.Data)
		}
	} else if old != id {
		c.failf(InvStateMachineSafety, "member %d applied a different entry at index %d (term %d) than another member", v.id, e.Index, e.Term)
	}
}

// confPending reports whether some member's log holds a configuration
// change past the newest one applied anywhere: it may still commit.
func (c *checker) confPending() bool {
	for i := range c.views {
		if e := c.views[i].confEntries; len(e) > 0 && e[len(e)-1] > c.confIndex {
			return true
		}
	}
	return false
}

// observeDelivery records what the rules need of a message delivered to
// member idx, which is about to receive it.
func (c *checker) observeDelivery(idx int, m *raft.Message, to Member) {
	switch m.Type {
	case raft.MsgVote, raft.MsgPreVote:
		last, term := to.LastEntry()
		c.observeVoteRequest(idx, m, last, term)
	case raft.MsgAppResp:
		c.observeAck(idx, m)
	}
}

// observeVoteRequest records a vote request (or pre-vote) delivered to
// member idx, whose raft log ends at voterLast/voterTerm. That is the log
// in memory, not the one written, which may run ahead of it: an append of
// a new leader can replace a suffix with older entries (a less up to date
// log) before the member writes the replacement.
func (c *checker) observeVoteRequest(idx int, m *raft.Message, voterLast, voterTerm uint64) {
	v := &c.views[idx]
	key := [4]uint64{v.id, m.From, m.Term, uint64(m.Type)}
	req, seen := c.voteRequests[key]
	if !seen || upToDate(m.LogTerm, m.Index, req.logTerm, req.index) {
		req.logTerm, req.index = m.LogTerm, m.Index
	}
	if !seen || upToDate(req.voterTerm, req.voterLast, voterTerm, voterLast) {
		req.voterTerm, req.voterLast = voterTerm, voterLast
	}
	c.voteRequests[key] = req
}

// observeVote checks a vote (or pre-vote) granted in a message about to be
// sent by member idx.
func (c *checker) observeVote(idx int, m *raft.Message) {
	reqType := raft.MsgVote
	if m.Type == raft.MsgPreVoteResp {
		reqType = raft.MsgPreVote
	}
	if req, ok := c.voteRequests[[4]uint64{m.From, m.To, m.Term, uint64(reqType)}]; c.rules && ok &&
		!upToDate(req.logTerm, req.index, req.voterTerm, req.voterLast) {
		c.failf(InvVoteUpToDate, "member %d granted %s of term %d to %d, whose log ends at %d/%d, behind its own %d/%d",
			m.From, m.Type, m.Term, m.To, req.index, req.logTerm, req.voterLast, req.voterTerm)
		return
	}
	if m.Type != raft.MsgVoteResp {
		return
	}
	if hs := c.views[idx].hs; c.rules && (hs.Term < m.Term || hs.Term == m.Term && hs.Vote != m.To) {
		c.failf(InvVoteDurable, "member %d granted its vote in term %d to %d with hard state %+v written", m.From, m.Term, m.To, hs)
		return
	}
	key := [2]uint64{m.From, m.Term}
	if prev, ok := c.votes[key]; ok && prev != m.To {
		c.failf(InvVoteOnce, "member %d granted its vote in term %d to %d and to %d", m.From, m.Term, prev, m.To)
		return
	}
	c.votes[key] = m.To
}

// observeAck records an append acknowledgement delivered to member idx.
func (c *checker) observeAck(idx int, m *raft.Message) {
	if m.Reject || m.Index == 0 {
		return
	}
	key := [2]uint64{c.views[idx].id, m.From}
	if ack := c.acks[key]; m.Term > ack.term || m.Term == ack.term && m.Index > ack.index {
		c.acks[key] = termIndex{m.Term, m.Index}
	}
}

// checkCommitQuorum checks that leader idx, whose commit index moved to
// commit in term during a round of work, had that entry acknowledged by a
// majority of each half of its configuration, itself counted if it wrote
// it (§5.3). The configuration is the one it had before the round or the
// one after (it may have applied a change in the same round, before or
// after its commit index moved).
func (c *checker) checkCommitQuorum(idx int, term, commit uint64, before, after raft.ConfState) {
	v := &c.views[idx]
	if c.quorumAcked(v, term, commit, before) || c.quorumAcked(v, term, commit, after) {
		return
	}
	c.failf(InvCommitQuorum, "member %d, leader of term %d, committed %d, which no majority of voters %v (before) or %v (after) acknowledged",
		v.id, term, commit, before.Voters, after.Voters)
}

// quorumAcked reports whether a majority of each half of cs acknowledged
// entry commit to leader v in term.
func (c *checker) quorumAcked(v *memberView, term, commit uint64, cs raft.ConfState) bool {
	for _, voters := range [][]uint64{cs.Voters, cs.VotersOutgoing} {
		acked := 0
		for _, id := range voters {
			if ack := c.acks[[2]uint64{v.id, id}]; id == v.id && v.last >= commit || ack.term == term && ack.index >= commit {
				acked++
			}
		}
		if len(voters) > 0 && acked < len(voters)/2+1 {
			return false
		}
	}
	return true
}

// observeSend checks a message member idx is about to send, other than a
// vote: a leader's messages of its term leave only once the term is
// durable (else a crash could bring it back in an earlier term, to lead
// the same term again with other entries); and it records the member's
// append acknowledgements.
func (c *checker) observeSend(idx int, m *raft.Message) {
	v := &c.views[idx]
	switch m.Type {
	case raft.MsgApp, raft.MsgHeartbeat, raft.MsgSnap, raft.MsgTimeoutNow:
		if c.rules && v.syncedTerm < m.Term {
			c.failf(InvTermDurable, "member %d sent %s of term %d with only term %d durable", v.id, m.Type, m.Term, v.syncedTerm)
		}
	case raft.MsgAppResp:
		switch {
		case m.Reject || m.Index == 0:
		case m.Term > v.ackTerm:
			v.ackTerm, v.ackIndex = m.Term, m.Index
		case m.Term == v.ackTerm:
			v.ackIndex = max(v.ackIndex, m.Index)
		}
	}
}

// crashed marks member idx down: its view stays what it had synced.
func (c *checker) crashed(idx int) {
	v := &c.views[idx]
	v.down = true
	v.ss = raft.SoftState{}
}

// lateOverwrite reports whether log v diverges from the committed prefix,
// at or before index upTo, at an entry whose term is below the term in
// which the committed entry there committed: a late append of an old leader
// replaced it, on a member that never saw the later term (see
// observeEntries), in a write the checker saw only once recovered (the
// crash tore it).
func (c *checker) lateOverwrite(v *memberView, upTo uint64) bool {
	for k := v.known + 1; k <= min(upTo, v.last); k++ {
		if h := c.committed[k]; h != 0 && v.chain[k] != h {
			return v.terms[k] < c.commitTerms[k]
		}
	}
	return false
}

// restarted checks a restarted member's recovered log against what it had
// synced, and takes the recovered log as its view.
func (c *checker) restarted(idx int, s raft.Storage, applied uint64) {
	v := &c.views[idx]
	old := *v
	nv := memberView{id: v.id}
	hs, _, _ := s.InitialState()
	snap, _ := s.Snapshot()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	nv.known = first - 1
	nv.setLen(last)
	if nv.known > 0 {
		term, err := s.Term(nv.known)
		if err != nil {
			c.failf(InvDurability, "member %d restarted with a log whose first entry %d has no term: %v", v.id, nv.known, err)
			return
		}
		h, ok := c.chainOf(nv.known, term)
		if !ok {
			c.failf(InvDurability, "member %d restarted with a log starting after %d/%d, an entry nobody wrote", v.id, nv.known, term)
			return
		}
		nv.chain[nv.known], nv.terms[nv.known] = h, term
	}
	nv.last = nv.known
	if last > nv.known {
		ents, err := s.Entries(first, last+1, ^uint64(0))
		if err != nil {
			c.failf(InvDurability, "member %d restarted with unreadable entries: %v", v.id, err)
			return
		}
		c.observeEntries(&nv, ents, false)
	}
	nv.hs = raft.HardState{Term: max(hs.Term, nv.terms[nv.last]), Vote: hs.Vote, Commit: hs.Commit}
	nv.commit = hs.Commit
	nv.ackTerm, nv.ackIndex, nv.conf = old.ackTerm, old.ackIndex, old.conf
	nv.syncedTerm = nv.hs.Term
	nv.applied = max(applied, snap.Metadata.Index)
	if nv.hs.Term < old.syncedTerm {
		c.failf(InvDurability, "member %d synced term %d but restarted at term %d", v.id, old.syncedTerm, nv.hs.Term)
		return
	}
	// Entries written after the last sync may be lost or torn, and may
	// have replaced a synced suffix (a new leader's entries): what must
	// survive is the synced part of the committed prefix.
	i := min(old.last, uint64(len(c.committed))-1)
	if h := c.committed[i]; i > c.bootstrap && i >= old.known && h != 0 && old.chain[i] == h && !nv.holds(i, h) && !c.lateOverwrite(&nv, i) {
		c.failf(InvDurability, "member %d held committed entry %d but restarted without it (log [%d, %d], terms before %v, after %v)", v.id, i, nv.known+1, nv.last, old.terms[old.known:old.last+1], nv.terms[nv.known:nv.last+1])
		return
	}
	*v = nv
	c.checkCommittedDurable()
}
