package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// Regression tests for bugs a review found in this package (issue 11). Each
// failed before its fix; each names the rule of the paper or the thesis it
// guards.

// TestLoneVoterLeadsOnlyOnceItsTermIsDurable: a member counts its own vote
// only once the term and vote it casts are durable (Figure 2: persistent
// state is updated on stable storage before responding to RPCs — its own
// vote included). A lone voter that led at once, before writing its term,
// could send its entries to a learner, crash, come back in the old term,
// win the same term again and write different entries at the same index
// and term.
func TestLoneVoterLeadsOnlyOnceItsTermIsDurable(t *testing.T) {
	s := NewMemoryStorage()
	cs := ConfState{Voters: []uint64{1}, Learners: []uint64{2}}
	require.NoError(t, s.ApplySnapshot(Snapshot{Metadata: SnapshotMetadata{Index: 1, Term: 1, ConfState: cs}}))
	require.NoError(t, s.SetHardState(HardState{Term: 1, Commit: 1}))
	n, err := NewNode(Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		Rand: rand.New(rand.NewPCG(1, 1)), MaxInflightMsgs: 4, MaxSizePerMsg: 1 << 20})
	require.NoError(t, err)

	n.Tick() // a lone voter campaigns at its first tick
	rd := n.Ready()
	require.Equal(t, uint64(2), rd.HardState.Term)
	require.Equal(t, uint64(1), rd.HardState.Vote)
	require.True(t, rd.MustSync)
	require.NotEqual(t, StateLeader, n.Status().State, "leader before its term is durable")
	// The disk is slow: ticks pass, and nothing of term 2 may leave yet.
	for range 3 {
		n.Tick()
		for _, m := range n.TakeMessages() {
			require.Less(t, m.Term, uint64(2), "sent %v before term 2 was durable", m)
		}
	}
	require.Equal(t, uint64(2), n.Status().Term, "the candidate started another election while waiting for its disk")

	require.NoError(t, s.SetHardState(rd.HardState))
	require.NoError(t, s.Append(rd.Entries))
	n.Advance(rd)
	require.Equal(t, StateLeader, n.Status().State, "the lone voter leads once its vote is durable")
}

// TestRemovedLeaderDoesNotAnswerReadsAlone: a leader that applied its own
// removal keeps leading while it hands over (§4.2.2 of the thesis), but it
// is not the lone voter of the new configuration and must confirm reads
// with that voter (§6.4). Here the lone voter, 2, no longer answers it: 2
// elected itself and committed a write, so a read answered by 1 from its
// own commit index would be stale. Cut off, 1 must also stop leading
// within an election timeout.
func TestRemovedLeaderDoesNotAnswerReadsAlone(t *testing.T) {
	c := newTestCluster(t, 2, nil)
	c.elect(1)
	require.NoError(t, c.nodes[1].ProposeConfChange(removal(1)))
	c.processReadies()
	c.deliver() // 2 stores the removal and acknowledges it
	// Before the acknowledgement arrives, 1 appends an entry 2 will never
	// acknowledge, so that 1's hand-over waits for 2 to catch up.
	require.NoError(t, c.propose(1, "y"))
	c.deliverFiltered(func(m Message) bool { return m.To == 1 })
	c.cut[[2]uint64{2, 1}] = true
	c.stabilize()
	for range 2 {
		c.nodes[2].Tick()
		c.stabilize()
	}
	// 1 applied its removal; 2 learned it committed, leads alone, and
	// commits a write 1 never hears of.
	c.cut[[2]uint64{2, 1}] = true
	require.Equal(t, []uint64{2}, c.nodes[1].Status().Config.Voters)
	require.Equal(t, StateLeader, c.nodes[2].Status().State)
	require.NoError(t, c.propose(2, "x"))
	c.stabilize()
	require.Contains(t, c.appliedData(2), "x")
	require.Equal(t, StateLeader, c.nodes[1].Status().State, "the removed leader is still handing over")

	c.nodes[1].ReadIndex([]byte("stale?"))
	c.stabilize()
	for range 3 * c.nodes[1].r.cfg.ElectionTick {
		c.nodes[1].Tick()
		c.stabilize()
	}
	require.Empty(t, c.readStates[1], "the removed leader answered a read without the new configuration's voter")
	require.NotEqual(t, StateLeader, c.nodes[1].Status().State, "a removed leader cut off from the new configuration still leads")
}

