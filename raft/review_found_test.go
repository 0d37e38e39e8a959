package raft

// Found by a review of the raft core (2026-12-04), each failing before
// its fix.

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// A follower forwards TransferLeadership(3) to the leader: the leader must
// hand leadership to 3, not to the forwarding follower.
func TestForwardedTransferNamesTheTransferee(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.elect(1)
	c.nodes[2].TransferLeadership(3)
	c.processReadies()
	c.stabilize()
	if l := c.leader(); l != 3 {
		t.Fatalf("TransferLeadership(3) asked of follower 2: leader is %d, want 3", l)
	}
}

// Node.Campaign on a member that acknowledged the leader's heartbeat less
// than an election timeout ago: its own vote breaks the promise the
// leader's lease rests on.
func TestCampaignKeepsTheLeasePromise(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.CheckQuorum, cfg.PreVote, cfg.ReadOnlyOption = true, true, ReadOnlyLeaseBased
	})
	c.elect(1)
	// Cut 3 off from 1 long enough for 3's promise to expire; 2 keeps
	// acknowledging 1's heartbeats.
	c.cut[[2]uint64{1, 3}], c.cut[[2]uint64{3, 1}] = true, true
	for range 25 {
		for _, id := range c.ids {
			c.nodes[id].Tick()
		}
		c.stabilize()
	}
	if !c.nodes[1].HoldsLease() || !c.nodes[2].Promising() || c.nodes[3].Promising() {
		t.Fatalf("setup: lease=%v promising2=%v promising3=%v", c.nodes[1].HoldsLease(), c.nodes[2].Promising(), c.nodes[3].Promising())
	}
	// Now isolate 1, and have the application call Campaign on 2.
	c.partition([]uint64{1}, []uint64{2, 3})
	c.nodes[2].Campaign()
	c.processReadies()
	c.stabilize()
	if err := c.propose(2, "new"); err != nil {
		t.Fatal(err)
	}
	c.stabilize()
	_, ss2, _ := c.nodes[2].BasicStatus()
	if ss2.State == StateLeader && c.nodes[2].r.committedInTerm() && c.nodes[1].HoldsLease() {
		t.Fatalf("2 leads term %d and committed, while 1 (term %d) still holds its lease", c.nodes[2].r.Term, c.nodes[1].r.Term)
	}
}

