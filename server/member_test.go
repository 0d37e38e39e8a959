package server

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/storage"
)

func TestSingleMemberWritesAndReads(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	require.Equal(t, uint64(1), c.leader())
	r := c.do(1, set("/a", "1"))
	require.NoError(t, r.Err)
	assert.Equal(t, kvstore.ActionSet, r.Event.Action)
	assert.Equal(t, "1", valueOf(t, c.do(1, get("/a"))))
	// A serializable read is answered at once from the local copy.
	var got Response
	c.members[1].Submit(Request{Kind: RequestRead, Path: "/a", Serializable: true}, func(r Response) { got = r })
	assert.Equal(t, "1", valueOf(t, got))
	// Key errors come back as etcd errors.
	r = c.do(1, get("/missing"))
	var kerr *kvstore.Error
	require.True(t, errors.As(r.Err, &kerr))
	assert.Equal(t, kvstore.CodeKeyNotFound, kerr.Code)
}

func TestClusterWritesAtAnyMember(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	for i, id := range c.ids {
		r := c.do(id, set(fmt.Sprintf("/k%d", i), fmt.Sprint(i)))
		require.NoError(t, r.Err, "write at member %d (leader %d)", id, lead)
	}
	// Linearizable reads at every member see every write.
	for _, id := range c.ids {
		for i := range c.ids {
			assert.Equal(t, fmt.Sprint(i), valueOf(t, c.do(id, get(fmt.Sprintf("/k%d", i)))))
		}
	}
	c.requireConverged()
}

func TestLinearizableReadOnFollowerSeesLatestWrite(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	follower := c.ids[0]
	if follower == lead {
		follower = c.ids[1]
	}
	// The follower does not hear of the write's commit: it has to ask the
	// leader for a read index and wait until it has applied it.
	other := uint64(6) - lead - follower
	c.drop = func(m raft.Message) bool {
		return m.To == follower && m.Type == raft.MsgApp && m.Commit > 0 && len(m.Entries) == 0
	}
	_ = other
	require.NoError(t, c.do(lead, set("/x", "new")).Err)
	c.drop = nil
	assert.Equal(t, "new", valueOf(t, c.do(follower, get("/x"))))
}

func TestDuplicatedProposalAppliesOnce(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	follower := c.ids[0]
	if follower == lead {
		follower = c.ids[1]
	}
	// The network delivers every forwarded proposal twice.
	orig := c.settle
	_ = orig
	dup := func(msgs []raft.Message) []raft.Message {
		var out []raft.Message
		for _, m := range msgs {
			out = append(out, m)
			if m.Type == raft.MsgProp {
				out = append(out, m)
			}
		}
		return out
	}
	var resp *Response
	c.members[follower].Submit(Request{Kind: RequestWrite, Now: c.now,
		Command: kvstore.Command{Op: kvstore.OpCreateInOrder, Path: "/queue", Value: "job"}}, func(r Response) { resp = &r })
	for range 20 {
		c.process()
		c.inflight = dup(c.inflight)
		c.settle()
	}
	require.NotNil(t, resp)
	require.NoError(t, resp.Err)
	r := c.do(lead, Request{Kind: RequestRead, Path: "/queue", Get: kvstore.GetOptions{Recursive: true}})
	require.NoError(t, r.Err)
	assert.Len(t, r.Event.Node.Nodes, 1, "the in-order create applied once")
	c.requireConverged()
}

func TestRestartRecoversFromWAL(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.leader()
	for i := range 20 {
		require.NoError(t, c.do(c.ids[i%3], set(fmt.Sprintf("/r/%d", i), "v")).Err)
	}
	before := c.hashes()
	for _, id := range c.ids {
		c.restart(id)
	}
	c.leader()
	c.tick(3)
	after := c.hashes()
	for _, id := range c.ids {
		assert.GreaterOrEqual(t, after[id][0], before[id][0])
	}
	for i := range 20 {
		assert.Equal(t, "v", valueOf(t, c.do(c.ids[0], get(fmt.Sprintf("/r/%d", i)))))
	}
	c.requireConverged()
}

