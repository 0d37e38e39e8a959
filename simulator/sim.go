package simulator

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/raftkv/raftkv/linearizability"
	"github.com/raftkv/raftkv/raft"
)

// FailureKind says what kind of check a run failed.
type FailureKind string

const (
	FailSafety          FailureKind = "safety"
	FailLiveness        FailureKind = "liveness"
	FailLinearizability FailureKind = "linearizability"
	FailPanic           FailureKind = "panic"
	FailDeterminism     FailureKind = "determinism"
)

// Failure is a failed run: what failed, where, and how to replay it.
type Failure struct {
	Kind      FailureKind
	Invariant string
	Detail    string
	// Event is the number of the event after which the check failed, At
	// its virtual time.
	Event uint64
	At    time.Duration
	// Replay is the command that replays the run; ReplayTest the go test
	// invocation that does.
	Replay, ReplayTest string
}

func (f *Failure) Error() string {
	return fmt.Sprintf("%s failure: %s at event %d (t=%v): %s\n  replay: %s\n  replay: %s",
		f.Kind, f.Invariant, f.Event, f.At, f.Detail, f.Replay, f.ReplayTest)
}

// Result is the outcome of one run.
type Result struct {
	Seed   uint64
	Params Params
	// Events is the number of events carried out; SimTime the virtual time
	// the run covered; Wall the real time it took, LoopWall the part of it
	// spent simulating (the rest checks the history).
	Events   uint64
	SimTime  time.Duration
	Wall     time.Duration
	LoopWall time.Duration
	// TraceHash is the hash of the whole trace; Hashes, with
	// Config.RecordHashes, the hash after each event.
	TraceHash uint64
	Hashes    []uint64
	Failure   *Failure
	Stats     Stats
	// Coverage says which interesting states the run reached, how often.
	Coverage Coverage
}

// Stats count what happened in a run.
type Stats struct {
	Messages, Delivered, Dropped, Duplicated int
	Crashes, Restarts, FailedDisks           int
	LeaderChanges                            int
	Commit                                   uint64
	Ops, OpsOK, OpsUnknown, OpsRefused       int
	FaultsInjected                           [numFaultClasses]int
	// Linearizability is the porcupine verdict ("ok", "unknown" for a
	// check that timed out, "skipped").
	Linearizability string
}

type phase uint8

const (
	phaseFaults phase = iota
	phaseLiveness
	phaseDone
)

// simMember is the simulator's side of one member.
type simMember struct {
	idx  int
	id   uint64
	m    Member // nil while down
	disk Disk
	rng  *rand.Rand
	// incarnation counts crashes; events of an older incarnation are stale.
	// crashAt[k] is when incarnation k ended.
	incarnation uint64
	crashAt     []time.Duration
	up          bool
	// failed is a member whose disk is corrupt: it stays down. doomed is
	// one whose disk the simulator damaged while it was down: it will fail
	// when it restarts (the operator counts it as lost already).
	failed, doomed bool
	// dormant is a slot for a member to be added, not yet started;
	// removed a member taken out of the cluster, stopped for good.
	dormant, removed bool
	paused           bool
	// backlog holds what arrived while paused: message slots and client
	// submissions.
	backlog     []int32
	submissions []submission
	// slow multiplies processing and disk time.
	slow             time.Duration
	tick             time.Duration
	processScheduled bool
	busyUntil        time.Duration
	// armed says a torn-write crash is armed on the disk.
	armed bool
}

type submission struct {
	op   Op
	done func(Reply)
}

