package raft

import (
	"errors"
	"fmt"
)

// stepLeader handles a message in StateLeader.
func stepLeader(r *raft, m Message) error {
	switch m.Type {
	case MsgProp:
		return r.handlePropose(m)
	case MsgReadIndex:
		r.handleReadIndex(m)
		return nil
	case MsgTransferLeader:
		r.handleTransferLeader(m.From)
		return nil
	}
	// The rest are responses from a member we must know.
	pr := r.trk.progress[m.From]
	if pr == nil {
		return ErrStepPeerNotFound
	}
	switch m.Type {
	case MsgAppResp:
		pr.LastHeard = r.ticks
		if m.Reject {
			r.handleAppendRejected(m, pr)
		} else {
			r.handleAppendAccepted(m, pr)
		}
	case MsgHeartbeatResp:
		pr.LastHeard = r.ticks
		pr.ProbeSent = false
		if pr.State == StateReplicate && pr.inflights.full() {
			// The follower answers heartbeats sent after the appends that
			// fill its window, yet has not acknowledged them: they were
			// lost. Nothing else would ever free the window; probe again
			// from what the follower is known to hold.
			pr.becomeProbe()
		}
		// A follower that answers a heartbeat is reachable: keep streaming
		// to it if it is behind.
		if pr.Match < r.log.lastIndex() {
			r.maybeSendAppend(m.From, true)
		}
		if len(m.Context) > 0 {
			r.readOnly.recordAck(m.From, m.Context)
			r.releaseReads()
		}
	case MsgSnapResp:
		pr.LastHeard = r.ticks
		r.handleSnapshotChunkAck(m, pr)
	}
	return nil
}

// handlePropose appends proposed entries (§5.3: "the leader appends the
// command to its log as a new entry, then issues AppendEntries RPCs").
func (r *raft) handlePropose(m Message) error {
	if len(m.Entries) == 0 {
		return errors.New("raft: empty proposal")
	}
	if r.trk.progress[r.id] == nil {
		// Removed from the configuration: it cannot commit anything.
		return ErrProposalDropped
	}
	if r.leadTransferee != None {
		// §3.10 of the thesis: stop accepting new proposals while leadership
		// is being handed over, or the transfer may never catch up.
		return ErrProposalDropped
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type != EntryConfChange {
			continue
		}
		if err := r.checkConfChangeProposal(e); err != nil {
			// Refuse the change but keep the rest of the batch: it is
			// replaced by an empty entry, which commits harmlessly.
			*e = Entry{Type: EntryNormal}
			continue
		}
		r.pendingConfIndex = r.log.lastIndex() + uint64(i) + 1
	}
	if !r.appendEntry(true, m.Entries...) {
		return ErrProposalDropped
	}
	if len(r.trk.ids) > 1 {
		r.appendsDue = true
	}
	return nil
}

// checkConfChangeProposal enforces one change at a time: no change while
// another is unapplied, no joint change while in a joint configuration, and
// leaving a joint configuration only from one.
func (r *raft) checkConfChangeProposal(e *Entry) error {
	var cc ConfChange
	if err := cc.UnmarshalBinary(e.Data); err != nil {
		return err
	}
	joint := r.trk.config.Voters.IsJoint()
	switch {
	case r.pendingConfIndex > r.log.applied:
		return fmt.Errorf("raft: a configuration change at index %d is not applied yet", r.pendingConfIndex)
	case joint && !cc.LeavesJoint():
		return errors.New("raft: a joint configuration must be left before another change")
	case !joint && cc.LeavesJoint():
		return errors.New("raft: not in a joint configuration")
	}
	return nil
}

// handleAppendAccepted advances the follower's progress and, if a quorum
// now holds more, the commit index.
func (r *raft) handleAppendAccepted(m Message, pr *Progress) {
	if !pr.maybeUpdate(m.Index) {
		return
	}
	switch pr.State {
	case StateProbe:
		pr.becomeReplicate()
	case StateSnapshot:
		if pr.Match >= pr.PendingSnapshot {
			// The follower installed the snapshot (or caught up otherwise).
			pr.becomeProbe()
			pr.becomeReplicate()
		}
	case StateReplicate:
		pr.inflights.freeLE(m.Index)
	}
	if r.maybeCommit() {
		// Followers learn the new commit index from the next append.
		r.appendsDue = true
	}
	// Keep streaming while the window allows.
	for r.maybeSendAppend(m.From, false) {
	}
	if m.From == r.leadTransferee && pr.Match == r.log.lastIndex() {
		// §3.10: the transferee has caught up; tell it to campaign now.
		r.sendTimeoutNow(m.From)
	}
}

