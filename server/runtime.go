package server

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/internal/lifetrace"
	"github.com/raftkv/raftkv/raft"
)

// Transport carries raft messages between members. The runtime calls Send
// from its event loop: Send must not block (queue, and drop when a queue is
// full — raft retries). Received messages go to Runtime.Receive.
type Transport interface {
	// Send may be called by the event loop and the disk goroutine at once.
	Send(msgs []raft.Message)
}

// Runtime is the production shell around a Member: one event-loop
// goroutine that owns the member, a ticker, and channels from the network
// and from clients. Everything the member decides happens on that one
// goroutine; the rest of the process talks to it through Do, Receive and
// Query.
type Runtime struct {
	member    *Member
	transport Transport
	tick      time.Duration
	// clock is the wall clock (a test may replace it).
	clock func() time.Time
	// pendingCalls are Do's answered calls, for reuse.
	pendingCalls sync.Pool

	inbox    chan raft.Message
	requests chan call
	// unreachable carries peers the transport could not reach.
	unreachable chan uint64
	// diskJobs carries the member's disk work to the disk goroutine, and
	// diskDone its results back; diskBusy says a job is out.
	diskJobs chan *PersistJob
	diskDone chan diskResult
	diskBusy bool
	queries  chan func(*Member)
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	// status is refreshed after every round, for readers on any goroutine.
	status atomic.Pointer[RuntimeStatus]
	// err is the fatal error that stopped the loop, if any.
	err atomic.Pointer[error]
	// onRound, if set, is called after every round with its output (for
	// metrics and logs), on the loop goroutine.
	onRound          func(Output)
	onApply          func(int, time.Duration)
	onMembersChanged func([]MemberInfo)
}

type diskResult struct {
	job *PersistJob
	err error
}

type call struct {
	req  Request
	done func(Response)
}

// RuntimeStatus is a member's state as last seen by its event loop.
type RuntimeStatus struct {
	ID      uint64
	Leader  uint64
	Term    uint64
	Commit  uint64
	Applied uint64
	State   raft.StateType
	// LeaderSince is when this member first saw Leader lead, by the
	// runtime's clock: for a leader when it won, for a follower when it
	// first heard from it (etcd's leaderInfo.startTime); with no leader,
	// since when it has had none.
	LeaderSince time.Time
	// NoSpace says the disk is full: writes are refused.
	NoSpace bool
	// IsLearner says the member is a learner (it does not vote).
	IsLearner bool
	// PendingProposals counts the member's proposals not applied yet.
	PendingProposals int
	// Nodes is the number of keys and directories in the key space.
	Nodes int
	// Store counts the key-space operations seen (Member.StoreStats).
	Store StoreStats
}

// RuntimeOptions configures a Runtime.
type RuntimeOptions struct {
	// Tick is the length of a tick (Config.TickMillis should agree).
	Tick time.Duration
	// InboxSize and RequestQueueSize bound the channels into the loop.
	InboxSize        int
	RequestQueueSize int
	// OnRound is called after every round, on the loop goroutine.
	OnRound func(Output)
	// OnApply is called after every round that applied entries, with how
	// many and how long the round took (the member never reads a clock).
	OnApply func(entries int, took time.Duration)
	// OnMembersChanged is called with the member table when the loop
	// starts and whenever the table changes (so the transport can follow),
	// on the loop goroutine; it must not block.
	OnMembersChanged func([]MemberInfo)
}

// ErrRuntimeStopped is returned for requests made to a stopped runtime.
var ErrRuntimeStopped = errors.New("server: member stopped")

