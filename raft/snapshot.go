package raft

import "errors"

// InstallSnapshot (§7 of the paper, Figure 13). A leader that has compacted
// the entries a follower needs sends its latest snapshot instead, in chunks
// of MaxSnapshotChunkSize bytes with a few chunks in flight at a time; the
// follower acknowledges each chunk with MsgSnapResp and, once the last one
// has arrived and the snapshot is durable, with a MsgAppResp at the
// snapshot's index, which puts the follower back into log replication.

// snapshotChunksInFlight is how many chunks may await acknowledgement.
const snapshotChunksInFlight = 4

// snapshotStallHeartbeats is how many heartbeat intervals a transfer may go
// without progress before it is resumed from the last acknowledged byte.
const snapshotStallHeartbeats = 2

// incomingSnapshot is a follower's snapshot under assembly.
type incomingSnapshot struct {
	metadata SnapshotMetadata
	total    uint64
	// data holds the bytes received so far.
	// Invariant: uint64(len(data)) <= total.
	data []byte
}

// startSnapshot puts member to into snapshot state and starts sending the
// latest snapshot. It reports whether anything was sent.
func (r *raft) startSnapshot(to uint64, pr *Progress) bool {
	if !r.recentlyActive(pr) {
		// Do not stream a snapshot to a member we have not heard from.
		return false
	}
	snap, err := r.log.snapshot()
	if errors.Is(err, ErrSnapshotTemporarilyUnavailable) {
		return false
	} else if err != nil {
		panic("raft: read snapshot: " + err.Error())
	}
	if snap.IsEmpty() {
		panic("raft: entries are compacted but there is no snapshot")
	}
	pr.becomeSnapshot(snap.Metadata.Index)
	r.sendSnapshotChunks(to, pr, snap)
	return true
}

// sendSnapshotChunks sends chunks of snap while the window allows.
func (r *raft) sendSnapshotChunks(to uint64, pr *Progress, snap Snapshot) {
	total := uint64(len(snap.Data))
	chunk := r.cfg.MaxSnapshotChunkSize
	for first := pr.SnapshotSent == 0; first || (pr.SnapshotSent < total && pr.SnapshotSent-pr.SnapshotAcked < snapshotChunksInFlight*chunk); first = false {
		end := min(pr.SnapshotSent+chunk, total)
		r.send(Message{To: to, Type: MsgSnap, Snapshot: &SnapshotChunk{
			Metadata: snap.Metadata, Offset: pr.SnapshotSent, Total: total,
			Data: snap.Data[pr.SnapshotSent:end],
		}})
		pr.SnapshotSent = end
	}
}

// resumeSnapshot re-reads the snapshot and sends more of it; if a newer
// snapshot has replaced it, the transfer starts over with that one.
func (r *raft) resumeSnapshot(to uint64, pr *Progress) {
	snap, err := r.log.snapshot()
	if err != nil || snap.Metadata.Index != pr.PendingSnapshot {
		pr.becomeProbe()
		r.maybeSendAppend(to, true)
		return
	}
	r.sendSnapshotChunks(to, pr, snap)
}

// handleSnapshotChunkAck is the leader's side of a chunk acknowledgement.
func (r *raft) handleSnapshotChunkAck(m Message, pr *Progress) {
	c := m.Snapshot
	if pr.State != StateSnapshot || c == nil || c.Metadata.Index != pr.PendingSnapshot {
		return // stale
	}
	// The follower's offset is the truth about the bytes it holds: it may
	// be behind what was acknowledged (it restarted) or ahead of what the
	// leader now thinks it sent (chunks from before a rewind arrived).
	switch {
	case c.Offset > c.Total:
		return // nonsense
	case m.Reject:
		// A chunk went missing: go back to where the follower is, once per
		// stall period (resendStalledSnapshots clears the flag). The chunks
		// sent after the lost one are rejected too, and with messages
		// duplicated and reordered a window sent again brings rejections
		// of its own: rewinding for each would send window after window,
		// a storm that grows with every round.
		if pr.snapshotRewound {
			return
		}
		pr.SnapshotAcked, pr.SnapshotSent = c.Offset, c.Offset
		pr.snapshotRewound = true
	case c.Offset > pr.SnapshotAcked:
		pr.SnapshotAcked = c.Offset
		pr.SnapshotSent = max(pr.SnapshotSent, c.Offset)
	default:
		return // old news
	}
	pr.snapshotStalled = 0
	r.resumeSnapshot(m.From, pr)
}

