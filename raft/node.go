package raft

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Ready is what a Node hands the application to do: state to make durable,
// messages to send, entries to apply, reads to serve.
//
// # The persistence contract
//
// Take one Ready at a time: call Advance(rd) before calling Ready again.
// Between the two, Step, Tick and the proposal methods may still be called;
// what they produce waits for the next Ready.
//
//  1. Messages may be sent at once, in parallel with the rest. They vouch
//     for nothing in this Ready: a leader's appends and heartbeats (a leader
//     writes its log in parallel with its followers, §10.2.1 of the thesis;
//     its own entries count towards commitment only after Advance).
//  2. Write Snapshot (if any), then Entries, then HardState (if not empty)
//     to stable storage, in that order, and make them durable (fsync) if
//     MustSync. Entries replace any stored entries from the same index on.
//     Writing entries before the hard state means that a write torn by a
//     crash can lose commit information but never claim an entry it lacks.
//  3. Then, and only then, send MessagesAfterPersist: they vouch for what
//     step 2 stored (a vote granted, an append or snapshot accepted, our own
//     vote request). Sending them earlier breaks Raft's safety.
//  4. Apply Snapshot (if any) and then CommittedEntries to the state
//     machine, in order; for an EntryConfChange entry call ApplyConfChange.
//     CommittedEntries are durable already (from earlier Readys), so they
//     may be applied in parallel with step 2.
//  5. Serve ReadStates once the applied index reaches each one's Index.
//  6. Call Advance(rd).
//
// # What a restarted member restores
//
// Storage.InitialState must return the last HardState written and the
// configuration of the last snapshot; Storage must hold that snapshot and
// every entry written after it (a torn tail entry may be missing: its loss
// is safe because nothing vouching for it was sent). Set Config.Applied to
// the index the state machine already reflects (at least the snapshot's), or
// 0 to have everything after the snapshot handed out again.
type Ready struct {
	// SoftState is set when the leader or role changed.
	SoftState *SoftState
	// HardState is set (not empty) when it changed.
	HardState HardState
	// ReadStates answer ReadIndex calls.
	ReadStates []ReadState
	// Entries are to be made durable.
	Entries []Entry
	// Snapshot, if not empty, is to be made durable and applied.
	Snapshot Snapshot
	// CommittedEntries are to be applied.
	CommittedEntries []Entry
	// Messages may be sent at once.
	Messages []Message
	// MessagesAfterPersist may be sent only once HardState, Entries and
	// Snapshot are durable.
	MessagesAfterPersist []Message
	// MustSync says whether the writes must be fsynced before
	// MessagesAfterPersist leave (a change of term or vote, new entries, a
	// snapshot); a change of the commit index alone need not be.
	MustSync bool
}

// Node is the application's handle on one member's raft state machine. It is
// not safe for concurrent use: drive it from one goroutine.
type Node struct {
	r *raft
	// prevSoft and prevHard are the states last handed out, to tell what
	// changed.
	prevSoft SoftState
	prevHard HardState
	// outstanding says a Ready has been handed out and not yet advanced.
	outstanding bool
	// stepsOnAdvance are messages to this member itself that wait for the
	// outstanding Ready to be durable (its own vote).
	stepsOnAdvance []Message
}

// NewNode makes a member from Config. A member of a new cluster has empty
// storage and must be given its first configuration with Bootstrap; a
// restarted member finds its state in storage; a member joining an existing
// cluster starts empty and receives a snapshot from the leader.
func NewNode(c Config) (*Node, error) {
	r, err := newRaft(c)
	if err != nil {
		return nil, err
	}
	return &Node{r: r, prevSoft: r.softState(), prevHard: r.hardState()}, nil
}

