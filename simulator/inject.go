package simulator

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// Fault events carry (class, action, target member, incarnation) in their
// argument.
type faultAction uint8

const (
	actInject faultAction = iota
	actHeal
	actRestart
	actCrashNow    // the fallback of a torn-write crash whose write never came
	actJoin        // an added member starts
	actShutdown    // a removed member stops for good
	actAdd         // a replacement is added
	actCrashMember // a member crashes during a membership change
)

func faultArg(c FaultClass, a faultAction, target int, incarnation uint64) uint64 {
	return uint64(c) | uint64(a)<<8 | uint64(target)<<16 | incarnation<<32
}

func splitFaultArg(arg uint64) (FaultClass, faultAction, int, uint64) {
	return FaultClass(arg & 0xff), faultAction(arg >> 8 & 0xff), int(arg >> 16 & 0xffff), arg >> 32
}

// driven reports whether class c is injected by a driver (the others are
// rates and tick speeds, on for the whole fault phase).
func driven(c FaultClass) bool {
	switch c {
	case FaultDrop, FaultDup, FaultDelay, FaultReorder, FaultDrift, FaultChase:
		return false
	}
	return true
}

// startFaults schedules the first injection of every driven class.
func (s *Simulation) startFaults() {
	for _, c := range s.p.Faults.Classes() {
		if !driven(c) {
			s.stats.FaultsInjected[c]++
			continue
		}
		rng := s.rngFaults[c]
		s.q.push(event{at: time.Duration(rng.Int64N(int64(s.p.FaultEvery[c]))), kind: evFault, arg: faultArg(c, actInject, 0, 0)})
	}
}

// faultLength draws how long one fault of class c lasts.
func (s *Simulation) faultLength(c FaultClass) time.Duration {
	mean := s.p.FaultFor[c]
	return mean/2 + time.Duration(s.rngFaults[c].Int64N(int64(mean)+1))
}

func (s *Simulation) fault(arg uint64) {
	c, action, target, incarnation := splitFaultArg(arg)
	if s.phase != phaseFaults && action != actRestart && action != actShutdown {
		return // healAll has undone every fault
	}
	switch action {
	case actInject:
		if s.inject(c) {
			s.stats.FaultsInjected[c]++
		}
		rng := s.rngFaults[c]
		every := s.p.FaultEvery[c]
		s.q.push(event{at: s.now + every/2 + time.Duration(rng.Int64N(int64(every)+1)), kind: evFault, arg: faultArg(c, actInject, 0, 0)})
	case actHeal:
		s.heal(c, target, incarnation)
	case actRestart:
		sm := s.members[target]
		if !sm.up && !sm.failed && !sm.removed && sm.incarnation == incarnation {
			s.startMember(target)
		}
	case actJoin:
		s.join(target)
	case actAdd:
		s.addReplacement()
	case actShutdown:
		if s.handedOver(target) && !s.check.conf.Contains(s.members[target].id) {
			s.shutDown(target, "removed from the cluster")
		} else {
			// Not before the cluster has a new leader and the newest
			// configuration leaves it out (a joint one still counts it):
			// the others may still need its log, or its vote.
			s.q.push(event{at: s.now + s.faultLength(FaultMembership), kind: evFault, arg: arg})
		}
	case actCrashMember:
		if sm := s.members[target]; sm.up && sm.incarnation == incarnation && !sm.removed {
			s.crash(target, "crash during a membership change")
			s.scheduleRestart(c, target)
		}
	case actCrashNow:
		if sm := s.members[target]; sm.up && sm.incarnation == incarnation {
			s.crash(target, "torn-write crash without a write")
			s.scheduleRestart(c, target)
		}
	}
}

// pickMember picks an up member (preferring the leader with probability
// leaderBias), or returns -1.
func (s *Simulation) pickMember(rng *rand.Rand, leaderBias float64, ok func(*simMember) bool) int {
	if rng.Float64() < leaderBias {
		for i, sm := range s.members {
			if sm.up && s.check.views[i].ss.State == raft.StateLeader && ok(sm) {
				return i
			}
		}
	}
	var candidates []int
	for i, sm := range s.members {
		if sm.up && ok(sm) {
			candidates = append(candidates, i)
		}
	}
	if len(candidates) == 0 {
		return -1
	}
	return candidates[rng.IntN(len(candidates))]
}

