package simulator

import (
	"fmt"

	"github.com/raftkv/raftkv/raft"
)

// Faults aimed at the histories Raft's safety argument is about, rather
// than drawn blind (the paper's Figure 8 is such a history): a leader cut
// off just after it sent new entries to some followers only (strand), a
// leader cut off or crashed as soon as it is elected (churn), and clients
// that follow a leader once it is cut off (chase), so that reads race the
// change of leadership. Strand and churn are armed by their driver at the
// class's rate and fire at the next moment that fits: the next round in
// which a leader sends new entries, the next election.

// armed says, per class, that a targeted fault waits for its moment.
type armed [numFaultClasses]bool

// targeted reports whether class c waits for a moment rather than acting
// when its driver fires.
func targeted(c FaultClass) bool { return c == FaultStrand || c == FaultChurn }

// maybeStrand, after leader i sent the messages in slots, strands its new
// entries if a strand is armed: every append just sent reaches its
// follower or not at random (so the entries sit on some followers only),
// and the leader is cut off from everyone.
func (s *Simulation) maybeStrand(i int, slots []int32) {
	if !s.armed[FaultStrand] || s.linkFault || s.phase != phaseFaults {
		return
	}
	appends := 0
	for _, slot := range slots {
		if m := &s.nw.envs[slot].msg; m.Type == raft.MsgApp && len(m.Entries) > 0 {
			appends++
		}
	}
	if appends == 0 {
		return
	}
	s.armed[FaultStrand] = false
	rng := s.rngFaults[FaultStrand]
	reached := 0
	for _, slot := range slots {
		env := &s.nw.envs[slot]
		if env.msg.Type != raft.MsgApp {
			continue
		}
		if rng.IntN(2) == 0 {
			env.dropped = true
		} else {
			reached++
		}
	}
	s.isolate(FaultStrand, i, fmt.Sprintf("strand member %d's new entries (%d of %d appends reach their follower), then isolate it", i+1, reached, appends))
	s.stats.FaultsInjected[FaultStrand]++
}

// maybeChurn, as member i is elected, cuts it off or crashes it at once if
// a churn is armed: its first entries reach few followers, if any, and
// the next leader must sort out its log.
func (s *Simulation) maybeChurn(i int) {
	if !s.armed[FaultChurn] || s.phase != phaseFaults {
		return
	}
	s.armed[FaultChurn] = false
	s.stats.FaultsInjected[FaultChurn]++
	if !s.linkFault && s.rngFaults[FaultChurn].IntN(2) == 0 {
		s.isolate(FaultChurn, i, fmt.Sprintf("isolate member %d as soon as it leads", i+1))
		return
	}
	s.crash(i, "crashed as soon as it leads (churn)")
	s.scheduleRestart(FaultChurn, i)
}

// isolate cuts member i off from everyone for a while, as fault class c.
func (s *Simulation) isolate(c FaultClass, i int, what string) {
	side := make([]bool, len(s.members))
	side[i] = true
	s.nw.cutBetween(side)
	s.linkFault = true
	s.faultTrace(c, 0, what)
	s.q.push(event{at: s.now + s.faultLength(c), kind: evFault, arg: faultArg(c, actHeal, 0, 0)})
	s.chase()
}

// chase, when clients chase leaders, sends some of them to each member
// that leads but can no longer reach a majority, or that another has
// succeeded: their next ten to twenty operations are reads (writes would
// hang there), which race the election
// of its successor (or follow it). It runs as links are cut and as leaders
// are elected.
func (s *Simulation) chase() {
	if !s.p.Faults.Has(FaultChase) || len(s.clients) == 0 || s.phase != phaseFaults {
		return
	}
	rng := s.rngFaults[FaultChase]
	for i, sm := range s.members {
		if !sm.up || s.check.views[i].ss.State != raft.StateLeader || s.reachesMajority(i) && !s.superseded(i) {
			continue
		}
		for c := range s.clients {
			if s.clients[c].manual {
				continue
			}
			if rng.IntN(2) == 0 {
				s.clients[c].target = i
				s.clients[c].reads = 10 + rng.IntN(10)
			}
		}
		s.faultTrace(FaultChase, uint64(i+1), fmt.Sprintf("clients follow member %d, a leader cut off", i+1))
		s.stats.FaultsInjected[FaultChase]++
	}
}

// superseded reports whether another member leads a later term than
// member i's.
func (s *Simulation) superseded(i int) bool {
	for j, sm := range s.members {
		if v := &s.check.views[j]; j != i && sm.up && v.ss.State == raft.StateLeader && v.hs.Term > s.check.views[i].hs.Term {
			return true
		}
	}
	return false
}

// reachesMajority reports whether member i can send to and hear from a
// majority of the founding members' count, itself included.
func (s *Simulation) reachesMajority(i int) bool {
	n := s.nw.n
	reach := 1
	for j := range n {
		if j != i && s.members[j].up && !s.nw.cut[i*n+j] && !s.nw.cut[j*n+i] {
			reach++
		}
	}
	return reach >= s.p.Members/2+1
}