// Simulation is one run. Make it with New, run it with Run.
type Simulation struct {
	cfg     Config
	p       Params
	q       eventQueue
	now     time.Duration
	events  uint64
	members []*simMember
	nw      *network
	check   *checker
	tr      *tracer
	rec     traceRecord
	// traced is what the trace last said of each member (viewtrace.go).
	traced []tracedMember
	hashes []uint64

	rngClients *rand.Rand
	rngDisk    *rand.Rand
	rngFaults  [numFaultClasses]*rand.Rand

	clients []client
	history []opRecord
	// kvClients, kvRec and annotations are the key-space workload's (full
	// members): what each client saw, the history for the
	// linearizability check, and the faults to draw in its visualisation.
	kvClients   []kvClient
	kvRec       *linearizability.Recorder
	annotations []linearizability.Annotation
	// kvValues holds the value each write of the history carries ("" for
	// none), by its ID in kvRec; kvApplied the answer the key space gave,
	// by value, when some member applied it; kvUnresolved the writes whose
	// client never learned the outcome (see resolveUnknown).
	kvValues        []string
	openAnnotations map[string]int
	kvApplied       map[string]appliedWrite
	kvUnresolved    []int
	// inProcess is the member whose Process is running, or -1;
	// responses are the client answers it gave, delivered after its disk
	// time.
	inProcess int
	responses []int

	phase phase
	// livenessBy is when the liveness phase fails if the cluster has not
	// converged; it moves on while the cluster makes progress (the least
	// applied index rises), up to livenessCap. leastApplied is that index.
	livenessBy, livenessCap time.Duration
	leastApplied            uint64
	// linkFault and clogFault say a partition-like or clog fault is on.
	linkFault, clogFault bool
	// armed are the targeted faults waiting for their moment.
	armed armed
	// changeUntil is when the membership change last requested is over:
	// answered, or timed out (its outcome then unknown); changes counts
	// the changes requested.
	changeUntil time.Duration
	changes     uint64
	// sent collects the slots of the messages a round of work sent.
	sent    []int32
	failure *Failure
	stats   Stats
	// lastLog is when the last periodic status line was written.
	lastLog time.Duration
	// loopWall is the real time the event loop took.
	loopWall time.Duration
	// lock, lockClients and lockSections are the lock recipe's workload
	// (recipes.go); deferred are answers waiting for their member's disk
	// work, replies the slab of those scheduled.
	lock        lockParams
	lockRng     *rand.Rand
	lockClients []lockClient
	// queue is the queue recipe's history (recipes_queue.go).
	queue *queueRecords
	// recipeClients are the lock and queue clients, by id.
	recipeClients []*recipeClient
	lockSections  []LockSection
	deferred      []func()
	replies       []func()
	// localReads counts the lab's serializable reads.
	localReads uint64
	// cover counts the interesting states the run reaches (coverage.go).
	cover coverageTracker
}

// New prepares a run of cfg.
func New(cfg Config) *Simulation {
	cfg = cfg.withDefaults()
	p := drawParams(cfg)
	s := &Simulation{cfg: cfg, p: p, inProcess: -1, tr: newTracer(cfg.Trace)}
	s.nw = newNetwork(p.Members+s.spareSlots(), rand.New(rand.NewPCG(cfg.Seed, streamNetwork)))
	s.rngClients = rand.New(rand.NewPCG(cfg.Seed, streamClients))
	s.rngDisk = rand.New(rand.NewPCG(cfg.Seed, streamDisk))
	for c := range numFaultClasses {
		s.rngFaults[c] = rand.New(rand.NewPCG(cfg.Seed, streamFaults+uint64(c)))
	}
	s.check = newChecker(p.Members+s.spareSlots(), p.Members, s.failSafety)
	s.check.rules = !cfg.NoRuleChecks
	s.check.now = func() time.Duration { return s.now }
	return s
}

// Params returns the run's parameters.
func (s *Simulation) Params() Params { return s.p }

// Run runs a simulation of cfg to its end.
func Run(cfg Config) Result { return New(cfg).Run() }

// Run carries the run out and returns its result.
func (s *Simulation) Run() (res Result) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s.fail(FailPanic, "panic", fmt.Sprintf("%v\n%s", r, debug.Stack()))
		}
		s.tr.flush()
		res = s.result()
		res.Wall = time.Since(start)
		res.LoopWall = s.loopWall
		if res.LoopWall == 0 {
			res.LoopWall = res.Wall
		}
	}()
	s.start()
	for s.q.len() > 0 && s.failure == nil && s.phase != phaseDone {
		e := s.q.pop()
		s.now = e.at
		s.events++
		s.handle(e)
		if s.cfg.afterEvent != nil {
			s.cfg.afterEvent(s)
		}
		if s.cfg.RecordHashes {
			s.hashes = append(s.hashes, s.tr.hash)
		}
	}
	s.loopWall = time.Since(start)
	s.traceEnd()
	if s.failure == nil && len(s.lockClients) > 0 {
		s.checkLockSections()
	}
	if s.failure == nil && s.queue != nil {
		s.checkQueue()
	}
	if s.failure == nil && !s.cfg.NoLinearizability {
		if s.kvRec != nil {
			s.checkKVHistory()
		} else {
			s.checkHistory()
		}
	} else if s.cfg.NoLinearizability {
		s.stats.Linearizability = "skipped"
	}
	if s.cfg.Log != nil {
		s.logSummary(s.cfg.Log)
	}
	return res
}

