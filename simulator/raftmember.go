package simulator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// raftMember is today's Member: a raft.Node over a MemDisk, with a
// log-appending state machine. It carries out each Ready exactly as the
// persistence contract in raft/node.go says.
type raftMember struct {
	cfg  MemberConfig
	node *raft.Node
	disk *MemDisk
	sm   logAppender
	// confState is the configuration as of the applied index, for
	// snapshots.
	confState raft.ConfState
	// snapIndex is the index of the last snapshot taken or installed.
	snapIndex uint64
	// ready is a Ready handed out whose writes the disk refused (full);
	// Process retries it before taking another.
	ready *raft.Ready
	// proposals are the appends submitted here, by operation ID; batch
	// the entry data of those not yet proposed.
	proposals map[uint64]func(Reply)
	batch     [][]byte
	// reads are the reads submitted here and not yet answered;
	// confChanges the membership changes, by operation ID (carried in the
	// change's Context).
	reads       map[uint64]func(Reply)
	confChanges map[uint64]func(Reply)
	// confApplied says a configuration change applied since the last
	// Activity; snapshotNow asks for a snapshot at once (one that names a
	// member just added, which raft refuses to send it otherwise).
	confApplied, snapshotNow bool
	// readyReads are reads whose ReadState arrived, waiting for the
	// applied index to reach theirs.
	// Invariant: sorted by index.
	readyReads []raft.ReadState
	// hardState and softState are the states as of the last Ready carried
	// out: what Activity reports, never state that is not yet durable.
	hardState raft.HardState
	softState raft.SoftState
	// commit and commitTerm are raft's commit index and its entry's term
	// as of the last Ready carried out; readyCommit those of the Ready
	// handed out.
	commit, commitTerm uint64
	readyCommit        [2]uint64
	// ticks is raft's tick count: the whole ClockTicks since clockStart
	// (see advanceClock).
	clockStart time.Time
	ticks      uint64
}

// NewRaftMember is the Factory of today's member. A disk must be a *MemDisk.
func NewRaftMember(cfg MemberConfig, d Disk) (Member, error) {
	disk, ok := d.(*MemDisk)
	if !ok {
		return nil, fmt.Errorf("simulator: the raft member needs a *MemDisk, got %T", d)
	}
	storage, err := disk.Open()
	if err != nil {
		return nil, err
	}
	m := &raftMember{cfg: cfg, disk: disk, proposals: map[uint64]func(Reply){}, reads: map[uint64]func(Reply){},
		confChanges: map[uint64]func(Reply){}}
	m.sm.tailLen = cfg.SnapshotTail
	if torn, err := raft.TornBootstrap(storage); err != nil {
		return nil, err
	} else if torn && !cfg.Joining {
		// Its first write was torn: it bootstraps again.
		disk.Wipe()
		storage = disk.current
	}
	hs, cs, err := storage.InitialState()
	if err != nil {
		return nil, err
	}
	if cfg.Bug == BugForgetVote && hs.Vote != raft.None {
		// The planted bug: the vote does not survive the restart.
		hs.Vote = raft.None
		_ = storage.SetHardState(hs)
	}
	snap, err := storage.Snapshot()
	if err != nil {
		return nil, err
	}
	if !snap.IsEmpty() {
		if err := m.sm.restore(snap.Data); err != nil {
			return nil, fmt.Errorf("simulator: member %d: restore snapshot %d: %w", cfg.ID, snap.Metadata.Index, err)
		}
		m.snapIndex = snap.Metadata.Index
		m.sm.applied = snap.Metadata.Index
		m.confState = cs
	}
	rc := cfg.Raft
	rc.ID, rc.Storage, rc.Rand = cfg.ID, storage, cfg.Rand
	// The state machine is volatile: a restarted member has what its
	// snapshot holds, and raft hands out everything after it again.
	rc.Applied = snap.Metadata.Index
	node, err := raft.NewNode(rc)
	if err != nil {
		return nil, err
	}
	m.node = node
	last, _ := storage.LastIndex()
	if last == 0 && hs.IsEmpty() && !cfg.Joining {
		if err := node.Bootstrap(cfg.Peers); err != nil {
			return nil, err
		}
	} else {
		// A restarted member starts from what its disk holds.
		m.hardState, m.softState, _ = node.BasicStatus()
	}
	return m, nil
}

