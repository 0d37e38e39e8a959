package server

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/storage"
)

// Member is one member of a raftkv cluster: a raft node, the key space it
// replicates, and its durable storage, glued by a request pipeline. Like the
// raft node inside it, it is deterministic and single-threaded: it never
// starts a goroutine, reads a clock or opens a socket. Its inputs are Tick,
// Receive and Submit; Process does the work they cause and returns what must
// leave the member. The production runtime (Runtime) and the simulator
// drive it the same way.
type Member struct {
	cfg  Config
	node *raft.Node
	// raftLog is the durable log, mirrored in memory, snapshot data aside.
	raftLog *raft.MemoryStorage
	// snapLog is what raft reads: raftLog, with snapshot data read back
	// from disk when needed.
	snapLog *snapshotLog
	disk    disk
	store   *kvstore.Store
	dedup   *dedup
	cluster *cluster
	// confState is the raft configuration as of the applied index.
	confState raft.ConfState

	// incarnation is drawn at start-up; with the member's ID and a request
	// ID it names each proposal uniquely across restarts.
	incarnation   uint64
	nextRequestID uint64

	// ticks is the member's tick count, a function of the shell's clock:
	// the whole ticks since clockStart (see advanceClock). now is the
	// clock as last read; expiryDue the tick of the next check for
	// expired keys.
	clockStart time.Time
	now        time.Time
	ticks      uint64
	expiryDue  uint64

	// applied is the index the key space reflects.
	applied uint64
	// snapshotIndex is the index of the latest snapshot taken or installed.
	snapshotIndex uint64
	// snapshotNow asks for a snapshot at the next chance, whatever
	// SnapshotEvery says (see applyConfChange).
	snapshotNow bool
	// snapshotRetryAt is the tick before which no snapshot is tried again
	// after one found the disk full.
	snapshotRetryAt uint64

	// proposals wait to be handed to raft; writes wait for their entry to
	// apply.
	proposals [][]byte
	// proposalIDs are the request IDs of proposals (0 for proposals no
	// request waits for).
	// Invariant: len(proposalIDs) == len(proposals).
	proposalIDs []uint64
	// lead is the leader known at the last round, to notice a change.
	lead uint64
	// proposalsBlocked says raft refused the last offer of proposals (no
	// leader, a transfer, the uncommitted bound): no new offer until the
	// next tick or a new request.
	proposalsBlocked bool
	writes           map[uint64]*pendingWrite
	// writeOrder lists request IDs in submission order, for timeouts.
	writeOrder []uint64

	reads readPipeline

	// storeStats counts the key-space operations seen (for
	// /v2/stats/store); never part of the replicated state.
	storeStats StoreStats

	// expiryPending says an expiry proposal is in flight (until this tick).
	expiryPendingUntil uint64
	// infoCheckAt is the tick from which the member checks that the
	// cluster knows its name and URLs, and proposes them if not; infoKnown
	// says it does (for this incarnation).
	infoCheckAt uint64
	infoKnown   bool
	// confChangeUntil is the tick until which a membership change this
	// member proposed may still be in flight (0: none).
	confChangeUntil uint64
	// heldChanges are membership requests that came while a change was in
	// flight, oldest first: each is submitted when the one before applied.
	heldChanges []heldChange
	// membersChanged says the member table changed since the last Output.
	membersChanged bool

	// persisting is the disk work handed to the shell and not yet done;
	// persisted is work done, whose effects (Advance, the messages that
	// waited for it) the next Process carries out. retry is work the disk
	// refused (full), to hand out again.
	// Invariant: at most one of persisting, persisted and retry is set.
	persisting, persisted, retry *PersistJob
	// diskFull says the last write failed for lack of space; stalled says
	// no retry until the next tick.
	diskFull bool
	stalled  bool
	// fatal is a storage failure the member cannot go on from.
	fatal error
	// failed counts requests answered with an internal error (timeout, no
	// space, stopped) since the last Output.
	failed int

	// RecoveryLog lists what start-up did to recover (a torn WAL tail
	// truncated, a corrupt snapshot skipped), for the shell to log.
	RecoveryLog []string
}