// enterJointAddingFour starts a cluster of 3 led by 1, in which 1 proposes
// to add voter 4 through a joint configuration left automatically, and the
// followers store the change.
func enterJointAddingFour(t *testing.T, configure func(*Config)) *testCluster {
	c := newTestCluster(t, 3, configure)
	c.elect(1)
	c.addMember(4)
	enter := ConfChange{Transition: ConfChangeTransitionJointImplicit,
		Changes: []ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: 4}}}
	require.NoError(t, c.nodes[1].ProposeConfChange(enter))
	c.processReadies()
	c.deliver()
	return c
}

// TestAutoLeaveUnderNewLeader: a joint configuration entered with
// AutoLeave is left by whoever leads once entering it has applied (§4.3 of
// the thesis), also a leader elected after every member applied it.
func TestAutoLeaveUnderNewLeader(t *testing.T) {
	c := enterJointAddingFour(t, nil) // the followers store the change
	// 1 commits and applies it, and proposes to leave.
	c.deliverFiltered(func(m Message) bool { return m.To == 1 })
	require.True(t, len(c.nodes[1].Status().Config.VotersOutgoing) > 0, "1 is in the joint configuration")
	// The proposal to leave is lost; a heartbeat tells the others that
	// entering committed, and they apply it.
	c.inflight = nil
	c.nodes[1].Tick()
	c.processReadies()
	c.inflight = slices.DeleteFunc(c.inflight, func(m Message) bool { return m.Type != MsgHeartbeat })
	c.deliver()
	for _, id := range []uint64{2, 3} {
		require.True(t, len(c.nodes[id].Status().Config.VotersOutgoing) > 0, "%d applied entering", id)
	}
	// 1 is cut off; 2 leads the others, with everything applied.
	c.inflight = nil
	c.partition([]uint64{1}, []uint64{2, 3, 4})
	c.elect(2)
	for range 3 * c.nodes[2].r.cfg.ElectionTick {
		c.nodes[2].Tick()
		c.stabilize()
	}
	require.Empty(t, c.nodes[2].Status().Config.VotersOutgoing, "the new leader never left the joint configuration")
}

// TestAutoLeaveSurvivesTheUncommittedBound: the proposal that leaves a
// joint configuration is not refused by MaxUncommittedEntriesSize (like a
// leader's no-op, it must always be possible), or the configuration would
// stay joint for good.
func TestAutoLeaveSurvivesTheUncommittedBound(t *testing.T) {
	// The followers store the change and acknowledge it.
	c := enterJointAddingFour(t, func(cfg *Config) { cfg.MaxUncommittedEntriesSize = 100 })
	// 1 takes the acknowledgements (entering commits) and, before it
	// applies the change, a large proposal that fills the bound.
	acks := c.inflight
	c.inflight = nil
	for _, m := range acks {
		_ = c.nodes[1].Step(m)
	}
	require.NoError(t, c.nodes[1].Propose(make([]byte, 200)))
	c.stabilize()
	for range 3 * c.nodes[1].r.cfg.ElectionTick {
		c.nodes[1].Tick()
		c.stabilize()
	}
	require.Empty(t, c.nodes[1].Status().Config.VotersOutgoing, "the leader never left the joint configuration")
}

// crash restarts member id as after a power loss: its hard state goes back
// to the one last written with a sync (MustSync), its state machine (the
// applied list) is lost, and everything else written survives (entries are
// always synced).
func (c *testCluster) crash(id uint64) {
	require.NoError(c.t.(require.TestingT), c.storage[id].SetHardState(c.synced[id]))
	c.applied[id] = nil
	cfg := c.config(id, c.storage[id])
	n, err := NewNode(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id] = n
}

// TestShrinkToOneVoterSurvivesACrash: a member that applied a
// configuration change must come back in that configuration after a
// crash. Here 1 removes 2 from {1, 2}: once 1 has applied (and answered)
// the removal, 2 is stopped for good. If 1's commit index covering the
// removal were not durable, a crash would bring 1 back in {1, 2}, waiting
// for 2's vote for ever.
func TestShrinkToOneVoterSurvivesACrash(t *testing.T) {
	c := newTestCluster(t, 2, nil)
	c.elect(1)
	require.NoError(t, c.nodes[1].ProposeConfChange(removal(2)))
	c.stabilize()
	require.Equal(t, []uint64{1}, c.nodes[1].Status().Config.Voters, "1 applied the removal")
	// The operator stops 2; 1 loses power.
	delete(c.nodes, 2)
	c.ids = []uint64{1}
	c.crash(1)
	for range 3 * c.nodes[1].r.cfg.ElectionTick {
		c.nodes[1].Tick()
		c.stabilize()
	}
	require.Equal(t, StateLeader, c.nodes[1].Status().State, "1 came back needing the vote of the member it removed: %+v", c.nodes[1].Status().Config)
}

