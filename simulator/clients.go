package simulator

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/linearizability"
	"github.com/raftkv/raftkv/server"
)

// client issues operations one at a time to a member of its choosing,
// sticking with a member that answers and moving on from one that does not.
type client struct {
	seq    uint32
	target int
	// op is the history index of the outstanding operation, or -1.
	op int
	// reads is how many of the next operations are reads (see chase).
	reads int
	// manual is a lab's client: it issues a Script's writes and reads to
	// its member, when told, and nothing else.
	manual bool
}

type opStatus uint8

const (
	opPending opStatus = iota
	opOK
	opRefused
	opUnknown
)

// opRecord is one operation of the history: called and returned at virtual
// times, with its outcome.
type opRecord struct {
	client int
	id     uint64
	read   bool
	call   time.Duration
	ret    time.Duration
	status opStatus
	// length and last are the answer (see Reply); result holds an answer
	// on its way to the client.
	length, last uint64
	result       Reply
	// linID is the operation's ID in the key-space history (full members).
	linID int
	// committedAtCall is the highest index known committed anywhere when
	// the operation was called: a read must reflect it.
	committedAtCall uint64
}

func (s *Simulation) startClients() {
	s.clients = make([]client, s.p.Clients)
	for c := range s.clients {
		s.clients[c] = client{target: s.rngClients.IntN(len(s.members)), op: -1}
		s.q.push(event{at: time.Duration(s.rngClients.Int64N(int64(s.p.OpInterval))), kind: evClient, member: c})
	}
	if slices.ContainsFunc(s.cfg.Actions, func(a Action) bool { return a.Do == "write" || strings.HasPrefix(a.Do, "read") }) {
		// The lab's clients: one for each member, after the others.
		for i := range s.members {
			s.clients = append(s.clients, client{target: i, op: -1, manual: true})
		}
	}
}

// clientNext issues client c's next operation.
func (s *Simulation) clientNext(c int) {
	cl := &s.clients[c]
	if s.phase != phaseFaults || cl.op >= 0 {
		return
	}
	cl.seq++
	var op Op
	var rec opRecord
	if s.cfg.Kind == KindKV {
		if s.kvRec == nil {
			s.kvRec = linearizability.NewRecorder()
		}
		req, in := s.kvRequest(c, cl.seq, s.takeRead(cl))
		op = Op{ID: uint64(c)<<32 | uint64(cl.seq), Request: req, Read: req.Kind == server.RequestRead}
		rec.linID = s.kvRec.Call(c, in, int64(s.now))
		s.kvValues = append(s.kvValues, writtenValue(req))
	} else {
		op = Op{ID: uint64(c)<<32 | uint64(cl.seq), Read: s.takeRead(cl) || s.rngClients.IntN(100) < s.p.ReadPercent}
	}
	s.issue(c, op, rec)
}

// issue sends client c's operation op to its target member and records it
// in the history (rec carries what the key-space history needs).
func (s *Simulation) issue(c int, op Op, rec opRecord) {
	cl := &s.clients[c]
	idx := len(s.history)
	rec.client, rec.id, rec.read, rec.call = c, op.ID, op.Read, s.now
	rec.committedAtCall = uint64(len(s.check.committed)) - 1
	s.history = append(s.history, rec)
	s.stats.Ops++
	cl.op = idx
	s.rec = traceRecord{kind: trCall, member: uint64(cl.target + 1), index: op.ID, count: boolToUint(op.Read)}
	s.emit()
	if s.viewing() {
		s.endLine(s.line("call").num("id", op.ID).num("client", uint64(c+1)).num("member", uint64(cl.target+1)).str("op", describeOp(&op)))
	}
	sm := s.members[cl.target]
	done := func(r Reply) { s.answer(idx, r) }
	switch {
	case !sm.up:
		// Connection refused: the operation certainly had no effect.
		done(Reply{Err: ErrRefused})
		return
	case sm.paused:
		sm.submissions = append(sm.submissions, submission{op, done})
	default:
		sm.m.Submit(op, done)
		s.scheduleProcess(cl.target)
	}
	s.q.push(event{at: s.now + s.p.ClientTimeout, kind: evTimeout, arg: uint64(idx)})
}