func TestSnapshotCompactsAndCatchesUpALaggingMember(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.SnapshotEvery = 20; cfg.SnapshotKeep = 5 })
	lead := c.leader()
	lagger := c.follower(lead)
	c.down[lagger] = true
	for i := range 60 {
		require.NoError(t, c.do(lead, set(fmt.Sprintf("/s/%d", i), fmt.Sprint(i))).Err)
	}
	first, err := c.members[lead].Storage().FirstIndex()
	require.NoError(t, err)
	require.Greater(t, first, c.members[lagger].Applied()+1, "the leader compacted what the lagger needs")
	// The in-memory log keeps no snapshot data: raft reads it back from
	// the snapshot file to send it.
	mirrored, err := c.members[lead].raftLog.Snapshot()
	require.NoError(t, err)
	require.NotZero(t, mirrored.Metadata.Index)
	assert.Nil(t, mirrored.Data, "the in-memory log holds the snapshot's data")
	c.restart(lagger)
	c.tick(30)
	for i := range 60 {
		assert.Equal(t, fmt.Sprint(i), valueOf(t, c.do(lagger, get(fmt.Sprintf("/s/%d", i)))))
	}
	c.requireConverged()
	for _, id := range c.ids {
		mirrored, err := c.members[id].raftLog.Snapshot()
		require.NoError(t, err)
		assert.Nil(t, mirrored.Data, "member %d's in-memory log holds snapshot data", id)
	}
	c.tick(snapshotDataIdleTicks + 1)
	assert.Nil(t, c.members[lead].snapLog.data, "the data read back for the transfer stays in memory")
	// A member restarted after snapshots recovers from snapshot + WAL.
	c.restart(lead)
	c.leader()
	c.requireConverged()
}

// TestDamagedSnapshotFileIsReplaced: the snapshot a lagging member needs
// is read back from its file; a file damaged since it was written is not
// sent, and the leader takes a new snapshot once another entry applies,
// which the lagger then gets.
func TestDamagedSnapshotFileIsReplaced(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.SnapshotEvery = 20; cfg.SnapshotKeep = 5 })
	lead := c.leader()
	lagger := c.follower(lead)
	c.down[lagger] = true
	for i := range 30 {
		require.NoError(t, c.do(lead, set(fmt.Sprintf("/s/%d", i), fmt.Sprint(i))).Err)
	}
	damaged, err := c.members[lead].raftLog.Snapshot()
	require.NoError(t, err)
	names, err := c.fs[lead].List("data/snap")
	require.NoError(t, err)
	flipped := 0
	for _, name := range names {
		f, err := c.fs[lead].Open("data/snap/" + name)
		require.NoError(t, err)
		b := make([]byte, 1)
		_, err = f.ReadAt(b, 40)
		require.NoError(t, err)
		b[0] ^= 0xff
		_, err = f.WriteAt(b, 40)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		flipped++
	}
	require.NotZero(t, flipped)
	_, err = c.members[lead].Storage().Snapshot()
	require.ErrorIs(t, err, raft.ErrSnapshotTemporarilyUnavailable)
	require.True(t, c.members[lead].snapshotNow, "no new snapshot asked for")

	c.restart(lagger)
	c.tick(10)
	require.NoError(t, c.do(lead, set("/after", "x")).Err)
	c.tick(30)
	replaced, err := c.members[lead].raftLog.Snapshot()
	require.NoError(t, err)
	assert.Greater(t, replaced.Metadata.Index, damaged.Metadata.Index, "no new snapshot")
	for i := range 30 {
		assert.Equal(t, fmt.Sprint(i), valueOf(t, c.do(lagger, get(fmt.Sprintf("/s/%d", i)))))
	}
	assert.Equal(t, "x", valueOf(t, c.do(lagger, get("/after"))))
	c.requireConverged()
}

func TestTTLKeysExpireThroughTheLog(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	r := c.do(lead, Request{Kind: RequestWrite, Command: kvstore.Command{Op: kvstore.OpSet, Path: "/tmp", Value: "x", HasTTL: true, TTL: 1}})
	require.NoError(t, r.Err)
	require.NotNil(t, r.Event.Node.Expiration)
	c.tick(20) // two seconds: the leader proposes the expiry
	for _, id := range c.ids {
		r := c.do(id, get("/tmp"))
		var kerr *kvstore.Error
		require.True(t, errors.As(r.Err, &kerr), "member %d still has the key", id)
		assert.Equal(t, kvstore.CodeKeyNotFound, kerr.Code)
	}
	c.requireConverged()
}

func TestWatchSeesLaterWrite(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.leader()
	w := c.do(c.ids[1], Request{Kind: RequestWatch, Path: "/w", Watch: kvstore.WatchOptions{Recursive: true}})
	require.NoError(t, w.Err)
	require.NotNil(t, w.Watcher)
	require.NoError(t, c.do(c.ids[0], set("/w/x", "1")).Err)
	c.tick(2)
	select {
	case ev := <-w.Watcher.EventChan():
		assert.Equal(t, "/w/x", ev.Node.Key)
	default:
		t.Fatal("the watcher saw no event")
	}
}

