package simulator

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/server"
)

// This file writes the lines of the trace that let a reader rebuild every
// member's state (the package doc, "The trace"): member, log, conf, send,
// and the message ids of deliver and drop. They are written only when the
// run has a trace writer, and are not part of the trace hash, so that a
// run without a trace does none of this work.

// tracedMember is what the trace last said of a member.
type tracedMember struct {
	status, role                      string
	term, vote, lead, commit, applied uint64
	first, last                       uint64
	conf                              raft.ConfState
	started                           bool
}

// viewing reports whether the run writes a trace.
func (s *Simulation) viewing() bool { return s.tr.w != nil }

// writeHeader writes the trace's first line.
func (s *Simulation) writeHeader() {
	if !s.viewing() {
		return
	}
	h := TraceHeader{Kind: "header", Format: "raftkv-trace", Version: TraceVersion, Seed: s.cfg.Seed,
		Members: s.p.Members, Slots: s.p.Members + s.spareSlots(), MemberKind: s.cfg.Kind.String(),
		TickUs: s.p.Tick.Microseconds(), ElectionTick: s.p.ElectionTick, HeartbeatTick: s.p.HeartbeatTick,
		DurationUs: s.cfg.Duration.Microseconds(), Params: s.p.String()}
	if len(s.cfg.Actions) == 0 {
		h.Replay = ReplayCommand(s.cfg)
	}
	b, err := json.Marshal(h)
	if err != nil {
		panic(err) // plain data
	}
	_, _ = s.tr.w.Write(append(b, '\n'))
	s.traced = make([]tracedMember, len(s.members))
}

// line starts a view line of kind for the current event.
func (s *Simulation) line(kind string) *lineBuilder {
	lb := &s.tr.lb
	lb.b = append(lb.b[:0], `{"n":`...)
	lb.b = strconv.AppendUint(lb.b, s.events, 10)
	lb.b = append(lb.b, `,"t_us":`...)
	lb.b = strconv.AppendInt(lb.b, s.now.Microseconds(), 10)
	lb.str("kind", kind)
	return lb
}

// lineBuilder appends the fields of one JSON line.
type lineBuilder struct{ b []byte }

func (lb *lineBuilder) num(name string, v uint64) *lineBuilder {
	if v != 0 {
		lb.b = append(lb.b, `,"`...)
		lb.b = append(lb.b, name...)
		lb.b = append(lb.b, `":`...)
		lb.b = strconv.AppendUint(lb.b, v, 10)
	}
	return lb
}

func (lb *lineBuilder) str(name, v string) *lineBuilder {
	if v != "" {
		lb.b = append(lb.b, `,"`...)
		lb.b = append(lb.b, name...)
		lb.b = append(lb.b, `":`...)
		lb.b = strconv.AppendQuote(lb.b, v)
	}
	return lb
}

func (lb *lineBuilder) flag(name string, v bool) *lineBuilder {
	if v {
		lb.b = append(lb.b, `,"`...)
		lb.b = append(lb.b, name...)
		lb.b = append(lb.b, `":true`...)
	}
	return lb
}

// ids writes a list of numbers; always writes it even when empty.
func (lb *lineBuilder) ids(name string, v []uint64, always bool) *lineBuilder {
	if len(v) == 0 && !always {
		return lb
	}
	lb.b = append(lb.b, `,"`...)
	lb.b = append(lb.b, name...)
	lb.b = append(lb.b, `":[`...)
	for k, id := range v {
		if k > 0 {
			lb.b = append(lb.b, ',')
		}
		lb.b = strconv.AppendUint(lb.b, id, 10)
	}
	lb.b = append(lb.b, ']')
	return lb
}

func (s *Simulation) endLine(lb *lineBuilder) {
	lb.b = append(lb.b, "}\n"...)
	_, _ = s.tr.w.Write(lb.b)
}

// roleName is a raft role as the trace spells it.
func roleName(st raft.StateType) string {
	return strings.ToLower(st.String())
}

// traceMember writes member i's state if it changed since the trace last
// said it.
func (s *Simulation) traceMember(i int) {
	if !s.viewing() {
		return
	}
	sm, v, t := s.members[i], &s.check.views[i], &s.traced[i]
	now := tracedMember{status: "up", role: roleName(v.ss.State), term: v.hs.Term, vote: v.hs.Vote,
		lead: v.ss.Lead, commit: v.commit, applied: v.applied}
	switch {
	case sm.removed:
		now = tracedMember{status: "removed", term: t.term, vote: t.vote, commit: t.commit, applied: t.applied}
	case sm.failed:
		now = tracedMember{status: "failed", term: t.term, vote: t.vote, commit: t.commit, applied: t.applied}
	case !sm.up:
		now = tracedMember{status: "down", term: t.term, vote: t.vote, commit: t.commit, applied: t.applied}
	case sm.paused:
		now.status = "paused"
	}
	if sm.up {
		now.applied = sm.m.Applied()
	}
	if t.started && now.status == t.status && now.role == t.role && now.term == t.term && now.vote == t.vote &&
		now.lead == t.lead && now.commit == t.commit && now.applied == t.applied {
		return
	}
	now.first, now.last, now.conf, now.started = t.first, t.last, t.conf, true
	*t = now
	lb := s.line("member").num("member", sm.id).str("status", now.status).str("role", now.role)
	lb.num("term", now.term).num("vote", now.vote).num("lead", now.lead).num("commit", now.commit).num("applied", now.applied)
	s.endLine(lb)
}

