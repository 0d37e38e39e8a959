package server

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/storage"
)

// testCluster drives members in one goroutine, the way the simulator does but
// without faults unless a test injects them: every round delivers all
// messages in order.
type testCluster struct {
	t       *testing.T
	ids     []uint64
	members map[uint64]*Member
	fs      map[uint64]storage.FS
	infos   []MemberInfo
	now     time.Time
	seed    uint64
	// inflight are messages not yet delivered.
	inflight []raft.Message
	// down members receive nothing and are not ticked.
	down map[uint64]bool
	// drop, if set, decides whether a message is lost.
	drop func(raft.Message) bool
	// configure adjusts each member's Config.
	configure func(*Config)
}

func newTestCluster(t *testing.T, n int, configure func(*Config)) *testCluster {
	c := &testCluster{t: t, members: map[uint64]*Member{}, fs: map[uint64]storage.FS{},
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), down: map[uint64]bool{}, configure: configure}
	for i := 1; i <= n; i++ {
		id := uint64(i)
		c.ids = append(c.ids, id)
		c.infos = append(c.infos, MemberInfo{ID: id, Name: fmt.Sprintf("m%d", id),
			PeerURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", 2380+i)}, ClientURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", 2379+i*10)}})
	}
	for _, id := range c.ids {
		c.fs[id] = storage.NewMemFS()
		c.start(id)
	}
	return c
}

func (c *testCluster) config(id uint64) Config {
	c.seed++
	cfg := Config{ID: id, Name: fmt.Sprintf("m%d", id), InitialCluster: c.infos, FS: c.fs[id], Dir: "data",
		Rand: rand.New(rand.NewPCG(c.seed, id)), ElectionTicks: 10, HeartbeatTicks: 1,
		PeerURLs: c.infos[id-1].PeerURLs, ClientURLs: c.infos[id-1].ClientURLs}
	if c.configure != nil {
		c.configure(&cfg)
	}
	return cfg
}

func (c *testCluster) start(id uint64) {
	m, err := New(c.config(id))
	require.NoError(c.t, err)
	c.members[id] = m
	delete(c.down, id)
}

// restart closes member id and opens it again from its disk.
func (c *testCluster) restart(id uint64) {
	require.NoError(c.t, c.members[id].Close())
	c.start(id)
}

// process lets every member work and queues its messages.
func (c *testCluster) process() bool {
	moved := false
	for _, id := range c.ids {
		m := c.members[id]
		if c.down[id] {
			continue
		}
		for m.HasWork() {
			moved = true
			out := m.Process()
			require.NoError(c.t, out.Err)
			c.inflight = append(c.inflight, out.Messages...)
			c.inflight = append(c.inflight, out.AfterPersist...)
			if out.Persist != nil {
				// The disk is instant here.
				m.PersistDone(out.Persist, out.Persist.Run())
			}
		}
	}
	return moved
}

// settle delivers messages and processes until nothing moves.
func (c *testCluster) settle() {
	for i := 0; ; i++ {
		require.Less(c.t, i, 10000, "testCluster does not settle")
		moved := c.process()
		msgs := c.inflight
		c.inflight = nil
		for _, msg := range msgs {
			if c.down[msg.To] || (c.drop != nil && c.drop(msg)) {
				continue
			}
			if m, ok := c.members[msg.To]; ok {
				m.Receive(msg, c.now)
			}
		}
		if !moved && len(msgs) == 0 {
			return
		}
	}
}

// tick advances every live member's clock by one tick and settles.
func (c *testCluster) tick(n int) {
	for range n {
		c.now = c.now.Add(100 * time.Millisecond)
		for _, id := range c.ids {
			if !c.down[id] {
				c.members[id].Tick(c.now)
			}
		}
		c.settle()
	}
}

// leader ticks until a leader is known to every live member, and returns it.
func (c *testCluster) leader() uint64 {
	for range 200 {
		lead := uint64(0)
		agreed := true
		for _, id := range c.ids {
			if c.down[id] {
				continue
			}
			l := c.members[id].Leader()
			if lead == 0 {
				lead = l
			}
			agreed = agreed && l != 0 && l == lead
		}
		if agreed && lead != 0 {
			return lead
		}
		c.tick(1)
	}
	c.t.Fatal("no leader elected")
	return 0
}

// follower returns the first member, in ID order, that is not lead.
func (c *testCluster) follower(lead uint64) uint64 {
	for _, id := range c.ids {
		if id != lead {
			return id
		}
	}
	c.t.Fatal("no member but the leader")
	return 0
}

// do submits req at member id and runs the testCluster until it is answered.
func (c *testCluster) do(id uint64, req Request) Response {
	var resp *Response
	req.Now = c.now
	c.members[id].Submit(req, func(r Response) { resp = &r })
	for i := 0; resp == nil; i++ {
		require.Less(c.t, i, 500, "request not answered")
		c.settle()
		if resp == nil {
			c.tick(1)
		}
	}
	return *resp
}

func set(key, value string) Request {
	return Request{Kind: RequestWrite, Command: kvstore.Command{Op: kvstore.OpSet, Path: key, Value: value}}
}

func get(key string) Request {
	return Request{Kind: RequestRead, Path: key}
}

func valueOf(t *testing.T, r Response) string {
	t.Helper()
	require.NoError(t, r.Err)
	require.NotNil(t, r.Event)
	require.NotNil(t, r.Event.Node.Value)
	return *r.Event.Node.Value
}

// hashes returns each live member's applied index and key-space hash.
func (c *testCluster) hashes() map[uint64][2]uint64 {
	out := map[uint64][2]uint64{}
	for _, id := range c.ids {
		if !c.down[id] {
			out[id] = [2]uint64{c.members[id].Applied(), c.members[id].StoreHash()}
		}
	}
	return out
}

// requireConverged checks that all live members applied the same entries
// and hold the same key space.
func (c *testCluster) requireConverged() {
	c.tick(5)
	h := c.hashes()
	var first [2]uint64
	ids := slices.Sorted(func(yield func(uint64) bool) {
		for id := range h {
			if !yield(id) {
				return
			}
		}
	})
	for i, id := range ids {
		if i == 0 {
			first = h[id]
			continue
		}
		require.Equal(c.t, first, h[id], "member %d differs from member %d", id, ids[0])
	}
}

// join starts member id with an empty disk as a member joining the
// cluster (it must have been added first).
func (c *testCluster) join(id uint64) {
	c.ids = append(c.ids, id)
	c.fs[id] = storage.NewMemFS()
	info := MemberInfo{ID: id, Name: fmt.Sprintf("m%d", id), PeerURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", 2380+id)},
		ClientURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", 2379+id*10)}}
	c.infos = append(c.infos, info)
	cfg := c.config(id)
	cfg.Joining = true
	cfg.InitialCluster = nil
	m, err := New(cfg)
	require.NoError(c.t, err)
	c.members[id] = m
}
