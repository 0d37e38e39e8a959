package simulator

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/linearizability"
	"github.com/raftkv/raftkv/server"
)

// The key-space workload of full members: clients read and write a few
// top-level keys and a queue directory, every operation is recorded for
// the linearizability package, and every run's history is checked.

// simEpoch is the wall-clock instant virtual time 0 stands for: members'
// clocks (for TTLs) read simEpoch + the virtual time.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// kvKeys are the keys the workload writes; kvQueue is the directory of
// in-order creates. Each is a top-level key, so the check splits the
// history into independent parts.
var kvKeys = []string{"/k0", "/k1", "/k2", "/k3", "/k4", "/k5"}

const kvQueue = "/queue"

// kvClient is what a client of the key space remembers between operations:
// the last value and index it saw of each key, to compare-and-swap with.
type kvClient struct {
	lastValue map[string]string
	lastIndex map[string]uint64
}

// kvRequest draws client c's next operation (a read, if read).
func (s *Simulation) kvRequest(c int, seq uint32, read bool) (*server.Request, linearizability.Input) {
	if s.kvClients == nil {
		s.kvClients = make([]kvClient, len(s.clients))
		for i := range s.kvClients {
			s.kvClients[i] = kvClient{lastValue: map[string]string{}, lastIndex: map[string]uint64{}}
		}
	}
	kc := &s.kvClients[c]
	rng := s.rngClients
	key := kvKeys[rng.IntN(len(kvKeys))]
	value := fmt.Sprintf("c%d.%d", c, seq)
	if read || rng.IntN(100) < s.p.ReadPercent {
		if rng.IntN(10) == 0 {
			req := &server.Request{Kind: server.RequestRead, Path: kvQueue, Get: kvstore.GetOptions{Recursive: true, Sorted: true}}
			return req, linearizability.Read(kvQueue, true)
		}
		return &server.Request{Kind: server.RequestRead, Path: key}, linearizability.Read(key, false)
	}
	cmd := kvstore.Command{Op: kvstore.OpSet, Path: key, Value: value}
	switch r := rng.IntN(100); {
	case r < 30: // set
	case r < 40:
		cmd.PrevExist = kvstore.PrevExistFalse
	case r < 50:
		cmd.PrevExist = kvstore.PrevExistTrue
	case r < 62:
		cmd.PrevValue = kc.lastValue[key]
		if cmd.PrevValue == "" {
			cmd.PrevValue = "never"
		}
	case r < 68:
		cmd.PrevIndex = max(kc.lastIndex[key], 1)
	case r < 75:
		cmd = kvstore.Command{Op: kvstore.OpDelete, Path: key}
	case r < 80:
		prev := kc.lastValue[key]
		if prev == "" {
			prev = "never"
		}
		cmd = kvstore.Command{Op: kvstore.OpDelete, Path: key, PrevValue: prev}
	case r < 90:
		cmd = kvstore.Command{Op: kvstore.OpCreateInOrder, Path: kvQueue, Value: value}
	default:
		cmd.HasTTL, cmd.TTL = true, uint64(1+rng.IntN(3))
	}
	return &server.Request{Kind: server.RequestWrite, Command: cmd}, linearizability.Write(cmd)
}

// kvAnswered records a full member's answer to operation idx.
func (s *Simulation) kvAnswered(rec *opRecord, r *server.Response) {
	out := linearizability.OutputOf(r.Event, r.Err)
	if out.Err == kvstore.CodeRaftInternal {
		// A timeout: it may have taken effect, or still may.
		s.kvUnresolved = append(s.kvUnresolved, rec.linID)
		return
	}
	s.kvRec.Return(rec.linID, out, int64(s.now))
	if r.Event != nil && r.Event.Node != nil && r.Err == nil {
		kc := &s.kvClients[rec.client]
		key := r.Event.Node.Key
		if r.Event.Node.Value != nil {
			kc.lastValue[key] = *r.Event.Node.Value
		}
		kc.lastIndex[key] = r.Event.Node.ModifiedIndex
	}
}

// checkKVHistory checks the clients' history of the key space with
// porcupine (through the linearizability package); a failure writes the
// HTML visualisation, annotated with the faults, and names it.
func (s *Simulation) checkKVHistory() {
	s.resolveUnknown()
	h := s.kvRec.History()
	opts := linearizability.Options{
		Epoch: simEpoch,
		// Members read the virtual clock itself: no skew but a tick's
		// granularity.
		ClockSkew:   s.p.Tick,
		Annotations: s.annotations,
		Log:         io.Discard, // the failure names the visualisation
		Timeout:     historyCheckTimeout,
	}
	if s.cfg.VisualizationDir != "" {
		opts.VisualizationPath = filepath.Join(s.cfg.VisualizationDir, fmt.Sprintf("seed-%d.html", s.cfg.Seed))
	}
	if s.cfg.HistoryVisualization != "" {
		opts.VisualizationPath, opts.AlwaysVisualize = s.cfg.HistoryVisualization, true
	}
	res := linearizability.Check(h, opts)
	switch {
	case res.Ok:
		s.stats.Linearizability = "ok"
		return
	case len(res.Illegal) == 0 && res.IndexOrder == nil:
		// Rare histories (many deletes of unknown outcome, which the log
		// cannot tell apart, among TTLs) take porcupine exponential time.
		s.stats.Linearizability = "unknown"
		return
	}
	s.stats.Linearizability = "illegal"
	s.fail(FailLinearizability, InvLinearizable, res.String())
}