// TestRemovedLeaderHandsOverAfterARestart: a leader that removed itself and
// restarts before its hand-over finished must still be able to finish it.
// The survivor does not know the removal committed and still needs the old
// leader's vote, which the old leader must refuse, its log being longer;
// so, as §4.2.2 of the thesis says, a member that is not part of its own
// configuration still starts elections (without counting its own vote).
func TestRemovedLeaderHandsOverAfterARestart(t *testing.T) {
	c := newTestCluster(t, 2, func(cfg *Config) { cfg.PreVote = true })
	c.elect(1)
	require.NoError(t, c.nodes[1].ProposeConfChange(removal(1)))
	c.processReadies()
	c.deliver() // 2 stores the removal and acknowledges it
	require.NoError(t, c.propose(1, "y"))
	// 1 takes the acknowledgement and applies its removal; everything it
	// sends is lost (2 never learns the removal committed), and it
	// restarts.
	for range 5 {
		c.deliverFiltered(func(m Message) bool { return m.To == 1 })
		c.inflight = slices.DeleteFunc(c.inflight, func(m Message) bool { return m.To == 2 })
	}
	require.Equal(t, []uint64{2}, c.nodes[1].Status().Config.Voters, "1 applied its removal")
	require.Equal(t, []uint64{1, 2}, c.nodes[2].Status().Config.Voters, "2 does not know the removal committed")
	c.inflight = nil
	c.restart(1)
	for range 10 * c.nodes[1].r.cfg.ElectionTick {
		for _, id := range c.ids {
			c.nodes[id].Tick()
		}
		c.stabilize()
	}
	require.Equal(t, StateLeader, c.nodes[2].Status().State, "the cluster is wedged: %s", fmt.Sprint(c.nodes[2].Status().Config))
	require.Equal(t, []uint64{2}, c.nodes[2].Status().Config.Voters)
}

// deliverFiltered delivers the in-flight messages keep accepts, leaving the
// others in flight, and processes the readies this causes.
func (c *testCluster) deliverFiltered(keep func(Message) bool) {
	var later []Message
	msgs := c.inflight
	c.inflight = nil
	for _, m := range msgs {
		if !keep(m) || c.cut[[2]uint64{m.From, m.To}] {
			later = append(later, m)
			continue
		}
		if n, ok := c.nodes[m.To]; ok {
			_ = n.Step(m)
		}
	}
	for c.processReadies() {
	}
	c.inflight = append(later, c.inflight...)
}

// removal is the change that removes member id.
func removal(id uint64) ConfChange {
	return ConfChange{Changes: []ConfChangeSingle{{Type: ConfChangeRemoveNode, NodeID: id}}}
}

// constSource is a rand.Source that always returns v: with 1 a member's
// randomized election timeout is ElectionTick, with ^0 it is
// 2*ElectionTick-1.
type constSource uint64

func (s constSource) Uint64() uint64 { return uint64(s) }

// TestLeaseCoversClockDrift checks the lease of §6.4.1 of the thesis in real
// time, in its worst case: the leader's ticks run slow and the followers'
// fast, by the drift the configuration allows; the leader is cut off right
// after a quorum acknowledged a heartbeat; the followers tick just after it
// arrived, member 3 votes as soon as its promise to the leader runs out and
// member 2 campaigns right after (messages arrive at once). The leader must
// have stopped trusting its lease before the new leader can commit.
func TestLeaseCoversClockDrift(t *testing.T) {
	for electionTick := 3; electionTick <= 20; electionTick++ {
		for _, drift := range []float64{0, leaseTestDrift / 2, leaseTestDrift} {
			for _, preVote := range []bool{false, true} {
				name := fmt.Sprintf("election=%d/drift=%.3f/prevote=%v", electionTick, drift, preVote)
				t.Run(name, func(t *testing.T) { checkLeaseUnderDrift(t, electionTick, drift, preVote) })
			}
		}
	}
}