// traceLog writes how member i's log changed in a round of work (act) or,
// with act nil, the whole log (a start or a restart).
func (s *Simulation) traceLog(i int, act *Activity) {
	if !s.viewing() || !s.members[i].up {
		return
	}
	sm, t := s.members[i], &s.traced[i]
	st := sm.m.Storage()
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	switch {
	case act == nil || act.Snapshot.Index != 0 || first < t.first:
		s.writeLog(sm, first, first, last)
	case first > t.first:
		// Compacted, and perhaps appended to in the same round.
		from := uint64(0)
		if len(act.Entries) > 0 {
			from = max(act.Entries[0].Index, first)
		}
		s.writeLog(sm, first, from, last)
	case len(act.Entries) > 0:
		s.writeLog(sm, 0, act.Entries[0].Index, last)
	default:
		if last != t.last {
			s.writeLog(sm, 0, min(last, t.last)+1, last)
		}
	}
	t.first, t.last = first, last
	if cs := sm.m.ConfState(); !confEqual(cs, t.conf) {
		t.conf = cs
		lb := s.line("conf").num("member", sm.id).ids("voters", cs.Voters, true).ids("learners", cs.Learners, false).ids("outgoing", cs.VotersOutgoing, false)
		s.endLine(lb)
	}
}

// writeLog writes a log line: first (0: unchanged), and the entries from
// from (0: none) to last, read from the member's storage.
func (s *Simulation) writeLog(sm *simMember, first, from, last uint64) {
	st := sm.m.Storage()
	lb := s.line("log").num("member", sm.id)
	if first != 0 {
		lb.num("first", first)
		if term, err := st.Term(first - 1); err == nil && first > 1 {
			lb.num("snap_index", first-1).num("snap_term", term)
		}
	}
	if from != 0 {
		lb.num("from", from)
		lb.b = append(lb.b, `,"runs":[`...)
		if from <= last {
			ents, err := st.Entries(from, last+1, math.MaxUint64)
			if err != nil {
				panic(fmt.Sprintf("member %d: storage has no entries %d..%d it reports: %v", sm.id, from, last, err))
			}
			lb.runs(ents)
		}
		lb.b = append(lb.b, ']')
	}
	s.endLine(lb)
}

// runs writes entries as runs of [term, count, type].
func (lb *lineBuilder) runs(ents []raft.Entry) {
	for k := 0; k < len(ents); {
		term, kind := ents[k].Term, entryKind(&ents[k])
		j := k + 1
		for j < len(ents) && ents[j].Term == term && entryKind(&ents[j]) == kind {
			j++
		}
		if k > 0 {
			lb.b = append(lb.b, ',')
		}
		lb.b = append(lb.b, '[')
		lb.b = strconv.AppendUint(lb.b, term, 10)
		lb.b = append(lb.b, ',')
		lb.b = strconv.AppendInt(lb.b, int64(j-k), 10)
		lb.b = append(lb.b, `,"`...)
		lb.b = append(lb.b, kind)
		lb.b = append(lb.b, `"]`...)
		k = j
	}
}

// entryKind is an entry's type letter: n normal, e empty, c configuration.
func entryKind(e *raft.Entry) byte {
	switch {
	case e.Type == raft.EntryConfChange:
		return 'c'
	case len(e.Data) == 0:
		return 'e'
	}
	return 'n'
}

func confEqual(a, b raft.ConfState) bool {
	return slices.Equal(a.Voters, b.Voters) && slices.Equal(a.Learners, b.Learners) && slices.Equal(a.VotersOutgoing, b.VotersOutgoing)
}

// traceSend writes a message leaving; a second copy made by the network
// is dup.
func (s *Simulation) traceSend(id uint64, m *raft.Message, dup bool) {
	lb := s.line("send").num("id", id).num("from", m.From).num("to", m.To).str("msg", m.Type.String())
	lb.num("term", m.Term).num("log_term", m.LogTerm).num("index", m.Index).num("entries", uint64(len(m.Entries))).num("commit", m.Commit)
	lb.flag("reject", m.Reject).num("hint", m.RejectHint)
	if (m.Type == raft.MsgVoteResp || m.Type == raft.MsgPreVoteResp) && !m.Reject {
		lb.flag("granted", true)
	}
	if c := m.Snapshot; c != nil {
		lb.num("snap_index", c.Metadata.Index).num("snap_term", c.Metadata.Term).num("offset", c.Offset).num("total", c.Total)
	}
	s.endLine(lb.flag("dup", dup))
}