func (s *Simulation) result() Result {
	s.stats.Commit = uint64(len(s.check.committed)) - 1
	return Result{
		Seed: s.cfg.Seed, Params: s.p, Events: s.events, SimTime: s.now,
		TraceHash: s.tr.hash, Hashes: s.hashes, Failure: s.failure, Stats: s.stats,
		Coverage: s.coverage(),
	}
}

// start creates the members and schedules the first events.
func (s *Simulation) start() {
	n := s.p.Members + s.spareSlots()
	s.members = make([]*simMember, n)
	driftRng := s.rngFaults[FaultDrift]
	for i := range n {
		sm := &simMember{
			idx: i, id: uint64(i + 1), disk: s.cfg.NewDisk(), slow: 1, tick: s.p.Tick,
			rng: rand.New(rand.NewPCG(s.cfg.Seed, streamMembers+uint64(i))),
		}
		if s.p.Faults.Has(FaultDrift) {
			drift := (driftRng.Float64()*2 - 1) * s.p.MaxDrift
			if driftRng.IntN(2) == 0 {
				// At the bound, fast or slow: a slow leader and fast
				// followers overlap the most (a lease, or a deposed leader
				// that CheckQuorum has not caught up with yet).
				drift = s.p.MaxDrift * float64(1-2*driftRng.IntN(2))
			}
			sm.tick = time.Duration(float64(s.p.Tick) * (1 + drift))
		}
		sm.dormant = i >= s.p.Members
		s.members[i] = sm
	}
	s.writeHeader()
	for i := range s.p.Members {
		if !s.startMember(i) {
			return
		}
	}
	s.startClients()
	s.startLockClients()
	s.startQueueClients()
	s.startFaults()
	s.scheduleActions()
	if s.cfg.NoLiveness {
		s.q.push(event{at: s.cfg.Duration, kind: evEnd})
	} else {
		s.q.push(event{at: s.cfg.Duration, kind: evHeal})
	}
}

func (s *Simulation) memberConfig(sm *simMember) MemberConfig {
	peers := make([]uint64, s.p.Members)
	for i := range peers {
		peers[i] = uint64(i + 1)
	}
	return MemberConfig{
		ID: sm.id, Peers: peers, Joining: sm.idx >= s.p.Members, Rand: sm.rng, Bug: s.cfg.Bug,
		Now: func() time.Time { return simEpoch.Add(s.now) }, Tick: s.p.Tick, ClockTick: sm.tick,
		OnApplied: s.kvObserveApply, SlowDisk: s.p.SlowDisk,
		SnapshotEvery: s.p.SnapshotEvery, SnapshotKeep: s.p.SnapshotKeep, SnapshotTail: s.p.SnapshotTail,
		Raft: raft.Config{
			ElectionTick: s.p.ElectionTick, HeartbeatTick: s.p.HeartbeatTick,
			MaxSizePerMsg: s.p.MaxSizePerMsg, MaxInflightMsgs: s.p.MaxInflightMsgs,
			MaxSnapshotChunkSize: s.p.MaxSnapshotChunkSize,
			PreVote:              s.p.PreVote, CheckQuorum: s.p.CheckQuorum,
			ReadOnlyOption: map[bool]raft.ReadOnlyOption{false: raft.ReadOnlySafe, true: raft.ReadOnlyLeaseBased}[s.p.LeaseReads],
			PlantedBug:     s.cfg.Bug.Raft(), Buggify: s.p.Buggify,
			// As the server does: a removed leader hands over.
			StepDownOnRemoval: true,
		},
	}
}

