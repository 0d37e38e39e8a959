package raft

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the rules of Figure 2 of the paper ("In Search of an
// Understandable Consensus Algorithm", extended version), one rule at a
// time, on a single member fed messages by hand. Each test names the rule.

// newMember returns member id of a cluster of the given voters, with log
// ents (terms only matter) and hard state hs already durable.
func newMember(t *testing.T, id uint64, voters []uint64, ents []Entry, hs HardState, configure ...func(*Config)) *raft {
	t.Helper()
	s := NewMemoryStorage()
	cs := ConfState{Voters: voters}
	// A snapshot at index 0 carries the configuration.
	s.snapshot.Metadata.ConfState = cs
	require.NoError(t, s.Append(ents))
	require.NoError(t, s.SetHardState(hs))
	cfg := Config{ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		Rand: rand.New(rand.NewPCG(id, 7)), MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256}
	for _, f := range configure {
		f(&cfg)
	}
	r, err := newRaft(cfg)
	require.NoError(t, err)
	return r
}

// entsWithTerms builds a log whose entry i+1 has term terms[i].
func entsWithTerms(terms ...uint64) []Entry {
	ents := make([]Entry, len(terms))
	for i, term := range terms {
		ents[i] = Entry{Index: uint64(i + 1), Term: term, Data: []byte{byte(i)}}
	}
	return ents
}

// takeMsgs returns and clears everything r has queued to send.
func takeMsgs(r *raft) []Message {
	r.flushAppends()
	msgs := append(r.msgs, r.msgsAfterPersist...)
	r.msgs, r.msgsAfterPersist = nil, nil
	return msgs
}

// persist makes everything r has unstable durable, as the application
// would before calling Advance.
func persist(t *testing.T, r *raft) {
	t.Helper()
	s := r.log.storage.(*MemoryStorage)
	require.NoError(t, s.Append(r.log.unstable.entries))
	r.advance(Ready{Entries: r.log.unstable.entries})
}

func msgTypes(msgs []Message) []MessageType {
	var ts []MessageType
	for _, m := range msgs {
		ts = append(ts, m.Type)
	}
	return ts
}

// Rules for all servers: "If RPC request or response contains term T >
// currentTerm: set currentTerm = T, convert to follower (§5.1)."
func TestPaperAllServersHigherTermMakesFollower(t *testing.T) {
	roles := map[string]func(r *raft){
		"follower":  func(r *raft) {},
		"candidate": func(r *raft) { r.becomeCandidate() },
		"leader":    func(r *raft) { r.becomeCandidate(); r.becomeLeader() },
	}
	for name, become := range roles {
		for _, mt := range []MessageType{MsgApp, MsgHeartbeat, MsgVote, MsgAppResp, MsgVoteResp} {
			t.Run(name+"/"+mt.String(), func(t *testing.T) {
				r := newMember(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 1})
				become(r)
				term := r.Term + 5
				require.NoError(t, r.Step(Message{Type: mt, From: 2, To: 1, Term: term}))
				assert.Equal(t, term, r.Term)
				assert.Equal(t, StateFollower, r.state)
				if mt == MsgApp || mt == MsgHeartbeat {
					assert.Equal(t, uint64(2), r.lead, "a leader's message names the leader")
				}
			})
		}
	}
}