func anyMember(*simMember) bool { return true }

// inject starts one fault of class c; it reports whether it did.
func (s *Simulation) inject(c FaultClass) bool {
	rng := s.rngFaults[c]
	n := len(s.members)
	heal := func(target int, incarnation uint64) {
		s.q.push(event{at: s.now + s.faultLength(c), kind: evFault, arg: faultArg(c, actHeal, target, incarnation)})
	}
	switch c {
	case FaultPartition, FaultIsolate, FaultRing, FaultOneWay:
		if s.linkFault || n < 2 || (c == FaultRing && n < 5) {
			return false
		}
		s.linkFault = true
		var what string
		switch c {
		case FaultPartition:
			side := make([]bool, n)
			for i := range side {
				side[i] = rng.IntN(2) == 0
			}
			side[1+rng.IntN(n-1)] = !side[0] // neither side is empty
			if lead, cs, ok := s.leaderConf(); ok && len(cs.Learners) > 0 && rng.IntN(2) == 0 {
				// The leader and its learners on one side, the other
				// voters on the other (a data centre of read replicas).
				clear(side)
				side[lead] = true
				for _, id := range cs.Learners {
					side[id-1] = true
				}
			}
			s.nw.cutBetween(side)
			what = fmt.Sprintf("partition %v", side)
		case FaultIsolate:
			victim := s.pickMember(rng, 0.5, anyMember)
			if victim < 0 {
				victim = rng.IntN(n)
			}
			side := make([]bool, n)
			side[victim] = true
			s.nw.cutBetween(side)
			what = fmt.Sprintf("isolate member %d", victim+1)
		case FaultRing:
			order := permutation(rng, n)
			s.nw.ringLinks(order)
			what = fmt.Sprintf("majorities ring %v", order)
		case FaultOneWay:
			victim := rng.IntN(n)
			inbound := rng.IntN(2) == 0
			for o := range n {
				if o != victim {
					if inbound {
						s.nw.cut[o*n+victim] = true
					} else {
						s.nw.cut[victim*n+o] = true
					}
				}
			}
			what = fmt.Sprintf("one-way cut of member %d (inbound=%v)", victim+1, inbound)
		}
		s.faultTrace(c, 0, what)
		heal(0, 0)
		s.chase()
	case FaultStrand, FaultChurn:
		// Armed: it fires at its moment (nemesis.go) and counts then.
		s.armed[c] = true
		return false
	case FaultClog:
		if s.clogFault || n < 2 {
			return false
		}
		s.clogFault = true
		victim := rng.IntN(n)
		for o := range n {
			if o != victim {
				s.nw.clogged[o*n+victim] = rng.IntN(4) != 0
				s.nw.clogged[victim*n+o] = rng.IntN(4) != 0
			}
		}
		s.faultTrace(c, uint64(victim+1), "clog links of member")
		heal(0, 0)
	case FaultCrash:
		i := s.pickMember(rng, 0.3, anyMember)
		if i < 0 {
			return false
		}
		s.crash(i, "crash fault")
		s.scheduleRestart(c, i)
	case FaultTorn:
		i := s.pickMember(rng, 0.3, func(sm *simMember) bool { return !sm.armed })
		if i < 0 {
			return false
		}
		sm := s.members[i]
		sm.armed = true
		sm.disk.ArmCrash(1 + rng.IntN(3))
		s.faultTrace(c, sm.id, "disk will die in a write")
		s.q.push(event{at: s.now + s.faultLength(c), kind: evFault, arg: faultArg(c, actCrashNow, i, sm.incarnation)})
	case FaultMembership:
		return s.injectMembership()
	case FaultCorrupt:
		// Not while a membership change may still commit: the quorum it
		// leads to is not known yet.
		if !s.quorumSurvives(0, true) || s.downMembers() > 0 || s.now < s.changeUntil || s.check.confPending() {
			return false
		}
		i := s.pickMember(rng, 0, anyMember)
		if i < 0 {
			return false
		}
		s.crash(i, "crash before disk corruption")
		if s.members[i].disk.Corrupt(rng) {
			s.members[i].doomed = true
			s.faultTrace(c, uint64(i+1), "durable record damaged")
		}
		s.scheduleRestart(c, i)
	case FaultPause:
		i := s.pickMember(rng, 0.3, func(sm *simMember) bool { return !sm.paused })
		if i < 0 {
			return false
		}
		s.members[i].paused = true
		s.faultTrace(c, uint64(i+1), "pause")
		s.traceMember(i)
		heal(i, s.members[i].incarnation)
	case FaultSlow:
		i := s.pickMember(rng, 0.3, func(sm *simMember) bool { return sm.slow == 1 })
		if i < 0 {
			return false
		}
		s.members[i].slow = time.Duration(5 + rng.IntN(45))
		s.faultTrace(c, uint64(i+1), fmt.Sprintf("slow x%d", s.members[i].slow))
		heal(i, 0)
	case FaultDiskFull:
		i := s.pickMember(rng, 0.3, anyMember)
		if i < 0 {
			return false
		}
		s.members[i].disk.SetFull(true)
		s.faultTrace(c, uint64(i+1), "disk full")
		heal(i, s.members[i].incarnation)
	default:
		return false
	}
	return true
}