// Tick implements Member.
func (m *raftMember) Tick() {
	if m.clockStart.IsZero() {
		// The first Tick is tick 1.
		m.clockStart = m.cfg.Now().Add(-m.cfg.ClockTick)
	}
	m.advanceClock()
}

// advanceClock, like server.Member's, gives raft every tick due by the
// member's clock before any input, so that its tick count is a function
// of the clock: a member that resumes from a pause takes no message on the
// clock from before it (a leader would trust a lease that ran out, a
// follower promise an election timeout on a clock about to jump), and a
// late tick adds nothing once its time is counted.
func (m *raftMember) advanceClock() {
	if m.clockStart.IsZero() {
		return
	}
	due := uint64(m.cfg.Now().Sub(m.clockStart) / m.cfg.ClockTick)
	if due > m.ticks+maxCatchUpTicks {
		m.clockStart = m.clockStart.Add(time.Duration(due-m.ticks-maxCatchUpTicks) * m.cfg.ClockTick)
		due = m.ticks + maxCatchUpTicks
	}
	for m.ticks < due {
		m.ticks++
		m.node.Tick()
	}
}

// maxCatchUpTicks bounds the ticks a resumed member catches up at once.
const maxCatchUpTicks = 1000

func (m *raftMember) Receive(msg raft.Message)     { m.advanceClock(); _ = m.node.Step(msg) }
func (m *raftMember) Storage() raft.Storage        { return m.disk.current }
func (m *raftMember) Campaign()                    { m.node.Campaign() }
func (m *raftMember) TransferLeadership(to uint64) { m.node.TransferLeadership(to) }
func (m *raftMember) Applied() uint64              { return m.sm.applied }
func (m *raftMember) HoldsLease() bool             { return m.node.HoldsLease() }
func (m *raftMember) Promising() bool              { return m.node.Promising() }
func (m *raftMember) LastEntry() (uint64, uint64)  { return m.node.LastEntry() }
func (m *raftMember) ConfState() raft.ConfState    { return m.confState }
func (m *raftMember) HasWork() bool                { return m.ready != nil || len(m.batch) > 0 || m.node.HasReady() }

// RecoveredTornWrite implements tornRecoverer: the crash before this start
// kept only part of the last write of entries it kept.
func (m *raftMember) RecoveredTornWrite() bool { return m.disk.tornAtCrash }

// Submit implements Member.
func (m *raftMember) Submit(op Op, done func(Reply)) {
	m.advanceClock()
	if op.ConfChange != nil {
		cc := *op.ConfChange
		cc.Context = binary.LittleEndian.AppendUint64(nil, op.ID)
		if err := m.node.ProposeConfChange(cc); err != nil {
			done(Reply{Err: fmt.Errorf("%w: %w", ErrRefused, err)})
			return
		}
		m.confChanges[op.ID] = done
		return
	}
	if op.Read {
		m.reads[op.ID] = done
		m.node.ReadIndex(binary.LittleEndian.AppendUint64(nil, op.ID))
		return
	}
	// Appends wait for the next Process and are proposed together, as a
	// server batches them: one round of appends to the followers per batch.
	m.batch = append(m.batch, encodeOp(op.ID))
	m.proposals[op.ID] = done
}

// proposeBatch proposes the appends submitted since the last round.
func (m *raftMember) proposeBatch() {
	if len(m.batch) == 0 {
		return
	}
	batch := m.batch
	m.batch = nil
	if err := m.node.Propose(batch...); err != nil {
		for _, data := range batch {
			id := decodeOp(data)
			if done := m.proposals[id]; done != nil {
				delete(m.proposals, id)
				done(Reply{Err: fmt.Errorf("%w: %w", ErrRefused, err)})
			}
		}
	}
}

