package simulator

import (
	"fmt"
	"slices"
	"time"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/server"
)

// Membership changes as a fault class (full members only). An operator —
// the simulator — asks the leader, through the member's own request API,
// to add a member, remove one (the leader too), replace one, or promote a
// learner, at random moments of the fault phase, while the network and
// disks misbehave. It follows the etcd procedure: a new member starts,
// with an empty disk, only once its addition succeeded; a removed member
// goes on running for a while (it must not disrupt the cluster) and is
// then stopped for good.
//
// The cluster has spareMemberSlots more member slots than founders, in the
// network from the start and dormant until added. The checks hold across
// configurations: one leader per term, state-machine safety and state
// agreement whatever the configuration, committed entries durable on a
// majority (of the smallest configuration seen), and after the heal, every
// member of the leader's final configuration converges.

// spareMemberSlots is how many members a run with membership changes can
// add over its founders.
const spareMemberSlots = 2

// maxAdded is how many members a Script may add.
const maxAdded = spareMemberSlots

// spareSlots returns the run's dormant member slots (one more when
// learners are to pile up).
func (s *Simulation) spareSlots() int {
	if slices.ContainsFunc(s.cfg.Actions, func(a Action) bool { return a.Do == "add" }) {
		return maxAdded
	}
	if !s.p.Faults.Has(FaultMembership) {
		return 0
	}
	if s.p.LearnerHeavy {
		return spareMemberSlots + 1
	}
	return spareMemberSlots
}

// leaderConf returns the index of the up leader of the highest term and
// the configuration it applied.
func (s *Simulation) leaderConf() (int, raft.ConfState, bool) {
	lead := -1
	for i, sm := range s.members {
		v := &s.check.views[i]
		if sm.up && !sm.paused && v.ss.State == raft.StateLeader && (lead < 0 || v.hs.Term > s.check.views[lead].hs.Term) {
			lead = i
		}
	}
	if lead < 0 {
		return -1, raft.ConfState{}, false
	}
	return lead, s.members[lead].m.ConfState(), true
}

// injectMembership starts one membership change; it reports whether it
// asked for one.
func (s *Simulation) injectMembership() bool {
	rng := s.rngFaults[FaultMembership]
	lead, cs, ok := s.leaderConf()
	if ok && len(cs.VotersOutgoing) > 0 && !cs.AutoLeave {
		// A joint configuration entered to be left explicitly (raft
		// members only): the operator leaves it (§4.3 of the thesis).
		s.changeMembership(lead, Op{ConfChange: &raft.ConfChange{}}, 0, "leave the joint configuration", nil)
		return true
	}
	if !ok || len(cs.VotersOutgoing) > 0 {
		return false // no leader, or a joint configuration still being left
	}
	var dormant []int
	for i, sm := range s.members {
		if sm.dormant {
			dormant = append(dormant, i)
		}
	}
	victim := s.removalVictim(cs)
	switch r := rng.IntN(10); {
	case (r < 4 || s.p.LearnerHeavy && r < 7) && len(dormant) > 0:
		s.addMember(lead, dormant[rng.IntN(len(dormant))])
	case r < 7 && victim != 0:
		s.removeMember(lead, victim, false)
	case r < 9 && victim != 0 && len(dormant) > 0:
		if s.cfg.Kind == KindLog && rng.IntN(2) == 0 {
			s.replaceJointly(lead, victim, dormant[rng.IntN(len(dormant))])
		} else {
			s.removeMember(lead, victim, true)
		}
	case len(cs.Learners) > 0:
		learner := cs.Learners[rng.IntN(len(cs.Learners))]
		op := Op{Request: &server.Request{Kind: server.RequestMembership, Membership: &server.MembershipChange{
			Op: server.MemberPromote, Member: server.MemberInfo{ID: learner}}}}
		if s.cfg.Kind == KindLog {
			op = Op{ConfChange: &raft.ConfChange{Changes: []raft.ConfChangeSingle{{Type: raft.ConfChangeAddNode, NodeID: learner}}}}
		}
		s.changeMembership(lead, op, learner, fmt.Sprintf("promote learner %d", learner), nil)
	default:
		return false
	}
	return true
}