func (s *Simulation) downMembers() int {
	n := 0
	for _, sm := range s.members {
		if !sm.up && !sm.dormant && !sm.removed {
			n++
		}
	}
	return n
}

func (s *Simulation) scheduleRestart(c FaultClass, i int) {
	s.q.push(event{at: s.now + s.faultLength(c), kind: evFault, arg: faultArg(c, actRestart, i, s.members[i].incarnation)})
}

func (s *Simulation) faultTrace(c FaultClass, member uint64, what string) {
	s.rec = traceRecord{kind: trFault, member: member, detail: c.String() + ": " + what}
	s.emit()
	if s.viewing() {
		if c.cutsLinks() {
			s.traceLinks("fault", c, member, what)
		} else {
			s.endLine(s.line("fault").str("class", c.String()).num("member", member).str("detail", what))
		}
	}
	s.logf("fault %s: %s", c, what)
	point := c == FaultTorn || c == FaultCorrupt || c == FaultMembership
	s.annotateStart(annotationKey(c, member), member, fmt.Sprintf("%s: %s", c, what), point)
}

// heal ends one fault of class c.
func (s *Simulation) heal(c FaultClass, target int, incarnation uint64) {
	sm := s.members[target]
	switch c {
	case FaultPartition, FaultIsolate, FaultRing, FaultOneWay, FaultStrand, FaultChurn:
		s.nw.healLinks()
		s.linkFault = false
	case FaultClog:
		s.unclog()
	case FaultPause:
		if sm.incarnation == incarnation {
			s.resume(target)
		}
	case FaultSlow:
		sm.slow = 1
	case FaultDiskFull:
		sm.disk.SetFull(false)
		if sm.up {
			s.scheduleProcess(target)
		}
	}
	s.rec = traceRecord{kind: trHeal, member: sm.id, detail: c.String()}
	s.emit()
	if s.viewing() {
		if c.cutsLinks() {
			s.traceLinks("heal", c, 0, "links restored")
		} else {
			s.endLine(s.line("heal").str("class", c.String()).num("member", sm.id))
		}
	}
	s.logf("heal %s", c)
	s.annotateEnd(annotationKey(c, sm.id))
}

// unclog releases what clogged links held, in a random order.
func (s *Simulation) unclog() {
	s.clogFault = false
	held := s.nw.heldMessages()
	for _, slot := range shuffled(s.nw.rng, held) {
		s.q.push(event{at: s.now + s.delay(false), kind: evDeliver, arg: uint64(slot)})
	}
}

// resume lets a paused member go on: it takes its backlog, one tick for the
// time it missed, and the client operations that waited.
func (s *Simulation) resume(i int) {
	sm := s.members[i]
	if !sm.paused {
		return
	}
	sm.paused = false
	backlog, submissions := sm.backlog, sm.submissions
	sm.backlog, sm.submissions = nil, nil
	for _, slot := range backlog {
		env := &s.nw.envs[slot]
		s.traceDeliver(env.id, &env.msg)
		s.check.observeDelivery(i, &env.msg, sm.m)
		sm.m.Receive(env.msg)
		s.stats.Delivered++
		s.nw.release(slot)
	}
	s.traceMember(i)
	sm.m.Tick()
	for _, sub := range submissions {
		sm.m.Submit(sub.op, sub.done)
	}
	s.scheduleProcess(i)
}

