package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// testCluster wires members in memory for tests: storage is a
// MemoryStorage per member, the network a queue that tests deliver from,
// drop from, or partition.
type testCluster struct {
	t       fataler
	ids     []uint64
	nodes   map[uint64]*Node
	storage map[uint64]*MemoryStorage
	// applied is every entry each member applied, in order.
	applied map[uint64][]Entry
	// readStates collects the ReadStates each member received.
	readStates map[uint64][]ReadState
	// inflight are messages sent and not yet delivered, in order.
	inflight []Message
	// cut[a][b] drops messages from a to b.
	cut map[[2]uint64]bool
	// configure, if set, adjusts each member's Config.
	configure func(*Config)
	// synced is each member's hard state as of its last synced write: what
	// a crash (see crash) leaves.
	synced map[uint64]HardState
}

// fataler is what the cluster needs of a test: *testing.T or *rapid.T.
type fataler interface {
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func newTestCluster(t fataler, n int, configure func(*Config)) *testCluster {
	c := &testCluster{
		t: t, nodes: map[uint64]*Node{}, storage: map[uint64]*MemoryStorage{},
		applied: map[uint64][]Entry{}, readStates: map[uint64][]ReadState{},
		cut: map[[2]uint64]bool{}, configure: configure, synced: map[uint64]HardState{},
	}
	var ids []uint64
	for i := 1; i <= n; i++ {
		ids = append(ids, uint64(i))
	}
	for _, id := range ids {
		c.addMember(id)
		if err := c.nodes[id].Bootstrap(ids); err != nil {
			t.Fatal(err)
		}
	}
	c.stabilize()
	return c
}

func (c *testCluster) config(id uint64, s Storage) Config {
	cfg := Config{
		ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		Rand:          rand.New(rand.NewPCG(uint64(id), 42)),
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256,
		StepDownOnRemoval: true,
	}
	if c.configure != nil {
		c.configure(&cfg)
	}
	return cfg
}

// addMember starts a member with empty storage (not bootstrapped).
func (c *testCluster) addMember(id uint64) {
	s := NewMemoryStorage()
	n, err := NewNode(c.config(id, s))
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id], c.storage[id] = n, s
	if !slices.Contains(c.ids, id) {
		c.ids = append(c.ids, id)
		slices.Sort(c.ids)
	}
}