// The contract lets the application Step while a Ready is outstanding and
// apply that Ready's CommittedEntries afterwards (step 4 may run in
// parallel with step 2). If a snapshot is installed by such a Step, the
// held Ready's configuration change is then applied on top of the
// snapshot's (newer) configuration.
func TestNoSnapshotOverUnappliedConfChanges(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.elect(1)
	// cc1: add learner 4 (member 4 never runs; messages to it are dropped).
	must := func(err error) {
		t.Helper()
		require.NoError(t, err)
	}
	must(c.nodes[1].ProposeConfChange(ConfChange{Changes: []ConfChangeSingle{{Type: ConfChangeAddLearnerNode, NodeID: 4}}}))
	c.processReadies()
	// Run the cluster, but when member 3's Ready hands out cc1 to apply,
	// carry out steps 1-3 and hold steps 4 and 6 (a slow state machine).
	var held *Ready
	for i := 0; i < 100 && held == nil; i++ {
		msgs := c.inflight
		c.inflight = nil
		for _, m := range msgs {
			if n, ok := c.nodes[m.To]; ok {
				_ = n.Step(m)
			}
		}
		c.processReady(1)
		c.processReady(2)
		n3 := c.nodes[3]
		if !n3.HasReady() {
			continue
		}
		rd := n3.Ready()
		hasCC := false
		for _, e := range rd.CommittedEntries {
			hasCC = hasCC || e.Type == EntryConfChange && e.Index > 3
		}
		if !hasCC {
			n3.Advance(rd) // nothing to hold; carry it out
			_ = c.storage[3].Append(rd.Entries)
			if !rd.HardState.IsEmpty() {
				_ = c.storage[3].SetHardState(rd.HardState)
			}
			c.inflight = append(c.inflight, rd.Messages...)
			c.inflight = append(c.inflight, rd.MessagesAfterPersist...)
			for _, e := range rd.CommittedEntries {
				c.applied[3] = append(c.applied[3], e)
			}
			continue
		}
		_ = c.storage[3].Append(rd.Entries)
		if !rd.HardState.IsEmpty() {
			_ = c.storage[3].SetHardState(rd.HardState)
		}
		c.inflight = append(c.inflight, rd.Messages...)
		c.inflight = append(c.inflight, rd.MessagesAfterPersist...)
		held = &rd
	}
	if held == nil {
		t.Fatal("setup: member 3 never handed out cc1")
	}
	// Meanwhile the cluster removes 4 again (cc2) without 3, and the
	// leader compacts its log: 3 will be sent a snapshot.
	c.cut[[2]uint64{1, 3}], c.cut[[2]uint64{3, 1}] = true, true
	c.stabilize()
	must(c.nodes[1].ProposeConfChange(removal(4)))
	c.processReadies()
	c.stabilize()
	must(c.propose(1, "x"))
	c.stabilize()
	must(c.compact(1))
	// The leader's snapshot reaches 3 (one chunk), while 3's Ready is held.
	snap := c.sendSnapshot(1, 3)
	t.Logf("leader's snapshot at %d, conf %+v", snap.Index, snap.ConfState)
	t.Logf("3 after the snapshot: %+v", c.nodes[3].Status().Config)
	// Now the application applies the held Ready's entries (step 4) and
	// advances (step 6), as the contract says.
	for _, cc := range heldConfChanges(t, held) {
		_, _ = c.nodes[3].ApplyConfChange(cc)
	}
	c.nodes[3].Advance(*held)
	c.processReady(3) // writes and applies the snapshot, if it was taken
	got, want := c.nodes[3].Status().Config, snap.ConfState
	if c.nodes[3].Status().Applied >= snap.Index && fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("member 3 installed the snapshot of configuration %+v but now uses %+v", want, got)
	}
}

// holdReadyWithConfChange runs the cluster; member id's Readys are carried
// out normally until one hands out a configuration change (beyond the
// bootstrap ones) to apply: of that one, steps 1-3 are carried out and
// steps 4 and 6 (apply, Advance) are held. It returns the held Ready.
func (c *testCluster) holdReadyWithConfChange(t *testing.T, id uint64, boot uint64) *Ready {
	for i := 0; i < 200; i++ {
		c.stepInflight()
		for _, o := range c.ids {
			if o != id {
				c.processReady(o)
			}
		}
		n := c.nodes[id]
		if !n.HasReady() {
			continue
		}
		rd := n.Ready()
		hasCC := false
		for _, e := range rd.CommittedEntries {
			hasCC = hasCC || e.Type == EntryConfChange && e.Index > boot
		}
		_ = c.storage[id].Append(rd.Entries)
		if !rd.HardState.IsEmpty() {
			_ = c.storage[id].SetHardState(rd.HardState)
		}
		c.inflight = append(c.inflight, rd.Messages...)
		c.inflight = append(c.inflight, rd.MessagesAfterPersist...)
		if hasCC {
			return &rd
		}
		c.applied[id] = append(c.applied[id], rd.CommittedEntries...)
		n.Advance(rd)
	}
	t.Fatal("setup: no configuration change handed out")
	return nil
}

// heldConfChanges decodes the configuration changes a held Ready hands out
// to apply.
func heldConfChanges(t *testing.T, rd *Ready) []ConfChange {
	var ccs []ConfChange
	for _, e := range rd.CommittedEntries {
		if e.Type == EntryConfChange {
			var cc ConfChange
			require.NoError(t, cc.UnmarshalBinary(e.Data))
			ccs = append(ccs, cc)
		}
	}
	return ccs
}

func addVoter(id uint64) ConfChange {
	return ConfChange{Changes: []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: id}}}
}

