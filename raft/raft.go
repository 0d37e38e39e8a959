package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// ErrProposalDropped is returned when a proposal cannot be taken now: no
// leader is known, a leadership transfer is under way, the uncommitted-bytes
// bound is reached, or this member may not propose. The caller may retry.
var ErrProposalDropped = errors.New("raft: proposal dropped")

// ErrStepLocalMsg is returned by Node.Step for a message that only a local
// call may make.
var ErrStepLocalMsg = errors.New("raft: cannot step a local message")

// ErrStepPeerNotFound is returned for a response from a member the leader
// does not know.
var ErrStepPeerNotFound = errors.New("raft: cannot step a response from an unknown member")

// raft is one member's consensus state machine. All methods run on the
// caller's goroutine; nothing in here blocks, sleeps, reads a clock or does
// I/O. Inputs are messages and ticks; outputs accumulate in msgs,
// msgsAfterPersist and readStates for Node.Ready to hand out.
type raft struct {
	id uint64

	// Term and Vote are Figure 2's currentTerm and votedFor.
	Term uint64
	Vote uint64

	log       *raftLog
	trk       tracker
	state     StateType
	cfg       Config
	rand      *rand.Rand
	isLearner bool

	// lead is the leader of Term as far as this member knows, or None.
	lead uint64
	// leadTransferee is the member leadership is being handed to, or None.
	// Invariant: leadTransferee != None only in StateLeader.
	leadTransferee uint64
	// transferredThisTerm disables lease reads for the rest of the term once
	// a transfer has been attempted: the transferee may win an election that
	// voters grant despite any lease.
	transferredThisTerm bool
	// pendingConfIndex is the index of the last configuration change the
	// leader appended; no other may be proposed until it is applied.
	pendingConfIndex uint64
	// uncommittedSize is the bytes of the leader's uncommitted entries.
	uncommittedSize uint64

	readOnly *readOnly
	// pendingReads are reads that arrived before the leader committed an
	// entry of its own term, when its commit index is not yet trustworthy
	// (§6.4, step 1).
	pendingReads []Message
	readStates   []ReadState

	// msgs may be sent at once; msgsAfterPersist only after the state in the
	// same Ready is durable (see Ready).
	msgs             []Message
	msgsAfterPersist []Message
	// appendsDue says the leader has new entries or a new commit index for
	// its followers, to send when its messages are next taken (flushAppends):
	// however many proposals and acknowledgements it steps in between, each
	// follower then gets one append, not one per step.
	appendsDue bool

	// ticks counts calls to Tick; leases are measured on it.
	ticks uint64
	// electionElapsed is, for a leader or candidate, the ticks since it
	// reached that state; for a follower, the ticks since it last heard from
	// a valid leader.
	electionElapsed  int
	heartbeatElapsed int
	// randomizedElectionTimeout is in [ElectionTick, 2*ElectionTick).
	randomizedElectionTimeout int
	// bootQuiet makes a member that has just started ignore votes for an
	// election timeout, honouring a lease it may have acknowledged before a
	// crash (lease reads only).
	bootQuiet bool
	// leaderHeardAt is the tick count when this member last heard from a
	// leader (an append, a heartbeat, a snapshot chunk), 0 if never. With
	// CheckQuorum it grants no vote for an election timeout after — its
	// promise to that leader, on which leases rest — whatever term it
	// moves to meanwhile (see promising).
	leaderHeardAt uint64

	// wasRemoved says this member applied a configuration that removed it
	// (or restarted from a snapshot of one): see removed. A member joining
	// a cluster, not yet in the configuration it has applied, was not.
	wasRemoved bool

	// incomingSnapshot assembles the chunks of a snapshot being received.
	incomingSnapshot *incomingSnapshot

	tick func()
	step func(r *raft, m Message) error
}