// restart recreates member id from its storage, as after a crash in which
// everything made durable survived.
func (c *testCluster) restart(id uint64) {
	cfg := c.config(id, c.storage[id])
	applied := c.applied[id]
	if len(applied) > 0 {
		cfg.Applied = applied[len(applied)-1].Index
	}
	snap, _ := c.storage[id].Snapshot()
	cfg.Applied = max(cfg.Applied, snap.Metadata.Index)
	n, err := NewNode(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[id] = n
}

// processReady carries out one member's Ready as the contract says.
func (c *testCluster) processReady(id uint64) bool {
	n := c.nodes[id]
	if !n.HasReady() {
		return false
	}
	rd := n.Ready()
	s := c.storage[id]
	c.inflight = append(c.inflight, rd.Messages...)
	if !rd.Snapshot.IsEmpty() {
		if err := s.ApplySnapshot(rd.Snapshot); err != nil {
			c.t.Fatalf("member %d: apply snapshot: %v", id, err)
		}
		// The state machine of these tests is the list of data applied; a
		// snapshot holds that list, comma-separated (see snapshotData).
		c.applied[id] = c.applied[id][:0]
		for _, d := range strings.Split(string(rd.Snapshot.Data), ",") {
			if d != "" {
				c.applied[id] = append(c.applied[id], Entry{Index: rd.Snapshot.Metadata.Index, Data: []byte(d)})
			}
		}
	}
	if err := s.Append(rd.Entries); err != nil {
		c.t.Fatalf("member %d: append: %v", id, err)
	}
	if !rd.HardState.IsEmpty() {
		_ = s.SetHardState(rd.HardState)
	}
	if rd.MustSync {
		// The sync makes everything written durable, an earlier unsynced
		// hard state too.
		c.synced[id], _, _ = s.InitialState()
	}
	c.inflight = append(c.inflight, rd.MessagesAfterPersist...)
	for _, e := range rd.CommittedEntries {
		c.applied[id] = append(c.applied[id], e)
		if e.Type == EntryConfChange {
			var cc ConfChange
			if err := cc.UnmarshalBinary(e.Data); err != nil {
				c.t.Fatalf("member %d: decode conf change at %d: %v", id, e.Index, err)
			}
			_, _ = n.ApplyConfChange(cc)
		}
	}
	c.readStates[id] = append(c.readStates[id], rd.ReadStates...)
	n.Advance(rd)
	return true
}

func (c *testCluster) processReadies() bool {
	any := false
	for _, id := range c.ids {
		if c.processReady(id) {
			any = true
		}
	}
	return any
}

// stepInflight hands every in-flight message to its recipient (dropping
// those on cut links) and reports whether there were any.
func (c *testCluster) stepInflight() bool {
	msgs := c.inflight
	c.inflight = nil
	for _, m := range msgs {
		if c.cut[[2]uint64{m.From, m.To}] {
			continue
		}
		if n, ok := c.nodes[m.To]; ok {
			_ = n.Step(m)
		}
	}
	return len(msgs) > 0
}

// deliver hands every in-flight message to its recipient (dropping those on
// cut links) and processes the readies this causes, once.
func (c *testCluster) deliver() bool {
	moved := c.stepInflight()
	ready := false
	for c.processReadies() {
		ready = true
	}
	return moved || ready
}

// stabilize delivers until nothing moves.
func (c *testCluster) stabilize() {
	for i := 0; c.deliver(); i++ {
		if i > 10000 {
			c.t.Fatal("cluster does not stabilize")
		}
	}
}

func (c *testCluster) partition(groups ...[]uint64) {
	clear(c.cut)
	group := map[uint64]int{}
	for i, g := range groups {
		for _, id := range g {
			group[id] = i
		}
	}
	for _, a := range c.ids {
		for _, b := range c.ids {
			if group[a] != group[b] {
				c.cut[[2]uint64{a, b}] = true
			}
		}
	}
}

func (c *testCluster) heal() { clear(c.cut) }

func (c *testCluster) leader() uint64 {
	var lead uint64
	for _, id := range c.ids {
		if _, ss, _ := c.nodes[id].BasicStatus(); ss.State == StateLeader {
			if lead != 0 {
				hs1, _, _ := c.nodes[lead].BasicStatus()
				hs2, _, _ := c.nodes[id].BasicStatus()
				if hs1.Term == hs2.Term {
					c.t.Fatalf("two leaders in term %d: %d and %d", hs1.Term, lead, id)
				}
				if hs2.Term > hs1.Term {
					lead = id
				}
				continue
			}
			lead = id
		}
	}
	return lead
}

func (c *testCluster) elect(id uint64) {
	c.nodes[id].Campaign()
	c.processReadies()
	c.stabilize()
	if l := c.leader(); l != id {
		c.t.Fatalf("member %d campaigned but the leader is %d", id, l)
	}
}

func (c *testCluster) propose(id uint64, data string) error {
	err := c.nodes[id].Propose([]byte(data))
	c.processReadies()
	return err
}

// snapshotData is the state machine of member id as a snapshot holds it.
func (c *testCluster) snapshotData(id uint64) []byte {
	return []byte(strings.Join(c.appliedData(id), ","))
}

// compact snapshots member id's state machine at its applied index and
// compacts its log up to there.
func (c *testCluster) compact(id uint64) error {
	_, _, applied := c.nodes[id].BasicStatus()
	cs := c.nodes[id].r.trk.config.ConfState()
	if _, err := c.storage[id].CreateSnapshot(applied, &cs, c.snapshotData(id)); err != nil {
		return err
	}
	return c.storage[id].Compact(applied)
}

// appliedData returns the data of the normal, non-empty entries id applied.
// sendSnapshot steps into member to the snapshot from's storage holds, as
// one chunk of from's current term (whatever to's Ready state), and
// returns its metadata.
func (c *testCluster) sendSnapshot(from, to uint64) SnapshotMetadata {
	snap, err := c.storage[from].Snapshot()
	if err != nil {
		c.t.Fatalf("member %d: snapshot: %v", from, err)
	}
	hs, _, _ := c.nodes[from].BasicStatus()
	_ = c.nodes[to].Step(Message{Type: MsgSnap, From: from, To: to, Term: hs.Term,
		Snapshot: &SnapshotChunk{Metadata: snap.Metadata, Total: uint64(len(snap.Data)), Data: snap.Data}})
	return snap.Metadata
}

func (c *testCluster) appliedData(id uint64) []string {
	var out []string
	for _, e := range c.applied[id] {
		if e.Type == EntryNormal && len(e.Data) > 0 {
			out = append(out, string(e.Data))
		}
	}
	return out
}

func TestClusterSmoke(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.elect(1)
	for i := range 10 {
		if err := c.propose(1, fmt.Sprint("x", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.stabilize()
	for _, id := range c.ids {
		if got := c.appliedData(id); len(got) != 10 {
			t.Fatalf("member %d applied %v", id, got)
		}
	}
}