type pendingWrite struct {
	done     func(Response)
	deadline uint64
	// member is the member a membership change is about.
	member *MemberInfo
	// data is the write's entry data, kept to propose it again if the
	// leader changes before it applies; proposedTo is the leader it was
	// handed to (0: not yet proposed).
	data       []byte
	proposedTo uint64
}

// Output is what one call of Process did and what must leave the member.
type Output struct {
	// Messages may be sent at once.
	Messages []raft.Message
	// Persist, if set, is disk work for the shell: run it (off the member's
	// goroutine if it likes), then report it with PersistDone. The member
	// goes on meanwhile.
	Persist *PersistJob
	// AfterPersist may be sent now: they waited for the disk work that this
	// Process found done.
	AfterPersist []raft.Message
	// HardState and SoftState are the member's raft state after the round.
	HardState raft.HardState
	SoftState raft.SoftState
	// Snapshot, Entries and Synced describe the disk work found done this
	// round: a snapshot installed, entries written (replacing any from the
	// first one's index on), and whether it was fsynced.
	Snapshot raft.SnapshotMetadata
	Entries  []raft.Entry
	Synced   bool
	// Applied are the entries applied to the key space, in order.
	Applied []raft.Entry
	// Stalled says the disk refused the last writes (full); they are handed
	// out again after the next tick.
	Stalled bool
	// MembersChanged says the member table changed: the shell should
	// update its transport's peers.
	MembersChanged bool
	// FailedRequests counts requests answered with an internal error (a
	// timeout, a full disk) since the last Output.
	FailedRequests int
	// Err is a fatal storage error: the member must stop and be restarted
	// from its disk.
	Err error
}

// New opens (or creates) a member's storage and returns the member: a
// founding member of a new cluster (empty disk, InitialCluster), a member
// joining an existing one (empty disk, Joining), or a restarted member
// (whatever its disk holds).
func New(cfg Config) (*Member, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.ClusterID == 0 {
		cfg.ClusterID = DeriveClusterID(cfg.ClusterToken, cfg.InitialCluster)
	}
	store, err := kvstore.New(cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	m := &Member{
		cfg: cfg, store: store, dedup: newDedup(), cluster: newCluster(),
		raftLog: raft.NewMemoryStorage(), writes: map[uint64]*pendingWrite{},
		incarnation: cfg.Rand.Uint64(),
	}
	m.reads.init()
	d, rec, err := openDisk(cfg)
	if err != nil {
		return nil, err
	}
	m.disk = d
	if !rec.empty && !cfg.Joining && rec.snapshot.IsEmpty() {
		// A founder whose first write was torn kept (part of) its
		// bootstrap and nothing else it did: it bootstraps again. The
		// entries it writes replace those from the same index on.
		torn, err := raft.TornBootstrap(rec.raftLog)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("server: read the recovered log: %w", err)
		}
		if torn {
			rec.empty, rec.raftLog = true, raft.NewMemoryStorage()
			rec.notes = append(rec.notes, "the first write (the bootstrap) was torn: bootstrapping again")
		}
	}
	m.RecoveryLog = rec.notes
	if err := m.recover(rec); err != nil {
		d.Close()
		return nil, err
	}
	m.snapLog = &snapshotLog{MemoryStorage: m.raftLog, load: d.LoadSnapshot, unreadable: m.snapshotUnreadable,
		outdated: func() bool { return m.snapshotNow },
		// Raft reads the snapshot as it starts; the data just restored
		// serves, then goes after snapshotDataIdleTicks.
		data: rec.snapshot.Data, dataIndex: rec.snapshot.Metadata.Index}
	rc := raft.Config{
		ID: cfg.ID, ElectionTick: cfg.ElectionTicks, HeartbeatTick: cfg.HeartbeatTicks,
		Storage: m.snapLog, Applied: m.applied, Rand: rand.New(rand.NewPCG(cfg.Rand.Uint64(), cfg.ID)),
		MaxSizePerMsg: cfg.MaxSizePerMsg, MaxInflightMsgs: cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: cfg.MaxUncommittedBytes, MaxSnapshotChunkSize: cfg.MaxSnapshotChunkSize,
		PreVote: true, CheckQuorum: true, ReadOnlyOption: readOption(cfg.LeaseReads),
		StepDownOnRemoval: true,
	}
	if cfg.TuneRaft != nil {
		cfg.TuneRaft(&rc)
	}
	node, err := raft.NewNode(rc)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("server: start raft: %w", err)
	}
	m.node = node
	if rec.empty && !cfg.Joining {
		if err := m.bootstrap(); err != nil {
			d.Close()
			return nil, err
		}
	}
	return m, nil
}