func newRaft(c Config) (*raft, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	log, err := newLog(c.Storage, c.MaxCommittedSizePerReady)
	if err != nil {
		return nil, err
	}
	hs, cs, err := c.Storage.InitialState()
	if err != nil {
		return nil, fmt.Errorf("raft: read initial state from storage: %w", err)
	}
	log.bug = c.PlantedBug
	r := &raft{
		id:       c.ID,
		log:      log,
		cfg:      c,
		rand:     c.Rand,
		trk:      newTracker(c.MaxInflightMsgs, c.MaxInflightBytes),
		readOnly: newReadOnly(c.ReadOnlyOption),
		lead:     None,
		// Tick counts start at 1: 0 stands for "never" in leases.
		ticks: 1,
	}
	if err := restoreConfig(&r.trk, log.lastIndex(), cs); err != nil {
		return nil, fmt.Errorf("raft: restore configuration %+v: %w", cs, err)
	}
	r.isLearner = r.trk.progress[r.id] != nil && r.trk.progress[r.id].IsLearner
	// A snapshot names the member that receives it (restore refuses it
	// otherwise); one of its own that leaves it out was taken after its
	// removal.
	r.wasRemoved = len(cs.Voters) > 0 && !cs.Contains(r.id)
	if !hs.IsEmpty() {
		if hs.Commit > log.lastIndex() {
			return nil, fmt.Errorf("raft: stored commit index %d is beyond the last index %d", hs.Commit, log.lastIndex())
		}
		// A commit index below the snapshot's is a hard state that a torn
		// write lost after the snapshot was written (the contract writes
		// the snapshot first); the snapshot is committed by construction.
		log.committed = max(hs.Commit, log.committed)
		r.Term, r.Vote = hs.Term, hs.Vote
	}
	// What the disk holds: the written commit index, or the snapshot's.
	log.durableCommit = max(hs.Commit, log.firstIndex()-1)
	// A torn write may have kept entries of a term whose hard state did not
	// reach the disk; never go back below a term the log already holds.
	r.Term = max(r.Term, log.lastTerm())
	if c.Applied > 0 {
		if c.Applied > log.committed {
			return nil, fmt.Errorf("raft: Config.Applied %d is beyond the commit index %d", c.Applied, log.committed)
		}
		if c.Applied < log.applied {
			return nil, fmt.Errorf("raft: Config.Applied %d is before the snapshot index %d", c.Applied, log.applied)
		}
		log.appliedTo(c.Applied)
		// The snapshot's configuration is in storage, as of the snapshot's
		// index; the changes applied since are in the log. Replay them (the
		// application will not), and only them: storage may keep entries
		// from before the snapshot, whose changes the snapshot holds.
		snap, err := c.Storage.Snapshot()
		if err != nil {
			return nil, fmt.Errorf("raft: read the snapshot from storage: %w", err)
		}
		if err := r.replayConfChanges(max(log.firstIndex(), snap.Metadata.Index+1), c.Applied); err != nil {
			return nil, err
		}
	}
	r.becomeFollower(r.Term, None)
	r.bootQuiet = c.ReadOnlyOption == ReadOnlyLeaseBased
	return r, nil
}

// TornBootstrap reports whether storage holds only (a prefix of) what
// Bootstrap writes — configuration changes of term 1, no snapshot — and no
// hard state: a founding member whose first write was torn. Raft cannot
// tell a whole bootstrap from a torn one (it does not know how many
// founders there were), so such a member starts without a configuration
// and never campaigns; it did nothing durable (no vote, no acknowledged
// entry), and the application, which knows its founders, bootstraps it
// again on empty storage.
func TornBootstrap(s Storage) (bool, error) {
	hs, _, err := s.InitialState()
	if err != nil || !hs.IsEmpty() && (hs.Term > bootstrapTerm || hs.Vote != None || hs.Commit != 0) {
		return false, err
	}
	first, err := s.FirstIndex()
	if err != nil {
		return false, err
	}
	last, err := s.LastIndex()
	if err != nil || first != 1 || last == 0 {
		return false, err
	}
	ents, err := s.Entries(1, last+1, ^uint64(0))
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		if e.Term != bootstrapTerm || e.Type != EntryConfChange {
			return false, nil
		}
	}
	return true, nil
}