// resendStalledSnapshots restarts transfers that made no progress for a
// while (chunks lost), and gives up on members that went silent.
func (r *raft) resendStalledSnapshots() {
	r.trk.visit(func(id uint64, pr *Progress) {
		if pr.State != StateSnapshot || id == r.id {
			return
		}
		pr.snapshotStalled++
		if pr.snapshotStalled < snapshotStallHeartbeats {
			return
		}
		pr.snapshotStalled = 0
		pr.snapshotRewound = false
		if !r.recentlyActive(pr) || pr.SnapshotAcked >= pr.SnapshotSent && pr.SnapshotSent > 0 {
			// Silent member, or every chunk acknowledged but the final
			// answer lost: go back to probing, which restarts the snapshot
			// if it is still needed.
			pr.becomeProbe()
			r.maybeSendAppend(id, true)
			return
		}
		pr.SnapshotSent = pr.SnapshotAcked
		r.resumeSnapshot(id, pr)
	})
}

// handleSnapshotChunk is the follower's side: assemble, then install.
func (r *raft) handleSnapshotChunk(m Message) {
	c := m.Snapshot
	if c == nil {
		return
	}
	ack := func(offset uint64, reject bool) {
		r.send(Message{To: m.From, Type: MsgSnapResp, Reject: reject,
			Snapshot: &SnapshotChunk{Metadata: c.Metadata, Offset: offset, Total: c.Total}})
	}
	if c.Metadata.Index <= r.log.committed && !r.planted(BugSnapshotOverNewerEntries) {
		// We already have everything it holds.
		r.incomingSnapshot = nil
		ack(c.Total, false)
		r.send(Message{To: m.From, Type: MsgAppResp, Index: r.log.committed})
		return
	}
	in := r.incomingSnapshot
	same := in != nil && in.metadata.Index == c.Metadata.Index && in.metadata.Term == c.Metadata.Term && in.total == c.Total
	if c.Offset == 0 && !same {
		// The start of a new snapshot (a late copy of the first chunk of
		// the one under way must not throw away what has arrived).
		in = &incomingSnapshot{metadata: c.Metadata, total: c.Total}
		r.incomingSnapshot, same = in, true
	}
	if !same {
		ack(0, true)
		return
	}
	switch {
	case c.Offset+uint64(len(c.Data)) > c.Total:
		ack(uint64(len(in.data)), true) // malformed: start over from what we have
		return
	case c.Offset < uint64(len(in.data)):
		// A duplicate or late chunk: we hold its bytes. Say how far we
		// are, without asking for anything to be sent again.
		ack(uint64(len(in.data)), false)
		return
	case c.Offset > uint64(len(in.data)):
		// A gap: a chunk was lost. Ask for what follows our bytes.
		ack(uint64(len(in.data)), true)
		return
	}
	in.data = append(in.data, c.Data...)
	ack(uint64(len(in.data)), false)
	if uint64(len(in.data)) < in.total {
		return
	}
	r.incomingSnapshot = nil
	snap := Snapshot{Metadata: in.metadata, Data: in.data}
	if r.restore(snap) {
		r.send(Message{To: m.From, Type: MsgAppResp, Index: r.log.lastIndex()})
	} else {
		r.send(Message{To: m.From, Type: MsgAppResp, Index: r.log.committed})
	}
}

// restore replaces the log and configuration with snapshot s. It returns
// false if s brings nothing new, or cannot be installed yet (committed
// entries handed out are still being applied).
func (r *raft) restore(s Snapshot) bool {
	if s.Metadata.Index <= r.log.committed && !r.planted(BugSnapshotOverNewerEntries) {
		return false
	}
	if r.log.applying > r.log.applied {
		// Committed entries handed out in a Ready are not applied yet: the
		// application would apply them, configuration changes included, on
		// top of the snapshot's newer state. Refuse it for now (the leader
		// sends it again), as a dropped message.
		return false
	}
	if r.state != StateFollower {
		// Only a leader of our term sends snapshots, so we are a follower.
		panic("raft: a non-follower is restoring a snapshot")
	}
	cs := s.Metadata.ConfState
	if !cs.Contains(r.id) {
		// A snapshot whose configuration does not include us was not meant
		// for us (we were removed, or it is mis-addressed): refuse it.
		return false
	}
	if r.log.matchTerm(s.Metadata.Index, s.Metadata.Term) && !r.planted(BugSnapshotOverNewerEntries) {
		// Our log already holds the snapshot's last entry: fast-forward the
		// commit index instead of replacing the log (§7: "if existing log
		// entry has same index and term as snapshot's last included entry,
		// retain log entries following it").
		r.log.commitTo(s.Metadata.Index)
		return false
	}
	r.log.restore(s)
	r.trk = newTracker(r.cfg.MaxInflightMsgs, r.cfg.MaxInflightBytes)
	if err := restoreConfig(&r.trk, r.log.lastIndex(), cs); err != nil {
		panic("raft: restore configuration from snapshot: " + err.Error())
	}
	pr := r.trk.progress[r.id]
	r.isLearner = pr != nil && pr.IsLearner
	r.wasRemoved = false // the snapshot names it
	return true
}
