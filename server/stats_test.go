package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/kvstore"
)

// TestStoreStatsCountWritesEverywhereAndReadsWhereServed checks the
// /v2/stats/store semantics of etcd: every member counts every write as it
// applies it (and every expired key), reads count on the member that served
// them, and a refused operation counts as a failure of its kind.
func TestStoreStatsCountWritesEverywhereAndReadsWhereServed(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	follower := c.ids[0]
	if follower == lead {
		follower = c.ids[1]
	}
	write := func(cmd kvstore.Command) {
		c.do(follower, Request{Kind: RequestWrite, Command: cmd})
	}
	write(kvstore.Command{Op: kvstore.OpSet, Path: "/a", Value: "1"})
	write(kvstore.Command{Op: kvstore.OpSet, Path: "/a", Value: "2", PrevExist: kvstore.PrevExistFalse}) // create fails
	write(kvstore.Command{Op: kvstore.OpSet, Path: "/a", Value: "3", PrevValue: "1"})                    // CAS succeeds
	write(kvstore.Command{Op: kvstore.OpSet, Path: "/a", Value: "4", PrevExist: kvstore.PrevExistTrue})  // update
	write(kvstore.Command{Op: kvstore.OpCreateInOrder, Path: "/q", Value: "x"})
	write(kvstore.Command{Op: kvstore.OpDelete, Path: "/a", PrevIndex: 99}) // CAD fails
	write(kvstore.Command{Op: kvstore.OpDelete, Path: "/nope"})             // delete fails
	write(kvstore.Command{Op: kvstore.OpSet, Path: "/ttl", Value: "x", HasTTL: true, TTL: 1})
	c.tick(20) // the leader proposes the expiry
	require.Error(t, c.do(follower, get("/ttl")).Err)
	require.NoError(t, c.do(follower, get("/a")).Err)

	want := StoreStats{
		SetsSuccess: 2, CreateSuccess: 1, CreateFail: 1, CompareAndSwapSuccess: 1, UpdateSuccess: 1,
		CompareAndDeleteFail: 1, DeleteFail: 1, ExpireCount: 1,
	}
	for _, id := range c.ids {
		got := c.members[id].StoreStats()
		gets := [2]uint64{got.GetsSuccess, got.GetsFail}
		got.GetsSuccess, got.GetsFail = 0, 0
		assert.Equal(t, want, got, "member %d", id)
		if id == follower {
			assert.Equal(t, [2]uint64{1, 1}, gets, "the reads count where they were served")
		} else {
			assert.Equal(t, [2]uint64{0, 0}, gets, "member %d served no read", id)
		}
	}
	assert.Equal(t, 3, c.members[lead].NodeCount(), "/a, /q and /q/<n>")
	assert.Equal(t, 0, c.members[lead].PendingProposals())
	assert.False(t, c.members[lead].IsLearner())
}