// replayConfChanges applies the configuration changes in [lo, hi], entries
// the application applied before a restart.
func (r *raft) replayConfChanges(lo, hi uint64) error {
	for lo <= hi {
		ents, err := r.log.slice(lo, hi+1, 1<<20)
		if err != nil {
			return fmt.Errorf("raft: read applied entries [%d, %d]: %w", lo, hi, err)
		}
		for _, e := range ents {
			if e.Type != EntryConfChange {
				continue
			}
			var cc ConfChange
			if err := cc.UnmarshalBinary(e.Data); err != nil {
				return fmt.Errorf("raft: applied entry %d: %w", e.Index, err)
			}
			// A change that failed when first applied fails again and
			// changes nothing, as it did then.
			_, _ = r.applyConfChange(cc)
		}
		lo += uint64(len(ents))
	}
	return nil
}

func (r *raft) hardState() HardState {
	return HardState{Term: r.Term, Vote: r.Vote, Commit: r.log.committed}
}

func (r *raft) softState() SoftState { return SoftState{Lead: r.lead, State: r.state} }

// send queues m, filling in From and Term, on the list that its kind
// requires (see Ready for the persistence contract).
func (r *raft) send(m Message) {
	if m.Type != MsgTransferLeader || m.From == None {
		// A forwarded transfer request names the transferee in From.
		m.From = r.id
	}
	switch m.Type {
	case MsgVote, MsgVoteResp, MsgPreVote, MsgPreVoteResp:
		// Vote messages carry the term they are about, set by the caller.
		if m.Term == 0 {
			panic(fmt.Sprintf("raft: %s sent with term 0", m.Type))
		}
	case MsgProp, MsgReadIndex, MsgTransferLeader:
		// Forwarded requests belong to no term: the leader handles them
		// whatever term it is in.
		m.Term = 0
	default:
		m.Term = r.Term
	}
	switch m.Type {
	case MsgAppResp, MsgVote, MsgVoteResp:
		// These vouch for state that must be durable first: an accepted
		// append or installed snapshot, a vote (ours or the one granted).
		r.msgsAfterPersist = append(r.msgsAfterPersist, m)
	default:
		r.msgs = append(r.msgs, m)
	}
}

// reset prepares for a new term.
func (r *raft) reset(term uint64) {
	if r.Term != term {
		r.Term = term
		r.Vote = None
		r.transferredThisTerm = false
	}
	r.lead = None
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.resetRandomizedElectionTimeout()
	r.abortLeaderTransfer()
	r.trk.resetVotes()
	last := r.log.lastIndex()
	r.trk.visit(func(id uint64, pr *Progress) {
		*pr = Progress{Next: last + 1, IsLearner: pr.IsLearner, inflights: pr.inflights, LastHeard: r.ticks}
		pr.inflights.reset()
		if id == r.id {
			// The leader's own entries count once durable: Match is the
			// durable prefix, the rest follows at Advance.
			pr.Match = r.log.unstable.offset - 1
			if r.log.unstable.snapshot != nil {
				pr.Match = 0
			}
		}
	})
	r.pendingConfIndex = 0
	r.uncommittedSize = 0
	r.readOnly = newReadOnly(r.cfg.ReadOnlyOption)
	r.pendingReads = nil
	r.appendsDue = false
}

func (r *raft) resetRandomizedElectionTimeout() {
	r.randomizedElectionTimeout = r.cfg.ElectionTick + r.rand.IntN(r.cfg.ElectionTick)
}

func (r *raft) becomeFollower(term, lead uint64) {
	r.step = stepFollower
	r.reset(term)
	r.tick = r.tickElection
	r.lead = lead
	r.state = StateFollower
}

func (r *raft) becomePreCandidate() {
	if r.state == StateLeader {
		panic("raft: invalid transition [leader -> pre-candidate]")
	}
	// A pre-candidate keeps its term and vote: PreVote changes nothing
	// until a quorum says an election could be won (§9.6 of the thesis).
	r.step = stepCandidate
	r.trk.resetVotes()
	r.tick = r.tickElection
	r.lead = None
	r.state = StatePreCandidate
}

