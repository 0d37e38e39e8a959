package simulator

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// Coverage you can see: a campaign that never reaches the states Raft's
// safety argument is about (a leader elected over entries it must not
// count, a follower cutting off a conflicting suffix, a read racing a
// change of leader) proves little, however many seeds it ran. The
// simulator counts how often each run reached each such state, from what
// it already observes of the members, and a campaign prints which states
// its runs reached and how often, flagging those none did.
//
// Counting only reads state the simulator and its checker keep anyway: it
// draws no random number and writes nothing to the trace, so a seed's trace
// and its hash are the same with it as without it.

// CoverageState is one state a run can reach.
type CoverageState uint8

const (
	// CoverLeaderElected is a member becoming leader.
	CoverLeaderElected CoverageState = iota
	// CoverElectionLost is a candidate that did not win: it went back to
	// follower, or its election timed out and it campaigned again (a split
	// vote, or a lost one).
	CoverElectionLost
	// CoverPreVoteLost is a pre-candidate that went back to follower
	// without campaigning (§9.6 of the thesis).
	CoverPreVoteLost
	// CoverElectedOverUncommitted is a leader elected while its log holds
	// entries past the highest index known committed, of an older term
	// than its own: the entries Figure 8 says it must not commit by
	// counting replicas.
	CoverElectedOverUncommitted
	// CoverIndirectCommit is a leader's commit index moving past an entry
	// of an older term not known committed before: the entry commits
	// indirectly, carried by one of the leader's own term (§5.4.2).
	CoverIndirectCommit
	// CoverSuffixTruncated is a member writing entries over its log's
	// suffix, replacing an entry of another term (§5.3).
	CoverSuffixTruncated
	// CoverAppendRejected is a member rejecting an append (its log does not
	// match at the leader's guess), so that the leader backs off.
	CoverAppendRejected
	// CoverReadDuringChange is a read answered while leadership changes:
	// while two members believe they lead, by a leader a later one has
	// superseded, or when a leader change came less than an election
	// timeout before the read was issued, or while it was under way.
	CoverReadDuringChange
	// CoverLeaseRead is a read answered by a leader that trusts its lease
	// (runs with lease reads only).
	CoverLeaseRead
	// CoverSnapshotInstalled is a member installing a snapshot its leader
	// sent.
	CoverSnapshotInstalled
	// CoverSnapshotAppendsInFlight is a snapshot installed while appends
	// to the same member are still on the network: they arrive after it,
	// for indexes it may already cover.
	CoverSnapshotAppendsInFlight
	// CoverRestart is a member restarted from its disk after a crash.
	CoverRestart
	// CoverTornRecovered is a member restarted from a disk whose last write
	// the crash tore: a full member's WAL recovery cut a torn tail off; a
	// raft member's log lost part of its last write of entries.
	CoverTornRecovered
	// CoverStartRefused is a member that refused to start from its disk
	// (a damaged durable record).
	CoverStartRefused
	// CoverMembershipChange is a new configuration applied for the first
	// time anywhere (a member added, removed or promoted), leaving a joint
	// configuration aside.
	CoverMembershipChange
	// CoverJointEntered and CoverJointLeft are the cluster's newest
	// configuration entering and leaving a joint one (§6 of the thesis).
	CoverJointEntered
	CoverJointLeft
	// CoverRemovedLeaderHandover is a leader elected after a leader that
	// the newest configuration no longer holds: a removed leader handed
	// over (thesis §4.2.2).
	CoverRemovedLeaderHandover
	numCoverageStates
)

var coverageNames = [numCoverageStates]string{
	"leader elected",
	"election lost or timed out",
	"pre-vote lost",
	"leader elected over older uncommitted entries",
	"older-term entry committed indirectly",
	"conflicting suffix truncated",
	"append rejected, leader backs off",
	"read answered during a leader change",
	"lease read answered",
	"snapshot installed",
	"snapshot installed, appends in flight",
	"member restarted from its disk",
	"torn write recovered",
	"member refused to start (corrupt disk)",
	"membership change committed",
	"joint configuration entered",
	"joint configuration left",
	"removed leader handed over",
}

