package raft

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestPropertySafety drives small clusters through random schedules —
// deliveries in any order, drops, duplicates, partitions, ticks,
// proposals, elections, compactions and restarts — and checks Raft's
// safety properties (Figure 3 of the paper) after every step:
//
//   - Election Safety: at most one leader per term;
//   - Log Matching: two logs with an entry of the same index and term are
//     identical up to it;
//   - Leader Completeness: a leader holds every entry committed before its
//     term;
//   - State Machine Safety: no two members apply different entries at the
//     same position.
func TestPropertySafety(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(rt, "members")
		preVote := rapid.Bool().Draw(rt, "prevote")
		checkQuorum := rapid.Bool().Draw(rt, "checkquorum")
		lease := checkQuorum && rapid.Bool().Draw(rt, "lease")
		maxMsg := rapid.SampledFrom([]uint64{0, 64, 1 << 20}).Draw(rt, "maxSizePerMsg")
		c := newTestCluster(rt, n, func(cfg *Config) {
			cfg.PreVote, cfg.CheckQuorum = preVote, checkQuorum
			if lease {
				cfg.ReadOnlyOption = ReadOnlyLeaseBased
			}
			cfg.MaxSizePerMsg = maxMsg
			cfg.MaxSnapshotChunkSize = 16
			cfg.MaxInflightMsgs = 4
		})
		chk := newSafetyChecker(c)
		proposals := 0
		steps := rapid.IntRange(20, 400).Draw(rt, "steps")
		for step := range steps {
			member := c.ids[rapid.IntRange(0, n-1).Draw(rt, "member")]
			// Weighted actions: mostly delivery in order (a network that
			// works), with reordering, loss, duplication, partitions, ticks,
			// proposals, elections, compactions and restarts mixed in.
			switch action := rapid.IntRange(0, 99).Draw(rt, "action"); {
			case action < 35:
				if len(c.inflight) > 0 {
					c.deliverOne(0, false)
				}
			case action < 45:
				if len(c.inflight) > 0 {
					c.deliverOne(rapid.IntRange(0, len(c.inflight)-1).Draw(rt, "msg"), false)
				}
			case action < 48:
				if len(c.inflight) > 0 {
					c.deliverOne(rapid.IntRange(0, len(c.inflight)-1).Draw(rt, "msg"), true)
				}
			case action < 58:
				if len(c.inflight) > 0 {
					i := rapid.IntRange(0, len(c.inflight)-1).Draw(rt, "drop")
					c.inflight = slices.Delete(c.inflight, i, i+1)
				}
			case action < 73:
				c.nodes[member].Tick()
			case action < 85:
				proposals++
				_ = c.nodes[member].Propose([]byte(fmt.Sprintf("p%d", proposals)))
			case action < 91:
				c.nodes[member].Campaign()
			case action < 94:
				var groups [2][]uint64
				for _, id := range c.ids {
					g := rapid.IntRange(0, 1).Draw(rt, "side")
					groups[g] = append(groups[g], id)
				}
				c.partition(groups[0], groups[1])
			case action < 96:
				c.heal()
			case action < 98:
				_ = c.compact(member)
			default:
				c.restart(member)
			}
			c.processReadies()
			if err := chk.check(); err != nil {
				rt.Fatalf("step %d: %v", step, err)
			}
		}
	})
}

// deliverOne hands message i to its recipient (unless its link is cut),
// keeping a copy queued if duplicate is set.
func (c *testCluster) deliverOne(i int, duplicate bool) {
	m := c.inflight[i]
	if !duplicate {
		c.inflight = slices.Delete(c.inflight, i, i+1)
	}
	if c.cut[[2]uint64{m.From, m.To}] {
		return
	}
	if n, ok := c.nodes[m.To]; ok {
		_ = n.Step(m)
	}
}

// committedEntry is an entry known to be committed (some member applied
// it), with the highest term any member had reached when it was first seen
// applied: a leader of a later term was elected after it committed.
type committedEntry struct {
	term    uint64
	data    []byte
	maxTerm uint64
}

type safetyChecker struct {
	c            *testCluster
	leaderOfTerm map[uint64]uint64
	committed    map[uint64]committedEntry
	// seen is, per member, how many entries of c.applied were examined.
	seen map[uint64]int
}

func newSafetyChecker(c *testCluster) *safetyChecker {
	return &safetyChecker{c: c, leaderOfTerm: map[uint64]uint64{}, committed: map[uint64]committedEntry{}, seen: map[uint64]int{}}
}