func readOption(lease bool) raft.ReadOnlyOption {
	if lease {
		return raft.ReadOnlyLeaseBased
	}
	return raft.ReadOnlySafe
}

// recover rebuilds the state machine from the snapshot; raft reads the
// log from rec.raftLog, and hands the entries after the snapshot out to be
// applied again.
func (m *Member) recover(rec recovered) error {
	m.raftLog = rec.raftLog
	if rec.snapshot.IsEmpty() {
		return nil
	}
	if err := m.restoreSnapshot(rec.snapshot.Data); err != nil {
		return fmt.Errorf("server: restore snapshot %d: %w", rec.snapshot.Metadata.Index, err)
	}
	m.applied = rec.snapshot.Metadata.Index
	m.snapshotIndex = m.applied
	m.confState = rec.snapshot.Metadata.ConfState
	return nil
}

// bootstrap founds a new cluster: the initial configuration goes into the
// log (every founding member writes the same entries) and the member table
// starts from the configuration given.
func (m *Member) bootstrap() error {
	founders := m.cfg.InitialCluster
	if len(founders) == 0 {
		founders = []MemberInfo{m.selfInfo()}
	}
	var ids []uint64
	var contexts [][]byte
	for _, info := range founders {
		ids = append(ids, info.ID)
		contexts = append(contexts, bootstrapContext(m.cfg.ClusterID, info))
		m.cluster.set(info)
	}
	m.cluster.id = m.cfg.ClusterID
	if err := m.node.Bootstrap(ids, contexts...); err != nil {
		return fmt.Errorf("server: bootstrap: %w", err)
	}
	return nil
}

func (m *Member) selfInfo() MemberInfo {
	return MemberInfo{ID: m.cfg.ID, Name: m.cfg.Name, PeerURLs: m.cfg.PeerURLs, ClientURLs: m.cfg.ClientURLs}
}

// Close releases the member's storage. Requests still pending are answered
// with ErrStopped (their outcome is unknown).
func (m *Member) Close() error {
	for _, id := range m.writeOrder {
		if w := m.writes[id]; w != nil {
			w.done(m.errorResponse(internalError(ErrStopped)))
		}
	}
	m.writes, m.writeOrder = map[uint64]*pendingWrite{}, nil
	for _, h := range m.heldChanges {
		h.done(m.errorResponse(internalError(ErrStopped)))
	}
	m.heldChanges = nil
	m.reads.failAll(m, internalError(ErrStopped))
	return m.disk.Close()
}

// ID returns the member's raft ID.
func (m *Member) ID() uint64 { return m.cfg.ID }

// Tick advances the member's clock — now is the shell's clock (or the
// simulator's virtual one), which the shell reads once a tick — and does
// the member's periodic work.
func (m *Member) Tick(now time.Time) {
	if m.clockStart.IsZero() {
		// The first Tick is tick 1.
		m.clockStart = now.Add(-m.tickLength())
	}
	m.advanceClock(now)
	m.snapLog.tick(m.ticks)
	m.stalled = false
	m.proposalsBlocked = false
	m.expireRequests()
	m.reads.retry(m)
	m.maybeProposeExpiry()
	m.releaseHeldChanges()
	m.maybePromoteLearners()
	m.maybePublishInfo()
}