func (r *raft) becomeCandidate() {
	if r.state == StateLeader {
		panic("raft: invalid transition [leader -> candidate]")
	}
	// §5.2: increment currentTerm, vote for self.
	r.step = stepCandidate
	r.reset(r.Term + 1)
	r.tick = r.tickElection
	r.Vote = r.id
	r.state = StateCandidate
}

func (r *raft) becomeLeader() {
	if r.state == StateFollower {
		panic("raft: invalid transition [follower -> leader]")
	}
	r.step = stepLeader
	r.reset(r.Term)
	r.tick = r.tickHeartbeat
	r.lead = r.id
	r.state = StateLeader
	// Followers start in probe state at our last index (reset did that);
	// our own progress replicates (a removed member has none).
	if pr := r.trk.progress[r.id]; pr != nil {
		pr.becomeReplicate()
		pr.Next = r.log.lastIndex() + 1
	}
	// Configuration changes in the uncommitted tail may be pending: forbid
	// new ones until everything we have is applied.
	r.pendingConfIndex = r.log.lastIndex()
	// §5.4.2 / §8: a new leader commits an entry of its own term at once (a
	// no-op), which also commits everything before it.
	r.appendEntry(false, Entry{Data: nil})
	if r.leaving() {
		// A removed member elected to finish a hand-over (see removed).
		r.handOver()
	}
}

// campaign starts an election: a pre-vote or a real one.
func (r *raft) campaign(preVote, transfer bool) {
	if !r.promotable() {
		return
	}
	var term uint64
	var voteType MessageType
	if preVote {
		r.becomePreCandidate()
		voteType = MsgPreVote
		// A pre-vote asks about the term we would campaign in.
		term = r.Term + 1
	} else {
		r.becomeCandidate()
		voteType = MsgVote
		term = r.Term
	}
	if preVote || r.planted(BugSelfVoteBeforePersist) {
		// A pre-vote changes nothing durable: our own counts at once, and a
		// lone voter goes straight on to the real election.
		r.trk.recordVote(r.id, true)
		if _, _, res := r.trk.tallyVotes(); res == VoteWon {
			if !preVote {
				r.becomeLeader()
				return
			}
			r.campaign(false, transfer)
			return
		}
	} else {
		// Our own vote counts, like any other, only once it is durable
		// (Figure 2: persist before responding): it comes back to us
		// after the Ready that persists it (see Node.Advance). A lone
		// voter that led at once could send entries of a term it might
		// lose in a crash, and write different ones in that term again.
		r.send(Message{To: r.id, Term: term, Type: MsgVoteResp})
	}
	for _, id := range r.trk.voterIDs() {
		if id == r.id {
			continue
		}
		r.send(Message{To: id, Term: term, Type: voteType, Index: r.log.lastIndex(),
			LogTerm: r.log.lastTerm(), Transfer: transfer})
	}
}

// promotable reports whether this member may campaign: it votes, or it was
// removed (see removed), and it holds no committed configuration change it
// has not applied (which could remove it).
func (r *raft) promotable() bool {
	pr := r.trk.progress[r.id]
	if pr == nil && !r.removed() || pr != nil && pr.IsLearner || r.log.unstable.snapshot != nil {
		return false
	}
	return !r.hasUnappliedConfChanges()
}

// removed reports whether this member applied its own removal from the
// configuration (not merely not in it yet: a joining member that has
// applied the configurations before its addition) and is to hand over as
// it leaves (StepDownOnRemoval). Such a member still
// starts elections, as §4.2.2 of the thesis says, "as it might still be
// needed until the Cnew entry is committed": the others learn that the
// removal committed only from a leader, and until they do they count its
// vote, which it must refuse them if its log is longer than theirs — a
// removed leader that crashed during its hand-over would otherwise leave
// them unable to elect anyone. It does not count its own vote, it always
// campaigns through a pre-vote (so that, once the others lead without it,
// it cannot disturb them), and elected, it only hands over (leaving).
func (r *raft) removed() bool {
	return r.cfg.StepDownOnRemoval && r.wasRemoved && r.trk.progress[r.id] == nil
}