// startMember makes member i from its disk (new, or restarted after a
// crash) and starts its clock. It reports false if the run failed.
func (s *Simulation) startMember(i int) bool {
	sm := s.members[i]
	m, err := s.cfg.Factory(s.memberConfig(sm), sm.disk)
	s.coverStart(sm, m, err)
	if err != nil {
		sm.failed = true
		s.stats.FailedDisks++
		s.trace(trRestart, sm.id, "refused to start: "+err.Error())
		s.logf("member %d refuses to start: %v", sm.id, err)
		s.annotateEnd(fmt.Sprintf("down/%d", sm.id))
		s.annotateStart(fmt.Sprintf("failed/%d", sm.id), sm.id, "refuses to start: "+err.Error(), false)
		s.traceMember(i)
		return true
	}
	sm.m, sm.up = m, true
	if sm.incarnation > 0 {
		s.stats.Restarts++
		s.trace(trRestart, sm.id, "")
		s.logf("member %d restarts", sm.id)
		s.annotateEnd(fmt.Sprintf("down/%d", sm.id))
		s.check.restarted(i, m.Storage(), m.Applied())
		s.check.views[i].down = false
	}
	s.traceMember(i)
	s.traceLog(i, nil)
	s.q.push(event{at: s.now + time.Duration(sm.rng.Int64N(int64(sm.tick))), kind: evTick, member: i, arg: sm.incarnation})
	s.scheduleProcess(i)
	return s.failure == nil
}

// crash takes member i down: its disk loses what was not synced.
func (s *Simulation) crash(i int, why string) {
	sm := s.members[i]
	if !sm.up {
		return
	}
	s.stats.Crashes++
	s.trace(trCrash, sm.id, why)
	s.logf("member %d crashes (%s)", sm.id, why)
	s.annotateStart(fmt.Sprintf("down/%d", sm.id), sm.id, "down: "+why, false)
	sm.up, sm.m, sm.paused, sm.armed = false, nil, false, false
	sm.crashAt = append(sm.crashAt, s.now)
	sm.incarnation++
	sm.processScheduled = false
	for _, slot := range sm.backlog {
		s.traceDrop(s.nw.envs[slot].id, &s.nw.envs[slot].msg, "lost")
		s.nw.release(slot)
	}
	sm.backlog, sm.submissions = nil, nil
	sm.disk.Crash(s.rngDisk)
	s.check.crashed(i)
	s.traceMember(i)
}

// handle carries out one event.
func (s *Simulation) handle(e event) {
	switch e.kind {
	case evDeliver:
		s.deliver(int32(e.arg))
	case evTick:
		s.tickMember(e.member, e.arg)
	case evProcess:
		s.process(e.member, e.arg)
	case evClient:
		s.clientNext(e.member)
	case evTimeout:
		s.clientTimeout(int(e.arg))
	case evReturn:
		s.clientReturn(int(e.arg))
	case evFault:
		s.fault(e.arg)
	case evHeal:
		s.healAll()
	case evEnd:
		s.phase = phaseDone
	case evLiveness:
		s.checkLiveness()
	case evAction:
		s.act(int(e.arg))
	case evRecipe:
		s.recipeClients[e.member].step()
	case evRecipeTimeout:
		s.recipeTimeout(e.member, e.arg)
	case evDeferred:
		fn := s.replies[e.arg]
		s.replies[e.arg] = nil
		fn()
	}
}

func (s *Simulation) tickMember(i int, incarnation uint64) {
	sm := s.members[i]
	if incarnation != sm.incarnation || !sm.up {
		return // the member crashed; its restart starts a new clock
	}
	s.rec = traceRecord{kind: trTick, member: sm.id}
	s.emit()
	s.q.push(event{at: s.now + sm.tick, kind: evTick, member: i, arg: incarnation})
	if sm.paused {
		return // a paused member misses its ticks
	}
	sm.m.Tick()
	if s.p.LeaseReads && s.check.rules {
		s.checkLeasePromises()
	}
	s.scheduleProcess(i)
}

// scheduleProcess makes member i do its pending work soon, if it has any.
func (s *Simulation) scheduleProcess(i int) {
	sm := s.members[i]
	if sm.processScheduled || !sm.up || sm.paused || !sm.m.HasWork() {
		return
	}
	sm.processScheduled = true
	at := max(s.now, sm.busyUntil) + s.p.ProcessDelay*sm.slow
	s.q.push(event{at: at, kind: evProcess, member: i, arg: sm.incarnation})
}