// writtenValue returns the value a write request carries, which the
// workload makes unique to it; "" for a read or a delete.
func writtenValue(req *server.Request) string {
	if req.Kind != server.RequestWrite || req.Command.Op == kvstore.OpDelete {
		return ""
	}
	return req.Command.Value
}

// kvObserveApply learns, from every member's applies, the answer the key
// space gave to each write (all members give the same: state agreement is
// checked apart).
func (s *Simulation) kvObserveApply(index uint64, cmd *kvstore.Command, res kvstore.Result) {
	s.queueObserveApply(index, cmd, res)
	if cmd.Value == "" || cmd.Op == kvstore.OpDelete || cmd.Op == kvstore.OpExpire {
		return
	}
	if s.kvApplied == nil {
		s.kvApplied = map[string]appliedWrite{}
	}
	if _, seen := s.kvApplied[cmd.Value]; !seen {
		var err error
		if res.Err != nil {
			err = res.Err
		}
		s.kvApplied[cmd.Value] = appliedWrite{out: linearizability.OutputOf(res.Event, err), at: s.now}
	}
}

// appliedWrite is a write as first applied: the key space's answer, and
// when (it took effect by then).
type appliedWrite struct {
	out linearizability.Output
	at  time.Duration
}

// resolveUnknown settles, before the check, the writes whose client never
// learned the outcome (a timeout, a crashed member, the run's end), from
// what the simulator saw members apply: a write that some member applied
// took effect with the answer the key space gave it, by the time it was
// first applied, which is recorded as its return; one that no member
// applied never took effect in this history: every read and every
// conditional write is answered from some member's applied state, so
// nothing in the history can have seen it. Writes
// that carry no value of their own (deletes) cannot be told apart in the
// log and stay unknown. Answers that porcupine would otherwise have to
// guess at every point after the call are what make long histories with
// many faults checkable in milliseconds.
func (s *Simulation) resolveUnknown() {
	for i := range s.history {
		if rec := &s.history[i]; rec.status == opPending {
			s.kvUnresolved = append(s.kvUnresolved, rec.linID)
		}
	}
	calls := s.kvRec.History().Operations
	for _, id := range s.kvUnresolved {
		value := s.kvValues[id]
		w, applied := s.kvApplied[value]
		switch {
		case value == "":
			s.kvRec.Unknown(id)
		case applied:
			// It took effect by the time a member applied it: that is
			// its return, as if the client had been told then.
			s.kvRec.Return(id, w.out, max(int64(w.at), calls[id].Call))
		default:
			s.kvRec.NoEffect(id)
		}
	}
	s.kvUnresolved = nil
}

// Faults are drawn in the visualisation of a failed check as stretches:
// from a fault's injection to its heal, from a member's crash to its
// restart, one row for the network and one per member.

// annotationKey names the open stretch of fault class c on member (a
// 1-based ID; 0 for the network's faults, of which one runs at a time).
func annotationKey(c FaultClass, member uint64) string {
	switch c {
	case FaultPartition, FaultIsolate, FaultRing, FaultOneWay, FaultClog, FaultStrand, FaultChurn:
		member = 0
	}
	return fmt.Sprintf("%s/%d", c, member)
}

func annotationTag(member uint64) string {
	if member == 0 {
		return "network"
	}
	return fmt.Sprintf("member %d", member)
}

// annotateStart opens a stretch, closed by annotateEnd(key); one that
// never closes lasts to the end of the history. A fault with no end (a
// torn write armed) is a point.
func (s *Simulation) annotateStart(key string, member uint64, what string, point bool) {
	if s.cfg.Kind != KindKV {
		return
	}
	end := int64(-1)
	if point {
		end = int64(s.now)
	} else {
		if s.openAnnotations == nil {
			s.openAnnotations = map[string]int{}
		}
		s.openAnnotations[key] = len(s.annotations)
	}
	s.annotations = append(s.annotations, linearizability.Annotation{
		Tag: annotationTag(member), Start: int64(s.now), End: end, Description: what, Color: "#f4cccc",
	})
}

// annotateEnd closes the stretch key, if open.
func (s *Simulation) annotateEnd(key string) {
	if i, ok := s.openAnnotations[key]; ok {
		s.annotations[i].End = int64(s.now)
		delete(s.openAnnotations, key)
	}
}