// The same, with voters: applied over the snapshot, the stale removals
// would shrink member 3's voter set by two and let two leaders be elected
// in one term (MaxCommittedSizePerReady makes the Ready that hands out the
// two removals hold nothing else).
func TestStaleConfChangesCannotElectTwoLeaders(t *testing.T) {
	must := func(err error) {
		t.Helper()
		require.NoError(t, err)
	}
	c := newTestCluster(t, 5, func(cfg *Config) { cfg.MaxCommittedSizePerReady = 44 })
	c.elect(1)
	change := func(cc ConfChange) {
		t.Helper()
		must(c.nodes[1].ProposeConfChange(cc))
		c.processReadies()
		c.stabilize()
	}
	// 3 is cut off while 5, then 4, are removed.
	c.partition([]uint64{1, 2, 4, 5}, []uint64{3})
	for i := range 20 {
		must(c.propose(1, fmt.Sprintf("e%02d", i)))
	}
	c.stabilize()
	change(removal(5))
	change(removal(4))
	t.Logf("1's configuration: %+v", c.nodes[1].Status().Config)
	// 3 comes back, stores both removals and learns they committed; the
	// Ready that hands them out to apply is held (slow state machine).
	c.heal()
	c.nodes[1].Tick() // a heartbeat finds 3 behind
	c.processReadies()
	held := c.holdReadyWithConfChange(t, 3, 5)
	ccs := heldConfChanges(t, held)
	if len(ccs) < 2 {
		t.Fatalf("setup: the held Ready of 3 carries %d configuration changes, want both removals: %+v", len(ccs), ccs)
	}
	// Without 3, the cluster adds 4 and 5 back, and the leader compacts.
	c.partition([]uint64{1, 2, 4, 5}, []uint64{3})
	c.inflight = nil
	change(addVoter(4))
	change(addVoter(5))
	must(c.compact(1))
	snap := c.sendSnapshot(1, 3)
	t.Logf("leader's snapshot at %d: %+v", snap.Index, snap.ConfState)
	// The application now applies the held Ready, as the contract allows.
	for _, cc := range ccs {
		_, _ = c.nodes[3].ApplyConfChange(cc)
	}
	c.nodes[3].Advance(*held)
	c.inflight = nil
	c.processReadies() // 3 writes and applies the snapshot
	c.inflight = nil
	t.Logf("3's configuration: %+v", c.nodes[3].Status().Config)
	// A partition {1, 3} | {2, 4, 5}; 3 and 2 each time out.
	c.partition([]uint64{1, 3}, []uint64{2, 4, 5})
	c.nodes[3].Campaign()
	c.processReadies()
	c.stabilize()
	c.nodes[2].Campaign()
	c.processReadies()
	c.stabilize()
	var leaders []string
	for _, id := range c.ids {
		if hs, ss, _ := c.nodes[id].BasicStatus(); ss.State == StateLeader {
			leaders = append(leaders, fmt.Sprintf("%d@term%d", id, hs.Term))
		}
	}
	t.Logf("leaders: %v", leaders)
	c.leader() // fails the test on two leaders of one term
}

// TestRejectedVoteKeepsTheElectionTimer: a vote request of a higher term
// from a candidate whose log is behind makes a follower adopt the term and
// refuse, but does not restart its election timer (Figure 2 restarts it on
// hearing the leader or granting a vote): otherwise a candidate that keeps
// timing out first holds back every member able to win. Found by the
// simulator (seed 940005289, in TestFoundSeeds).
func TestRejectedVoteKeepsTheElectionTimer(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.elect(1)
	if err := c.propose(1, "x"); err != nil {
		t.Fatal(err)
	}
	c.stabilize()
	r := c.nodes[2].r
	r.electionElapsed = 5
	term := r.Term
	_ = c.nodes[2].Step(Message{Type: MsgVote, From: 3, To: 2, Term: term + 1, Index: 1, LogTerm: 1})
	if r.Term != term+1 || r.Vote != None {
		t.Fatalf("term %d vote %d, want term %d and no vote", r.Term, r.Vote, term+1)
	}
	if r.electionElapsed != 5 {
		t.Fatalf("election timer %d after refusing a vote, want 5 (kept)", r.electionElapsed)
	}
	// Granting a vote restarts it.
	_ = c.nodes[2].Step(Message{Type: MsgVote, From: 3, To: 2, Term: term + 2, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm()})
	if r.Vote != 3 || r.electionElapsed != 0 {
		t.Fatalf("vote %d timer %d after granting, want 3 and 0", r.Vote, r.electionElapsed)
	}
}