// NewRuntime wraps m. Start runs it.
func NewRuntime(m *Member, t Transport, opts RuntimeOptions) *Runtime {
	if opts.Tick <= 0 {
		opts.Tick = 100 * time.Millisecond
	}
	if opts.InboxSize <= 0 {
		opts.InboxSize = 4096
	}
	if opts.RequestQueueSize <= 0 {
		opts.RequestQueueSize = 4096
	}
	rt := &Runtime{
		member: m, transport: t, tick: opts.Tick, clock: time.Now,
		inbox: make(chan raft.Message, opts.InboxSize), requests: make(chan call, opts.RequestQueueSize),
		unreachable: make(chan uint64, 64),
		diskJobs:    make(chan *PersistJob, 1), diskDone: make(chan diskResult, 1),
		queries: make(chan func(*Member)), stop: make(chan struct{}), done: make(chan struct{}),
		onRound: opts.OnRound, onApply: opts.OnApply, onMembersChanged: opts.OnMembersChanged,
	}
	rt.refreshStatus()
	return rt
}

// Start runs the event loop, and the goroutine that does the member's
// disk work, each on its own goroutine.
func (rt *Runtime) Start() {
	go rt.diskLoop()
	go rt.loop()
}

// diskLoop runs the member's disk work, one job at a time, so that the
// event loop goes on while a write is fsynced (group commit: everything
// that arrives meanwhile goes into the next job).
func (rt *Runtime) diskLoop() {
	for job := range rt.diskJobs {
		// The loop woke the peer writers carrying this round's appends just
		// before this goroutine, which would otherwise run first on the same
		// processor and hold it in write+fdatasync while they wait for
		// another. Let them go first: the followers' fsyncs, not this one,
		// are on the commit's path (benchmarks/RESULTS.md, "Where one
		// write's time goes").
		runtime.Gosched()
		lifetrace.Mark(rt.member.cfg.ID, 0, job.lastIndex(), lifetrace.DiskStart)
		err := job.Run()
		lifetrace.Mark(rt.member.cfg.ID, 0, job.lastIndex(), lifetrace.DiskDone)
		if err == nil {
			// The acknowledgements leave now, not once the event loop
			// has woken for the result: a hop less on the commit's path.
			if msgs := job.TakeAfterPersist(); len(msgs) > 0 {
				if lifetrace.Enabled {
					rt.traceMessages(msgs)
				}
				rt.transport.Send(msgs)
			}
		}
		rt.diskDone <- diskResult{job: job, err: err}
	}
}