// replaceJointly asks the leader, a raft member, to replace member victim
// by the member of slot i in one joint change (§4.3 of the thesis): left at
// once by the leader (auto-leave), or later by the operator (explicit).
func (s *Simulation) replaceJointly(lead int, victim uint64, i int) {
	sm := s.members[i]
	cc := raft.ConfChange{Transition: raft.ConfChangeTransitionJointImplicit, Changes: []raft.ConfChangeSingle{
		{Type: raft.ConfChangeRemoveNode, NodeID: victim}, {Type: raft.ConfChangeAddNode, NodeID: sm.id}}}
	how := "auto-leave"
	if s.rngFaults[FaultMembership].IntN(2) == 0 {
		cc.Transition, how = raft.ConfChangeTransitionJointExplicit, "explicit leave"
	}
	s.changeMembership(lead, Op{ConfChange: &cc}, victim, fmt.Sprintf("replace member %d by %d jointly (%s)", victim, sm.id, how), func() {
		s.q.push(event{at: s.now, kind: evFault, arg: faultArg(FaultMembership, actJoin, i, 0)})
		linger := s.faultLength(FaultMembership)
		s.q.push(event{at: s.now + linger, kind: evFault, arg: faultArg(FaultMembership, actShutdown, int(victim-1), 0)})
	})
}

// removalVictim picks a member of cs to remove (0: none): a member whose
// disk failed (or will fail: the simulator damaged it), if there is one,
// as an operator would; otherwise any member whose removal leaves a
// majority of the voters that have working disks — the simulator's
// operator does not remove its way out of a quorum (etcd, which cannot
// know a disk failed for good, would let it).
func (s *Simulation) removalVictim(cs raft.ConfState) uint64 {
	rng := s.rngFaults[FaultMembership]
	members := append(slices.Clone(cs.Voters), cs.Learners...)
	if len(members) < 2 {
		return 0
	}
	var failed, ok []uint64
	for _, id := range members {
		if sm := s.members[id-1]; sm.failed || sm.doomed {
			failed = append(failed, id)
		} else if s.quorumSurvives(id, false) {
			ok = append(ok, id)
		}
	}
	switch {
	case len(failed) > 0:
		return failed[rng.IntN(len(failed))]
	case len(ok) > 0:
		return ok[rng.IntN(len(ok))]
	}
	return 0
}

// quorumSurvives reports whether, in the newest configuration without
// member remove (0: none) and with one more disk failed if oneMoreFails,
// the voters with working disks are still a majority — and so in the
// configuration each member still working has applied, which may be an
// older one it has yet to leave: the condition for the cluster to recover
// once the faults heal.
func (s *Simulation) quorumSurvives(remove uint64, oneMoreFails bool) bool {
	if !s.quorumSurvivesIn(s.check.conf, remove, oneMoreFails) {
		return false
	}
	for i, sm := range s.members {
		if !sm.dormant && !sm.failed && !sm.doomed && !sm.removed && !s.quorumSurvivesIn(s.check.views[i].conf, 0, oneMoreFails) {
			return false
		}
	}
	return true
}

// quorumSurvivesIn is quorumSurvives for one configuration.
func (s *Simulation) quorumSurvivesIn(conf raft.ConfState, remove uint64, oneMoreFails bool) bool {
	for _, voters := range [][]uint64{conf.Voters, conf.VotersOutgoing} {
		if len(voters) == 0 {
			continue
		}
		n, working := 0, 0
		for _, id := range voters {
			if id == remove {
				continue
			}
			n++
			if sm := s.members[id-1]; !sm.failed && !sm.doomed && !sm.removed {
				working++
			}
		}
		if oneMoreFails {
			working--
		}
		if working < n/2+1 {
			return false
		}
	}
	return true
}