// traceDrop writes that message id is lost, and why.
func (s *Simulation) traceDrop(id uint64, m *raft.Message, why string) {
	if !s.viewing() {
		return
	}
	s.endLine(s.line("drop").num("id", id).num("from", m.From).num("to", m.To).str("msg", m.Type.String()).str("why", why))
}

// traceDeliver writes that message id arrives.
func (s *Simulation) traceDeliver(id uint64, m *raft.Message) {
	if !s.viewing() {
		return
	}
	s.endLine(s.line("deliver").num("id", id).num("from", m.From).num("to", m.To).str("msg", m.Type.String()))
}

// traceLinks writes a fault or heal line of a link fault, with every link
// cut after it.
func (s *Simulation) traceLinks(kind string, c FaultClass, member uint64, detail string) {
	if !s.viewing() {
		return
	}
	lb := s.line(kind).str("class", c.String()).num("member", member).str("detail", detail)
	lb.b = append(lb.b, `,"cut":[`...)
	k := 0
	for link, cut := range s.nw.cut {
		if cut {
			if k > 0 {
				lb.b = append(lb.b, ',')
			}
			k++
			lb.b = append(lb.b, '[')
			lb.b = strconv.AppendInt(lb.b, int64(link/s.nw.n+1), 10)
			lb.b = append(lb.b, ',')
			lb.b = strconv.AppendInt(lb.b, int64(link%s.nw.n+1), 10)
			lb.b = append(lb.b, ']')
		}
	}
	lb.b = append(lb.b, ']')
	s.endLine(lb)
}

// traceEnd drops what is still in flight when the run ends, so that every
// send has its end.
func (s *Simulation) traceEnd() {
	if !s.viewing() {
		return
	}
	free := make([]bool, len(s.nw.envs))
	for _, slot := range s.nw.free {
		free[slot] = true
	}
	var open []int32
	for slot := range s.nw.envs {
		if !free[slot] && s.nw.envs[slot].id != 0 {
			open = append(open, int32(slot))
		}
	}
	slices.SortFunc(open, func(a, b int32) int { return cmp.Compare(s.nw.envs[a].id, s.nw.envs[b].id) })
	for _, slot := range open {
		env := &s.nw.envs[slot]
		s.traceDrop(env.id, &env.msg, "end")
	}
}

// describeOp renders a client operation for the trace.
func describeOp(op *Op) string {
	switch {
	case op.Request != nil:
		return describeRequest(op.Request)
	case op.ConfChange != nil:
		return fmt.Sprintf("conf change %+v", op.ConfChange.Changes)
	case op.Read:
		return "read"
	}
	return fmt.Sprintf("append %d", op.ID)
}

func describeRequest(r *server.Request) string {
	switch r.Kind {
	case server.RequestRead:
		if r.Serializable {
			return "get " + r.Path + " (serializable)"
		}
		return "get " + r.Path
	case server.RequestWrite:
		c := &r.Command
		var b strings.Builder
		fmt.Fprintf(&b, "%v %s", c.Op, c.Path)
		if c.Value != "" {
			fmt.Fprintf(&b, "=%q", c.Value)
		}
		if c.PrevValue != "" {
			fmt.Fprintf(&b, " if=%q", c.PrevValue)
		}
		if c.PrevIndex != 0 {
			fmt.Fprintf(&b, " if@%d", c.PrevIndex)
		}
		if c.HasTTL {
			fmt.Fprintf(&b, " ttl=%ds", c.TTL)
		}
		return b.String()
	case server.RequestMembership:
		return fmt.Sprintf("member change %+v", *r.Membership)
	}
	return fmt.Sprintf("request kind %d", r.Kind)
}

// describeReply renders an answer for the trace.
func describeReply(r Reply) string {
	switch {
	case r.Err != nil:
		return "error: " + r.Err.Error()
	case r.Response != nil && r.Response.Event != nil:
		ev := r.Response.Event
		if ev.Node != nil && ev.Node.Value != nil {
			return fmt.Sprintf("%s %s=%q index %d", ev.Action, ev.Node.Key, *ev.Node.Value, ev.EtcdIndex)
		}
		if ev.Node != nil {
			return fmt.Sprintf("%s %s index %d", ev.Action, ev.Node.Key, ev.EtcdIndex)
		}
		return fmt.Sprintf("%s index %d", ev.Action, ev.EtcdIndex)
	case r.Response != nil:
		return "ok"
	}
	return fmt.Sprintf("ok length %d last %d", r.Length, r.Last)
}