func (r *raft) hasUnappliedConfChanges() bool {
	if r.log.applied >= r.log.committed {
		return false
	}
	lo, hi := r.log.applied+1, r.log.committed+1
	for lo < hi {
		ents, err := r.log.slice(lo, hi, 1<<20)
		if err != nil {
			panic(fmt.Sprintf("raft: read unapplied entries: %v", err))
		}
		for i := range ents {
			if ents[i].Type == EntryConfChange {
				return true
			}
		}
		lo += uint64(len(ents))
	}
	return false
}

// tickElection is a follower's and a candidate's tick: start an election
// when the randomized timeout passes without a leader (§5.2).
func (r *raft) tickElection() {
	r.electionElapsed++
	if r.bootQuiet && r.electionElapsed >= r.cfg.ElectionTick {
		r.bootQuiet = false
	}
	// A lone voter has nobody to wait for or compete with: a follower
	// elects itself at its first tick instead of after a timeout, unless
	// it promised a leader not to (a lease it acknowledged).
	lone := r.trk.isLoneVoter(r.id) && r.state == StateFollower && !r.promising()
	if r.promotable() && (r.electionElapsed >= r.randomizedElectionTimeout || lone) {
		r.electionElapsed = 0
		r.hup(false)
	}
}

// hup starts an election, with a pre-vote first if configured (and always
// for a removed member).
func (r *raft) hup(transfer bool) {
	if r.state == StateLeader {
		return
	}
	r.campaign((r.cfg.PreVote || r.removed()) && !transfer, transfer)
}

// tickHeartbeat is a leader's tick: heartbeats every HeartbeatTick, and
// every ElectionTick the CheckQuorum test and the end of a stalled
// transfer.
func (r *raft) tickHeartbeat() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if (r.cfg.CheckQuorum || r.leaving()) && !r.quorumActive() {
		// §6.2 of the thesis: a leader that has not heard from a quorum for
		// an election timeout steps down rather than lead in name only. A
		// leader handing over after its removal always does: cut off from
		// the new configuration, it can neither finish the hand-over nor
		// know whether the others have elected a leader already.
		r.becomeFollower(r.Term, None)
		return
	}
	if r.electionElapsed >= r.cfg.ElectionTick {
		r.electionElapsed = 0
		// A transfer that did not finish within an election timeout is
		// abandoned, and proposals are accepted again (§3.10).
		r.abortLeaderTransfer()
		if r.leaving() {
			r.handOver() // try again, maybe with another member
		}
	}
	if r.state != StateLeader {
		return
	}
	if r.heartbeatElapsed >= r.cfg.HeartbeatTick {
		r.heartbeatElapsed = 0
		r.bcastHeartbeat()
		r.resendStalledSnapshots()
	}
}

// quorumActive reports whether a quorum of voters has been heard from
// within the last election timeout.
func (r *raft) quorumActive() bool {
	heard := r.trk.config.Voters.CommittedIndex(func(id uint64) uint64 {
		if id == r.id {
			return r.ticks
		}
		if pr := r.trk.progress[id]; pr != nil {
			return pr.LastHeard
		}
		return 0
	})
	return r.ticks-heard < uint64(r.cfg.ElectionTick)
}

// recentlyActive reports whether the leader heard from pr's member within
// the last election timeout.
func (r *raft) recentlyActive(pr *Progress) bool {
	return r.ticks-pr.LastHeard < uint64(r.cfg.ElectionTick)
}

// Step handles a message from a peer. It applies Figure 2's rule for all
// servers first ("if RPC request or response contains term T > currentTerm:
// set currentTerm = T, convert to follower"), with the PreVote and
// CheckQuorum refinements, then hands the message to the role's step.
func (r *raft) Step(m Message) error {
	switch {
	case m.Term == 0:
		// A forwarded request: no term to compare.
	case m.Term > r.Term:
		if !r.stepHigherTerm(m) {
			return nil
		}
	case m.Term < r.Term:
		r.stepLowerTerm(m)
		return nil
	}
	switch m.Type {
	case MsgVote, MsgPreVote:
		r.handleVoteRequest(m)
		return nil
	}
	return r.step(r, m)
}