// Stop ends the event loop, answers pending requests with ErrStopped and
// closes the member's storage.
func (rt *Runtime) Stop() error {
	rt.stopOnce.Do(func() { close(rt.stop) })
	<-rt.done
	if p := rt.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Done is closed when the loop has ended (stopped, or a fatal error).
func (rt *Runtime) Done() <-chan struct{} { return rt.done }

// Err returns the fatal error that ended the loop, if any.
func (rt *Runtime) Err() error {
	if p := rt.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Receive hands a message from the network to the member. It never
// blocks: when the loop is behind, the message is dropped (raft retries).
func (rt *Runtime) Receive(msg raft.Message) {
	select {
	case rt.inbox <- msg:
	default:
	}
}

// ReportUnreachable tells the member that messages to peer id were lost, so
// that raft probes it instead of streaming. It never blocks.
func (rt *Runtime) ReportUnreachable(id uint64) {
	select {
	case rt.unreachable <- id:
	default:
	}
}

// Do submits a request and waits for its answer or ctx's end.
func (rt *Runtime) Do(ctx context.Context, req Request) (Response, error) {
	if req.Now.IsZero() {
		req.Now = rt.clock()
	}
	p := rt.newPendingCall()
	gen := p.gen
	select {
	case rt.requests <- call{req: req, done: func(r Response) { p.finish(gen, r) }}:
	case <-rt.done:
		return Response{}, ErrRuntimeStopped
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
	select {
	case r := <-p.answer:
		// Answered: p may serve another request.
		rt.pendingCalls.Put(p)
		return r, nil
	case <-rt.done:
		// The loop answers pending requests as it stops.
		select {
		case r := <-p.answer:
			return r, nil
		default:
			p.abandon()
			return Response{}, ErrRuntimeStopped
		}
	case <-ctx.Done():
		p.abandon()
		return Response{}, ctx.Err()
	}
}

// pendingCall is a request handed to the loop and the wait for its answer.
// Calls answered are reused (Runtime.pendingCalls), saving Do a channel
// and a lock per request.
type pendingCall struct {
	rt     *Runtime
	answer chan Response // capacity 1: the loop never waits
	mu     sync.Mutex
	// gen counts the requests p has served: an answer for an earlier one
	// (there should be none: a request is answered once) is not taken
	// for the current one's.
	gen uint64
	// abandoned says the caller stopped waiting: a watcher registered for
	// nobody is removed, whether its answer came just before or comes
	// later.
	abandoned bool
}

func (rt *Runtime) newPendingCall() *pendingCall {
	if p, _ := rt.pendingCalls.Get().(*pendingCall); p != nil {
		p.mu.Lock()
		p.gen++
		p.mu.Unlock()
		return p
	}
	return &pendingCall{rt: rt, answer: make(chan Response, 1)}
}

// finish hands the answer to request gen to its caller.
func (p *pendingCall) finish(gen uint64, r Response) {
	lifetrace.Mark(p.rt.member.cfg.ID, 0, 0, lifetrace.Answered)
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen || p.abandoned || len(p.answer) > 0 {
		// Nobody waits for it.
		if r.Watcher != nil {
			r.Watcher.Remove()
		}
		return
	}
	p.answer <- r
}

// abandon stops waiting: an answer already there, or one to come, that
// registered a watcher removes it. p is not reused.
func (p *pendingCall) abandon() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.abandoned = true
	select {
	case r := <-p.answer:
		if r.Watcher != nil {
			r.Watcher.Remove()
		}
	default:
	}
}

// Query runs f on the event loop with the member and waits for it: the
// safe way to read anything of the member's from another goroutine. f must
// not keep the member.
func (rt *Runtime) Query(ctx context.Context, f func(*Member)) error {
	finished := make(chan struct{})
	select {
	case rt.queries <- func(m *Member) { f(m); close(finished) }:
	case <-rt.done:
		return ErrRuntimeStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-finished:
		return nil
	case <-rt.done:
		return ErrRuntimeStopped
	}
}

// Status returns the member's state as of the last round.
func (rt *Runtime) Status() RuntimeStatus { return *rt.status.Load() }

func (rt *Runtime) loop() {
	defer close(rt.done)
	if rt.onMembersChanged != nil {
		rt.onMembersChanged(rt.member.Members())
	}
	ticker := time.NewTicker(rt.tick)
	defer ticker.Stop()
	for {
		select {
		case msg := <-rt.inbox:
			lifetrace.Message(rt.member.cfg.ID, msg.From, &msg, lifetrace.AppendStepped, lifetrace.AckStepped)
			rt.member.Receive(msg, rt.clock())
		case c := <-rt.requests:
			lifetrace.Mark(rt.member.cfg.ID, 0, 0, lifetrace.Submitted)
			rt.member.Submit(c.req, c.done)
		case f := <-rt.queries:
			f(rt.member)
		case id := <-rt.unreachable:
			rt.member.ReportUnreachable(id)
		case res := <-rt.diskDone:
			lifetrace.Mark(rt.member.cfg.ID, 0, res.job.lastIndex(), lifetrace.PersistDone)
			rt.diskBusy = false
			rt.member.PersistDone(res.job, res.err)
		case <-ticker.C:
			rt.member.Tick(rt.clock())
		case <-rt.stop:
			rt.shutdown(nil)
			return
		}
		rt.drain()
		if err := rt.work(); err != nil {
			rt.shutdown(err)
			return
		}
	}
}

// drain takes in everything already waiting, so that one round handles it
// all: one fsync for many requests (group commit).
func (rt *Runtime) drain() {
	for {
		select {
		case msg := <-rt.inbox:
			lifetrace.Message(rt.member.cfg.ID, msg.From, &msg, lifetrace.AppendStepped, lifetrace.AckStepped)
			rt.member.Receive(msg, rt.clock())
		case c := <-rt.requests:
			lifetrace.Mark(rt.member.cfg.ID, 0, 0, lifetrace.Submitted)
			rt.member.Submit(c.req, c.done)
		default:
			return
		}
	}
}

// work runs rounds until the member has nothing to do.
func (rt *Runtime) work() error {
	for rt.member.HasWork() {
		start := time.Now()
		out := rt.member.Process()
		if rt.onApply != nil && len(out.Applied) > 0 {
			rt.onApply(len(out.Applied), time.Since(start))
		}
		if lifetrace.Enabled {
			rt.traceRound(out)
		}
		if len(out.Messages) > 0 {
			rt.transport.Send(out.Messages)
		}
		if len(out.AfterPersist) > 0 {
			rt.transport.Send(out.AfterPersist)
		}
		if out.Persist != nil {
			rt.diskBusy = true
			rt.diskJobs <- out.Persist
		}
		if rt.onRound != nil {
			rt.onRound(out)
		}
		if out.MembersChanged && rt.onMembersChanged != nil {
			rt.onMembersChanged(rt.member.Members())
		}
		if out.Err != nil {
			return out.Err
		}
		rt.refreshStatus()
		if out.Stalled {
			return nil // the disk is full: try again at the next tick
		}
	}
	return nil
}

// traceRound records a round's sends and applies for lifetrace builds.
func (rt *Runtime) traceRound(out Output) {
	rt.traceMessages(out.Messages)
	rt.traceMessages(out.AfterPersist)
	if n := len(out.Applied); n > 0 {
		lifetrace.Mark(rt.member.cfg.ID, 0, out.Applied[n-1].Index, lifetrace.Applied)
	}
}

func (rt *Runtime) traceMessages(msgs []raft.Message) {
	for i := range msgs {
		lifetrace.Message(rt.member.cfg.ID, msgs[i].To, &msgs[i], lifetrace.AppendSent, lifetrace.AckSent)
	}
}

func (rt *Runtime) refreshStatus() {
	hs, ss, applied := rt.member.node.BasicStatus()
	var since time.Time
	if prev := rt.status.Load(); prev != nil && prev.Leader == ss.Lead {
		since = prev.LeaderSince
	} else {
		since = rt.clock()
	}
	rt.status.Store(&RuntimeStatus{
		ID: rt.member.cfg.ID, Leader: ss.Lead, LeaderSince: since, Term: hs.Term, Commit: hs.Commit,
		Applied: applied, State: ss.State, NoSpace: rt.member.DiskFull(),
		IsLearner: rt.member.IsLearner(), PendingProposals: rt.member.PendingProposals(),
		Nodes: rt.member.NodeCount(), Store: rt.member.StoreStats(),
	})
}

func (rt *Runtime) shutdown(err error) {
	if err != nil {
		rt.err.Store(&err)
	}
	// Let the disk work under way finish before the storage is closed.
	if rt.diskBusy {
		res := <-rt.diskDone
		rt.member.PersistDone(res.job, res.err)
	}
	close(rt.diskJobs)
	// Answer whoever is still waiting in the queue.
	for {
		select {
		case c := <-rt.requests:
			c.done(rt.member.errorResponse(internalError(ErrStopped)))
			continue
		default:
		}
		break
	}
	if cerr := rt.member.Close(); cerr != nil && err == nil {
		rt.err.Store(&cerr)
	}
}

// LocalNetwork is an in-process Transport connecting runtimes directly,
// for tests and single-process clusters.
type LocalNetwork struct {
	mu      sync.RWMutex
	members map[uint64]*Runtime
}

// NewLocalNetwork returns an empty network.
func NewLocalNetwork() *LocalNetwork { return &LocalNetwork{members: map[uint64]*Runtime{}} }

// Join connects rt as member id.
func (n *LocalNetwork) Join(id uint64, rt *Runtime) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.members[id] = rt
}

// Leave disconnects member id.
func (n *LocalNetwork) Leave(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.members, id)
}

// Send implements Transport.
func (n *LocalNetwork) Send(msgs []raft.Message) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, m := range msgs {
		if rt := n.members[m.To]; rt != nil {
			rt.Receive(m)
		}
	}
}