// Rules for all servers: "If commitIndex > lastApplied: increment
// lastApplied, apply log[lastApplied] to state machine (§5.3)." Committed
// entries come out in order, only once durable, and only once.
func TestPaperAllServersApplyCommittedInOrder(t *testing.T) {
	r := newMember(t, 1, []uint64{1, 2, 3}, entsWithTerms(1, 1), HardState{Term: 1})
	n := &Node{r: r, prevHard: r.hardState(), prevSoft: r.softState()}
	// The leader says entries up to 4 are committed and sends 3 and 4.
	require.NoError(t, n.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 1, Index: 2, LogTerm: 1,
		Entries: []Entry{{Index: 3, Term: 1}, {Index: 4, Term: 1}}, Commit: 4}))
	rd := n.Ready()
	// 1 and 2 are durable and committed: applied now. 3 and 4 are not
	// durable yet: applied in a later Ready.
	assert.Equal(t, []uint64{1, 2}, indexes(rd.CommittedEntries))
	assert.Equal(t, []uint64{3, 4}, indexes(rd.Entries))
	require.NoError(t, r.log.storage.(*MemoryStorage).Append(rd.Entries))
	n.Advance(rd)
	rd = n.Ready()
	assert.Equal(t, []uint64{3, 4}, indexes(rd.CommittedEntries))
	n.Advance(rd)
	assert.False(t, n.HasReady(), "nothing is applied twice")
	assert.Equal(t, uint64(4), r.log.applied)
}

func indexes(ents []Entry) []uint64 {
	var out []uint64
	for _, e := range ents {
		out = append(out, e.Index)
	}
	return out
}

// Followers: "If election timeout elapses without receiving AppendEntries
// RPC from current leader or granting vote to candidate: convert to
// candidate." The timeout is random in [ElectionTick, 2*ElectionTick) (§5.2).
func TestPaperFollowerElectionTimeout(t *testing.T) {
	seen := map[int]bool{}
	for seed := range 200 {
		r := newMember(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 1}, func(c *Config) {
			c.Rand = rand.New(rand.NewPCG(uint64(seed), 0))
		})
		ticks := 0
		for r.state == StateFollower {
			r.ticks++
			r.tick()
			ticks++
			require.Less(t, ticks, 2*r.cfg.ElectionTick+1, "no election after two timeouts")
		}
		require.GreaterOrEqual(t, ticks, r.cfg.ElectionTick)
		seen[ticks] = true
	}
	r := newMember(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 1})
	assert.Greater(t, len(seen), r.cfg.ElectionTick/2, "timeouts are spread over the range")
}

// Followers: hearing from the leader resets the election timer.
func TestPaperFollowerHeartbeatResetsTimer(t *testing.T) {
	r := newMember(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 2})
	for range 100 {
		r.ticks++
		r.tick()
		require.NoError(t, r.Step(Message{Type: MsgHeartbeat, From: 2, To: 1, Term: 2}))
	}
	assert.Equal(t, StateFollower, r.state)
	assert.Equal(t, uint64(2), r.lead)
}

// Candidates: "On conversion to candidate, start election: increment
// currentTerm, vote for self, reset election timer, send RequestVote RPCs
// to all other servers." The vote requests leave only once the new term and
// vote are durable, and so does the vote for self: it comes back to the
// candidate as a response once durable (see Node.Advance).
func TestPaperCandidateStartsElection(t *testing.T) {
	r := newMember(t, 1, []uint64{1, 2, 3}, entsWithTerms(1, 2), HardState{Term: 2})
	r.campaign(false, false)
	assert.Equal(t, StateCandidate, r.state)
	assert.Equal(t, uint64(3), r.Term)
	assert.Equal(t, uint64(1), r.Vote)
	assert.Equal(t, 0, r.electionElapsed)
	assert.Empty(t, r.msgs, "nothing may leave before the vote is durable")
	require.Len(t, r.msgsAfterPersist, 3)
	assert.Equal(t, Message{Type: MsgVoteResp, From: 1, To: 1, Term: 3}, r.msgsAfterPersist[0])
	for i, m := range r.msgsAfterPersist[1:] {
		assert.Equal(t, Message{Type: MsgVote, From: 1, To: uint64(i + 2), Term: 3, Index: 2, LogTerm: 2}, m)
	}
}

// stepOwnVote delivers the candidate's vote for itself, as Node.Advance does
// once it is durable.
func stepOwnVote(t *testing.T, r *raft) {
	t.Helper()
	for _, m := range r.msgsAfterPersist {
		if m.To == r.id {
			require.NoError(t, r.Step(m))
		}
	}
}