// Bootstrap starts a new cluster of the given voters on a node with empty
// storage: it appends one configuration entry per voter at term 1 and
// commits them, exactly as every other founding member does, so that all
// their logs agree from the start. Term 1 holds nothing else (the first
// election is for term 2): see TornBootstrap for a founder whose first
// write was torn. The entries come out in the next Ready
// (to persist and, as committed entries, to apply with ApplyConfChange).
// contexts, if given, holds one ConfChange.Context per voter, in the order
// of voters: members that join later learn the founders from it. Every
// founding member must pass the same voters and contexts.
func (n *Node) Bootstrap(voters []uint64, contexts ...[]byte) error {
	r := n.r
	if len(voters) == 0 {
		return errors.New("raft: bootstrap needs at least one voter")
	}
	if len(contexts) != 0 && len(contexts) != len(voters) {
		return fmt.Errorf("raft: bootstrap with %d voters but %d contexts", len(voters), len(contexts))
	}
	if r.log.lastIndex() != 0 || r.Term != 0 {
		return errors.New("raft: bootstrap of a member whose storage is not empty")
	}
	order := make([]int, len(voters))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(voters[a], voters[b]) })
	ents := make([]Entry, len(voters))
	var changes []ConfChange
	for i, k := range order {
		id := voters[k]
		if id == None {
			return errors.New("raft: bootstrap voter ID 0")
		}
		if i > 0 && voters[order[i-1]] == id {
			return fmt.Errorf("raft: bootstrap voters %v name member %d twice", voters, id)
		}
		cc := ConfChange{Changes: []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: id}}}
		if len(contexts) > 0 {
			cc.Context = contexts[k]
		}
		data, _ := cc.MarshalBinary()
		ents[i] = Entry{Term: bootstrapTerm, Index: uint64(i + 1), Type: EntryConfChange, Data: data}
		changes = append(changes, cc)
	}
	r.becomeFollower(bootstrapTerm, None)
	// A new cluster has no lease to honour.
	r.bootQuiet = false
	r.log.append(ents...)
	r.log.committed = uint64(len(ents))
	// Committed by construction, and bootstrapped again if a crash tears
	// them (TornBootstrap): as good as durable.
	r.log.durableCommit = r.log.committed
	// Apply the configuration now, so that this member knows its cluster
	// before the entries are applied (applying them again is a no-op).
	for _, cc := range changes {
		if _, err := r.applyConfChange(cc); err != nil {
			return err
		}
	}
	return nil
}

// bootstrapTerm is the term of the bootstrap entries, and of no others.
const bootstrapTerm = 1

// Tick advances the member's logical clock by one tick.
func (n *Node) Tick() { n.r.ticks++; n.r.tick() }

// Campaign makes the member start an election now (with a pre-vote if
// configured) — unless, with lease reads, it still promises its leader not
// to (it heard the leader within an election timeout, or has just
// restarted): its own vote would break the promise the leader's lease
// rests on, and a read served on that lease could miss a newer leader's
// writes.
func (n *Node) Campaign() {
	if n.r.readOnly.option == ReadOnlyLeaseBased && n.r.state != StateLeader && n.r.promising() {
		return
	}
	n.r.hup(false)
}

// Propose proposes entries with the given data, in order, as one batch. On a
// follower they are forwarded to the leader; ErrProposalDropped means they
// were not taken.
func (n *Node) Propose(data ...[]byte) error {
	ents := make([]Entry, len(data))
	for i, d := range data {
		ents[i] = Entry{Data: d}
	}
	return n.r.Step(Message{Type: MsgProp, From: n.r.id, Entries: ents})
}

// ProposeConfChange proposes a membership change (applied, once committed,
// with ApplyConfChange). Only one change may be in the log unapplied at a
// time; a change proposed while another is pending commits as an empty
// entry and has no effect.
func (n *Node) ProposeConfChange(cc ConfChange) error {
	data, err := cc.MarshalBinary()
	if err != nil {
		return err
	}
	return n.r.Step(Message{Type: MsgProp, From: n.r.id, Entries: []Entry{{Type: EntryConfChange, Data: data}}})
}

// ApplyConfChange applies a committed configuration change and returns the
// configuration now in force. Call it when applying an EntryConfChange.
func (n *Node) ApplyConfChange(cc ConfChange) (ConfState, error) {
	return n.r.applyConfChange(cc)
}

// ReadIndex requests a linearizable read; a ReadState with ctx comes back in
// a later Ready (§6.4 of the thesis). Requests can be lost (no leader, a
// leader change): the application retries after a timeout.
func (n *Node) ReadIndex(ctx []byte) {
	_ = n.r.Step(Message{Type: MsgReadIndex, From: n.r.id, Context: ctx})
}

// TransferLeadership asks the leader to hand leadership to transferee
// (§3.10 of the thesis). From a follower the request is forwarded.
func (n *Node) TransferLeadership(transferee uint64) {
	_ = n.r.Step(Message{Type: MsgTransferLeader, From: transferee})
}

// Step hands the member a message from a peer.
func (n *Node) Step(m Message) error {
	if m.From == None {
		return fmt.Errorf("raft: message %s has no sender", m.Type)
	}
	if m.Type.isResponse() && n.r.trk.progress[m.From] == nil && m.Type != MsgReadIndexResp {
		// A response from a member not in our configuration (removed, or a
		// stray) is ignored.
		return ErrStepPeerNotFound
	}
	return n.r.Step(m)
}