// maxCatchUpTicks bounds the ticks advanceClock gives raft at once.
const maxCatchUpTicks = 1000

func (m *Member) tickLength() time.Duration {
	if m.cfg.TickLength > 0 {
		return m.cfg.TickLength
	}
	return time.Duration(m.cfg.TickMillis) * time.Millisecond
}

// advanceClock gives raft every tick due by the shell's clock, before any
// input. The tick count is a function of the clock — the whole ticks since
// the first Tick — not of how often the shell calls: a member that stood
// still (a long GC pause, a stopped process, a blocked event loop) resumes
// with every tick it missed, before it takes a message or a request, and
// a tick the shell delivers late, once that time is counted, adds nothing.
// The lease rests on it (raft's Config.MaxClockDrift): a follower's
// promise must run out no sooner than an election timeout by its clock
// from when it acknowledged a heartbeat, and a leader's lease no later
// than its own clock says; a count that lagged the clock and then caught
// up in a burst would break either.
func (m *Member) advanceClock(now time.Time) {
	if m.clockStart.IsZero() || now.Before(m.now) {
		return // not started; or a clock that went back, which counts nothing
	}
	m.now = now
	tick := m.tickLength()
	due := uint64(now.Sub(m.clockStart) / tick)
	if due > m.ticks+maxCatchUpTicks {
		// Beyond the bound, the missed ticks are dropped for good.
		m.clockStart = m.clockStart.Add(time.Duration(due-m.ticks-maxCatchUpTicks) * tick)
		due = m.ticks + maxCatchUpTicks
	}
	for m.ticks < due {
		m.ticks++
		m.node.Tick()
	}
}

// Receive hands the member a message from a peer; now is the shell's
// clock. A member that stood still catches up the ticks it missed first: a
// follower that resumed after a long pause must not promise its leader an
// election timeout (acknowledging a heartbeat, on which leases rest) on a
// clock that is about to jump forward.
func (m *Member) Receive(msg raft.Message, now time.Time) {
	m.advanceClock(now)
	// Errors are for messages raft ignores (a stray response); nothing to do.
	_ = m.node.Step(msg)
}

// Campaign makes the member start an election now, as if its election
// timeout had fired (§5.2); the teaching lab uses it. A member that may
// not campaign (a learner, a removed member) ignores it, as raft does.
func (m *Member) Campaign() { m.node.Campaign() }

// TransferLeadership asks the member, if it leads, to hand leadership to
// member to (§3.10 of the thesis).
func (m *Member) TransferLeadership(to uint64) { m.node.TransferLeadership(to) }

// ReportUnreachable tells raft that messages to peer id were lost.
func (m *Member) ReportUnreachable(id uint64) { m.node.ReportUnreachable(id) }

// Submit starts a client request. done is called exactly once, from within
// a later Process or Tick (or at once if the request is refused).
func (m *Member) Submit(req Request, done func(Response)) {
	// A request from after a pause must not be served on the clock from
	// before it (a lease read, above all).
	m.advanceClock(req.Now)
	switch req.Kind {
	case RequestWrite:
		m.submitWrite(req, done)
	case RequestRead:
		if req.Serializable {
			done(m.read(req))
			return
		}
		m.reads.add(req, done, m.ticks+uint64(m.cfg.RequestTimeoutTicks))
	case RequestMembership:
		m.submitMembership(req, done)
	case RequestWatch:
		w, err := m.store.Watch(req.Path, req.Watch)
		if err != nil {
			done(m.errorResponse(err))
			return
		}
		done(Response{Watcher: w, RaftIndex: m.commitIndex(), RaftTerm: m.term()})
	default:
		done(m.errorResponse(internalError(fmt.Errorf("unknown request kind %d", req.Kind))))
	}
}