func (c CoverageState) String() string {
	if c < numCoverageStates {
		return coverageNames[c]
	}
	return fmt.Sprintf("CoverageState(%d)", uint8(c))
}

// CoverageStates returns every state, in the order tables list them.
func CoverageStates() []CoverageState {
	out := make([]CoverageState, numCoverageStates)
	for c := range numCoverageStates {
		out[c] = c
	}
	return out
}

// Coverage is what one run reached.
type Coverage struct {
	// Count[c] is how many times the run reached state c.
	Count [numCoverageStates]int
	// Possible[c] says the run's parameters allow state c at all: no lease
	// read is served without lease reads, no snapshot is sent without
	// snapshots, no membership changes without the membership fault and
	// full members, no pre-vote without PreVote, no start refused without
	// a corrupt disk. A campaign counts a run against a state only where
	// it was possible.
	Possible [numCoverageStates]bool
}

// Reached reports whether the run reached state c at least once.
func (cov *Coverage) Reached(c CoverageState) bool { return cov.Count[c] > 0 }

// WriteTable writes one run's coverage: every state with its occurrences.
func (cov *Coverage) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "coverage: occurrences of each state in the run\n")
	for c := range numCoverageStates {
		switch {
		case !cov.Possible[c]:
			fmt.Fprintf(tw, "  %s\t-  (not possible in this run)\n", c)
		case cov.Count[c] == 0:
			fmt.Fprintf(tw, "  %s\t0  not reached\n", c)
		default:
			fmt.Fprintf(tw, "  %s\t%d\n", c, cov.Count[c])
		}
	}
	_ = tw.Flush()
}

// CampaignCoverage sums up the coverage of a campaign's runs.
type CampaignCoverage struct {
	Runs int
	// Reached[c] counts the runs that reached state c at least once,
	// Possible[c] the runs whose parameters allowed it, Occurrences[c] the
	// times it was reached over all runs.
	Reached, Possible, Occurrences [numCoverageStates]int
}

// add counts one run in.
func (cc *CampaignCoverage) add(cov *Coverage) {
	cc.Runs++
	for c := range numCoverageStates {
		if cov.Possible[c] {
			cc.Possible[c]++
		}
		if cov.Count[c] > 0 {
			cc.Reached[c]++
		}
		cc.Occurrences[c] += cov.Count[c]
	}
}

// WriteTable writes the campaign's coverage: for every state, the runs that
// reached it of the runs where it was possible, and its occurrences in all
// of them; a state no run reached is flagged.
func (cc *CampaignCoverage) WriteTable(w io.Writer) {
	runsWidth, occurrencesWidth := len(fmt.Sprint(cc.Runs)), len(fmt.Sprint(slices.Max(cc.Occurrences[:])))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "coverage: runs that reached each state, of the runs where it was possible; occurrences in all runs\n")
	for c := range numCoverageStates {
		flag := ""
		switch {
		case cc.Possible[c] == 0:
			flag = "  (possible in no run)"
		case cc.Reached[c] == 0:
			flag = "  NOT REACHED"
		}
		fmt.Fprintf(tw, "  %s\t%*d of %*d  %*d%s\n", c, runsWidth, cc.Reached[c], runsWidth, cc.Possible[c],
			occurrencesWidth, cc.Occurrences[c], flag)
	}
	_ = tw.Flush()
}

// coverageTracker is the simulation's side of the coverage: the counts, and
// what the states that span events need to remember.
type coverageTracker struct {
	counts Coverage
	// leader is the member elected leader last (0: none yet).
	leader uint64
	// changedAt is when a leader last took over from an earlier one.
	changedAt time.Duration
}

