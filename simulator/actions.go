package simulator

import (
	"fmt"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/linearizability"
	"github.com/raftkv/raftkv/server"
)

// This file carries out a Script's actions: what a student does in the
// lab, or a tour does to show one idea.

// scheduleActions queues the run's actions at their times.
func (s *Simulation) scheduleActions() {
	for k, a := range s.cfg.Actions {
		s.q.push(event{at: time.Duration(a.AtUs) * time.Microsecond, kind: evAction, arg: uint64(k)})
	}
}

// act carries out action k. An action that does not apply (restart a
// member that is up) is traced and does nothing.
func (s *Simulation) act(k int) {
	a := s.cfg.Actions[k]
	if s.viewing() {
		lb := s.line("action").str("do", a.Do).num("member", a.Member).num("to", a.To).str("key", a.Key).str("value", a.Value)
		if len(a.Groups) > 0 {
			lb.b = fmt.Appendf(lb.b, `,"groups":%s`, groupsJSON(a.Groups))
		}
		s.endLine(lb)
	}
	s.logf("action: %s %d", a.Do, a.Member)
	i := int(a.Member) - 1
	n := s.nw.n
	if a.Member > uint64(len(s.members)) || a.To > uint64(len(s.members)) {
		return // a member the run has no slot for (checked by Script.Config)
	}
	switch a.Do {
	case "crash":
		s.crash(i, "crashed by hand")
	case "restart":
		if sm := s.members[i]; !sm.up && !sm.failed && !sm.dormant && !sm.removed {
			s.startMember(i)
		}
	case "pause":
		if sm := s.members[i]; sm.up && !sm.paused {
			sm.paused = true
			s.traceMember(i)
		}
	case "resume":
		s.resume(i)
	case "isolate":
		side := make([]bool, n)
		side[i] = true
		s.nw.cutBetween(side)
		s.traceLinks("fault", FaultIsolate, a.Member, fmt.Sprintf("isolate member %d", a.Member))
	case "partition":
		group := make([]int, n)
		for m := range group {
			group[m] = -1
		}
		for g, ids := range a.Groups {
			for _, id := range ids {
				if int(id) <= n {
					group[id-1] = g
				}
			}
		}
		for from := range n {
			for to := range n {
				if group[from] >= 0 && group[to] >= 0 && group[from] != group[to] {
					s.nw.cut[from*n+to] = true
				}
			}
		}
		s.traceLinks("fault", FaultPartition, 0, fmt.Sprintf("partition %s", groupsJSON(a.Groups)))
	case "cut":
		s.nw.cut[i*n+int(a.To)-1] = true
		s.traceLinks("fault", FaultOneWay, a.Member, fmt.Sprintf("cut the link %d -> %d", a.Member, a.To))
	case "heal":
		s.nw.healLinks()
		s.unclog()
		s.traceLinks("heal", FaultPartition, 0, "links restored")
	case "drop-next":
		s.nw.dropNext[i*n+int(a.To)-1] = true
	case "timeout":
		if sm := s.members[i]; sm.up && !sm.paused {
			sm.m.Campaign()
			s.scheduleProcess(i)
		}
	case "transfer":
		if lead, _, ok := s.leaderConf(); ok {
			s.members[lead].m.TransferLeadership(a.Member)
			s.scheduleProcess(lead)
		}
	case "write", "read":
		s.labOperation(i, a)
	case "read-local":
		s.labLocalRead(i, a)
	case "add":
		lead, _, ok := s.leaderConf()
		if !ok {
			return
		}
		for slot, sm := range s.members {
			if sm.dormant {
				s.addMemberAs(lead, slot, false, false)
				return
			}
		}
	case "remove":
		if lead, _, ok := s.leaderConf(); ok {
			s.removeMember(lead, a.Member, false)
		}
	}
}

// labOperation has member i's lab client send it a write or a read.
func (s *Simulation) labOperation(i int, a Action) {
	c := len(s.clients) - len(s.members) + i
	cl := &s.clients[c]
	if !cl.manual || cl.op >= 0 {
		return // one operation at a time, as every client
	}
	cl.seq++
	op := Op{ID: uint64(c)<<32 | uint64(cl.seq), Read: a.Do != "write"}
	var rec opRecord
	if s.cfg.Kind == KindKV {
		if s.kvRec == nil {
			s.kvRec = linearizability.NewRecorder()
		}
		if s.kvClients == nil {
			s.kvClients = make([]kvClient, len(s.clients))
			for k := range s.kvClients {
				s.kvClients[k] = kvClient{lastValue: map[string]string{}, lastIndex: map[string]uint64{}}
			}
		}
		key := a.Key
		if key == "" {
			key = "/lab"
		}
		var in linearizability.Input
		if op.Read {
			op.Request = &server.Request{Kind: server.RequestRead, Path: key}
			in = linearizability.Read(key, false)
		} else {
			// Values are unique in a history (see writtenValue): each
			// gets the operation's number.
			cmd := kvstore.Command{Op: kvstore.OpSet, Path: key, Value: fmt.Sprintf("%s#%d", a.Value, len(s.history)+1)}
			op.Request = &server.Request{Kind: server.RequestWrite, Command: cmd}
			in = linearizability.Write(cmd)
		}
		rec.linID = s.kvRec.Call(c, in, int64(s.now))
		s.kvValues = append(s.kvValues, writtenValue(op.Request))
	}
	s.issue(c, op, rec)
}

// labLocalRead has member i answer a serializable read from its own copy
// of the key space. Such a read may be stale by design (etcd's plain GET,
// quorum=false), so it stays out of the history that is checked for
// linearizability; the trace shows its call and answer.
func (s *Simulation) labLocalRead(i int, a Action) {
	sm := s.members[i]
	if s.cfg.Kind != KindKV {
		return // a log member has no local read
	}
	s.localReads++
	id := 1<<62 | s.localReads
	key := a.Key
	if key == "" {
		key = "/lab"
	}
	op := Op{ID: id, Read: true, Request: &server.Request{Kind: server.RequestRead, Path: key, Serializable: true}}
	if s.viewing() {
		s.endLine(s.line("call").num("id", id).num("client", uint64(len(s.clients)-len(s.members)+i+1)).num("member", sm.id).str("op", describeOp(&op)))
	}
	done := func(r Reply) {
		if s.viewing() {
			outcome := "ok"
			if r.Err != nil {
				outcome = "failed"
			}
			s.endLine(s.line("return").num("id", id).str("result", describeReply(r)).str("outcome", outcome))
		}
	}
	switch {
	case !sm.up:
		done(Reply{Err: ErrRefused})
	case sm.paused:
		sm.submissions = append(sm.submissions, submission{op, done})
	default:
		sm.m.Submit(op, done)
		s.scheduleProcess(i)
	}
}

// groupsJSON renders partition groups as JSON.
func groupsJSON(groups [][]uint64) string {
	var b []byte
	b = append(b, '[')
	for g, ids := range groups {
		if g > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for k, id := range ids {
			if k > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, "%d", id)
		}
		b = append(b, ']')
	}
	b = append(b, ']')
	return string(b)
}