func TestRequestsTimeOutWithoutQuorum(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	for _, id := range c.ids {
		if id != lead {
			c.down[id] = true
		}
	}
	r := c.do(lead, set("/lost", "x"))
	var kerr *kvstore.Error
	require.True(t, errors.As(r.Err, &kerr))
	assert.Equal(t, kvstore.CodeRaftInternal, kerr.Code)
	assert.Contains(t, kerr.Cause, "timed out")
}

func TestFullDiskRefusesWritesAndLosesNothing(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.WAL.SegmentSize = 16 << 10 })
	ffs := storage.NewFaultyFS()
	c.fs[1] = ffs
	c.start(1)
	c.leader()
	require.NoError(t, c.do(1, set("/kept", "1")).Err)
	ffs.SetCapacity(ffs.Used())
	// Writes go on into the preallocated segment until it is full; the
	// next segment cannot be made.
	value := strings.Repeat("v", 1024)
	acked := map[string]bool{}
	var refused error
	for i := 0; refused == nil; i++ {
		require.Less(t, i, 100, "the disk never filled up")
		key := fmt.Sprintf("/fill/%d", i)
		var resp *Response
		c.members[1].Submit(Request{Kind: RequestWrite, Now: c.now, Command: kvstore.Command{Op: kvstore.OpSet, Path: key, Value: value}},
			func(r Response) { resp = &r })
		c.tick(1)
		switch {
		case resp == nil:
			// Stuck in the refused batch: its outcome waits for space.
		case resp.Err != nil:
			refused = resp.Err
		default:
			acked[key] = true
		}
	}
	assert.Contains(t, refused.Error(), "no space")
	require.NotEmpty(t, acked)
	// Space comes back: writes go through again, and nothing acknowledged
	// was lost, before or after a restart.
	ffs.SetCapacity(1 << 40)
	c.tick(3)
	require.NoError(t, c.do(1, set("/after", "2")).Err)
	c.restart(1)
	c.leader()
	assert.Equal(t, "1", valueOf(t, c.do(1, get("/kept"))))
	for key := range acked {
		assert.Equal(t, value, valueOf(t, c.do(1, get(key))))
	}
}

// A write forwarded to a leader that dies before it appends it is proposed
// again to the next leader, instead of waiting for its timeout.
func TestWriteSurvivesTheLossOfItsLeader(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	follower := c.ids[0]
	if follower == lead {
		follower = c.ids[1]
	}
	// The forwarded proposal is lost with the leader.
	c.drop = func(m raft.Message) bool { return m.Type == raft.MsgProp }
	var resp *Response
	c.members[follower].Submit(Request{Kind: RequestWrite, Now: c.now,
		Command: kvstore.Command{Op: kvstore.OpCreateInOrder, Path: "/jobs", Value: "once"}}, func(r Response) { resp = &r })
	c.settle()
	c.down[lead] = true
	c.drop = nil
	for i := 0; resp == nil; i++ {
		require.Less(t, i, 40, "the write waited for its timeout")
		c.tick(1)
	}
	require.NoError(t, resp.Err)
	c.down[lead] = false
	c.restart(lead)
	c.tick(20)
	r := c.do(follower, Request{Kind: RequestRead, Path: "/jobs", Get: kvstore.GetOptions{Recursive: true}})
	require.NoError(t, r.Err)
	assert.Len(t, r.Event.Node.Nodes, 1, "applied once")
	c.requireConverged()
}

// TestMemberCatchesUpTicksItMissed: a leader that stood still (a stopped
// process, a long pause) while its followers went away must not resume on
// the clock from before the pause, trusting a quorum — or a lease — that
// ran out meanwhile. Its next tick, or its next request, gives raft the
// ticks it missed, and CheckQuorum deposes it at once.
func TestMemberCatchesUpTicksItMissed(t *testing.T) {
	for _, via := range []string{"tick", "request"} {
		t.Run(via, func(t *testing.T) {
			c := newTestCluster(t, 3, func(cfg *Config) { cfg.LeaseReads = true })
			lead := c.leader()
			require.NoError(t, c.do(lead, set("/k", "v")).Err)
			for _, id := range c.ids {
				c.down[id] = id != lead
			}
			// Five election timeouts later (ElectionTicks 10 × 100 ms).
			later := c.now.Add(5 * time.Second)
			if via == "tick" {
				c.members[lead].Tick(later)
			} else {
				req := get("/k")
				req.Now = later
				c.members[lead].Submit(req, func(Response) {})
			}
			assert.NotEqual(t, raft.StateLeader, c.members[lead].RaftStatus().SoftState.State,
				"a leader that heard from nobody for five election timeouts still leads")
		})
	}
}