// covered counts one occurrence of state c.
func (s *Simulation) covered(c CoverageState) { s.cover.counts.Count[c]++ }

// coverage returns the run's coverage, with the states its parameters
// allow.
func (s *Simulation) coverage() Coverage {
	cov := s.cover.counts
	membership := s.spareSlots() > 0
	for c := range numCoverageStates {
		switch c {
		case CoverLeaseRead:
			cov.Possible[c] = s.p.LeaseReads
		case CoverSnapshotInstalled, CoverSnapshotAppendsInFlight:
			cov.Possible[c] = s.p.SnapshotEvery > 0
		case CoverMembershipChange, CoverJointEntered, CoverJointLeft, CoverRemovedLeaderHandover:
			cov.Possible[c] = membership
		case CoverPreVoteLost:
			cov.Possible[c] = s.p.PreVote
		case CoverStartRefused:
			cov.Possible[c] = s.p.Faults.Has(FaultCorrupt)
		default:
			cov.Possible[c] = true
		}
	}
	return cov
}

// coverageBefore is what the coverage needs of a member's view and of the
// cluster from before the checker takes in a round of the member's work.
type coverageBefore struct {
	state raft.StateType
	term  uint64
	// commit is the member's commit index, committed the highest index
	// known committed anywhere.
	commit, committed uint64
	// confIndex and conf are the checker's newest configuration (conf only
	// when the round applied a configuration).
	confIndex uint64
	conf      raft.ConfState
}

// coverBefore takes in what member i's round of work act shows against its
// log as it was (a truncated suffix), and returns what coverAfter needs.
func (s *Simulation) coverBefore(i int, act *Activity) coverageBefore {
	v := &s.check.views[i]
	b := coverageBefore{
		state: v.ss.State, term: v.hs.Term, commit: v.commit,
		committed: uint64(len(s.check.committed)) - 1, confIndex: s.check.confIndex,
	}
	if act.Conf != nil {
		b.conf = s.check.conf
	}
	if len(act.Entries) > 0 && act.Snapshot.Index == 0 && s.replacesOtherTerm(v, act.Entries) {
		s.covered(CoverSuffixTruncated)
	}
	return b
}

// replacesOtherTerm reports whether writing ents to v's log replaces an
// entry of another term.
func (s *Simulation) replacesOtherTerm(v *memberView, ents []raft.Entry) bool {
	if first := ents[0].Index; first > v.last || first <= v.known {
		return false
	}
	for k := range ents {
		e := &ents[k]
		if e.Index > v.last {
			return false
		}
		if v.terms[e.Index] != e.Term {
			return true
		}
	}
	return false
}

// coverAfter takes in the rest of member i's round of work, with the
// checker's view of the member and of the cluster brought up to date.
func (s *Simulation) coverAfter(i int, act *Activity, b coverageBefore) {
	v := &s.check.views[i]
	state, term := act.SoftState.State, act.HardState.Term
	switch {
	case state == raft.StateLeader && (b.state != raft.StateLeader || term != b.term):
		s.coverElection(v, term)
	case b.state == raft.StateCandidate && (state != raft.StateCandidate || term != b.term):
		s.covered(CoverElectionLost)
	case b.state == raft.StatePreCandidate && state == raft.StateFollower:
		s.covered(CoverPreVoteLost)
	}
	if state == raft.StateLeader && act.Commit > max(b.commit, b.committed) {
		// The first entry this move commits is the oldest: terms only grow
		// along a log.
		if first := max(b.commit, b.committed) + 1; first > v.known && first <= v.last && v.terms[first] < term {
			s.covered(CoverIndirectCommit)
		}
	}
	if act.Snapshot.Index != 0 {
		s.coverSnapshot(i)
	}
	if s.check.confIndex != b.confIndex {
		s.coverConfiguration(b.conf, s.check.conf)
	}
}