func checkLeaseUnderDrift(t *testing.T, electionTick int, drift float64, preVote bool) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.ElectionTick, cfg.HeartbeatTick = electionTick, 1
		cfg.CheckQuorum, cfg.PreVote, cfg.ReadOnlyOption = true, preVote, ReadOnlyLeaseBased
		// 2 times out after ElectionTick ticks, 3 after 2*ElectionTick-1:
		// 3 votes, 2 campaigns.
		cfg.Rand = rand.New(constSource(map[uint64]uint64{1: 1, 2: 1, 3: ^uint64(0)}[cfg.ID]))
	})
	c.elect(1)
	// Real time 0: 1 ticks, sends a heartbeat, and both answer at once.
	c.nodes[1].Tick()
	c.stabilize()
	require.True(t, c.nodes[1].r.leaseValid(), "no lease to test")
	c.partition([]uint64{1}, []uint64{2, 3})
	period := map[uint64]float64{1: 1 + drift, 2: 1 - drift, 3: 1 - drift}
	next := map[uint64]float64{1: period[1], 2: 0.002, 3: 0.001}
	for now := 0.0; now < float64(4*electionTick); {
		id := c.ids[0]
		for _, o := range c.ids {
			if next[o] < next[id] {
				id = o
			}
		}
		now = next[id]
		next[id] += period[id]
		c.nodes[id].Tick()
		c.stabilize()
		old := c.nodes[1].r
		if old.state != StateLeader {
			return
		}
		for _, o := range []uint64{2, 3} {
			r := c.nodes[o].r
			if r.state == StateLeader && r.Term > old.Term && r.committedInTerm() {
				require.False(t, old.leaseValid(), "at %.3f member %d leads term %d and has committed, yet member 1 still holds the lease of term %d",
					now, o, r.Term, old.Term)
			}
		}
	}
}

// leaseTestDrift is the drift TestLeaseCoversClockDrift tests up to: the
// bound the configuration states.
const leaseTestDrift = DefaultMaxClockDrift

// TestLeasePromiseSurvivesAHigherTermResponse: a follower that acknowledged
// a leader's heartbeat promised it no vote for an election timeout, on
// which the leader's lease rests (§6.4.1 of the thesis). A response of a
// later term reaching it (a candidate's answer delayed in the network)
// makes it adopt that term (Figure 2) and forget its leader, but must not
// release it from its promise: the candidate could otherwise be elected
// while the leader still serves reads on its lease.
func TestLeasePromiseSurvivesAHigherTermResponse(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.CheckQuorum, cfg.ReadOnlyOption = true, ReadOnlyLeaseBased
	})
	c.elect(1)
	c.nodes[1].Tick() // a heartbeat round, acknowledged by both
	c.stabilize()
	require.True(t, c.nodes[1].r.leaseValid())
	c.partition([]uint64{1}, []uint64{2, 3})
	// 3 campaigned long ago; 2's late answer carries a later term.
	require.NoError(t, c.nodes[2].Step(Message{Type: MsgVoteResp, From: 3, To: 2, Term: 9, Reject: true}))
	require.Equal(t, uint64(9), c.nodes[2].Status().Term, "a later term is adopted (Figure 2)")
	require.NoError(t, c.nodes[2].Step(Message{Type: MsgVote, From: 3, To: 2, Term: 9, Index: 100, LogTerm: 9}))
	c.processReady(2)
	for _, m := range c.inflight {
		if m.Type == MsgVoteResp && m.From == 2 {
			require.True(t, m.Reject || !c.nodes[1].r.leaseValid(), "2 voted for 3 while 1 still holds the lease 2 promised it")
		}
	}
}