// ReportUnreachable tells the leader that a message to id could not be
// delivered; it stops streaming to id and probes instead.
func (n *Node) ReportUnreachable(id uint64) {
	if pr := n.r.trk.progress[id]; n.r.state == StateLeader && pr != nil && pr.State == StateReplicate {
		pr.becomeProbe()
	}
}

// HasMessages reports whether messages wait that may be sent at once
// (Ready.Messages' kind), whether or not a Ready is outstanding.
func (n *Node) HasMessages() bool {
	n.r.flushAppends()
	return len(n.r.msgs) > 0
}

// TakeMessages returns, and hands over for sending, the messages that may be
// sent at once: those that vouch for nothing unpersisted (a leader's
// appends and heartbeats, forwarded requests). It may be called while a
// Ready is outstanding, so that a leader keeps streaming to its followers
// while its own disk is busy. Messages that must wait for a write
// (Ready.MessagesAfterPersist) stay for the next Ready.
func (n *Node) TakeMessages() []Message {
	n.r.flushAppends()
	msgs := n.r.msgs
	n.r.msgs = nil
	return msgs
}

// TakeCommittedEntries returns the committed entries that are durable here
// and not yet handed out, and counts them as applied: the caller applies
// them at once, in order (EntryConfChange ones with ApplyConfChange). It
// may be called while a Ready is outstanding, so that an application need
// not wait for its disk to apply what is already durable; entries handed
// out this way never appear in a Ready.
func (n *Node) TakeCommittedEntries() []Entry {
	ents := n.r.log.nextCommittedEnts()
	if len(ents) > 0 {
		n.r.appliedTo(ents[len(ents)-1].Index)
	}
	return ents
}

// HasCommittedEntries reports whether TakeCommittedEntries has entries.
func (n *Node) HasCommittedEntries() bool { return n.r.log.hasNextCommittedEnts() }

// HasReadStates reports whether TakeReadStates has read states.
func (n *Node) HasReadStates() bool { return len(n.r.readStates) > 0 }

// TakeReadStates returns the ReadStates produced since the last Ready or
// call, whether or not a Ready is outstanding.
func (n *Node) TakeReadStates() []ReadState {
	rs := n.r.readStates
	n.r.readStates = nil
	return rs
}

// HasReady reports whether Ready has anything to hand out. It is false while
// a Ready is outstanding.
func (n *Node) HasReady() bool {
	r := n.r
	if n.outstanding {
		return false
	}
	r.flushAppends()
	if r.softState() != n.prevSoft {
		return true
	}
	if hs := r.hardState(); !hs.IsEmpty() && hs != n.prevHard {
		return true
	}
	return r.log.hasUnstable() || len(r.msgs) > 0 || len(r.msgsAfterPersist) > 0 ||
		len(r.readStates) > 0 || r.log.hasNextCommittedEnts() || r.log.confBarrier != 0
}

// Ready returns what the application must do next (see Ready). The caller
// must call Advance with it before calling Ready again.
func (n *Node) Ready() Ready {
	if n.outstanding {
		panic("raft: Ready called before the previous Ready was advanced")
	}
	r := n.r
	r.flushAppends()
	rd := Ready{
		Entries:              r.log.unstable.entries,
		CommittedEntries:     r.log.nextCommittedEnts(),
		Messages:             r.msgs,
		MessagesAfterPersist: r.msgsAfterPersist,
		ReadStates:           r.readStates,
	}
	// A configuration change is written only once a commit index covering
	// the changes before it is durable: then a member that holds a change
	// knows, after any crash, that the ones before it committed, and never
	// uses a configuration more than one change behind its log (the
	// "Append" invariant of configurations applied at commit time,
	// etcd#7625). Until then the entries stop before it, the hard state is
	// synced, and the messages that vouch for the entries held back wait
	// with them.
	holdBack := false
	hs := r.hardState()
	if k := r.log.confChangeAwaitingCommit(rd.Entries); k >= 0 {
		// The commit index written may not run past the entries written.
		hs.Commit = min(hs.Commit, rd.Entries[k].Index-1)
		rd.Entries, rd.MessagesAfterPersist, holdBack = rd.Entries[:k], nil, true
	}
	if ss := r.softState(); ss != n.prevSoft {
		rd.SoftState = &ss
		n.prevSoft = ss
	}
	if hs != n.prevHard {
		rd.HardState = hs
	}
	if r.log.unstable.snapshot != nil {
		rd.Snapshot = *r.log.unstable.snapshot
	}
	rd.MustSync = len(rd.Entries) > 0 || !rd.Snapshot.IsEmpty() ||
		(!rd.HardState.IsEmpty() && (rd.HardState.Term != n.prevHard.Term || rd.HardState.Vote != n.prevHard.Vote))
	if r.log.confBarrier != 0 || holdBack {
		// A configuration change waits for its commit index, or for the
		// one covering the changes before it, to be durable: write the
		// hard state (again, if unchanged) and sync it.
		rd.HardState, rd.MustSync = hs, true
	}
	if !rd.HardState.IsEmpty() {
		n.prevHard = rd.HardState
		if r.planted(BugVoteNotPersisted) {
			rd.HardState.Vote = None
		}
	}
	// Messages to ourselves are stepped at Advance, once durable.
	rd.MessagesAfterPersist = slices.DeleteFunc(rd.MessagesAfterPersist, func(m Message) bool {
		if m.To == r.id {
			n.stepsOnAdvance = append(n.stepsOnAdvance, m)
			return true
		}
		return false
	})
	r.msgs, r.readStates = nil, nil
	if !holdBack {
		r.msgsAfterPersist = nil
	}
	n.outstanding = true
	return rd
}

