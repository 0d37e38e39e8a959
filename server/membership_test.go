package server

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/raft"
)

func membership(op MembershipOp, info MemberInfo) Request {
	return Request{Kind: RequestMembership, Membership: &MembershipChange{Op: op, Member: info}}
}

func TestMembershipAddLearnerPromoteAndRemove(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	for i := range 10 {
		require.NoError(t, c.do(lead, set("/k", string(rune('a'+i)))).Err)
	}
	// Add member 4: it starts as a learner.
	r := c.do(c.ids[1], membership(MemberAdd, MemberInfo{ID: 4, PeerURLs: []string{"http://127.0.0.1:2384"}}))
	require.NoError(t, r.Err)
	require.NotNil(t, r.Member)
	assert.True(t, r.Member.IsLearner)
	assert.Equal(t, []uint64{4}, c.members[lead].ConfState().Learners)
	// It joins with an empty disk, catches up, and the leader promotes it.
	c.join(4)
	c.tick(30)
	assert.Equal(t, []uint64{1, 2, 3, 4}, c.members[lead].ConfState().Voters)
	assert.Equal(t, "j", valueOf(t, c.do(4, get("/k"))))
	members := c.members[4].Members()
	require.Len(t, members, 4)
	assert.Equal(t, "m4", members[3].Name, "the new member published its name")
	assert.Equal(t, c.members[1].ClusterID(), c.members[4].ClusterID(), "the joiner learned the cluster ID from the log")
	c.requireConverged()

	// Errors as etcd names them.
	r = c.do(1, membership(MemberAdd, MemberInfo{PeerURLs: []string{"http://127.0.0.1:2384"}}))
	assert.ErrorIs(t, r.Err, ErrPeerURLExists)
	r = c.do(1, membership(MemberRemove, MemberInfo{ID: 99}))
	assert.ErrorIs(t, r.Err, ErrMemberNotFound)
	r = c.do(1, membership(MemberPromote, MemberInfo{ID: 2}))
	assert.ErrorIs(t, r.Err, ErrNotLearner)

	// Remove member 2; it may not come back.
	r = c.do(lead, membership(MemberRemove, MemberInfo{ID: 2}))
	require.NoError(t, r.Err)
	c.tick(3)
	assert.Equal(t, []uint64{1, 3, 4}, c.members[lead].ConfState().Voters)
	r = c.do(lead, membership(MemberRemove, MemberInfo{ID: 2}))
	assert.ErrorIs(t, r.Err, ErrMemberRemoved)
	c.down[2] = true
	require.NoError(t, c.do(3, set("/after", "x")).Err)

	// Update member 3's peer URLs.
	r = c.do(1, membership(MemberUpdate, MemberInfo{ID: 3, PeerURLs: []string{"http://10.0.0.3:2380"}}))
	require.NoError(t, r.Err)
	c.tick(2)
	for _, id := range []uint64{1, 3, 4} {
		for _, mi := range c.members[id].Members() {
			if mi.ID == 3 {
				assert.Equal(t, []string{"http://10.0.0.3:2380"}, mi.PeerURLs)
				assert.Equal(t, "m3", mi.Name, "the name survives the update")
			}
		}
	}
	c.requireConverged()

	// Everything survives restarts (snapshot or WAL replay).
	for _, id := range []uint64{1, 3, 4} {
		c.restart(id)
	}
	c.leader()
	assert.Len(t, c.members[4].Members(), 3)
	assert.Equal(t, []uint64{1, 3, 4}, c.members[4].ConfState().Voters)
}

func TestMembershipRemovingTheLeader(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	r := c.do(lead, membership(MemberRemove, MemberInfo{ID: lead}))
	require.NoError(t, r.Err)
	c.down[lead] = true
	newLead := lead
	for i := 0; newLead == lead || newLead == 0; i++ {
		require.Less(t, i, 100, "no new leader")
		c.tick(1)
		newLead = c.members[c.ids[0]].Leader()
		if c.ids[0] == lead {
			newLead = c.members[c.ids[1]].Leader()
		}
	}
	_, ss, _ := c.members[lead].node.BasicStatus()
	assert.NotEqual(t, raft.StateLeader, ss.State, "the removed leader stepped down")
	require.NoError(t, c.do(newLead, set("/x", "1")).Err)
}