// Candidates: "If votes received from majority of servers: become leader."
// "If election timeout elapses: start new election."
func TestPaperCandidateElectionOutcome(t *testing.T) {
	tests := []struct {
		voters  int
		granted []uint64
		denied  []uint64
		want    StateType
	}{
		{1, nil, nil, StateLeader},
		{3, []uint64{2}, nil, StateLeader},
		{3, nil, []uint64{2}, StateCandidate},
		{3, nil, []uint64{2, 3}, StateFollower},
		{5, []uint64{2}, nil, StateCandidate},
		{5, []uint64{2, 3}, nil, StateLeader},
		{5, []uint64{2}, []uint64{3, 4}, StateCandidate},
		{5, []uint64{2}, []uint64{3, 4, 5}, StateFollower},
	}
	for _, tt := range tests {
		var voters []uint64
		for i := 1; i <= tt.voters; i++ {
			voters = append(voters, uint64(i))
		}
		r := newMember(t, 1, voters, nil, HardState{Term: 1})
		r.campaign(false, false)
		stepOwnVote(t, r)
		for _, id := range tt.granted {
			require.NoError(t, r.Step(Message{Type: MsgVoteResp, From: id, To: 1, Term: r.Term}))
		}
		for _, id := range tt.denied {
			require.NoError(t, r.Step(Message{Type: MsgVoteResp, From: id, To: 1, Term: r.Term, Reject: true}))
		}
		assert.Equal(t, tt.want, r.state, "%d voters, granted by %v, denied by %v", tt.voters, tt.granted, tt.denied)
	}
	// A candidate whose election times out starts another, in a new term.
	r := newMember(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 1})
	r.campaign(false, false)
	for range 2 * r.cfg.ElectionTick {
		r.tick()
	}
	assert.Equal(t, StateCandidate, r.state)
	assert.Greater(t, r.Term, uint64(2))
}

// Candidates: "If AppendEntries RPC received from new leader: convert to
// follower."
func TestPaperCandidateFollowsNewLeader(t *testing.T) {
	r := newMember(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 1})
	r.campaign(false, false)
	require.NoError(t, r.Step(Message{Type: MsgApp, From: 3, To: 1, Term: r.Term}))
	assert.Equal(t, StateFollower, r.state)
	assert.Equal(t, uint64(3), r.lead)
}

// Leaders: "Upon election: send initial empty AppendEntries RPCs
// (heartbeat) to each server." Ours carries the leader's no-op entry, which
// also commits the entries of earlier terms (§5.4.2, §8); the appends may
// leave before the leader's own write (§10.2.1 of the thesis).
func TestPaperLeaderSendsAppendOnElection(t *testing.T) {
	r := newMember(t, 1, []uint64{1, 2, 3}, entsWithTerms(1), HardState{Term: 1})
	r.becomeCandidate()
	r.becomeLeader()
	r.bcastAppend()
	require.Len(t, r.msgs, 2)
	for i, m := range r.msgs {
		assert.Equal(t, MsgApp, m.Type)
		assert.Equal(t, uint64(i+2), m.To)
		assert.Equal(t, []Entry{{Index: 2, Term: 2}}, m.Entries)
		assert.Equal(t, uint64(1), m.Index)
		assert.Equal(t, uint64(1), m.LogTerm)
	}
}

// streamingLeader returns member 1 of three as the leader of term 2, its
// no-op durable and accepted by both followers, so that it streams to them
// (replicate state), with nothing left to send.
func streamingLeader(t *testing.T, configure ...func(*Config)) *raft {
	t.Helper()
	r := newMember(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 1}, configure...)
	r.becomeCandidate()
	r.becomeLeader()
	persist(t, r)
	for _, id := range []uint64{2, 3} {
		require.NoError(t, r.Step(Message{Type: MsgAppResp, From: id, To: 1, Term: r.Term, Index: 1}))
	}
	takeMsgs(r)
	return r
}