// Advance tells the node that rd has been carried out: its state is
// durable, its messages sent and its committed entries applied.
func (n *Node) Advance(rd Ready) {
	if !n.outstanding {
		panic("raft: Advance without an outstanding Ready")
	}
	n.outstanding = false
	if rd.MustSync {
		// Everything written is durable now, the last hard state handed
		// out included (written in this Ready or an earlier one).
		n.r.log.setDurableCommit(n.prevHard.Commit)
	}
	n.r.advance(rd)
	steps := n.stepsOnAdvance
	n.stepsOnAdvance = nil
	for _, m := range steps {
		_ = n.r.Step(m)
	}
}

// Status is a snapshot of a member's state for monitoring and tests.
type Status struct {
	ID uint64
	HardState
	SoftState
	Applied uint64
	// LastIndex is the index of the last entry in the log.
	LastIndex uint64
	// Progress is the leader's view of each member (leaders only).
	Progress       map[uint64]Progress
	LeadTransferee uint64
	Config         ConfState
	// Ticks is the member's tick count, the clock of Progress.LastHeard.
	Ticks uint64
}

// Status returns the member's current state.
func (n *Node) Status() Status {
	r := n.r
	s := Status{
		ID: r.id, HardState: r.hardState(), SoftState: r.softState(),
		Applied: r.log.applied, LastIndex: r.log.lastIndex(),
		LeadTransferee: r.leadTransferee, Config: r.trk.config.ConfState(),
		Ticks: r.ticks,
	}
	if r.state == StateLeader {
		s.Progress = make(map[uint64]Progress, len(r.trk.progress))
		r.trk.visit(func(id uint64, pr *Progress) {
			p := *pr
			p.inflights = nil
			s.Progress[id] = p
		})
	}
	return s
}

// CommitTerm returns the term of the entry at the commit index: a leader's
// commit index moves only to an entry of its own term (§5.4.2), which a
// checker can verify from outside.
func (n *Node) CommitTerm() uint64 {
	return n.r.log.zeroTermOnOutOfBounds(n.r.log.term(n.r.log.committed))
}

// HoldsLease reports whether this member leads with a lease it trusts: it
// would answer a read at once, without a round of heartbeats (§6.4.1 of
// the thesis). No other member may have been elected since.
func (n *Node) HoldsLease() bool { return n.r.state == StateLeader && n.r.leaseValid() }

// Promising reports whether this member is bound by its promise to a
// leader, on which leases rest (§6.4.1 of the thesis): it heard from the
// leader less than an election timeout ago (CheckQuorum), or restarted
// less than one ago (lease reads), and grants no vote meanwhile, except to
// a leadership transfer.
func (n *Node) Promising() bool { return n.r.promising() }

// LastEntry returns the index and term of the last entry in the member's
// log, written or not yet: the log its votes are decided on (§5.4.1).
func (n *Node) LastEntry() (index, term uint64) { return n.r.log.lastIndex(), n.r.log.lastTerm() }

// BasicStatus returns the member's state without the per-member progress
// (cheap enough to call on every step).
func (n *Node) BasicStatus() (HardState, SoftState, uint64) {
	return n.r.hardState(), n.r.softState(), n.r.log.applied
}