func (m *Member) submitWrite(req Request, done func(Response)) {
	if m.diskFull {
		done(m.errorResponse(internalError(ErrNoSpace)))
		return
	}
	cmd := req.Command
	cmd.Now = req.Now
	payload, err := cmd.MarshalBinary()
	if err != nil {
		done(m.errorResponse(internalError(err)))
		return
	}
	m.nextRequestID++
	id := m.nextRequestID
	data := appendProposal(nil, proposal{
		kind: kindCommand, proposer: m.cfg.ID, incarnation: m.incarnation, requestID: id, payload: payload,
	})
	m.queue(data, id)
	m.writes[id] = &pendingWrite{done: done, deadline: m.ticks + uint64(m.cfg.RequestTimeoutTicks), data: data}
	m.writeOrder = append(m.writeOrder, id)
}

// read serves a read from the local key space.
func (m *Member) read(req Request) Response {
	opts := req.Get
	opts.Now = req.Now
	ev, err := m.store.Get(req.Path, opts)
	m.storeStats.CountGet(err == nil)
	if err != nil {
		return m.errorResponse(err)
	}
	return Response{Event: ev, RaftIndex: m.commitIndex(), RaftTerm: m.term()}
}

func (m *Member) errorResponse(err error) Response {
	var kerr *kvstore.Error
	if errors.As(err, &kerr) && kerr.Code == kvstore.CodeRaftInternal {
		m.failed++
	}
	return Response{Err: err, RaftIndex: m.commitIndex(), RaftTerm: m.term()}
}

// DiskFull reports whether the member's last write failed for lack of
// space (it refuses writes until space comes back).
func (m *Member) DiskFull() bool { return m.diskFull }

func (m *Member) commitIndex() uint64 {
	hs, _, _ := m.node.BasicStatus()
	return hs.Commit
}

func (m *Member) term() uint64 {
	hs, _, _ := m.node.BasicStatus()
	return hs.Term
}

// HasWork reports whether Process has anything to do.
func (m *Member) HasWork() bool {
	switch {
	case m.fatal != nil || m.persisted != nil:
		return true
	case len(m.proposals) > 0 && !m.proposalsBlocked, m.reads.hasUnsent(), m.node.HasMessages(),
		m.node.HasCommittedEntries(), m.node.HasReadStates():
		return true
	case m.persisting != nil || m.stalled:
		return false
	}
	return m.retry != nil || m.node.HasReady()
}

// Process does one round of work: it finishes the disk work found done,
// hands queued proposals and reads to raft, applies what is committed,
// answers the requests it can, and hands out the next disk work. It never
// waits for a disk: see Output.Persist.
func (m *Member) Process() Output {
	var out Output
	if m.fatal != nil {
		out.Err = m.fatal
		return m.output(out)
	}
	if j := m.persisted; j != nil {
		m.persisted = nil
		if err := m.finishRound(j, &out); err != nil {
			m.fatal, out.Err = err, err
			return m.output(out)
		}
	}
	m.flushProposals()
	m.reads.flush(m)
	// What is committed and durable here is applied now, whether or not
	// the disk is busy with the next write.
	if ents := m.node.TakeCommittedEntries(); len(ents) > 0 {
		out.Applied = ents
		if err := m.apply(ents); err != nil {
			m.fatal, out.Err = err, err
			return m.output(out)
		}
	}
	if rs := m.node.TakeReadStates(); len(rs) > 0 {
		m.reads.readStates(m, rs)
	}
	m.reads.serve(m)
	switch {
	case m.persisting != nil || m.stalled:
		out.Stalled = m.stalled
	case m.retry != nil:
		m.persisting, m.retry = m.retry, nil
		out.Persist = m.persisting
	case m.node.HasReady():
		if err := m.startRound(&out); err != nil {
			m.fatal, out.Err = err, err
			return m.output(out)
		}
	}
	// A leader streams to its followers while its own disk is busy.
	out.Messages = append(out.Messages, m.node.TakeMessages()...)
	return m.output(out)
}

