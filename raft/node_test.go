package raft

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBootstrap(t *testing.T) {
	newNode := func() *Node {
		n, err := NewNode(Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: NewMemoryStorage(),
			Rand: rand.New(rand.NewPCG(1, 1)), MaxInflightMsgs: 1})
		require.NoError(t, err)
		return n
	}
	// Entries come out in voter order with their contexts.
	n := newNode()
	require.NoError(t, n.Bootstrap([]uint64{3, 1, 2}, []byte("c3"), []byte("c1"), []byte("c2")))
	rd := n.Ready()
	require.Len(t, rd.Entries, 3)
	for i, want := range []string{"c1", "c2", "c3"} {
		var cc ConfChange
		require.NoError(t, cc.UnmarshalBinary(rd.Entries[i].Data))
		assert.Equal(t, want, string(cc.Context))
		assert.Equal(t, uint64(i+1), cc.Changes[0].NodeID)
		assert.Equal(t, Entry{Term: 1, Index: uint64(i + 1), Type: EntryConfChange, Data: rd.Entries[i].Data}, rd.Entries[i])
	}
	assert.Equal(t, HardState{Term: 1, Commit: 3}, rd.HardState)
	assert.Equal(t, []uint64{1, 2, 3}, n.Status().Config.Voters)

	for name, bad := range map[string]func(*Node) error{
		"no voters":         func(n *Node) error { return n.Bootstrap(nil) },
		"voter twice":       func(n *Node) error { return n.Bootstrap([]uint64{1, 2, 1}) },
		"voter zero":        func(n *Node) error { return n.Bootstrap([]uint64{0, 1}) },
		"contexts mismatch": func(n *Node) error { return n.Bootstrap([]uint64{1, 2}, []byte("x")) },
		"storage not empty": func(n *Node) error { _ = n.Bootstrap([]uint64{1}); return n.Bootstrap([]uint64{1}) },
	} {
		assert.Error(t, bad(newNode()), name)
	}
}

// TestLoneVoterReadIndexAfterRestart: a lone voter may have applied and
// answered entries beyond the commit index it last wrote before it
// crashed. Restarted, it must not answer a read with that stale commit
// index: it waits, as any leader, until an entry of its term commits.
func TestLoneVoterReadIndexAfterRestart(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(Snapshot{Metadata: SnapshotMetadata{Index: 1, Term: 1, ConfState: ConfState{Voters: []uint64{1}}}}))
	require.NoError(t, s.Append([]Entry{{Index: 2, Term: 1}, {Index: 3, Term: 1}, {Index: 4, Term: 1}, {Index: 5, Term: 1}}))
	require.NoError(t, s.SetHardState(HardState{Term: 1, Vote: 1, Commit: 3}))
	n, err := NewNode(Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		Rand: rand.New(rand.NewPCG(1, 1)), MaxInflightMsgs: 1})
	require.NoError(t, err)
	n.Tick() // a lone voter campaigns at once, and leads once its vote is durable
	rd := n.Ready()
	require.NoError(t, s.SetHardState(rd.HardState))
	n.Advance(rd)
	require.Equal(t, StateLeader, n.Status().SoftState.State)
	n.ReadIndex([]byte("r"))
	var got []ReadState
	for range 5 {
		if !n.HasReady() {
			break
		}
		rd := n.Ready()
		for _, rs := range rd.ReadStates {
			require.GreaterOrEqual(t, rs.Index, uint64(6), "read index %d before the term's first entry committed", rs.Index)
		}
		got = append(got, rd.ReadStates...)
		require.NoError(t, s.Append(rd.Entries))
		n.Advance(rd)
	}
	require.Len(t, got, 1, "the read is answered once the no-op commits")
}