// healAll ends the fault phase: every fault is undone, crashed members
// restart, and the liveness phase starts (clients stop issuing).
func (s *Simulation) healAll() {
	s.phase = phaseLiveness
	s.livenessBy = s.now + s.cfg.LivenessTimeout
	s.livenessCap = s.now + livenessCapFactor*s.cfg.LivenessTimeout
	s.armed = armed{}
	s.trace(trPhase, 0, "heal: liveness phase")
	s.logf("fault phase over: healing everything")
	for _, key := range slices.Sorted(maps.Keys(s.openAnnotations)) {
		if !strings.HasPrefix(key, "down/") && !strings.HasPrefix(key, "failed/") {
			s.annotateEnd(key)
		}
	}
	s.nw.healLinks()
	s.linkFault = false
	s.unclog()
	s.traceLinks("heal", FaultPartition, 0, "every fault healed")
	for i, sm := range s.members {
		sm.slow = 1
		sm.disk.SetFull(false)
		if sm.armed && sm.up {
			// Disarm by a crash now rather than leave a bomb in the disk.
			s.crash(i, "torn-write crash at heal")
		}
		if sm.up {
			s.resume(i)
			s.scheduleProcess(i)
		} else if !sm.failed && !sm.dormant && !sm.removed {
			s.startMember(i)
		}
	}
	s.q.push(event{at: s.now + s.p.Tick, kind: evLiveness})
}

// checkLiveness ends the run once the healed cluster has a leader and every
// member has applied everything it committed, and fails it if that takes
// longer than the liveness timeout.
func (s *Simulation) checkLiveness() {
	s.reconcileMembership()
	if lead, ok := s.converged(); ok {
		s.rec = traceRecord{kind: trPhase, member: lead, detail: "converged"}
		s.emit()
		s.logf("converged: member %d leads, every member applied %d", lead, s.check.views[lead-1].applied)
		s.phase = phaseDone
		return
	}
	if least := s.leastAppliedIndex(); least > s.leastApplied {
		// Catching up, however slowly (a long backlog replicated an
		// entry per round trip): not stuck.
		s.leastApplied = least
		s.livenessBy = min(max(s.livenessBy, s.now+s.cfg.LivenessTimeout), s.livenessCap)
	}
	if s.now >= s.livenessBy {
		s.fail(FailLiveness, "liveness", fmt.Sprintf("no convergence, nor progress for %v, after healing: %s", s.cfg.LivenessTimeout, s.describeMembers()))
		return
	}
	s.q.push(event{at: s.now + s.p.Tick, kind: evLiveness})
}

// livenessCapFactor bounds the liveness phase at that many liveness
// timeouts, progress or not.
const livenessCapFactor = 4

// leastAppliedIndex returns the least applied index among the members
// that should converge.
func (s *Simulation) leastAppliedIndex() uint64 {
	least := ^uint64(0)
	for i, sm := range s.members {
		if !sm.failed && !sm.dormant && !sm.removed {
			least = min(least, s.check.views[i].applied)
		}
	}
	return least
}

// converged reports whether one leader leads every live member and all of
// them have applied its commit index.
func (s *Simulation) converged() (uint64, bool) {
	var lead *memberView
	for i := range s.check.views {
		v := &s.check.views[i]
		if s.members[i].up && v.ss.State == raft.StateLeader && (lead == nil || v.hs.Term > lead.hs.Term) {
			lead = v
		}
	}
	if lead == nil {
		return 0, false
	}
	for i, sm := range s.members {
		v := &s.check.views[i]
		if sm.failed || sm.dormant || sm.removed {
			continue
		}
		if !sm.up || v.ss.Lead != lead.id || v.hs.Term != lead.hs.Term || v.hs.Commit != lead.hs.Commit || v.applied != lead.hs.Commit {
			return 0, false
		}
	}
	return lead.id, true
}

func (s *Simulation) describeMembers() string {
	out := ""
	for i, sm := range s.members {
		v := &s.check.views[i]
		state := v.ss.State.String()
		switch {
		case sm.failed:
			state = "failed"
		case sm.dormant:
			state = "not added"
		case sm.removed:
			state = "removed"
		case !sm.up:
			state = "down"
		}
		out += fmt.Sprintf("[member %d %s term=%d lead=%d commit=%d applied=%d last=%d] ", v.id, state, v.hs.Term, v.ss.Lead, v.hs.Commit, v.applied, v.last)
	}
	return out
}