// Process implements Member: one Ready, carried out as the contract says.
func (m *raftMember) Process() Activity {
	var act Activity
	m.proposeBatch()
	if m.ready == nil {
		if !m.node.HasReady() {
			m.report(&act)
			return act
		}
		hs, _, _ := m.node.BasicStatus()
		m.readyCommit = [2]uint64{hs.Commit, m.node.CommitTerm()}
		rd := m.node.Ready()
		m.ready = &rd
		// Step 1: messages may leave at once.
		act.Messages = rd.Messages
	}
	rd := m.ready
	// Step 2: snapshot, entries, hard state; synced if MustSync.
	if err := m.persist(rd); err != nil {
		switch {
		case errors.Is(err, ErrDiskFull):
			act.Stalled = true
		case errors.Is(err, ErrDiskCrashed):
			act.Crashed = true
		default:
			panic(fmt.Sprintf("simulator: member %d: persist: %v", m.cfg.ID, err))
		}
		m.report(&act)
		return act
	}
	m.ready = nil
	act.Synced = rd.MustSync
	act.Entries = rd.Entries
	act.Snapshot = rd.Snapshot.Metadata
	// Step 3: the messages that vouch for what was just stored.
	act.AfterPersist = rd.MessagesAfterPersist
	// Step 4: apply.
	if !rd.Snapshot.IsEmpty() {
		if err := m.sm.restore(rd.Snapshot.Data); err != nil {
			panic(fmt.Sprintf("simulator: member %d: install snapshot %d: %v", m.cfg.ID, rd.Snapshot.Metadata.Index, err))
		}
		m.sm.applied = rd.Snapshot.Metadata.Index
		m.confState = rd.Snapshot.Metadata.ConfState
		m.snapIndex = rd.Snapshot.Metadata.Index
	}
	act.Applied = rd.CommittedEntries
	for i := range rd.CommittedEntries {
		m.apply(&rd.CommittedEntries[i])
	}
	// Step 5: reads.
	for _, rs := range rd.ReadStates {
		i, _ := slices.BinarySearchFunc(m.readyReads, rs.Index, func(a raft.ReadState, idx uint64) int {
			return cmpUint(a.Index, idx+1)
		})
		m.readyReads = slices.Insert(m.readyReads, i, rs)
	}
	m.answerReads()
	// Step 6.
	m.node.Advance(*rd)
	m.maybeSnapshot()
	// Report the states the Ready carried, not the node's current ones:
	// messages stepped while the Ready was held (a full disk) may have
	// moved the node past what is written.
	if !rd.HardState.IsEmpty() {
		m.hardState = rd.HardState
	}
	if rd.SoftState != nil {
		m.softState = *rd.SoftState
	}
	m.commit, m.commitTerm = m.readyCommit[0], m.readyCommit[1]
	m.report(&act)
	return act
}

// report fills in the states act carries: those of the last Ready carried
// out.
func (m *raftMember) report(act *Activity) {
	act.HardState, act.SoftState = m.hardState, m.softState
	act.Commit, act.CommitTerm = m.commit, m.commitTerm
	if m.confApplied {
		cs := m.confState
		act.Conf, act.AppliedIndex, m.confApplied = &cs, m.sm.applied, false
	}
}