// startRound takes raft's next Ready: its messages leave at once, its
// committed entries (durable already) are applied at once, and its writes
// become the round's disk work.
func (m *Member) startRound(out *Output) error {
	rd := m.node.Ready()
	out.Messages = append(out.Messages, rd.Messages...)
	if rd.SoftState != nil {
		// A new leader (or role): queued proposals may go now, and those
		// the old leader may have lost go again.
		m.proposalsBlocked = false
		m.reproposeOnLeaderChange(rd.SoftState.Lead)
	}
	if rd.Snapshot.IsEmpty() {
		out.Applied = append(out.Applied, rd.CommittedEntries...)
		if err := m.apply(rd.CommittedEntries); err != nil {
			return err
		}
		m.reads.readStates(m, rd.ReadStates)
		m.reads.serve(m)
	} else if len(rd.CommittedEntries) > 0 {
		panic("server: a Ready with a snapshot also holds committed entries")
	}
	job := &PersistJob{rd: rd, disk: m.disk}
	if job.empty() {
		return m.finishRound(job, out)
	}
	m.persisting = job
	out.Persist = job
	return nil
}

// PersistDone reports that job, handed out by Process, has run: err is
// what Run returned.
func (m *Member) PersistDone(job *PersistJob, err error) {
	if job != m.persisting {
		panic("server: PersistDone for disk work that is not outstanding")
	}
	m.persisting = nil
	switch {
	case err == nil:
		m.diskFull = false
		m.persisted = job
	case retriable(err):
		// Nothing of the round is durable: keep it, retry after the next
		// tick, and refuse new writes meanwhile. What was acknowledged
		// before is safe.
		m.diskFull, m.stalled = true, true
		m.retry = job
	default:
		m.fatal = err
	}
}

// retriable says err is a full disk the member may wait out: the write
// was refused before anything reached the WAL. A full disk that made the
// WAL fail for good (an fsync or a write that failed midway: retrying it
// is not safe) is fatal like any other failure, though it wraps
// ErrDiskFull too.
func retriable(err error) bool {
	return errors.Is(err, storage.ErrDiskFull) && !errors.Is(err, storage.ErrFailed)
}

// finishRound carries out what a round's writes made possible: mirror them
// in raftLog (raft reads its durable log there), install a snapshot, send
// the messages that waited, advance raft.
func (m *Member) finishRound(j *PersistJob, out *Output) error {
	rd := j.rd
	if err := m.mirror(rd); err != nil {
		return err
	}
	if !rd.Snapshot.IsEmpty() {
		if err := m.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
		out.Snapshot = rd.Snapshot.Metadata
		m.reads.readStates(m, rd.ReadStates)
	}
	out.Entries = append(out.Entries, rd.Entries...)
	out.Synced = out.Synced || rd.MustSync
	out.AfterPersist = append(out.AfterPersist, rd.MessagesAfterPersist...)
	m.node.Advance(rd)
	m.reads.serve(m)
	if err := m.maybeSnapshot(); err != nil {
		return err
	}
	m.maybePublishInfo()
	return nil
}

func (m *Member) output(out Output) Output {
	out.HardState, out.SoftState, _ = m.node.BasicStatus()
	out.MembersChanged, m.membersChanged = m.membersChanged, false
	out.FailedRequests, m.failed = m.failed, 0
	return out
}

// PersistJob is the disk work of one round: a snapshot, entries and a hard
// state to write, in the order the raft persistence contract asks, and to
// fsync if the round needs it. Run does it; it touches only the member's
// storage, never the member, so the shell may run it on another goroutine
// (one job at a time: the member hands out the next only after PersistDone).
type PersistJob struct {
	rd   raft.Ready
	disk disk
}