// stepHigherTerm applies the higher-term rule and reports whether m should
// then be processed.
func (r *raft) stepHigherTerm(m Message) bool {
	if m.Type == MsgVote || m.Type == MsgPreVote {
		if r.promising() && !m.Transfer {
			return false
		}
	}
	switch {
	case m.Type == MsgPreVote:
		// A pre-vote does not change our term.
	case m.Type == MsgPreVoteResp && !m.Reject:
		// A granted pre-vote is for the term we will campaign in; the term
		// changes when the real election starts.
	default:
		elapsed, wasLeader := r.electionElapsed, r.state == StateLeader
		if m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap {
			r.becomeFollower(m.Term, m.From)
		} else {
			r.becomeFollower(m.Term, None)
		}
		if m.Type == MsgVote && !wasLeader {
			// Figure 2 restarts the election timer on hearing the current
			// leader or granting a vote (handleVoteRequest does), not on a
			// higher term alone. Otherwise a candidate whose log is behind,
			// timing out first again and again (a faster clock), would
			// hold back every member able to win by bumping the term each
			// time: no leader for ever.
			r.electionElapsed = elapsed
		}
	}
	return true
}

// promising reports whether this member is bound by a promise to a leader
// and grants no vote now, unless a transfer asks for it: with CheckQuorum
// it heard from a leader less than an election timeout ago (§4.2.3 of the
// thesis; a leader itself refuses to be deposed so), and with lease reads
// it started less than an election timeout ago. Leases rest on it (§6.4.1).
// The promise holds across a change of term: a response of a later term
// (a candidate's late answer) makes a follower adopt that term and forget
// its leader (Figure 2), but the leader may still be serving reads on the
// lease it gave.
func (r *raft) promising() bool {
	if r.bootQuiet {
		return true
	}
	if !r.cfg.CheckQuorum {
		return false
	}
	return r.state == StateLeader || r.leaderHeardAt != 0 && r.ticks-r.leaderHeardAt < uint64(r.cfg.ElectionTick)
}

// stepLowerTerm answers a message from an older term.
func (r *raft) stepLowerTerm(m Message) {
	switch {
	case (r.cfg.CheckQuorum || r.cfg.PreVote) && (m.Type == MsgHeartbeat || m.Type == MsgApp):
		// A stale leader (cut off by a partition) may never hear a higher
		// term otherwise: with PreVote or CheckQuorum, no candidate's vote
		// request reaches it with one. Tell it our term so it steps down.
		r.send(Message{To: m.From, Type: MsgAppResp})
	case m.Type == MsgPreVote || m.Type == MsgVote:
		// Figure 2: "Reply false if term < currentTerm." The answer carries
		// our term, so the candidate learns it is behind and steps down.
		respType := MsgVoteResp
		if m.Type == MsgPreVote {
			respType = MsgPreVoteResp
		}
		r.send(Message{To: m.From, Term: r.Term, Type: respType, Reject: true})
	default:
		// Ignore: §5.1, "if a server receives a request with a stale term
		// number, it rejects the request"; a stale response means nothing.
	}
}

// handleVoteRequest is RequestVote's receiver (Figure 2): grant if we have
// not voted for another in this term and the candidate's log is at least as
// up to date as ours (§5.4.1).
func (r *raft) handleVoteRequest(m Message) {
	canVote := r.Vote == m.From ||
		// We have not voted this term, know no leader and are bound by no
		// promise to one...
		(r.Vote == None && r.lead == None && (!r.promising() || m.Transfer)) ||
		// ...or this is a pre-vote for a later term.
		(m.Type == MsgPreVote && m.Term > r.Term)
	respType := MsgVoteResp
	if m.Type == MsgPreVote {
		respType = MsgPreVoteResp
	}
	if canVote && (r.log.isUpToDate(m.Index, m.LogTerm) || r.planted(BugNoUpToDateCheck)) {
		// The response carries the term it is about, so that a candidate
		// counts it for the right election.
		r.send(Message{To: m.From, Term: m.Term, Type: respType})
		if m.Type == MsgVote {
			// Only a real vote counts; reset the timer so we do not
			// compete with the candidate we just voted for.
			r.electionElapsed = 0
			r.Vote = m.From
		}
		return
	}
	r.send(Message{To: m.From, Term: r.Term, Type: respType, Reject: true})
}