// Leaders: "If command received from client: append entry to local log,
// respond after entry applied to state machine." and "If last log index ≥
// nextIndex for a follower: send AppendEntries RPC with log entries
// starting at nextIndex. If successful: update nextIndex and matchIndex."
func TestPaperLeaderReplicatesProposals(t *testing.T) {
	r := streamingLeader(t)
	require.NoError(t, r.Step(Message{Type: MsgProp, From: 1, Entries: []Entry{{Data: []byte("x")}}}))
	assert.Equal(t, uint64(2), r.log.lastIndex(), "appended to the local log")
	msgs := takeMsgs(r)
	require.Len(t, msgs, 2)
	for _, m := range msgs {
		assert.Equal(t, MsgApp, m.Type)
		assert.Equal(t, []Entry{{Index: 2, Term: 2, Data: []byte("x")}}, m.Entries)
	}
	assert.Equal(t, uint64(1), r.log.committed, "not committed before a quorum holds it")
	persist(t, r)
	require.NoError(t, r.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: r.Term, Index: 2}))
	assert.Equal(t, uint64(2), r.trk.progress[2].Match)
	assert.Equal(t, uint64(3), r.trk.progress[2].Next)
	assert.Equal(t, uint64(2), r.log.committed, "committed once a quorum (1 and 2) holds it")
}

// A leader sends each follower one append per round of messages, however
// many proposals and acknowledgements it stepped in between: the entries
// of three proposals travel together, and so does a commit index that
// several acknowledgements advanced. A leader that steps down before its
// messages are taken sends no append.
func TestLeaderSendsOneAppendPerFollowerPerRound(t *testing.T) {
	r := streamingLeader(t)
	n := &Node{r: r}
	assert.False(t, n.HasMessages())

	for _, data := range []string{"a", "b", "c"} {
		require.NoError(t, r.Step(Message{Type: MsgProp, From: 1, Entries: []Entry{{Data: []byte(data)}}}))
	}
	assert.True(t, n.HasMessages())
	msgs := n.TakeMessages()
	require.Len(t, msgs, 2, "one append per follower: %v", msgTypes(msgs))
	for i, m := range msgs {
		assert.Equal(t, MsgApp, m.Type)
		assert.Equal(t, uint64(i+2), m.To)
		assert.Equal(t, uint64(1), m.Index)
		assert.Equal(t, []uint64{2, 3, 4}, indexes(m.Entries))
	}

	persist(t, r)
	for _, id := range []uint64{2, 3} {
		require.NoError(t, r.Step(Message{Type: MsgAppResp, From: id, To: 1, Term: r.Term, Index: 4}))
	}
	assert.Equal(t, uint64(4), r.log.committed)
	msgs = n.TakeMessages()
	require.Len(t, msgs, 2, "one commit-carrying append per follower: %v", msgTypes(msgs))
	for _, m := range msgs {
		assert.Equal(t, Message{Type: MsgApp, From: 1, To: m.To, Term: r.Term, Index: 4, LogTerm: r.Term, Commit: 4}, m)
	}

	require.NoError(t, r.Step(Message{Type: MsgProp, From: 1, Entries: []Entry{{Data: []byte("d")}}}))
	require.NoError(t, r.Step(Message{Type: MsgHeartbeat, From: 2, To: 1, Term: r.Term + 1}))
	assert.Equal(t, StateFollower, r.state)
	for _, m := range takeMsgs(r) {
		assert.NotEqual(t, MsgApp, m.Type, "a follower sends no append: %v", m)
	}
}

