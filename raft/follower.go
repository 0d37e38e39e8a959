package raft

// stepFollower handles a message in StateFollower.
func stepFollower(r *raft, m Message) error {
	switch m.Type {
	case MsgProp:
		if r.lead == None || r.cfg.DisableProposalForwarding {
			return ErrProposalDropped
		}
		m.To = r.lead
		r.send(m)
	case MsgApp:
		r.heardFromLeader(m.From)
		r.handleAppendEntries(m)
	case MsgHeartbeat:
		r.heardFromLeader(m.From)
		r.handleHeartbeat(m)
	case MsgSnap:
		r.heardFromLeader(m.From)
		r.handleSnapshotChunk(m)
	case MsgTransferLeader:
		if r.lead == None {
			return nil // no leader to forward to; the request is dropped
		}
		m.To = r.lead
		r.send(m)
	case MsgTimeoutNow:
		// §3.10 of the thesis: the leader asks us to campaign at once, with
		// no pre-vote and past any lease (the Transfer flag). Nobody hands
		// leadership to a member that is not in the configuration: a late
		// copy from before our removal is ignored.
		if !r.removed() {
			r.hup(true)
		}
	case MsgReadIndex:
		if r.lead == None {
			return nil // dropped; the application retries on a timeout
		}
		m.To = r.lead
		r.send(m)
	case MsgReadIndexResp:
		r.readStates = append(r.readStates, ReadState{Index: m.Index, RequestCtx: m.Context})
	}
	return nil
}

// stepCandidate handles a message in StatePreCandidate and StateCandidate.
func stepCandidate(r *raft, m Message) error {
	myVoteResp := MsgVoteResp
	if r.state == StatePreCandidate {
		myVoteResp = MsgPreVoteResp
	}
	switch m.Type {
	case MsgProp:
		return ErrProposalDropped
	case MsgApp, MsgHeartbeat, MsgSnap:
		// §5.2: "If AppendEntries RPC received from new leader: convert to
		// follower." Same term, so a leader was elected.
		r.becomeFollower(m.Term, m.From)
		return r.step(r, m)
	case myVoteResp:
		r.trk.recordVote(m.From, !m.Reject)
		switch _, _, res := r.trk.tallyVotes(); res {
		case VoteWon:
			if r.state == StatePreCandidate {
				r.campaign(false, false)
			} else {
				r.becomeLeader()
				r.bcastAppend()
			}
		case VoteLost:
			// A rejection at a higher term already made us a follower in
			// Step; here the vote was lost at our own term.
			r.becomeFollower(r.Term, None)
		}
	case MsgTimeoutNow:
		// Ignored: we are already campaigning.
	}
	return nil
}

// heardFromLeader restarts the election clock and the promise (see
// promising) on a message from leader lead.
func (r *raft) heardFromLeader(lead uint64) {
	r.electionElapsed = 0
	r.lead = lead
	r.leaderHeardAt = r.ticks
}

// handleAppendEntries is AppendEntries' receiver (Figure 2).
func (r *raft) handleAppendEntries(m Message) {
	if m.Index < r.log.committed {
		// Rule 2 cannot fail below our commit index (those entries match
		// by Log Matching); say how far we are.
		r.send(Message{To: m.From, Type: MsgAppResp, Index: r.log.committed})
		return
	}
	if last, ok := r.log.maybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries); ok {
		r.send(Message{To: m.From, Type: MsgAppResp, Index: last})
		return
	}
	// Rule 2: "Reply false if log doesn't contain an entry at prevLogIndex
	// whose term matches prevLogTerm." Hint the leader where to retry: the
	// last index at or before m.Index whose term is at most m.LogTerm.
	hintIndex := min(m.Index, r.log.lastIndex())
	hintIndex, hintTerm := r.log.findConflictByTerm(hintIndex, m.LogTerm)
	r.send(Message{To: m.From, Type: MsgAppResp, Index: m.Index, Reject: true,
		RejectHint: hintIndex, LogTerm: hintTerm})
}

// handleHeartbeat advances the commit index and echoes the ReadIndex round.
func (r *raft) handleHeartbeat(m Message) {
	r.log.commitTo(m.Commit)
	r.send(Message{To: m.From, Type: MsgHeartbeatResp, Context: m.Context})
}