// answer receives a member's answer to operation idx: at once if the
// member answered from Submit, after the disk time of the round if from
// Process.
func (s *Simulation) answer(idx int, r Reply) {
	s.coverAnswer(idx, r)
	s.history[idx].result = r
	if s.inProcess >= 0 {
		s.responses = append(s.responses, idx)
		return
	}
	s.clientReturn(idx)
}

func (s *Simulation) clientReturn(idx int) {
	rec := &s.history[idx]
	if rec.status != opPending {
		return // timed out already
	}
	rec.ret = s.now
	r := rec.result
	if s.check.rules && rec.read && servedRead(r) && r.ServedAt < rec.committedAtCall {
		// §6.4 of the thesis: a read reflects at least every entry
		// committed before it was issued.
		s.fail(FailSafety, InvReadFresh, fmt.Sprintf("a read called at %v was served from index %d, when %d had already committed",
			rec.call, r.ServedAt, rec.committedAtCall))
		return
	}
	if s.check.rules && rec.read && servedRead(r) && r.LeaderTerm != 0 && s.check.supersededBefore(r.LeaderTerm, rec.call) {
		// A leader answers a read only once a quorum confirmed it still
		// leads (or while a quorum's promise gives it a lease): the quorum
		// that elected a successor before the read was issued intersects
		// every such quorum.
		s.fail(FailSafety, InvReadFresh, fmt.Sprintf("a read called at %v was answered by the leader of term %d, which a leader of a later term had succeeded before then",
			rec.call, r.LeaderTerm))
		return
	}
	if s.kvRec != nil {
		if r.Response != nil && r.Err == nil {
			s.kvAnswered(rec, r.Response)
		} else {
			// Refused (the member was down, or its disk full): certainly
			// no effect. The check takes any code it does not model for
			// that.
			s.kvRec.Return(rec.linID, linearizability.Output{Err: kvstore.CodeLeaderElect}, int64(s.now))
		}
	}
	switch {
	case r.Err == nil:
		rec.status, rec.length, rec.last = opOK, r.Length, r.Last
		s.stats.OpsOK++
	case errors.Is(r.Err, ErrRefused):
		rec.status = opRefused
		s.stats.OpsRefused++
	default:
		rec.status = opUnknown
		s.stats.OpsUnknown++
	}
	s.rec = traceRecord{kind: trReturn, index: rec.id, count: rec.length, commit: uint64(rec.status)}
	s.emit()
	if s.viewing() {
		outcome := map[opStatus]string{opOK: "ok", opRefused: "failed", opUnknown: "unknown"}[rec.status]
		s.endLine(s.line("return").num("id", rec.id).str("result", describeReply(r)).str("outcome", outcome))
	}
	s.clientDone(rec, rec.status != opOK)
}

func (s *Simulation) clientTimeout(idx int) {
	rec := &s.history[idx]
	if rec.status != opPending {
		return
	}
	rec.status, rec.ret = opUnknown, s.now
	s.stats.OpsUnknown++
	if s.kvRec != nil {
		s.kvUnresolved = append(s.kvUnresolved, rec.linID)
	}
	s.rec = traceRecord{kind: trTimeout, index: rec.id}
	s.emit()
	if s.viewing() {
		s.endLine(s.line("timeout").num("id", rec.id))
	}
	s.clientDone(rec, true)
}

// clientDone schedules the client's next operation, at its interval after
// the last call.
func (s *Simulation) clientDone(rec *opRecord, moveOn bool) {
	cl := &s.clients[rec.client]
	cl.op = -1
	if cl.manual {
		return
	}
	if moveOn {
		cl.target = s.rngClients.IntN(len(s.members))
	}
	s.q.push(event{at: max(s.now, rec.call+s.p.OpInterval), kind: evClient, member: rec.client})
}

// takeRead reports whether client cl's next operation must be a read.
func (s *Simulation) takeRead(cl *client) bool {
	if cl.reads == 0 {
		return false
	}
	cl.reads--
	return true
}

// servedRead reports whether r answers a read from a member's state (a
// value, or the key's absence), not an error.
func servedRead(r Reply) bool {
	if r.Err != nil {
		return false
	}
	if r.Response == nil {
		return true
	}
	var kerr *kvstore.Error
	return r.Response.Err == nil || errors.As(r.Response.Err, &kerr) && kerr.Code == kvstore.CodeKeyNotFound
}

func boolToUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