// appendEntry appends entries at this leader, numbering them. With bounded
// (proposals) it returns false if the uncommitted-bytes bound refuses them;
// the leader's own entries (its no-op, leaving a joint configuration) are
// never refused, so that it can always commit and finish a change.
func (r *raft) appendEntry(bounded bool, es ...Entry) bool {
	li := r.log.lastIndex()
	var size uint64
	for i := range es {
		es[i].Term = r.Term
		es[i].Index = li + 1 + uint64(i)
		size += es[i].size()
	}
	if bounded && r.uncommittedSize > 0 && r.uncommittedSize+size > r.cfg.MaxUncommittedEntriesSize {
		return false
	}
	r.uncommittedSize += size
	r.log.append(es...)
	// Our own Match moves when the entries are durable (Advance).
	return true
}

// advance is called once the state handed out in a Ready is durable and its
// committed entries applied.
func (r *raft) advance(rd Ready) {
	if !rd.Snapshot.IsEmpty() {
		r.log.stableSnapTo(rd.Snapshot.Metadata.Index)
		r.log.appliedTo(rd.Snapshot.Metadata.Index)
	}
	if n := len(rd.Entries); n > 0 {
		e := rd.Entries[n-1]
		r.log.stableTo(e.Index, e.Term)
	}
	if n := len(rd.CommittedEntries); n > 0 {
		r.appliedTo(rd.CommittedEntries[n-1].Index)
	}
	// Durability counts for the leader's own progress now (§10.2.1 of the
	// thesis: the leader writes its log in parallel with its followers).
	if r.state == StateLeader {
		pr := r.trk.progress[r.id]
		if pr != nil && pr.maybeUpdate(r.log.unstable.offset-1) && r.maybeCommit() {
			r.appendsDue = true
		}
	}
}

// appliedTo records applied entries and does what applying them enables:
// leaving a joint configuration automatically.
func (r *raft) appliedTo(index uint64) {
	r.log.appliedTo(index)
	r.maybeAutoLeave()
}

// maybeAutoLeave makes a leader propose leaving a joint configuration
// entered with AutoLeave (§4.3 of the thesis) once every configuration
// change in its log is applied: the one that entered it, and any left by
// earlier leaders (becomeLeader sets pendingConfIndex to cover them), so
// that a leader elected after the others applied entering leaves too. An
// empty ConfChange leaves; like the no-op, the bound on uncommitted bytes
// never refuses it.
func (r *raft) maybeAutoLeave() {
	if r.state != StateLeader || !r.trk.config.AutoLeave || r.log.applied < r.pendingConfIndex {
		return
	}
	data, _ := (&ConfChange{}).MarshalBinary()
	r.appendEntry(false, Entry{Type: EntryConfChange, Data: data})
	r.pendingConfIndex = r.log.lastIndex()
	r.bcastAppend()
}

// maybeCommit advances the commit index to what a quorum holds, if that is
// an entry of the current term (Figure 8).
func (r *raft) maybeCommit() bool {
	quorumIndex, term := r.trk.committed(), r.Term
	if r.planted(BugLearnerInQuorum) {
		quorumIndex = r.trk.committedCountingLearners()
	}
	if r.planted(BugNoFigure8) {
		term = r.log.zeroTermOnOutOfBounds(r.log.term(quorumIndex))
	}
	if !r.log.maybeCommit(quorumIndex, term) {
		return false
	}
	r.reduceUncommittedSize()
	r.releasePendingReads()
	return true
}

