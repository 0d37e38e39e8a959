package server

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/storage"
)

// TestForceNewCluster: a member's data dir (snapshots taken, log
// compacted, an uncommitted entry at its end) is read back as the member
// had it, and made into a one-member cluster whose member starts with the
// same key space at the same index, alone in a new cluster, without the
// uncommitted entry.
func TestForceNewCluster(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.SnapshotEvery = 10; cfg.SnapshotKeep = 5 })
	lead := c.leader()
	for i := range 35 {
		c.do(lead, set(fmt.Sprintf("/k%02d", i), fmt.Sprintf("v%d", i)))
	}
	c.settle()
	m := c.members[1]
	applied, hash, storeIndex, clusterID := m.Applied(), m.StoreHash(), m.StoreIndex(), m.ClusterID()
	require.NoError(t, m.Close())
	fs := c.fs[1]

	// An entry the member wrote but never learned committed.
	wal, rec, err := storage.Open(fs, filepath.Join("data", "wal"), storage.Options{})
	require.NoError(t, err)
	last := rec.Entries[len(rec.Entries)-1]
	require.Equal(t, applied, rec.HardState.Commit)
	require.NoError(t, wal.Save(rec.HardState, []raft.Entry{{Index: last.Index + 1, Term: last.Term, Data: []byte("not a proposal")}}, true))
	require.NoError(t, wal.Close())

	st, err := ReadDataDir(fs, "data")
	require.NoError(t, err)
	assert.Equal(t, applied, st.Index)
	assert.Equal(t, storeIndex, st.StoreIndex)
	assert.Equal(t, clusterID, st.ClusterID)
	assert.Len(t, st.Members, 3)
	assert.Equal(t, uint64(1), st.Uncommitted)

	self := MemberInfo{ID: 99, Name: "r1", PeerURLs: []string{"http://127.0.0.1:7001"}, ClientURLs: []string{"http://127.0.0.1:7002"}}
	st2, err := ForceNewCluster(fs, "data", "new", self, 0xc0ffee)
	require.NoError(t, err)
	assert.Equal(t, st.Index, st2.Index)
	assert.Equal(t, []MemberInfo{self}, st2.Members)

	r, err := New(Config{ID: 99, Name: "r1", Joining: true, FS: fs, Dir: "new", Rand: rand.New(rand.NewPCG(1, 2)),
		PeerURLs: self.PeerURLs, ClientURLs: self.ClientURLs})
	require.NoError(t, err)
	defer r.Close()
	assert.Equal(t, applied, r.Applied())
	assert.Equal(t, hash, r.StoreHash(), "the key space changed")
	assert.Equal(t, storeIndex, r.StoreIndex())
	assert.Equal(t, uint64(0xc0ffee), r.ClusterID())
	assert.Equal(t, []MemberInfo{self}, r.Members())
	assert.Equal(t, []uint64{99}, r.ConfState().Voters)
	lastIndex, err := r.Storage().LastIndex()
	require.NoError(t, err)
	assert.Equal(t, applied, lastIndex, "the uncommitted entry came along")

	// The old data dir is only read: it still replays the same.
	again, err := ReadDataDir(fs, "data")
	require.NoError(t, err)
	assert.Equal(t, st, again)
	_, err = ForceNewCluster(fs, "data", "new", self, 0xc0ffee)
	assert.ErrorContains(t, err, "already holds a WAL")
}
