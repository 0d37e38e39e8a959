package server

import (
	"fmt"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
)

// apply applies committed entries in order: commands to the key space,
// member information to the member table, configuration changes to raft.
// Each proposal applies once, however often the log holds it.
func (m *Member) apply(ents []raft.Entry) error {
	for _, e := range ents {
		switch {
		case e.Type == raft.EntryConfChange:
			if err := m.applyConfChange(e); err != nil {
				return err
			}
		case len(e.Data) > 0:
			if err := m.applyProposal(e); err != nil {
				return err
			}
		}
		m.applied = e.Index
	}
	return nil
}

func (m *Member) applyProposal(e raft.Entry) error {
	p, err := decodeProposal(e.Data)
	if err != nil {
		// Every member holds the same bytes: a bad entry is a bug, not
		// an input to tolerate.
		return fmt.Errorf("server: entry %d: %w", e.Index, err)
	}
	if !m.dedup.firstTime(p.proposer, p.incarnation, p.requestID, e.Index) {
		return nil // a duplicate of a proposal already applied
	}
	mine := p.proposer == m.cfg.ID && p.incarnation == m.incarnation
	switch p.kind {
	case kindCommand:
		var cmd kvstore.Command
		if err := cmd.UnmarshalBinary(p.payload); err != nil {
			return fmt.Errorf("server: entry %d: %w", e.Index, err)
		}
		res := m.store.Apply(e.Index, cmd)
		m.storeStats.CountApplied(&cmd, res)
		if m.cfg.OnApplied != nil {
			m.cfg.OnApplied(e.Index, &cmd, res)
		}
		if cmd.Op == kvstore.OpExpire && mine {
			m.expiryPendingUntil = 0
		}
		if !mine || p.requestID == 0 {
			return nil
		}
		w := m.writes[p.requestID]
		if w == nil {
			return nil // timed out already
		}
		delete(m.writes, p.requestID)
		resp := Response{Event: res.Event, RaftIndex: e.Index, RaftTerm: m.term()}
		if res.Err != nil {
			resp.Err = res.Err
		}
		w.done(resp)
	case kindMemberInfo:
		info, err := decodeMemberInfo(p.payload)
		if err != nil {
			return fmt.Errorf("server: entry %d: %w", e.Index, err)
		}
		// Information about a member no longer in the configuration is
		// stale; ignore it.
		if cur, ok := m.cluster.members[info.ID]; ok {
			// The configuration decides learner or voter, not the member.
			info.IsLearner = cur.IsLearner
			m.cluster.set(info)
			m.membersChanged = true
		}
		if mine && p.requestID != 0 {
			if w := m.writes[p.requestID]; w != nil {
				delete(m.writes, p.requestID)
				w.done(Response{RaftIndex: e.Index, RaftTerm: m.term(), Members: m.cluster.list()})
			}
		}
	}
	return nil
}

// applyConfChange applies a membership change. Its Context, when set,
// carries the new member's information.
func (m *Member) applyConfChange(e raft.Entry) error {
	cc, cctx, err := decodeConfChangeEntry(e)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if !m.firstTimeChange(cctx, e.Index) {
		return nil
	}
	cs, err := m.node.ApplyConfChange(cc)
	if err == nil {
		// A refused change (deterministically refused on every member)
		// changes nothing.
		if m.snapshotIndex > 0 && addsMember(m.confState, cs) {
			// A new member catches up from a snapshot if the log was
			// compacted, and refuses one whose configuration does not
			// name it (raft's restore): the latest snapshot, taken before
			// it was added, would never do. Every member takes one, so
			// whoever leads next has one too.
			m.snapshotNow = true
		}
		m.confState = cs
	}
	m.applyMembershipContext(cc, cctx, err)
	return nil
}

// firstTimeChange says a membership request's change has not applied
// before. A follower forwards the change to the leader as a proposal,
// which the network may deliver twice; the second copy, committed after
// the first applied, must change nothing (a member removed in between
// would come back). Like every proposal, it is known by its proposer,
// incarnation and request ID in the shared deduplication table, so every
// member, and a replay of the log, decides alike.
func (m *Member) firstTimeChange(cctx confChangeContext, index uint64) bool {
	if cctx.kind != ccRequest {
		return true
	}
	p := cctx.proposal
	return m.dedup.firstTime(p.proposer, p.incarnation, p.requestID, index)
}