// TestTornBootstrap: a founding member that crashed in its very first write
// may keep a prefix of the bootstrap entries and none of the hard state
// written after them (the persistence contract allows it). Raft cannot tell
// how many founders there were: taken for committed, the first of three
// entries made a one-member cluster that elected itself beside the real
// leader. So it keeps no configuration and never campaigns, and
// TornBootstrap tells the application to bootstrap it again.
func TestTornBootstrap(t *testing.T) {
	cfg := func(s Storage) Config {
		return Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
			Rand: rand.New(rand.NewPCG(1, 1)), MaxInflightMsgs: 4, MaxSizePerMsg: 1 << 20}
	}
	bootstrap := func() []Entry {
		n, err := NewNode(cfg(NewMemoryStorage()))
		require.NoError(t, err)
		require.NoError(t, n.Bootstrap([]uint64{1, 2, 3}))
		return n.Ready().Entries
	}
	for _, kept := range []int{1, 3} {
		s := NewMemoryStorage()
		require.NoError(t, s.Append(bootstrap()[:kept])) // the hard state is lost
		torn, err := TornBootstrap(s)
		require.NoError(t, err)
		require.True(t, torn, "%d of 3 bootstrap entries kept", kept)
		n, err := NewNode(cfg(s))
		require.NoError(t, err)
		for range 30 {
			n.Tick()
		}
		require.NotEqual(t, StateLeader, n.Status().State, "a torn bootstrap (%d of 3 entries) led alone", kept)
	}
	// Once a hard state is written, or a leader's entries, it is no longer
	// a torn bootstrap.
	s := NewMemoryStorage()
	require.NoError(t, s.Append(bootstrap()))
	require.NoError(t, s.SetHardState(HardState{Term: 1, Commit: 3}))
	torn, err := TornBootstrap(s)
	require.NoError(t, err)
	require.False(t, torn)
	require.NoError(t, s.SetHardState(HardState{}))
	require.NoError(t, s.Append([]Entry{{Index: 4, Term: 2}}))
	torn, err = TornBootstrap(s)
	require.NoError(t, err)
	require.False(t, torn)
}

// TestConfChangeAppendedOnlyOverADurableCommit: a member writes a
// configuration change only once a commit index covering every earlier one
// is durable (the "Append" invariant that makes configurations applied at
// commit time safe, etcd#7625). A member that held the change leaving a
// joint configuration but came back from a torn write knowing only the
// commit index before the change entering it used the old configuration,
// whose majorities need not meet the new one's: two leaders were elected
// in one term.
func TestConfChangeAppendedOnlyOverADurableCommit(t *testing.T) {
	r := newMember(t, 2, []uint64{1, 2, 3}, entsWithTerms(1, 1, 1), HardState{Term: 2, Commit: 3})
	n := &Node{r: r, prevSoft: r.softState(), prevHard: r.hardState()}
	enter, _ := (&ConfChange{Transition: ConfChangeTransitionJointImplicit,
		Changes: []ConfChangeSingle{{Type: ConfChangeRemoveNode, NodeID: 1}, {Type: ConfChangeAddNode, NodeID: 4}}}).MarshalBinary()
	leave, _ := (&ConfChange{}).MarshalBinary()
	require.NoError(t, n.Step(Message{Type: MsgApp, From: 1, To: 2, Term: 2, Index: 3, LogTerm: 1, Commit: 4, Entries: []Entry{
		{Index: 4, Term: 2, Type: EntryConfChange, Data: enter}, {Index: 5, Term: 2, Type: EntryConfChange, Data: leave}}}))
	storage := r.log.storage.(*MemoryStorage)
	synced := HardState{Term: 2, Commit: 3}
	for range 3 {
		if !n.HasReady() {
			break
		}
		rd := n.Ready()
		for _, e := range rd.Entries {
			if e.Index == 5 {
				require.GreaterOrEqual(t, synced.Commit, uint64(4), "the change at 5 is written before a commit index covering the change at 4 is durable")
			}
		}
		require.NoError(t, storage.Append(rd.Entries))
		if !rd.HardState.IsEmpty() {
			require.NoError(t, storage.SetHardState(rd.HardState))
		}
		if rd.MustSync {
			synced, _, _ = storage.InitialState()
		}
		for _, m := range rd.MessagesAfterPersist {
			if m.Type == MsgAppResp {
				last, _ := storage.LastIndex()
				require.LessOrEqual(t, m.Index, last, "acknowledged %d before writing it", m.Index)
			}
		}
		n.Advance(rd)
	}
	last, _ := storage.LastIndex()
	require.Equal(t, uint64(5), last)
}