// persist is step 2 of the contract.
func (m *raftMember) persist(rd *raft.Ready) error {
	if !rd.Snapshot.IsEmpty() {
		if err := m.disk.SaveSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if len(rd.Entries) > 0 {
		if err := m.disk.SaveEntries(rd.Entries); err != nil {
			return err
		}
	}
	if !rd.HardState.IsEmpty() {
		if err := m.disk.SaveHardState(rd.HardState); err != nil {
			return err
		}
	}
	if rd.MustSync {
		return m.disk.Sync()
	}
	return nil
}

// apply applies one committed entry.
func (m *raftMember) apply(e *raft.Entry) {
	if e.Index != m.sm.applied+1 {
		panic(fmt.Sprintf("simulator: member %d applies entry %d after %d", m.cfg.ID, e.Index, m.sm.applied))
	}
	m.sm.applied = e.Index
	switch e.Type {
	case raft.EntryConfChange:
		var cc raft.ConfChange
		if err := cc.UnmarshalBinary(e.Data); err != nil {
			panic(fmt.Sprintf("simulator: member %d: decode conf change %d: %v", m.cfg.ID, e.Index, err))
		}
		cs, err := m.node.ApplyConfChange(cc)
		if err == nil {
			for _, id := range append(cs.Voters, cs.Learners...) {
				if !m.confState.Contains(id) && m.snapIndex > 0 {
					m.snapshotNow = true // a joiner needs one that names it
				}
			}
			m.confState, m.confApplied = cs, true
		}
		if len(cc.Context) == 8 {
			if done := m.confChanges[binary.LittleEndian.Uint64(cc.Context)]; done != nil {
				delete(m.confChanges, binary.LittleEndian.Uint64(cc.Context))
				if err != nil {
					done(Reply{Err: fmt.Errorf("%w: %w", ErrRefused, err)})
				} else {
					done(Reply{})
				}
			}
		}
	case raft.EntryNormal:
		if len(e.Data) == 0 {
			return // a leader's no-op
		}
		id := decodeOp(e.Data)
		length, ok := m.sm.append(id)
		if done := m.proposals[id]; done != nil && ok {
			delete(m.proposals, id)
			done(Reply{Length: length})
		}
	}
}

func (m *raftMember) answerReads() {
	n := 0
	for n < len(m.readyReads) && m.readyReads[n].Index <= m.sm.applied {
		rs := m.readyReads[n]
		id := binary.LittleEndian.Uint64(rs.RequestCtx)
		if done := m.reads[id]; done != nil {
			delete(m.reads, id)
			reply := Reply{Length: m.sm.length, Last: m.sm.last(), ServedAt: m.sm.applied}
			if hs, ss, _ := m.node.BasicStatus(); ss.State == raft.StateLeader {
				reply.LeaderTerm = hs.Term
			}
			done(reply)
		}
		n++
	}
	m.readyReads = m.readyReads[n:]
}

// maybeSnapshot snapshots the state machine and compacts the log every
// SnapshotEvery applied entries.
func (m *raftMember) maybeSnapshot() {
	every := m.cfg.SnapshotEvery
	if !m.snapshotNow && (every == 0 || m.sm.applied < m.snapIndex+every) || m.sm.applied == m.snapIndex {
		return
	}
	index := m.sm.applied
	if err := m.disk.CreateSnapshot(index, m.confState, m.sm.encode()); err != nil {
		if errors.Is(err, ErrDiskFull) || errors.Is(err, ErrDiskCrashed) {
			return // try again later; a dead disk is noticed at the next persist
		}
		panic(fmt.Sprintf("simulator: member %d: create snapshot %d: %v", m.cfg.ID, index, err))
	}
	m.snapIndex, m.snapshotNow = index, false
	if index > m.cfg.SnapshotKeep {
		// Compact in steps of at least compactStep entries: every
		// compaction copies the log that remains.
		first, _ := m.disk.current.FirstIndex()
		if compact := index - m.cfg.SnapshotKeep; compact >= first+compactStep-1 {
			if err := m.disk.Compact(compact); err != nil && !errors.Is(err, ErrDiskFull) && !errors.Is(err, ErrDiskCrashed) {
				panic(fmt.Sprintf("simulator: member %d: compact %d: %v", m.cfg.ID, compact, err))
			}
		}
	}
}

// compactStep is the fewest entries a compaction discards.
const compactStep = 64

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// encodeOp is an append's entry data: the operation ID and eight bytes of
// payload, so that entries have some size.
func encodeOp(id uint64) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, id)
	binary.LittleEndian.PutUint64(b[8:], mix(hashInit, id))
	return b
}