// A follower whose window of appends is full still learns a new commit
// index at once, in an empty append after the last entry sent to it: it
// need not wait for its acknowledgements to free the window.
func TestFullWindowStillCarriesTheCommitIndex(t *testing.T) {
	r := streamingLeader(t, func(c *Config) { c.MaxInflightMsgs = 1 })
	require.NoError(t, r.Step(Message{Type: MsgProp, From: 1, Entries: []Entry{{Data: []byte("a")}}}))
	persist(t, r)
	require.Len(t, takeMsgs(r), 2, "an append to each follower fills its window of one")
	require.True(t, r.trk.progress[3].isPaused())

	require.NoError(t, r.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: r.Term, Index: 2}))
	require.Equal(t, uint64(2), r.log.committed)
	var to3 []Message
	for _, m := range takeMsgs(r) {
		if m.To == 3 {
			to3 = append(to3, m)
		}
	}
	require.Len(t, to3, 1)
	assert.Equal(t, Message{Type: MsgApp, From: 1, To: 3, Term: r.Term, Index: 2, LogTerm: r.Term, Commit: 2}, to3[0],
		"the commit index, after the entry in flight, with no entries")
	assert.True(t, r.trk.progress[3].isPaused(), "the window is still full")

	require.NoError(t, r.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: r.Term, Index: 2}))
	assert.Empty(t, takeMsgs(r), "nothing new to tell")
}

// Leaders: "If AppendEntries fails because of log inconsistency: decrement
// nextIndex and retry." With the follower's hint, the leader skips a whole
// term at once (§5.3's optimization).
func TestPaperLeaderBacktracksOnReject(t *testing.T) {
	// Leader log: terms 1 1 1 4 4 4 5; the follower has 1 1 1 2 2 2 2 3.
	r := newMember(t, 1, []uint64{1, 2}, entsWithTerms(1, 1, 1, 4, 4, 4, 5), HardState{Term: 5})
	r.becomeCandidate()
	r.becomeLeader() // term 6, no-op at 8
	persist(t, r)
	takeMsgs(r)
	pr := r.trk.progress[2]
	require.Equal(t, uint64(8), pr.Next)
	// The follower rejects prev 7/5; its hint: index 7 has term 2 there.
	require.NoError(t, r.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 6, Index: 7, Reject: true, RejectHint: 7, LogTerm: 2}))
	// Our last index with term <= 2 is 3: retry right after it.
	assert.Equal(t, uint64(4), pr.Next)
	msgs := takeMsgs(r)
	require.Len(t, msgs, 1)
	assert.Equal(t, uint64(3), msgs[0].Index)
	assert.Equal(t, uint64(1), msgs[0].LogTerm)
}

// Leaders: "If there exists an N such that N > commitIndex, a majority of
// matchIndex[i] ≥ N, and log[N].term == currentTerm: set commitIndex = N."
func TestPaperLeaderCommitRule(t *testing.T) {
	tests := []struct {
		name    string
		matches map[uint64]uint64 // follower -> match
		want    uint64
	}{
		{"no follower has it", map[uint64]uint64{2: 0, 3: 0}, 0},
		{"a majority holds old-term entries only", map[uint64]uint64{2: 2, 3: 2}, 0},
		{"a majority holds an entry of the term", map[uint64]uint64{2: 3, 3: 0}, 3},
		{"commitIndex is the highest such N", map[uint64]uint64{2: 3, 3: 3}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Log: 1/1 2/1, then the leader's no-op 3/2.
			r := newMember(t, 1, []uint64{1, 2, 3}, entsWithTerms(1, 1), HardState{Term: 1})
			r.becomeCandidate()
			r.becomeLeader()
			persist(t, r)
			for id, match := range tt.matches {
				r.trk.progress[id].Match = match
			}
			r.maybeCommit()
			assert.Equal(t, max(tt.want, 0), r.log.committed)
		})
	}
}