// TestRestartAfterATornSnapshotInstall: the persistence contract writes a
// snapshot before the hard state that follows it, so a torn write may keep
// an installed snapshot and lose that hard state. The snapshot is
// committed by construction: the member restarts with its commit index at
// the snapshot's, instead of refusing to start.
func TestRestartAfterATornSnapshotInstall(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(Snapshot{Metadata: SnapshotMetadata{Index: 225, Term: 2, ConfState: ConfState{Voters: []uint64{1, 2}}}}))
	require.NoError(t, s.SetHardState(HardState{Term: 2})) // written before the snapshot arrived
	n, err := NewNode(Config{ID: 2, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		Rand: rand.New(rand.NewPCG(1, 1)), MaxInflightMsgs: 4, Applied: 225})
	require.NoError(t, err, "a member with a durable snapshot refused to start")
	require.Equal(t, uint64(225), n.Status().Commit)
}

// TestRestartReplaysOnlyChangesAfterTheSnapshot: the configuration a
// restarted member restores is its snapshot's, as of the snapshot's index;
// storage may keep entries from before it (a snapshot does not compact by
// itself, and members keep a tail for slow followers). Only the changes
// after the snapshot may be replayed on top: replayed twice, the leaving of
// a first joint change left the second one, which was then entered again
// with identical halves.
func TestRestartReplaysOnlyChangesAfterTheSnapshot(t *testing.T) {
	replace := func(out, in uint64) []byte {
		cc, _ := (&ConfChange{Transition: ConfChangeTransitionJointExplicit,
			Changes: []ConfChangeSingle{{Type: ConfChangeRemoveNode, NodeID: out}, {Type: ConfChangeAddNode, NodeID: in}}}).MarshalBinary()
		return cc
	}
	leave, _ := (&ConfChange{}).MarshalBinary()
	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(Snapshot{Metadata: SnapshotMetadata{Index: 1, Term: 1, ConfState: ConfState{Voters: []uint64{1, 2, 3}}}}))
	require.NoError(t, s.Append([]Entry{
		{Index: 2, Term: 2, Type: EntryConfChange, Data: replace(3, 4)},
		{Index: 3, Term: 2, Type: EntryConfChange, Data: leave},
		{Index: 4, Term: 2, Type: EntryConfChange, Data: replace(2, 5)},
	}))
	want := ConfState{Voters: []uint64{1, 4, 5}, VotersOutgoing: []uint64{1, 2, 4}}
	_, err := s.CreateSnapshot(4, &want, nil) // no compaction: entries 2..4 stay
	require.NoError(t, err)
	require.NoError(t, s.SetHardState(HardState{Term: 2, Commit: 4}))
	n, err := NewNode(Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		Rand: rand.New(rand.NewPCG(1, 1)), MaxInflightMsgs: 4, Applied: 4})
	require.NoError(t, err)
	got := n.Status().Config
	require.Equal(t, want.Voters, got.Voters)
	require.Equal(t, want.VotersOutgoing, got.VotersOutgoing, "changes before the snapshot were replayed on top of it")
}

// TestJoiningMemberDoesNotCampaign: a member joining a cluster applies the
// configurations before its own addition, which leave it out; it is not a
// removed member (which still campaigns, to hand over), and must not poll
// for elections while it catches up: each poll forgets its leader.
func TestJoiningMemberDoesNotCampaign(t *testing.T) {
	founders := NewMemoryStorage()
	n, err := NewNode(Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: founders,
		Rand: rand.New(rand.NewPCG(1, 1)), MaxInflightMsgs: 4})
	require.NoError(t, err)
	require.NoError(t, n.Bootstrap([]uint64{1, 2, 3}))
	s := NewMemoryStorage()
	require.NoError(t, s.Append(n.Ready().Entries))
	require.NoError(t, s.SetHardState(HardState{Term: 2, Commit: 3}))
	joiner := newTestCluster(t, 1, func(cfg *Config) { cfg.PreVote, cfg.CheckQuorum = true, true })
	cfg := joiner.config(4, s)
	cfg.StepDownOnRemoval = true
	j, err := NewNode(cfg)
	require.NoError(t, err)
	rd := j.Ready()
	for _, e := range rd.CommittedEntries { // the founders' configuration
		var cc ConfChange
		require.NoError(t, cc.UnmarshalBinary(e.Data))
		_, err := j.ApplyConfChange(cc)
		require.NoError(t, err)
	}
	j.Advance(rd)
	require.Equal(t, []uint64{1, 2, 3}, j.Status().Config.Voters)
	for range 5 * cfg.ElectionTick {
		j.Tick()
	}
	require.Equal(t, StateFollower, j.Status().State, "a joining member polled for an election")
	require.Empty(t, j.TakeMessages())
}