// Run does the disk work.
func (j *PersistJob) Run() error {
	if !j.rd.Snapshot.IsEmpty() {
		if err := j.disk.SaveSnapshot(j.rd.Snapshot); err != nil {
			return err
		}
	}
	return j.disk.Save(j.rd.HardState, j.rd.Entries, j.rd.MustSync)
}

// Entries returns the entries the job writes, HardState the hard state
// (empty if unchanged), Sync whether it fsyncs.
func (j *PersistJob) Entries() []raft.Entry     { return j.rd.Entries }
func (j *PersistJob) HardState() raft.HardState { return j.rd.HardState }
func (j *PersistJob) Sync() bool                { return j.rd.MustSync }

// TakeAfterPersist returns the messages that may leave once Run has
// returned nil (they vouch for what it wrote) and leaves none for the
// round's end: a runtime sends them as soon as the write is durable,
// rather than in Output.AfterPersist once the event loop has taken
// PersistDone.
func (j *PersistJob) TakeAfterPersist() []raft.Message {
	msgs := j.rd.MessagesAfterPersist
	j.rd.MessagesAfterPersist = nil
	return msgs
}

// lastIndex is the index of the last entry the job writes, 0 if none.
func (j *PersistJob) lastIndex() uint64 {
	if n := len(j.rd.Entries); n > 0 {
		return j.rd.Entries[n-1].Index
	}
	return 0
}

func (j *PersistJob) empty() bool {
	return j.rd.Snapshot.IsEmpty() && len(j.rd.Entries) == 0 && j.rd.HardState.IsEmpty()
}

// mirror copies a round's durable writes into raftLog.
func (m *Member) mirror(rd raft.Ready) error {
	if !rd.Snapshot.IsEmpty() {
		if err := m.raftLog.ApplySnapshot(withoutData(rd.Snapshot)); err != nil {
			return fmt.Errorf("server: install snapshot in memory: %w", err)
		}
	}
	if err := m.raftLog.Append(rd.Entries); err != nil {
		return fmt.Errorf("server: append to the in-memory log: %w", err)
	}
	if !rd.HardState.IsEmpty() {
		return m.raftLog.SetHardState(rd.HardState)
	}
	return nil
}

// flushProposals hands queued writes to raft, in one batch.
func (m *Member) flushProposals() {
	if len(m.proposals) == 0 || m.proposalsBlocked {
		return
	}
	_, ss, _ := m.node.BasicStatus()
	if ss.Lead == raft.None {
		// Wait for a leader (or the requests' timeout).
		m.proposalsBlocked = true
		return
	}
	m.dropAnswered()
	if len(m.proposals) == 0 {
		return
	}
	n := min(len(m.proposals), m.cfg.MaxProposalBatch)
	if err := m.node.Propose(m.proposals[:n]...); err != nil {
		// Dropped (a transfer under way, too much uncommitted): the batch
		// stays queued and is offered again at the next tick.
		m.proposalsBlocked = true
		return
	}
	for _, id := range m.proposalIDs[:n] {
		if w := m.writes[id]; w != nil {
			w.proposedTo = ss.Lead
		}
	}
	m.proposals, m.proposalIDs = m.proposals[n:], m.proposalIDs[n:]
	if len(m.proposals) == 0 {
		m.proposals, m.proposalIDs = nil, nil
	}
}

// dropAnswered takes out of the queue the writes already answered: those
// whose timeout passed while they waited for a leader (their clients were
// told the outcome is unknown, and may have written the key again since)
// and those a copy proposed earlier has applied. Neither is proposed.
func (m *Member) dropAnswered() {
	kept := 0
	for i, id := range m.proposalIDs {
		if id != 0 && m.writes[id] == nil {
			continue
		}
		m.proposals[kept], m.proposalIDs[kept] = m.proposals[i], id
		kept++
	}
	clear(m.proposals[kept:])
	m.proposals, m.proposalIDs = m.proposals[:kept], m.proposalIDs[:kept]
}