func (s *Simulation) process(i int, incarnation uint64) {
	sm := s.members[i]
	if incarnation != sm.incarnation || !sm.up {
		return
	}
	sm.processScheduled = false
	if sm.paused {
		return // resume schedules the work
	}
	s.inProcess, s.responses, s.deferred = i, s.responses[:0], s.deferred[:0]
	act := sm.m.Process()
	s.inProcess = -1
	writes, syncs := sm.disk.Elapsed()
	diskTime := (time.Duration(writes)*s.p.WriteCost + time.Duration(syncs)*s.p.SyncCost) * sm.slow
	s.rec = traceRecord{kind: trProcess, member: sm.id, count: uint64(len(act.Entries)), index: uint64(len(act.Applied)), commit: act.HardState.Commit}
	s.emit()
	if !act.Crashed {
		// Checked first: what the messages vouch for must be durable.
		s.observe(i, &act)
		if sm.up {
			s.traceLog(i, &act)
			s.traceMember(i)
		}
		if s.failure != nil || !sm.up {
			return // a failure, or a churn crashed it as it was elected
		}
	}
	s.sent = s.sent[:0]
	for k := range act.Messages {
		s.send(i, &act.Messages[k], s.now)
	}
	if n := len(s.sent); s.p.DropLast && n > 1 && s.phase == phaseFaults && s.nw.rng.IntN(8) == 0 {
		s.nw.envs[s.sent[n-1]].dropped = true // buggify: the batch's last message is lost
	}
	if act.SoftState.State == raft.StateLeader {
		s.maybeStrand(i, s.sent)
	}
	if act.Crashed {
		s.crash(i, "disk died in a write")
		s.scheduleRestart(FaultTorn, i)
		return
	}
	done := s.now + diskTime
	for k := range act.AfterPersist {
		s.send(i, &act.AfterPersist[k], done)
	}
	sm.busyUntil = done
	for _, op := range s.responses {
		s.q.push(event{at: done, kind: evReturn, arg: uint64(op)})
	}
	for _, fn := range s.deferred {
		s.q.push(event{at: done, kind: evDeferred, arg: uint64(len(s.replies))})
		s.replies = append(s.replies, fn)
	}
	s.deferred = s.deferred[:0]
	if act.Stalled {
		// A full disk: try again a little later.
		sm.processScheduled = true
		s.q.push(event{at: s.now + 5*time.Millisecond, kind: evProcess, member: i, arg: sm.incarnation})
		return
	}
	s.scheduleProcess(i)
}

// observe runs the checks on a round of work and traces what changed.
func (s *Simulation) observe(i int, act *Activity) {
	v := &s.check.views[i]
	prevSS, prevHS := v.ss, v.hs
	prevCommit := uint64(len(s.check.committed)) - 1
	prevLeaderCommit := v.commit
	before := s.coverBefore(i, act)
	s.check.observe(i, act)
	s.coverAfter(i, act, before)
	conf := s.members[i].m.ConfState()
	if s.check.rules && s.failure == nil && act.SoftState.State == raft.StateLeader && act.Commit > prevLeaderCommit {
		// After the round's writes are seen: the leader's own count.
		s.check.checkCommitQuorum(i, act.HardState.Term, act.Commit, v.conf, conf)
	}
	v.conf = conf
	if act.Conf != nil && act.SoftState.State == raft.StateLeader {
		s.logf("member %d (leader) applies configuration voters=%v learners=%v outgoing=%v", v.id, act.Conf.Voters, act.Conf.Learners, act.Conf.VotersOutgoing)
	}
	if act.SoftState != prevSS || act.HardState.Term != prevHS.Term {
		s.rec = traceRecord{kind: trState, member: v.id, term: act.HardState.Term, lead: act.SoftState.Lead, state: act.SoftState.State.String()}
		s.emit()
		if act.SoftState.State == raft.StateLeader && prevSS.State != raft.StateLeader {
			s.stats.LeaderChanges++
			s.logf("member %d becomes leader of term %d", v.id, act.HardState.Term)
			defer s.chase()
			defer s.maybeChurn(i)
		}
	}
	if c := uint64(len(s.check.committed)) - 1; c > prevCommit {
		s.rec = traceRecord{kind: trCommit, member: v.id, commit: c}
		s.emit()
		if s.cfg.Log != nil && s.now-s.lastLog >= time.Second {
			s.lastLog = s.now
			s.logf("commit index %d; ops ok=%d unknown=%d refused=%d", c, s.stats.OpsOK, s.stats.OpsUnknown, s.stats.OpsRefused)
		}
	}
}