// addMember asks the leader to add the member of slot i: mostly as a
// learner promoted once caught up, sometimes as a voter at once, sometimes
// as a learner left so (until a promotion fault).
func (s *Simulation) addMember(lead, i int) {
	rng := s.rngFaults[FaultMembership]
	switch r := rng.IntN(6); {
	case r == 0:
		s.addMemberAs(lead, i, true, false)
	case r == 1 || s.p.LearnerHeavy && r < 5:
		s.addMemberAs(lead, i, false, true)
	default:
		s.addMemberAs(lead, i, false, false)
	}
}

// addMemberAs asks the leader to add member slot i: as a voter at once, or
// as a learner that the leader promotes once it has caught up (unless
// noPromote).
func (s *Simulation) addMemberAs(lead, i int, voter, noPromote bool) {
	sm := s.members[i]
	ch := server.MembershipChange{Op: server.MemberAdd, Member: server.MemberInfo{
		ID: sm.id, Name: fmt.Sprintf("m%d", sm.id), PeerURLs: []string{fmt.Sprintf("sim://%d", sm.id)},
	}, Voter: voter, NoPromote: noPromote}
	what := fmt.Sprintf("add member %d as a learner", sm.id)
	switch {
	case voter:
		what = fmt.Sprintf("add member %d as a voter", sm.id)
	case noPromote:
		what = fmt.Sprintf("add member %d as a learner, not promoted", sm.id)
	}
	op := Op{Request: &server.Request{Kind: server.RequestMembership, Membership: &ch}}
	if s.cfg.Kind == KindLog {
		// Raft members have no operator promoting learners: a promotion
		// fault does.
		t := raft.ConfChangeAddLearnerNode
		if ch.Voter {
			t = raft.ConfChangeAddNode
		}
		op = Op{ConfChange: &raft.ConfChange{Changes: []raft.ConfChangeSingle{{Type: t, NodeID: sm.id}}}}
	}
	s.changeMembership(lead, op, sm.id, what, func() {
		s.q.push(event{at: s.now, kind: evFault, arg: faultArg(FaultMembership, actJoin, i, 0)})
	})
}

// removeMember asks the leader to remove member id; once removed, the
// member runs on for a while, then stops. With replace, a new member is
// added in its place.
func (s *Simulation) removeMember(lead int, id uint64, replace bool) {
	what := fmt.Sprintf("remove member %d", id)
	if replace {
		what = fmt.Sprintf("replace member %d", id)
	}
	op := Op{Request: &server.Request{Kind: server.RequestMembership, Membership: &server.MembershipChange{
		Op: server.MemberRemove, Member: server.MemberInfo{ID: id}}}}
	if s.cfg.Kind == KindLog {
		op = Op{ConfChange: &raft.ConfChange{Changes: []raft.ConfChangeSingle{{Type: raft.ConfChangeRemoveNode, NodeID: id}}}}
	}
	s.changeMembership(lead, op, id, what, func() {
		i := int(id - 1)
		linger := s.faultLength(FaultMembership)
		s.q.push(event{at: s.now + linger, kind: evFault, arg: faultArg(FaultMembership, actShutdown, i, 0)})
		if replace {
			s.q.push(event{at: s.now, kind: evFault, arg: faultArg(FaultMembership, actAdd, 0, 0)})
		}
	})
}

// addReplacement adds a member in the place of one just removed.
func (s *Simulation) addReplacement() {
	lead, _, ok := s.leaderConf()
	if !ok {
		return
	}
	for i, sm := range s.members {
		if sm.dormant {
			s.addMember(lead, i)
			return
		}
	}
}

// changeMembership submits the change op (about member subject, 0 if
// none) to member lead; done runs (from an event of its own) if it
// succeeds. A change whose outcome is unknown is settled when the faults
// heal (reconcileMembership).
func (s *Simulation) changeMembership(lead int, op Op, subject uint64, what string, done func()) {
	sm := s.members[lead]
	s.faultTrace(FaultMembership, sm.id, what)
	// The member gives up on it after its request timeout, a little after
	// a client would (see NewKVMember).
	s.changeUntil = s.now + 2*s.p.ClientTimeout + 3*time.Second
	// Membership changes are numbered apart from clients' operations.
	s.changes++
	op.ID = 1<<63 | s.changes
	sm.m.Submit(op, func(r Reply) {
		s.changeUntil = s.now
		ok := r.Err == nil && (r.Response == nil || r.Response.Err == nil)
		if !ok {
			err := r.Err
			if err == nil && r.Response != nil {
				err = r.Response.Err
			}
			s.logf("membership: %s failed: %v", what, err)
			return
		}
		s.logf("membership: %s done", what)
		if done != nil {
			done()
		}
	})
	s.scheduleProcess(lead)
	s.maybeCrashDuringChange(lead, subject)
}