// RequestVote receiver: "Reply false if term < currentTerm (§5.1)" and "If
// votedFor is null or candidateId, and candidate's log is at least as
// up-to-date as receiver's log, grant vote (§5.2, §5.4)."
func TestPaperVoteRequestReceiver(t *testing.T) {
	// Our log: 1/1 2/2 3/2; we are at term 2.
	tests := []struct {
		name           string
		vote           uint64
		term           uint64
		lastIndex      uint64
		lastTerm       uint64
		granted        bool
		stateAfterTerm uint64
	}{
		{"stale term", None, 1, 10, 10, false, 2},
		{"same term, not voted, log as up to date", None, 2, 3, 2, true, 2},
		{"same term, voted for another", 3, 2, 3, 2, false, 2},
		{"same term, voted for this candidate already", 2, 2, 3, 2, true, 2},
		{"higher term, longer log same last term", None, 3, 4, 2, true, 3},
		{"higher term, shorter log same last term", None, 3, 2, 2, false, 3},
		{"higher term, higher last term", None, 3, 1, 3, true, 3},
		{"higher term, lower last term", None, 3, 9, 1, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newMember(t, 1, []uint64{1, 2, 3}, entsWithTerms(1, 2, 2), HardState{Term: 2, Vote: tt.vote})
			require.NoError(t, r.Step(Message{Type: MsgVote, From: 2, To: 1, Term: tt.term, Index: tt.lastIndex, LogTerm: tt.lastTerm}))
			msgs := takeMsgs(r)
			require.Len(t, msgs, 1)
			assert.Equal(t, MsgVoteResp, msgs[0].Type)
			assert.Equal(t, tt.granted, !msgs[0].Reject)
			assert.Equal(t, tt.stateAfterTerm, r.Term)
			if tt.granted {
				assert.Equal(t, uint64(2), r.Vote, "the vote is recorded (and persisted before the answer leaves)")
			}
		})
	}
}

// AppendEntries receiver, rules 1-5.
func TestPaperAppendEntriesReceiver(t *testing.T) {
	// Our log: 1/1 2/2 3/2; we are at term 2, commit 1.
	tests := []struct {
		name      string
		term      uint64
		prevIndex uint64
		prevTerm  uint64
		ents      []Entry
		commit    uint64
		reject    bool
		wantTerms []uint64
		wantCmt   uint64
	}{
		{"1: reply false if term < currentTerm (stale leader learns our term)", 1, 3, 2, nil, 3, false, []uint64{1, 2, 2}, 1},
		{"2: reply false if no entry at prevLogIndex", 2, 4, 2, nil, 3, true, []uint64{1, 2, 2}, 1},
		{"2: reply false if prevLogTerm does not match", 2, 3, 3, nil, 3, true, []uint64{1, 2, 2}, 1},
		{"3: a conflicting entry and all after it are deleted", 2, 1, 1, []Entry{{Index: 2, Term: 3}}, 1, false, []uint64{1, 3}, 1},
		{"4: new entries are appended", 2, 3, 2, []Entry{{Index: 4, Term: 2}, {Index: 5, Term: 2}}, 1, false, []uint64{1, 2, 2, 2, 2}, 1},
		{"4: entries already present change nothing", 2, 1, 1, []Entry{{Index: 2, Term: 2}}, 1, false, []uint64{1, 2, 2}, 1},
		{"5: commitIndex = min(leaderCommit, index of last new entry)", 2, 1, 1, []Entry{{Index: 2, Term: 2}}, 3, false, []uint64{1, 2, 2}, 2},
		{"5: commitIndex = leaderCommit when smaller", 2, 3, 2, []Entry{{Index: 4, Term: 2}}, 3, false, []uint64{1, 2, 2, 2}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newMember(t, 1, []uint64{1, 2, 3}, entsWithTerms(1, 2, 2), HardState{Term: 2, Commit: 1})
			require.NoError(t, r.Step(Message{Type: MsgApp, From: 2, To: 1, Term: tt.term, Index: tt.prevIndex,
				LogTerm: tt.prevTerm, Entries: tt.ents, Commit: tt.commit}))
			var terms []uint64
			for i := uint64(1); i <= r.log.lastIndex(); i++ {
				term, err := r.log.term(i)
				require.NoError(t, err)
				terms = append(terms, term)
			}
			assert.Equal(t, tt.wantTerms, terms)
			assert.Equal(t, tt.wantCmt, r.log.committed)
			msgs := takeMsgs(r)
			if tt.term < 2 {
				// Without PreVote and CheckQuorum a stale message is ignored.
				assert.Empty(t, msgs)
				return
			}
			require.Len(t, msgs, 1)
			assert.Equal(t, MsgAppResp, msgs[0].Type)
			assert.Equal(t, tt.reject, msgs[0].Reject)
		})
	}
}