func TestMembershipRefusesRemovalThatLosesQuorum(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	// One follower is down: removing the other would leave the leader
	// alone with a dead member, unable to commit.
	var down, up uint64
	for _, id := range c.ids {
		if id != lead {
			if down == 0 {
				down = id
			} else {
				up = id
			}
		}
	}
	c.down[down] = true
	c.tick(15)
	r := c.do(lead, membership(MemberRemove, MemberInfo{ID: up}))
	require.Error(t, r.Err)
	assert.True(t, errors.Is(r.Err, ErrTooFewVoters), "got %v", r.Err)
}

// A learner that never starts is never promoted: promoting it would add a
// voter that cannot vote, and a small cluster would lose its quorum.
func TestMembershipDoesNotPromoteAnAbsentLearner(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.leader()
	r := c.do(1, membership(MemberAdd, MemberInfo{ID: 9, PeerURLs: []string{"http://127.0.0.1:1"}}))
	require.NoError(t, r.Err)
	c.tick(50)
	assert.Equal(t, []uint64{1}, c.members[1].ConfState().Voters)
	assert.Equal(t, []uint64{9}, c.members[1].ConfState().Learners)
	require.NoError(t, c.do(1, set("/still", "writable")).Err)
}

// TestMembershipNewMemberAfterCompaction: the log was compacted behind a
// snapshot taken before the new member was added. The member must get a
// snapshot whose configuration names it (raft refuses one that does not),
// so every member takes one when it applies the addition.
func TestMembershipNewMemberAfterCompaction(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.SnapshotEvery, cfg.SnapshotKeep = 15, 1 })
	lead := c.leader()
	for i := range 20 {
		require.NoError(t, c.do(lead, set("/k", string(rune('a'+i)))).Err)
	}
	first, err := c.members[lead].Storage().FirstIndex()
	require.NoError(t, err)
	require.Greater(t, first, uint64(10), "the log was not compacted")

	r := c.do(lead, membership(MemberAdd, MemberInfo{ID: 4, PeerURLs: []string{"http://127.0.0.1:2384"}}))
	require.NoError(t, r.Err)
	snap, err := c.members[lead].Storage().Snapshot()
	require.NoError(t, err)
	assert.Contains(t, snap.Metadata.ConfState.Learners, uint64(4), "the leader's snapshot does not name the new member")
	c.join(4)
	c.tick(30)
	assert.Equal(t, []uint64{1, 2, 3, 4}, c.members[lead].ConfState().Voters)
	assert.Equal(t, "t", valueOf(t, c.do(4, get("/k"))))
	c.requireConverged()
}

// TestJoinerPublishesItsInfoUntilKnown: a member publishes its name and
// URLs through a proposal forwarded to the leader, which may drop it
// without a word (a transfer under way, the bound on uncommitted bytes);
// it proposes them again until the cluster knows them.
func TestJoinerPublishesItsInfoUntilKnown(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	r := c.do(lead, membership(MemberAdd, MemberInfo{ID: 4, PeerURLs: []string{"http://127.0.0.1:2384"}}))
	require.NoError(t, r.Err)
	dropped := 0
	c.drop = func(m raft.Message) bool {
		if m.Type == raft.MsgProp && m.From == 4 && dropped < 2 {
			dropped++
			return true
		}
		return false
	}
	c.join(4)
	c.tick(300)
	require.Equal(t, 2, dropped, "the joiner did not propose its information again after losing it")
	var name string
	for _, info := range c.members[lead].Members() {
		if info.ID == 4 {
			name = info.Name
		}
	}
	assert.Equal(t, "m4", name, "the cluster never learned the joiner's name")
}

// Membership changes sent while another change of the same member is in
// flight (an operator's script adding two members back to back, or an
// addition while the leader promotes a learner) wait their turn, as one
// change at a time requires, instead of failing.
func TestMembershipChangesBackToBackWaitTheirTurn(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	var first, second *Response
	c.members[lead].Submit(membership(MemberAdd, MemberInfo{ID: 4, PeerURLs: []string{"http://127.0.0.1:2384"}}),
		func(r Response) { first = &r })
	c.members[lead].Submit(membership(MemberAdd, MemberInfo{ID: 5, PeerURLs: []string{"http://127.0.0.1:2385"}}),
		func(r Response) { second = &r })
	for i := 0; first == nil || second == nil; i++ {
		require.Less(t, i, 500, "requests not answered")
		c.settle()
		c.tick(1)
	}
	require.NoError(t, first.Err)
	require.NoError(t, second.Err)
	assert.Equal(t, []uint64{4, 5}, c.members[lead].ConfState().Learners)
}