// maybeCrashDuringChange, now and then, crashes the leader that took a
// membership change, or the member it is about, while the change is under
// way (within three ticks): the histories of a removed leader that crashes
// during its hand-over, of a survivor of a shrink to one voter that
// crashes as it applies it, of a learner that restarts as it is promoted.
func (s *Simulation) maybeCrashDuringChange(lead int, subject uint64) {
	if !s.p.Faults.Has(FaultMembership) {
		return // a change asked by hand (Script): no crash unless faults are on
	}
	rng := s.rngFaults[FaultMembership]
	if rng.IntN(3) != 0 {
		return
	}
	target := lead
	if i := int(subject) - 1; rng.IntN(2) == 0 && i >= 0 && i < len(s.members) && s.members[i].up {
		target = i
	}
	at := s.now + time.Duration(rng.Int64N(int64(3*s.p.Tick)))
	s.q.push(event{at: at, kind: evFault, arg: faultArg(FaultMembership, actCrashMember, target, s.members[target].incarnation)})
}

// join starts the member of slot i, added to the cluster: it has an empty
// disk and waits for the leader.
func (s *Simulation) join(i int) {
	sm := s.members[i]
	if !sm.dormant {
		return
	}
	sm.dormant = false
	s.logf("member %d joins", sm.id)
	s.startMember(i)
}

// handedOver reports whether removed member i may stop: another member
// leads in a later term than the last it knew. A member that is down is no
// exception: it may have crashed during its hand-over (or while it leads
// only to finish one), and the others may still need its vote; it waits
// for its restart. Only a member that will never run again (its disk
// failed) is let go at once.
func (s *Simulation) handedOver(i int) bool {
	sm := s.members[i]
	if sm.failed {
		return true
	}
	mine := &s.check.views[i]
	if sm.up && mine.ss.State == raft.StateLeader {
		return false
	}
	for j, sm := range s.members {
		if v := &s.check.views[j]; j != i && sm.up && v.ss.State == raft.StateLeader && v.hs.Term > mine.hs.Term {
			return true
		}
	}
	return false
}

// shutDown stops the removed member i for good.
func (s *Simulation) shutDown(i int, why string) {
	sm := s.members[i]
	if sm.removed {
		return
	}
	s.crash(i, why)
	sm.removed, sm.dormant = true, false
	s.traceMember(i)
}

// reconcileMembership, after the heal, makes the members the leader's
// configuration names the ones that run: an added member whose addition's
// outcome was unknown starts, and a member no longer in the configuration
// stops. It runs until the liveness check passes, so that changes still
// committing at the heal are followed too.
func (s *Simulation) reconcileMembership() {
	if s.spareSlots() == 0 {
		return
	}
	// Members the newest configuration names start, leader or not (the
	// leader may need them to be elected).
	for i, sm := range s.members {
		if sm.dormant && s.check.conf.Contains(sm.id) {
			s.join(i)
		}
	}
	lead, cs, ok := s.leaderConf()
	if v := &s.check.views[max(lead, 0)]; !ok || v.applied < v.hs.Commit {
		return // the leader's configuration may still change
	}
	for i, sm := range s.members {
		switch {
		case sm.dormant && cs.Contains(sm.id):
			s.join(i)
		case !sm.dormant && !sm.removed && i != lead && !cs.Contains(sm.id):
			// The configuration left it out (its removal's answer was lost,
			// or a founder's removal committed as the faults healed).
			s.shutDown(i, "not in the final configuration")
		}
	}
}