// checkLeasePromises checks that every leader that trusts its lease is
// still owed it: a quorum of its configuration's voters are bound by their
// promise to it (§6.4.1 of the thesis: they grant no vote, so no other
// leader can be elected while it serves reads alone). It runs after every
// tick, when promises run out and leases age. A paused member is left out
// (its clock stands still until it resumes, and it serves nothing
// meanwhile), and a member that is down counts as bound: it grants no vote
// until it restarts, and then honours any lease for an election timeout.
func (s *Simulation) checkLeasePromises() {
	for i, sm := range s.members {
		if !sm.up || sm.paused || !sm.m.HoldsLease() {
			continue
		}
		cs := sm.m.ConfState()
		for _, voters := range [][]uint64{cs.Voters, cs.VotersOutgoing} {
			bound := 0
			for _, id := range voters {
				if o := s.members[id-1]; id-1 == uint64(i) || !o.up || o.m.Promising() {
					bound++
				}
			}
			if len(voters) > 0 && bound < len(voters)/2+1 {
				s.fail(FailSafety, InvLeaseExclusive, fmt.Sprintf("member %d (term %d) trusts its lease, but only %d of voters %v are bound by their promise to it",
					i+1, s.check.views[i].hs.Term, bound, voters))
				return
			}
		}
	}
}

// maxInFlight bounds the messages in flight. Raft's flow control (in-flight
// windows, snapshot chunk windows, one heartbeat per interval) keeps the
// traffic proportional to the cluster; far more means a message storm.
const maxInFlight = 100_000

// send puts a message on the network, leaving the sender at departs.
func (s *Simulation) send(from int, m *raft.Message, departs time.Duration) {
	s.coverMessage(m)
	if (m.Type == raft.MsgVoteResp || m.Type == raft.MsgPreVoteResp) && !m.Reject {
		s.check.observeVote(from, m)
	} else {
		s.check.observeSend(from, m)
	}
	if s.failure != nil {
		return
	}
	to := int(m.To) - 1
	if to < 0 || to >= len(s.members) || to == from {
		return
	}
	s.stats.Messages++
	nw, p := s.nw, &s.p
	link := from*nw.n + to
	faulty := s.phase == phaseFaults
	lost := func(why string) {
		s.stats.Dropped++
		if s.viewing() {
			nw.lastID++
			s.traceSend(nw.lastID, m, false)
			s.traceDrop(nw.lastID, m, why)
		}
	}
	if faulty && nw.cut[link] {
		lost("cut")
		return
	}
	if nw.dropNext[link] {
		nw.dropNext[link] = false
		lost("lab")
		return
	}
	if faulty && p.Faults.Has(FaultDrop) && nw.rng.Float64() < p.DropRate {
		lost("loss")
		return
	}
	copies := 1
	if faulty && p.Faults.Has(FaultDup) && nw.rng.Float64() < p.DupRate {
		copies = 2
		s.stats.Duplicated++
	}
	if inFlight := len(nw.envs) - len(nw.free); inFlight > maxInFlight {
		s.fail(FailLiveness, InvBoundedTraffic, fmt.Sprintf("%d messages in flight (more than %d): a message storm; the last sent is %v", inFlight, maxInFlight, m))
		return
	}
	sm := s.members[from]
	for k := range copies {
		nw.lastID++
		if s.viewing() {
			s.traceSend(nw.lastID, m, k == 1)
		}
		slot := nw.alloc(envelope{msg: *m, from: from, to: to, incarnation: sm.incarnation, departs: departs, id: nw.lastID})
		s.sent = append(s.sent, slot)
		if faulty && nw.clogged[link] {
			nw.held = append(nw.held, slot)
			continue
		}
		s.q.push(event{at: departs + s.delay(faulty), kind: evDeliver, arg: uint64(slot)})
	}
}