// The persistence contract (Ready): acknowledgements and votes wait for
// the write; a leader's appends and heartbeats do not; the leader counts
// its own entries only once durable.
func TestPaperPersistBeforeAnswering(t *testing.T) {
	f := newMember(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 1})
	require.NoError(t, f.Step(Message{Type: MsgApp, From: 2, To: 1, Term: 1, Entries: []Entry{{Index: 1, Term: 1}}}))
	require.NoError(t, f.Step(Message{Type: MsgVote, From: 3, To: 1, Term: 2, Index: 1, LogTerm: 1}))
	assert.Empty(t, f.msgs)
	assert.Equal(t, []MessageType{MsgAppResp, MsgVoteResp}, msgTypes(f.msgsAfterPersist))

	l := newMember(t, 1, []uint64{1, 2, 3}, nil, HardState{Term: 1})
	l.becomeCandidate()
	l.becomeLeader()
	l.bcastAppend()
	l.bcastHeartbeat()
	assert.Empty(t, l.msgsAfterPersist)
	assert.ElementsMatch(t, []MessageType{MsgApp, MsgApp, MsgHeartbeat, MsgHeartbeat}, msgTypes(l.msgs))
	// A follower acknowledges the no-op, but it is not committed while the
	// leader's own copy is not durable: one copy of three is no quorum...
	require.NoError(t, l.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 2, Index: 1}))
	assert.Equal(t, uint64(0), l.trk.progress[1].Match)
	assert.Equal(t, uint64(0), l.log.committed)
	// ...until the leader's write is done.
	persist(t, l)
	assert.Equal(t, uint64(1), l.trk.progress[1].Match)
	assert.Equal(t, uint64(1), l.log.committed)
}

// Config is checked at start-up with errors that name the problem.
func TestConfigValidation(t *testing.T) {
	valid := func() Config {
		return Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: NewMemoryStorage(),
			Rand: rand.New(rand.NewPCG(1, 1)), MaxInflightMsgs: 1}
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"zero ID", func(c *Config) { c.ID = 0 }, "ID must not be 0"},
		{"no heartbeat", func(c *Config) { c.HeartbeatTick = 0 }, "HeartbeatTick must be positive"},
		{"election not above heartbeat", func(c *Config) { c.ElectionTick = 1 }, "ElectionTick (1) must be greater than HeartbeatTick (1)"},
		{"no storage", func(c *Config) { c.Storage = nil }, "Storage must not be nil"},
		{"no rand", func(c *Config) { c.Rand = nil }, "Rand must not be nil"},
		{"no inflight", func(c *Config) { c.MaxInflightMsgs = 0 }, "MaxInflightMsgs must be positive"},
		{"inflight bytes below a message", func(c *Config) { c.MaxSizePerMsg = 100; c.MaxInflightBytes = 10 }, "MaxInflightBytes (10) must be at least MaxSizePerMsg (100)"},
		{"lease without check quorum", func(c *Config) { c.ReadOnlyOption = ReadOnlyLeaseBased }, "ReadOnlyLeaseBased requires CheckQuorum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			_, err := NewNode(c)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrConfig))
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := NewNode(valid())
	assert.NoError(t, err)
}
