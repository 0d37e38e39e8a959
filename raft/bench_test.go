package raft

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// benchCluster is a minimal in-memory 3-member cluster for measuring the
// core alone: no disk, no network, no encoding.
type benchCluster struct {
	nodes    []*Node
	storage  []*MemoryStorage
	inflight []Message
	applied  []uint64
}

func newBenchCluster(b *testing.B, n int, maxSizePerMsg uint64) *benchCluster {
	c := &benchCluster{}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	for _, id := range ids {
		s := NewMemoryStorage()
		node, err := NewNode(Config{ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
			Rand: rand.New(rand.NewPCG(id, 1)), MaxSizePerMsg: maxSizePerMsg, MaxInflightMsgs: 256,
			PreVote: true, CheckQuorum: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := node.Bootstrap(ids); err != nil {
			b.Fatal(err)
		}
		c.nodes = append(c.nodes, node)
		c.storage = append(c.storage, s)
	}
	c.applied = make([]uint64, n)
	c.run()
	c.nodes[0].Campaign()
	c.run()
	return c
}

// run delivers messages and processes readies until the cluster is idle.
func (c *benchCluster) run() {
	for {
		moved := false
		for i, n := range c.nodes {
			if !n.HasReady() {
				continue
			}
			moved = true
			rd := n.Ready()
			c.inflight = append(c.inflight, rd.Messages...)
			s := c.storage[i]
			_ = s.Append(rd.Entries)
			if !rd.HardState.IsEmpty() {
				_ = s.SetHardState(rd.HardState)
			}
			c.inflight = append(c.inflight, rd.MessagesAfterPersist...)
			for _, e := range rd.CommittedEntries {
				if e.Type == EntryConfChange {
					var cc ConfChange
					_ = cc.UnmarshalBinary(e.Data)
					_, _ = n.ApplyConfChange(cc)
				}
				c.applied[i] = e.Index
			}
			n.Advance(rd)
			// Keep memory flat: compact what every member has applied.
			if first, _ := s.FirstIndex(); c.applied[i] > first+20000 {
				_ = s.Compact(c.applied[i] - 1000)
			}
		}
		msgs := c.inflight
		c.inflight = c.inflight[len(c.inflight):]
		for _, m := range msgs {
			moved = true
			_ = c.nodes[m.To-1].Step(m)
		}
		if !moved {
			return
		}
	}
}

// BenchmarkCommit measures the raft core alone: a 3-member cluster wired
// in memory, 256-byte proposals in batches, everything committed and
// applied on every member.
func BenchmarkCommit(b *testing.B) {
	for _, batch := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			c := newBenchCluster(b, 3, 1<<20)
			payload := make([]byte, 256)
			data := make([][]byte, batch)
			for i := range data {
				data[i] = payload
			}
			start := c.applied[2]
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			proposed := 0
			for proposed < b.N {
				n := min(batch, b.N-proposed)
				if err := c.nodes[0].Propose(data[:n]...); err != nil {
					b.Fatal(err)
				}
				proposed += n
				c.run()
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			committed := c.applied[2] - start
			if committed < uint64(b.N) {
				b.Fatalf("committed %d of %d", committed, b.N)
			}
			b.ReportMetric(float64(committed)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(committed), "allocs/entry")
			b.ReportMetric(0, "ns/op")
		})
	}
}