// handleAppendRejected moves Next back using the follower's hint (§5.3's
// fast backtracking: skip a whole term at a time).
func (r *raft) handleAppendRejected(m Message, pr *Progress) {
	nextProbe := m.RejectHint
	if m.LogTerm > 0 {
		// The follower's log at RejectHint has term m.LogTerm. Any index of
		// ours whose term is greater cannot match; skip back to the last
		// index of a term no greater than that.
		nextProbe, _ = r.log.findConflictByTerm(m.RejectHint, m.LogTerm)
	}
	if pr.maybeDecrTo(m.Index, nextProbe) {
		if pr.State == StateReplicate {
			pr.becomeProbe()
		}
		r.maybeSendAppend(m.From, false)
	}
}

// flushAppends sends the appends made due since messages were last taken
// (appendsDue).
func (r *raft) flushAppends() {
	if !r.appendsDue {
		return
	}
	r.appendsDue = false
	if r.state == StateLeader {
		r.bcastAppend()
	}
}

// bcastAppend sends appends to every member that can take them: new
// entries, or a new commit index.
func (r *raft) bcastAppend() {
	r.trk.visit(func(id uint64, _ *Progress) {
		if id != r.id {
			r.maybeSendAppend(id, false)
		}
	})
}

// maybeSendAppend sends the entries the member lacks (or a snapshot if they
// are compacted), unless flow control holds it back. With sendIfEmpty it
// also sends an empty append, which carries the commit index. It reports
// whether it sent anything.
func (r *raft) maybeSendAppend(to uint64, sendIfEmpty bool) bool {
	pr := r.trk.progress[to]
	if pr.isPaused() {
		// A full window holds back entries, not the commit index: a
		// streaming follower learns it at once, or it would wait for an
		// acknowledgement to free the window (as etcd raft's
		// ShouldSendMsgApp).
		if pr.State == StateReplicate && pr.canBumpCommit(r.log.committed) {
			return r.sendCommit(to, pr)
		}
		return false
	}
	prevIndex := pr.Next - 1
	prevTerm, errTerm := r.log.term(prevIndex)
	ents, errEnts := r.log.entries(pr.Next, r.cfg.MaxSizePerMsg)
	if len(ents) == 0 && !sendIfEmpty && !pr.canBumpCommit(r.log.committed) {
		return false
	}
	if errTerm != nil || errEnts != nil || r.buggifySnapshot(pr) {
		// The entries the member needs are compacted: send the snapshot.
		return r.startSnapshot(to, pr)
	}
	var bytes uint64
	for i := range ents {
		bytes += ents[i].size()
	}
	r.send(Message{To: to, Type: MsgApp, Index: prevIndex, LogTerm: prevTerm,
		Entries: ents, Commit: r.log.committed})
	last := prevIndex
	if n := len(ents); n > 0 {
		last = ents[n-1].Index
		pr.sentEntries(last, bytes)
	}
	pr.sentCommit = max(pr.sentCommit, min(r.log.committed, last))
	return true
}

// sendCommit sends a streaming member the commit index in an empty append
// after the last entry sent to it. Were an earlier append lost, the member
// refuses this one, and the leader probes, as for any lost append.
func (r *raft) sendCommit(to uint64, pr *Progress) bool {
	prevIndex := pr.Next - 1
	prevTerm, err := r.log.term(prevIndex)
	if err != nil {
		return false // compacted: the member is sent a snapshot in time
	}
	r.send(Message{To: to, Type: MsgApp, Index: prevIndex, LogTerm: prevTerm, Commit: r.log.committed})
	pr.sentCommit = max(pr.sentCommit, min(r.log.committed, prevIndex))
	return true
}

// bcastHeartbeat sends heartbeats to every member, starting a ReadIndex
// round. Commit is capped at each member's Match, since a follower may not
// have the entries up to ours yet.
func (r *raft) bcastHeartbeat() {
	ctx := r.readOnly.nextRound(r.ticks)
	r.trk.visit(func(id uint64, pr *Progress) {
		if id == r.id {
			return
		}
		commit := min(pr.Match, r.log.committed)
		r.send(Message{To: id, Type: MsgHeartbeat, Commit: commit, Context: ctx})
		pr.sentCommit = max(pr.sentCommit, commit)
		// A probing member gets one append per heartbeat interval.
		pr.ProbeSent = false
	})
}

