package linearizability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// replicated is a leader's key space and a follower's that applies the
// same log some entries behind: the shape of the stale-read bug the
// simulator plants, without the simulator.
type replicated struct {
	leader, follower *kvstore.Store
	log              []kvstore.Command
	// applied is how much of log the follower has applied.
	applied int
}

func newReplicated(t testing.TB) *replicated {
	leader, err := kvstore.New(kvstore.Config{})
	require.NoError(t, err)
	follower, err := kvstore.New(kvstore.Config{})
	require.NoError(t, err)
	return &replicated{leader: leader, follower: follower}
}

func (r *replicated) write(cmd kvstore.Command) kvstore.Result {
	r.log = append(r.log, cmd)
	return r.leader.Apply(uint64(len(r.log)), cmd)
}

// catchUp applies the log on the follower up to entry n.
func (r *replicated) catchUp(n int) {
	for ; r.applied < n; r.applied++ {
		r.follower.Apply(uint64(r.applied+1), r.log[r.applied])
	}
}

// runFollowerReads runs a sequential workload of writes and reads on a few
// keys, reads half the time answered by the follower. With readIndex the
// follower first catches up with the leader's log as of the read's arrival
// (Raft's ReadIndex); without, it answers from whatever it has (the planted
// bug). It returns the history and whether some read was really stale.
func runFollowerReads(t testing.TB, seed uint64, readIndex bool) (History, bool) {
	rng := rand.New(rand.NewPCG(seed, 0))
	r := newReplicated(t)
	rec := NewRecorder()
	stale := false
	now := int64(0)
	for i := range 200 {
		// The follower falls behind, and now and then catches up.
		if rng.IntN(4) == 0 {
			r.catchUp(len(r.log) - rng.IntN(3))
		}
		key := fmt.Sprintf("/k%d", rng.IntN(5))
		client := rng.IntN(4)
		call, ret := now, now+int64(1+rng.IntN(5))
		now = ret + 1
		if rng.IntN(2) == 0 {
			cmd := kvstore.Command{Op: kvstore.OpSet, Path: key, Value: fmt.Sprintf("v%d", i)}
			id := rec.Call(client, Write(cmd), call)
			res := r.write(cmd)
			rec.Return(id, OutputOf(res.Event, errorOf(res.Err)), ret)
			continue
		}
		store := r.leader
		if rng.IntN(2) == 0 {
			store = r.follower
			if readIndex {
				r.catchUp(len(r.log))
			}
			stale = stale || r.follower.CurrentIndex() < r.leader.CurrentIndex()
		}
		ev, err := store.Get(key, kvstore.GetOptions{})
		id := rec.Call(client, Read(key, false), call)
		rec.Return(id, OutputOf(ev, err), ret)
	}
	return rec.History(), stale
}

func TestStaleFollowerReadsAreCaught(t *testing.T) {
	caught := 0
	for seed := range uint64(20) {
		h, stale := runFollowerReads(t, seed, false)
		require.True(t, stale, "seed %d: the follower never lagged; the test proves nothing", seed)
		opts := quiet(t)
		opts.Annotations = []Annotation{{Tag: "member 2", Start: 0, Description: "answers linearizable reads locally (planted bug)"}}
		res := Check(h, opts)
		require.False(t, res.Ok, "seed %d: stale follower reads passed", seed)
		require.NotNil(t, res.IndexOrder, "seed %d: %s", seed, res)
		html, err := os.ReadFile(res.Visualization)
		require.NoError(t, err)
		assert.Contains(t, string(html), "planted bug")
		if len(res.Illegal) > 0 {
			caught++
		}
	}
	// The per-key model sees most of them on its own too: a stale read of
	// a key written since.
	assert.Greater(t, caught, 10)
}

func TestReadIndexFollowerReadsPass(t *testing.T) {
	for seed := range uint64(20) {
		h, _ := runFollowerReads(t, seed, true)
		res := Check(h, quiet(t))
		require.True(t, res.Ok, "seed %d: %s", seed, res)
	}
}

// A real-cluster test records from many goroutines on the wall clock; here
// the "cluster" is one store behind a mutex, which is linearizable.
func TestConcurrentWallClockRecording(t *testing.T) {
	store, err := kvstore.New(kvstore.Config{})
	require.NoError(t, err)
	var mu sync.Mutex
	rec := NewRecorder()
	now, epoch := WallClock()
	var wg sync.WaitGroup
	for client := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(client), 1))
			for i := range 50 {
				key := fmt.Sprintf("/k%d", rng.IntN(3))
				if rng.IntN(2) == 0 {
					cmd := kvstore.Command{Op: kvstore.OpSet, Path: key, Value: fmt.Sprintf("c%d-%d", client, i),
						HasTTL: rng.IntN(4) == 0, TTL: 60, Now: time.Now()}
					id := rec.Call(client, Write(cmd), now())
					mu.Lock()
					res := store.Apply(0, cmd)
					mu.Unlock()
					rec.Return(id, OutputOf(res.Event, errorOf(res.Err)), now())
					continue
				}
				id := rec.Call(client, Read(key, false), now())
				mu.Lock()
				ev, err := store.Get(key, kvstore.GetOptions{Now: time.Now()})
				mu.Unlock()
				rec.Return(id, OutputOf(ev, err), now())
			}
		}()
	}
	wg.Wait()
	h := rec.History()
	require.Len(t, h.Operations, 400)
	opts := quiet(t)
	opts.Epoch = epoch
	res := Check(h, opts)
	require.True(t, res.Ok, "%s", res)
	assert.Equal(t, 3, res.Partitions)
}