// queue adds a proposal for the next flush; id is the request that waits
// for it, or 0.
func (m *Member) queue(data []byte, id uint64) {
	m.proposals = append(m.proposals, data)
	m.proposalIDs = append(m.proposalIDs, id)
}

// reproposeOnLeaderChange proposes again the writes handed to the previous
// leader and not applied yet: a proposal forwarded to a leader that died
// (or a leader's own entry a new leader overwrote) would otherwise wait for
// its timeout. If the first copy commits after all, the second is a
// duplicate that applies as nothing (dedup), so a write still applies at
// most once.
func (m *Member) reproposeOnLeaderChange(lead uint64) {
	if lead == m.lead {
		return
	}
	m.lead = lead
	if lead == raft.None {
		return
	}
	for _, id := range m.writeOrder {
		if w := m.writes[id]; w != nil && w.proposedTo != raft.None && w.proposedTo != lead && w.data != nil {
			w.proposedTo = raft.None
			m.queue(w.data, id)
		}
	}
}

// expireRequests answers the requests whose deadline passed: their outcome
// is unknown.
func (m *Member) expireRequests() {
	for len(m.writeOrder) > 0 {
		id := m.writeOrder[0]
		w := m.writes[id]
		if w != nil && w.deadline > m.ticks {
			break
		}
		m.writeOrder = m.writeOrder[1:]
		if w != nil {
			delete(m.writes, id)
			w.done(m.errorResponse(internalError(ErrTimeout)))
		}
	}
	m.reads.expire(m)
}

// maybeProposeExpiry makes a leader propose the removal of expired keys,
// carrying its clock: every member then expires the same keys at the same
// log index (spec §9).
func (m *Member) maybeProposeExpiry() {
	if m.ticks < m.expiryDue || m.ticks < m.expiryPendingUntil {
		return
	}
	m.expiryDue = m.ticks + uint64(m.cfg.ExpiryTicks)
	if _, ss, _ := m.node.BasicStatus(); ss.State != raft.StateLeader {
		return
	}
	next, ok := m.store.NextExpiration()
	if !ok || next.After(m.now) {
		return
	}
	payload, err := kvstore.Command{Op: kvstore.OpExpire, Now: m.now}.MarshalBinary()
	if err != nil {
		panic("server: encode expiry command: " + err.Error())
	}
	m.queue(appendProposal(nil, proposal{
		kind: kindCommand, proposer: m.cfg.ID, incarnation: m.incarnation, payload: payload,
	}), 0)
	m.expiryPendingUntil = m.ticks + uint64(m.cfg.RequestTimeoutTicks)
}

// maybePublishInfo proposes this member's name and URLs, when they differ
// from what the cluster knows, until the cluster knows them: a proposal
// forwarded to a leader may be dropped without a word (a transfer under
// way, the bound on uncommitted bytes), so it checks again a request
// timeout later. Applying the same information twice changes nothing.
func (m *Member) maybePublishInfo() {
	if m.infoKnown || m.ticks < m.infoCheckAt || m.cfg.Joining && m.applied == 0 {
		return
	}
	if _, ss, _ := m.node.BasicStatus(); ss.Lead == raft.None {
		return
	}
	self := m.selfInfo()
	if cur, ok := m.cluster.members[m.cfg.ID]; ok && sameInfo(*cur, self) {
		m.infoKnown = true
		return
	}
	m.infoCheckAt = m.ticks + uint64(m.cfg.RequestTimeoutTicks)
	m.nextRequestID++
	m.queue(appendProposal(nil, proposal{
		kind: kindMemberInfo, proposer: m.cfg.ID, incarnation: m.incarnation,
		requestID: m.nextRequestID, payload: encodeMemberInfo(self),
	}), 0)
}

func sameInfo(a, b MemberInfo) bool {
	return a.ID == b.ID && a.Name == b.Name && fmt.Sprint(a.PeerURLs) == fmt.Sprint(b.PeerURLs) &&
		fmt.Sprint(a.ClientURLs) == fmt.Sprint(b.ClientURLs)
}