// handleReadIndex serves a ReadIndex request, local (m.From == r.id) or
// forwarded by a follower.
func (r *raft) handleReadIndex(m Message) {
	if !r.committedInTerm() {
		// §6.4 step 1: until an entry of this term commits, our commit index
		// may lag the true one. Hold the read. A lone voter too: restarted,
		// it knows only the commit index it last wrote, and may have
		// applied, and answered, entries beyond it before it crashed.
		r.pendingReads = append(r.pendingReads, m)
		return
	}
	req := readRequest{index: r.log.committed, ctx: m.Context, from: m.From}
	if r.trk.isLoneVoter(r.id) || r.planted(BugReadIndexNoHeartbeat) {
		// Nobody can depose a lone voter: its commit index is current. (A
		// leader that removed itself is not one, even when one voter is
		// left: that voter may lead already.)
		r.answerRead(req)
		return
	}
	if r.leaseValid() {
		r.answerRead(req)
		return
	}
	r.readOnly.add(req)
	r.bcastHeartbeat()
}

// committedInTerm reports whether an entry of the current term has committed.
func (r *raft) committedInTerm() bool {
	return r.log.zeroTermOnOutOfBounds(r.log.term(r.log.committed)) == r.Term
}

// leaseValid reports whether a lease read may be answered now: a quorum
// acknowledged a heartbeat sent less than leaseTicks ago, this leader is a
// voter (a leader handing over after its removal holds no lease: the
// voters it leaves may elect themselves without it), and no transfer has
// been attempted this term.
func (r *raft) leaseValid() bool {
	if r.readOnly.option != ReadOnlyLeaseBased || r.transferredThisTerm || !r.trk.config.Voters.Contains(r.id) {
		return false
	}
	start := r.readOnly.leaseStart(r.trk.config.Voters, r.id, r.ticks)
	lease := r.cfg.leaseTicks()
	if r.planted(BugLeaseNoMargin) {
		lease = uint64(r.cfg.ElectionTick)
	}
	return start != 0 && r.ticks < start+lease
}

// releasePendingReads serves the reads held until the first commit of the
// term.
func (r *raft) releasePendingReads() {
	if len(r.pendingReads) == 0 || !r.committedInTerm() {
		return
	}
	held := r.pendingReads
	r.pendingReads = nil
	for _, m := range held {
		r.handleReadIndex(m)
	}
}

// releaseReads answers the reads whose round a quorum has confirmed.
func (r *raft) releaseReads() {
	for _, req := range r.readOnly.release(r.trk.config.Voters, r.id) {
		r.answerRead(req)
	}
}

func (r *raft) answerRead(req readRequest) {
	if req.from == None || req.from == r.id {
		r.readStates = append(r.readStates, ReadState{Index: req.index, RequestCtx: req.ctx})
		return
	}
	r.send(Message{To: req.from, Type: MsgReadIndexResp, Index: req.index, Context: req.ctx})
}

// handleTransferLeader starts handing leadership to transferee (§3.10 of
// the thesis): bring it up to date, then tell it to campaign at once.
func (r *raft) handleTransferLeader(transferee uint64) {
	pr := r.trk.progress[transferee]
	if pr == nil || pr.IsLearner || transferee == r.id {
		return
	}
	if r.leadTransferee != None {
		if r.leadTransferee == transferee {
			return // already under way
		}
		r.abortLeaderTransfer()
	}
	r.leadTransferee = transferee
	r.transferredThisTerm = true
	// The transfer must finish within an election timeout.
	r.electionElapsed = 0
	if pr.Match == r.log.lastIndex() {
		r.sendTimeoutNow(transferee)
	} else {
		r.maybeSendAppend(transferee, true)
	}
}

func (r *raft) sendTimeoutNow(to uint64) {
	r.send(Message{To: to, Type: MsgTimeoutNow})
	if r.leaving() {
		// A removed leader's work is done: the transferee holds its whole
		// log, so the others can elect it even if this message is lost.
		r.becomeFollower(r.Term, None)
	}
}