func decodeOp(data []byte) uint64 {
	if len(data) < 8 {
		panic(fmt.Sprintf("simulator: entry data of %d bytes is no operation", len(data)))
	}
	return binary.LittleEndian.Uint64(data)
}

// logAppender is the state machine: a list of appended operation IDs, of
// which it keeps what reads need (length, last element) and a hash of the
// whole list. An append it has seen before (a proposal the network
// duplicated) is applied once only: a client's sequence numbers increase,
// and one at or below the highest applied for that client is a duplicate.
type logAppender struct {
	// applied is the index of the last entry applied.
	applied uint64
	length  uint64
	// listHash is the hash of the whole list, so that two members' lists
	// can be compared.
	listHash uint64
	// tail holds at least the last tailLen elements of the list (at
	// least one), newest last; they pad snapshots to a size worth sending
	// in chunks.
	tail    []uint64
	tailLen int
	// lastSeq is, per client, the highest sequence number applied.
	lastSeq []uint32
}

// append applies operation id and returns the list's new length; ok is
// false for a duplicate, which changes nothing.
func (s *logAppender) append(id uint64) (length uint64, ok bool) {
	client, seq := int(id>>32), uint32(id)
	if client >= len(s.lastSeq) {
		s.lastSeq = append(s.lastSeq, make([]uint32, client+1-len(s.lastSeq))...)
	}
	if seq <= s.lastSeq[client] {
		return s.length, false
	}
	s.lastSeq[client] = seq
	s.length++
	s.listHash = mix(s.listHash, id)
	if s.tailLen > 0 {
		if len(s.tail) >= 2*s.tailLen {
			// Keep the last tailLen; amortised O(1) per append.
			s.tail = append(s.tail[:0], s.tail[len(s.tail)-s.tailLen:]...)
		}
		s.tail = append(s.tail, id)
	} else {
		s.tail = append(s.tail[:0], id)
	}
	return s.length, true
}

func (s *logAppender) last() uint64 {
	if len(s.tail) == 0 {
		return 0
	}
	return s.tail[len(s.tail)-1]
}

// encode is the snapshot of the state machine.
func (s *logAppender) encode() []byte {
	tail := s.tail[len(s.tail)-min(len(s.tail), max(s.tailLen, 1)):]
	b := make([]byte, 0, 32+4*len(s.lastSeq)+8*len(tail))
	b = binary.LittleEndian.AppendUint64(b, s.length)
	b = binary.LittleEndian.AppendUint64(b, s.listHash)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s.lastSeq)))
	for _, seq := range s.lastSeq {
		b = binary.LittleEndian.AppendUint32(b, seq)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(tail)))
	for _, id := range tail {
		b = binary.LittleEndian.AppendUint64(b, id)
	}
	return b
}

// restore replaces the state with a snapshot's.
func (s *logAppender) restore(b []byte) error {
	errTruncated := errors.New("snapshot data is truncated")
	if len(b) < 24 {
		return errTruncated
	}
	length, listHash, clients := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[16:])
	b = b[24:]
	if clients > uint64(len(b))/4 {
		return errTruncated
	}
	lastSeq := make([]uint32, clients)
	for i := range lastSeq {
		lastSeq[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	b = b[4*clients:]
	if len(b) < 8 {
		return errTruncated
	}
	n := binary.LittleEndian.Uint64(b)
	b = b[8:]
	if n > length || uint64(len(b)) != 8*n {
		return errors.New("snapshot data has the wrong length")
	}
	tail := make([]uint64, n)
	for i := range tail {
		tail[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	s.length, s.listHash, s.lastSeq, s.tail = length, listHash, lastSeq, tail
	return nil
}