// coverElection takes in member v's election as leader of term.
func (s *Simulation) coverElection(v *memberView, term uint64) {
	s.covered(CoverLeaderElected)
	if next := uint64(len(s.check.committed)); next > v.known && next <= v.last && v.terms[next] < term {
		s.covered(CoverElectedOverUncommitted)
	}
	if prev := s.cover.leader; prev != 0 {
		s.cover.changedAt = s.now
		if prev != v.id && !s.check.conf.Contains(prev) {
			s.covered(CoverRemovedLeaderHandover)
		}
	}
	s.cover.leader = v.id
}

// coverSnapshot takes in a snapshot member i installed. It looks for
// appends to the member on the network, which is cheap because snapshots
// are rare.
func (s *Simulation) coverSnapshot(i int) {
	s.covered(CoverSnapshotInstalled)
	id := s.members[i].id
	for k := range s.nw.envs {
		// A released slot is zeroed: its message is addressed to no one.
		if env := &s.nw.envs[k]; env.msg.To == id && env.msg.Type == raft.MsgApp && !env.dropped {
			s.covered(CoverSnapshotAppendsInFlight)
			return
		}
	}
}

// coverConfiguration takes in the cluster's newest configuration changing
// from old to conf.
func (s *Simulation) coverConfiguration(old, conf raft.ConfState) {
	wasJoint, joint := len(old.VotersOutgoing) > 0, len(conf.VotersOutgoing) > 0
	switch {
	case joint && !wasJoint:
		s.covered(CoverJointEntered)
		s.covered(CoverMembershipChange)
	case wasJoint && !joint:
		s.covered(CoverJointLeft)
	case !sameConf(old, conf):
		s.covered(CoverMembershipChange)
	}
}

// coverAnswer takes in a member's answer to client operation idx, as the
// member gives it (from within its Process, with its state as it answers).
func (s *Simulation) coverAnswer(idx int, r Reply) {
	rec := &s.history[idx]
	if !rec.read || rec.status != opPending || !servedRead(r) {
		return
	}
	if s.readDuringChange(rec, r) {
		s.covered(CoverReadDuringChange)
	}
	if s.p.LeaseReads && r.LeaderTerm != 0 && s.inProcess >= 0 && s.members[s.inProcess].m.HoldsLease() {
		s.covered(CoverLeaseRead)
	}
}

// readDuringChange reports whether a read answered now races a change of
// leader: two members believe they lead, the leader answering has been
// superseded, or a leader took over less than an election timeout before
// the read was issued, or while it was under way.
func (s *Simulation) readDuringChange(rec *opRecord, r Reply) bool {
	electionTimeout := time.Duration(s.p.ElectionTick) * s.p.Tick
	if s.cover.changedAt > 0 && s.cover.changedAt+electionTimeout > rec.call {
		return true
	}
	if r.LeaderTerm != 0 && s.check.supersededBefore(r.LeaderTerm, s.now+1) {
		return true
	}
	leaders := 0
	for k, sm := range s.members {
		if sm.up && s.check.views[k].ss.State == raft.StateLeader {
			leaders++
		}
	}
	return leaders > 1
}

// tornRecoverer is a member that can tell whether its start recovered from
// a torn write.
type tornRecoverer interface {
	// RecoveredTornWrite reports whether the member started from a disk
	// whose last write a crash tore.
	RecoveredTornWrite() bool
}

// coverStart takes in the start of member sm: m, or the error it refused
// with.
func (s *Simulation) coverStart(sm *simMember, m Member, err error) {
	switch {
	case err != nil:
		s.covered(CoverStartRefused)
	case sm.incarnation > 0:
		s.covered(CoverRestart)
		if t, ok := m.(tornRecoverer); ok && t.RecoveredTornWrite() {
			s.covered(CoverTornRecovered)
		}
	}
}

// coverMessage takes in a message a member sends.
func (s *Simulation) coverMessage(m *raft.Message) {
	if m.Type == raft.MsgAppResp && m.Reject {
		s.covered(CoverAppendRejected)
	}
}