// TestLateTickAddsNothingAfterCatchUp: a follower that resumes from a
// pause catches up by its clock as it takes a heartbeat, then gets the tick
// its shell held back during the pause (Go's ticker keeps one) and, soon
// after, the next on the ticker's phase. Those ticks must not count the
// same time twice: the promise made with the heartbeat lasts an election
// timeout by the follower's clock, less the part of a tick already begun,
// on which the leader's lease rests.
func TestLateTickAddsNothingAfterCatchUp(t *testing.T) {
	// Ticks are 100 ms, the election timeout 10 ticks.
	c, follower, resumed := heartbeatAfterPause(t, 5050*time.Millisecond)
	c.members[follower].Tick(resumed) // the tick held back during the pause
	for at := resumed.Add(50 * time.Millisecond); !at.After(resumed.Add(850 * time.Millisecond)); at = at.Add(100 * time.Millisecond) {
		c.members[follower].Tick(at)
	}
	assert.True(t, c.members[follower].Promising(), "the promise ran out 850 ms after the heartbeat, less than 9 ticks")
	c.members[follower].Tick(resumed.Add(1050 * time.Millisecond))
	assert.False(t, c.members[follower].Promising(), "the promise outlived an election timeout and a tick")
}

// TestFollowerCatchesUpBeforeItPromises: a follower that stood still and
// resumes with messages waiting must catch up the ticks it missed before
// it takes them. Acknowledging a heartbeat promises the leader an election
// timeout without a vote for anyone else, on which the leader's lease
// rests; made on the clock from before the pause, the promise would run
// out at the follower's next tick, when that clock jumps forward.
func TestFollowerCatchesUpBeforeItPromises(t *testing.T) {
	// Five election timeouts later (ElectionTicks 10 × 100 ms).
	c, follower, later := heartbeatAfterPause(t, 5*time.Second)
	c.members[follower].Tick(later.Add(100 * time.Millisecond))
	assert.True(t, c.members[follower].Promising(), "the promise made on resuming ran out at the next tick")
}

// heartbeatAfterPause starts a cluster of three with lease reads and hands
// a follower, resuming pause after its last tick, the leader's heartbeat
// before anything else. It returns the follower and when it resumed.
func heartbeatAfterPause(t *testing.T, pause time.Duration) (c *testCluster, follower uint64, resumed time.Time) {
	c = newTestCluster(t, 3, func(cfg *Config) { cfg.LeaseReads = true })
	lead := c.leader()
	for _, id := range c.ids {
		if id != lead {
			follower = id
			break
		}
	}
	resumed = c.now.Add(pause)
	st := c.members[lead].RaftStatus()
	c.members[follower].Receive(raft.Message{Type: raft.MsgHeartbeat, From: lead, To: follower,
		Term: st.Term, Commit: st.Commit}, resumed)
	return c, follower, resumed
}

// TestTimedOutWriteNeverLandsLater: a write submitted while its member
// knows no leader waits in the member's queue. Once its client has been
// told it timed out, it must not be proposed when a leader appears: a
// client that then writes the key again, elsewhere, would see its newer
// value overwritten by the one it was told had not made it in time.
func TestTimedOutWriteNeverLandsLater(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	f := c.follower(lead)
	for _, id := range c.ids {
		c.down[id] = id != f
	}
	for i := 0; c.members[f].Leader() != raft.None; i++ {
		require.Less(t, i, 100, "the cut-off follower still names a leader")
		c.tick(1)
	}
	timedOut := c.do(f, set("/k", "stale"))
	var kerr *kvstore.Error
	require.True(t, errors.As(timedOut.Err, &kerr), "%v", timedOut.Err)
	require.Contains(t, kerr.Cause, "timed out")

	// The other two write the key meanwhile; then f hears from their
	// leader again and flushes its queue.
	for _, id := range c.ids {
		c.down[id] = id == f
	}
	require.NoError(t, c.do(c.follower(f), set("/k", "fresh")).Err)
	c.down[f] = false
	c.tick(30)
	assert.Equal(t, "fresh", valueOf(t, c.do(f, Request{Kind: RequestRead, Path: "/k"})))
	c.requireConverged()
}