// delay draws a message's time on the wire.
func (s *Simulation) delay(faulty bool) time.Duration {
	p, rng := &s.p, s.nw.rng
	d := p.DelayMin
	if p.DelayMax > p.DelayMin {
		d += time.Duration(rng.Int64N(int64(p.DelayMax - p.DelayMin)))
	}
	if faulty && p.Faults.Has(FaultReorder) && rng.Float64() < p.Reorder {
		d += time.Duration(rng.Int64N(int64(5*p.DelayMax + time.Millisecond)))
	}
	if faulty && p.Faults.Has(FaultDelay) && rng.Float64() < p.SpikeRate {
		d += time.Duration(rng.Int64N(int64(time.Duration(p.ElectionTick) * p.Tick * 3)))
	}
	return d
}

func (s *Simulation) deliver(slot int32) {
	env := &s.nw.envs[slot]
	from, to := s.members[env.from], s.members[env.to]
	if env.dropped {
		s.stats.Dropped++
		s.traceDrop(env.id, &env.msg, "lost")
		s.nw.release(slot)
		return
	}
	if env.incarnation != from.incarnation && from.crashAt[env.incarnation] < env.departs {
		// The sender crashed before the message left.
		s.traceDrop(env.id, &env.msg, "stale")
		s.nw.release(slot)
		return
	}
	if !to.up {
		s.rec = traceRecord{kind: trDrop, from: env.msg.From, to: env.msg.To, msg: env.msg.Type, term: env.msg.Term}
		s.emit()
		s.traceDrop(env.id, &env.msg, "down")
		s.stats.Dropped++
		s.nw.release(slot)
		return
	}
	if to.paused {
		to.backlog = append(to.backlog, slot)
		return
	}
	m := &env.msg
	s.rec = traceRecord{kind: trDeliver, from: m.From, to: m.To, msg: m.Type, term: m.Term, index: m.Index, commit: m.Commit, count: uint64(len(m.Entries))}
	s.emit()
	s.traceDeliver(env.id, m)
	s.stats.Delivered++
	toIdx := env.to
	s.check.observeDelivery(toIdx, m, to.m)
	to.m.Receive(*m)
	s.nw.release(slot)
	s.scheduleProcess(toIdx)
}

// emit adds s.rec, stamped with the event number and time, to the trace.
func (s *Simulation) emit() {
	s.rec.n, s.rec.at = s.events, s.now
	s.tr.add(&s.rec)
}

func (s *Simulation) trace(kind traceKind, member uint64, detail string) {
	s.rec = traceRecord{kind: kind, member: member, detail: detail}
	s.emit()
}

func (s *Simulation) logf(format string, args ...any) {
	if s.cfg.Log != nil {
		fmt.Fprintf(s.cfg.Log, "[%9.3fs] %s\n", s.now.Seconds(), fmt.Sprintf(format, args...))
	}
}

func (s *Simulation) failSafety(invariant, detail string) {
	s.fail(FailSafety, invariant, detail)
}

func (s *Simulation) fail(kind FailureKind, invariant, detail string) {
	if s.failure != nil {
		return
	}
	s.failure = &Failure{
		Kind: kind, Invariant: invariant, Detail: detail, Event: s.events, At: s.now,
		Replay: ReplayCommand(s.cfg), ReplayTest: ReplayTestCommand(s.cfg),
	}
	s.logf("FAILURE %s: %s: %s", kind, invariant, detail)
}

func (s *Simulation) logSummary(w io.Writer) {
	st := &s.stats
	fmt.Fprintf(w, "seed %d: %v simulated, %d events; commit index %d; %d leader changes; %d crashes, %d restarts; "+
		"messages %d sent, %d dropped, %d duplicated; ops %d: %d ok, %d unknown, %d refused; linearizability %s\n",
		s.cfg.Seed, s.now, s.events, uint64(len(s.check.committed))-1, st.LeaderChanges, st.Crashes, st.Restarts,
		st.Messages, st.Dropped, st.Duplicated, st.Ops, st.OpsOK, st.OpsUnknown, st.OpsRefused, st.Linearizability)
	if s.failure != nil {
		fmt.Fprintln(w, s.failure.Error())
	}
}