// decodeConfChangeEntry decodes a configuration change entry and its
// context.
func decodeConfChangeEntry(e raft.Entry) (raft.ConfChange, confChangeContext, error) {
	var cc raft.ConfChange
	if err := cc.UnmarshalBinary(e.Data); err != nil {
		return cc, confChangeContext{}, fmt.Errorf("entry %d: %w", e.Index, err)
	}
	cctx, err := decodeConfChangeContext(cc.Context)
	if err != nil {
		return cc, cctx, fmt.Errorf("entry %d: %w", e.Index, err)
	}
	return cc, cctx, nil
}

// addsMember reports whether configuration after holds a member before
// does not.
func addsMember(before, after raft.ConfState) bool {
	for _, set := range [][]uint64{after.Voters, after.Learners, after.VotersOutgoing, after.LearnersNext} {
		for _, id := range set {
			if !before.Contains(id) {
				return true
			}
		}
	}
	return false
}

// installSnapshot replaces the state machine with a snapshot received from
// the leader (already durable and in raftLog).
func (m *Member) installSnapshot(snap raft.Snapshot) error {
	if err := m.restoreSnapshot(snap.Data); err != nil {
		return fmt.Errorf("server: install snapshot %d: %w", snap.Metadata.Index, err)
	}
	m.applied = snap.Metadata.Index
	// The installed snapshot, durable and newer, is the one to send now:
	// a snapshot wanted before it is no longer.
	m.snapshotIndex, m.snapshotNow = m.applied, false
	m.confState = snap.Metadata.ConfState
	return nil
}

// maybeSnapshot takes a snapshot every SnapshotEvery applied entries,
// compacts the log behind it (keeping SnapshotKeep entries for slow
// followers) and lets the storage release what it no longer needs.
//
// A full disk is not fatal here: the entries the snapshot would cover are
// in the WAL still. The member goes on (the WAL refuses writes itself if it
// runs out of room) and tries again an election timeout later.
func (m *Member) maybeSnapshot() error {
	// A snapshot wanted now at the index of the last one means that one's
	// file no longer reads back (snapshotUnreadable): in a cluster that
	// applies nothing new, only writing it again lets a lagging follower
	// catch up.
	rewrite := m.snapshotNow && m.applied == m.snapshotIndex && m.applied > 0
	if (m.applied <= m.snapshotIndex && !rewrite) || (m.applied < m.snapshotIndex+m.cfg.SnapshotEvery && !m.snapshotNow) {
		return nil
	}
	if m.ticks < m.snapshotRetryAt {
		return nil
	}
	term, err := m.raftLog.Term(m.applied)
	if err != nil {
		return fmt.Errorf("server: snapshot at %d: %w", m.applied, err)
	}
	meta := raft.SnapshotMetadata{Index: m.applied, Term: term, ConfState: m.confState}
	// The data goes straight to disk, never whole in memory; the in-memory
	// log takes the metadata once the file is saved, and raft reads the
	// data back from the file should a follower need it (snapshotLog).
	if err := m.disk.SaveSnapshotStream(meta, m.writeSnapshot); err != nil {
		if retriable(err) {
			m.snapshotRetryAt = m.ticks + uint64(m.cfg.ElectionTicks)
			return nil
		}
		return err
	}
	if rewrite {
		// Same index, term and state: the in-memory log already holds its
		// metadata, and raft reads the data back from the new file.
		m.snapshotNow = false
		return nil
	}
	cs := m.confState
	if _, err := m.raftLog.CreateSnapshot(m.applied, &cs, nil); err != nil {
		return fmt.Errorf("server: snapshot at %d: %w", m.applied, err)
	}
	m.snapshotIndex, m.snapshotNow = m.applied, false
	if m.applied > m.cfg.SnapshotKeep {
		compactTo := m.applied - m.cfg.SnapshotKeep
		if first, _ := m.raftLog.FirstIndex(); compactTo >= first {
			if err := m.raftLog.Compact(compactTo); err != nil {
				return fmt.Errorf("server: compact log to %d: %w", compactTo, err)
			}
		}
		if err := m.disk.Release(compactTo); err != nil {
			return err
		}
	}
	return nil
}