func (s *safetyChecker) check() error {
	for _, f := range []func() error{s.electionSafety, s.stateMachineSafety, s.logMatching, s.leaderCompleteness} {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func (s *safetyChecker) electionSafety() error {
	for _, id := range s.c.ids {
		hs, ss, _ := s.c.nodes[id].BasicStatus()
		if ss.State != StateLeader {
			continue
		}
		if prev, ok := s.leaderOfTerm[hs.Term]; ok && prev != id {
			return fmt.Errorf("election safety: %d and %d both lead term %d", prev, id, hs.Term)
		}
		s.leaderOfTerm[hs.Term] = id
	}
	return nil
}

func (s *safetyChecker) maxTerm() uint64 {
	var t uint64
	for _, id := range s.c.ids {
		hs, _, _ := s.c.nodes[id].BasicStatus()
		t = max(t, hs.Term)
	}
	return t
}

func (s *safetyChecker) stateMachineSafety() error {
	// Every member's applied data is a prefix of the longest one.
	var longest []string
	for _, id := range s.c.ids {
		if d := s.c.appliedData(id); len(d) > len(longest) {
			longest = d
		}
	}
	for _, id := range s.c.ids {
		d := s.c.appliedData(id)
		if !slices.Equal(d, longest[:len(d)]) {
			return fmt.Errorf("state machine safety: member %d applied %v, another %v", id, d, longest)
		}
	}
	// Every entry applied at an index is the same entry everywhere.
	maxTerm := s.maxTerm()
	for _, id := range s.c.ids {
		applied := s.c.applied[id]
		if s.seen[id] > len(applied) {
			s.seen[id] = 0 // replaced by a snapshot
		}
		for _, e := range applied[s.seen[id]:] {
			if e.Term == 0 {
				continue // restored from a snapshot
			}
			if prev, ok := s.committed[e.Index]; ok {
				if prev.term != e.Term || !bytes.Equal(prev.data, e.Data) {
					return fmt.Errorf("state machine safety: index %d applied as %d/%q and %d/%q", e.Index, prev.term, prev.data, e.Term, e.Data)
				}
				continue
			}
			s.committed[e.Index] = committedEntry{term: e.Term, data: e.Data, maxTerm: maxTerm}
		}
		s.seen[id] = len(applied)
	}
	return nil
}

// logOf returns a member's whole log that is still held (after any
// snapshot), with its first index.
func (s *safetyChecker) logOf(id uint64) (uint64, []Entry) {
	l := s.c.nodes[id].r.log
	first := l.firstIndex()
	ents, err := l.slice(first, l.lastIndex()+1, ^uint64(0))
	if err != nil {
		panic(err)
	}
	return first, ents
}

func (s *safetyChecker) logMatching() error {
	for i, a := range s.c.ids {
		firstA, entsA := s.logOf(a)
		for _, b := range s.c.ids[i+1:] {
			firstB, entsB := s.logOf(b)
			lo := max(firstA, firstB)
			hi := min(firstA+uint64(len(entsA)), firstB+uint64(len(entsB)))
			// Find the highest common index with equal terms; everything
			// from lo up to it must be identical.
			top := uint64(0)
			for idx := lo; idx < hi; idx++ {
				if entsA[idx-firstA].Term == entsB[idx-firstB].Term {
					top = idx
				}
			}
			for idx := lo; idx <= top && top != 0; idx++ {
				ea, eb := entsA[idx-firstA], entsB[idx-firstB]
				if ea.Term != eb.Term || ea.Type != eb.Type || !bytes.Equal(ea.Data, eb.Data) {
					return fmt.Errorf("log matching: members %d and %d agree at %d but differ at %d: %s vs %s",
						a, b, top, idx, describeEntry(ea), describeEntry(eb))
				}
			}
		}
	}
	return nil
}

func (s *safetyChecker) leaderCompleteness() error {
	for _, id := range s.c.ids {
		hs, ss, _ := s.c.nodes[id].BasicStatus()
		if ss.State != StateLeader {
			continue
		}
		first, ents := s.logOf(id)
		for idx, e := range s.committed {
			if e.maxTerm >= hs.Term || idx < first {
				continue
			}
			if idx >= first+uint64(len(ents)) {
				return fmt.Errorf("leader completeness: leader %d of term %d lacks committed entry %d", id, hs.Term, idx)
			}
			if got := ents[idx-first]; got.Term != e.term || !bytes.Equal(got.Data, e.data) {
				return fmt.Errorf("leader completeness: leader %d of term %d has %s at %d, committed was %d/%q",
					id, hs.Term, describeEntry(got), idx, e.term, e.data)
			}
		}
	}
	return nil
}

var _ = strings.Join