// reduceUncommittedSize recomputes the uncommitted bytes after a commit.
func (r *raft) reduceUncommittedSize() {
	if r.uncommittedSize == 0 {
		return
	}
	var size uint64
	lo, hi := r.log.committed+1, r.log.lastIndex()+1
	for lo < hi {
		ents, err := r.log.slice(lo, hi, 1<<20)
		if err != nil {
			break
		}
		for i := range ents {
			size += ents[i].size()
		}
		lo += uint64(len(ents))
	}
	r.uncommittedSize = size
}

// applyConfChange switches to the configuration cc leads to, when the
// application applies it.
func (r *raft) applyConfChange(cc ConfChange) (ConfState, error) {
	c := changer{tracker: &r.trk, lastIndex: r.log.lastIndex()}
	var cfg TrackerConfig
	var prs map[uint64]*Progress
	var err error
	if cc.LeavesJoint() {
		cfg, prs, err = c.leaveJoint()
	} else if joint, autoLeave := cc.entersJoint(); joint {
		cfg, prs, err = c.enterJoint(autoLeave, cc.Changes)
	} else {
		cfg, prs, err = c.simple(cc.Changes)
	}
	if err != nil {
		return r.trk.config.ConfState(), err
	}
	r.switchToConfig(cfg, prs)
	return cfg.ConfState(), nil
}

func (r *raft) switchToConfig(cfg TrackerConfig, prs map[uint64]*Progress) {
	for _, pr := range prs {
		if pr.LastHeard == 0 {
			// A new member gets a full election timeout to answer before it
			// counts as silent.
			pr.LastHeard = r.ticks
		}
	}
	_, was := r.trk.progress[r.id]
	r.trk.setConfig(cfg, prs)
	pr, ok := r.trk.progress[r.id]
	r.isLearner = ok && pr.IsLearner
	r.wasRemoved = was && !ok || r.wasRemoved && !ok
	if (!ok || r.isLearner) && r.state == StateLeader {
		// Removed or demoted: the leader managed the cluster until its
		// removal committed (it has); now it hands over, if asked to
		// (§4.2.2 of the thesis).
		if r.cfg.StepDownOnRemoval {
			r.handOver()
		}
		return
	}
	if r.state != StateLeader || len(cfg.Voters[0]) == 0 {
		return
	}
	// The quorum may have changed: the commit index may move.
	if r.maybeCommit() {
		r.bcastAppend()
	} else {
		r.trk.visit(func(id uint64, pr *Progress) {
			if id != r.id {
				r.maybeSendAppend(id, false)
			}
		})
	}
	if r.leadTransferee != None && !r.trk.config.Voters.Contains(r.leadTransferee) {
		r.abortLeaderTransfer()
	}
}

func (r *raft) abortLeaderTransfer() { r.leadTransferee = None }

// leaving reports whether this leader applied its own removal (or
// demotion) and is handing over (StepDownOnRemoval).
func (r *raft) leaving() bool {
	if r.state != StateLeader || !r.cfg.StepDownOnRemoval {
		return false
	}
	pr := r.trk.progress[r.id]
	return pr == nil || pr.IsLearner
}

// handOver hands leadership from a leader that applied its own removal to
// the voter of the new configuration with the longest log, through a
// leadership transfer: bring it up to date, then tell it to campaign. A
// leader that stepped down at once could leave the others unable to elect
// anyone: they may not know the removal committed (they still count the
// old leader's vote) and lack entries the old leader holds (it would
// refuse them its vote). Until the transferee is up to date the old leader
// keeps leading — it accepts no proposals, and a lost quorum does not
// depose it (it has no vote to lose) — and tries again every election
// timeout; it steps down as it tells the transferee to campaign.
func (r *raft) handOver() {
	best, match := None, uint64(0)
	for _, id := range r.trk.voterIDs() {
		if pr := r.trk.progress[id]; id != r.id && pr != nil && (best == None || pr.Match > match) {
			best, match = id, pr.Match
		}
	}
	if best == None {
		r.becomeFollower(r.Term, None)
		return
	}
	r.handleTransferLeader(best)
}
