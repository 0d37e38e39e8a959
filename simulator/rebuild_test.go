package simulator

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// realState reads the cluster's state from the members themselves (their
// storage, configuration and applied index) and from the network, as the
// trace should tell it.
func realState(s *Simulation) ClusterState {
	st := ClusterState{N: s.events, AtUs: s.now.Microseconds(), Commit: uint64(len(s.check.committed)) - 1}
	for i, sm := range s.members {
		v := &s.check.views[i]
		ms := MemberState{ID: sm.id, First: 1}
		switch {
		case sm.removed:
			ms.Status = "removed"
		case sm.failed:
			ms.Status = "failed"
		case sm.dormant:
		case !sm.up:
			ms.Status = "down"
		case sm.paused:
			ms.Status = "paused"
		default:
			ms.Status = "up"
		}
		if sm.up {
			ms.Role, ms.Term, ms.Vote, ms.Lead, ms.Commit, ms.Applied = roleName(v.ss.State), v.hs.Term, v.hs.Vote, v.ss.Lead, v.commit, sm.m.Applied()
			storage := sm.m.Storage()
			ms.First, _ = storage.FirstIndex()
			ms.Last, _ = storage.LastIndex()
			if ms.First > 1 {
				ms.SnapIndex = ms.First - 1
				ms.SnapTerm, _ = storage.Term(ms.SnapIndex)
			}
			if ms.Last >= ms.First {
				ents, err := storage.Entries(ms.First, ms.Last+1, math.MaxUint64)
				if err != nil {
					panic(err)
				}
				var types []byte
				for k := range ents {
					ms.Terms = append(ms.Terms, ents[k].Term)
					types = append(types, entryKind(&ents[k]))
				}
				ms.Types = string(types)
			}
			cs := sm.m.ConfState()
			ms.Voters, ms.Learners, ms.Outgoing = cs.Voters, cs.Learners, cs.VotersOutgoing
		}
		st.Members = append(st.Members, ms)
	}
	free := make([]bool, len(s.nw.envs))
	for _, slot := range s.nw.free {
		free[slot] = true
	}
	for slot := range s.nw.envs {
		if !free[slot] {
			st.InFlight = append(st.InFlight, s.nw.envs[slot].id)
		}
	}
	slices.Sort(st.InFlight)
	for link, cut := range s.nw.cut {
		if cut {
			st.Cut = append(st.Cut, []uint64{uint64(link/s.nw.n + 1), uint64(link%s.nw.n + 1)})
		}
	}
	return st
}

// compareStates says how a rebuilt state differs from the real one: every
// field for a member that is up, the status for one that is not (what a
// crash kept of its log is told when it restarts).
func compareStates(real, rebuilt ClusterState) error {
	if real.Commit != rebuilt.Commit {
		return fmt.Errorf("cluster commit: real %d, rebuilt %d", real.Commit, rebuilt.Commit)
	}
	if !slices.Equal(real.InFlight, rebuilt.InFlight) {
		return fmt.Errorf("in flight: real %v, rebuilt %v", real.InFlight, rebuilt.InFlight)
	}
	if fmt.Sprint(real.Cut) != fmt.Sprint(rebuilt.Cut) && len(real.Cut)+len(rebuilt.Cut) > 0 {
		return fmt.Errorf("links cut: real %v, rebuilt %v", real.Cut, rebuilt.Cut)
	}
	for i, r := range real.Members {
		b := rebuilt.Members[i]
		if r.Status != b.Status {
			return fmt.Errorf("member %d: status real %q, rebuilt %q", r.ID, r.Status, b.Status)
		}
		if r.Status != "up" && r.Status != "paused" {
			continue
		}
		if b.Terms == nil {
			b.Terms = []uint64{}
		}
		if r.Terms == nil {
			r.Terms = []uint64{}
		}
		if fmt.Sprintf("%+v", r) != fmt.Sprintf("%+v", b) {
			return fmt.Errorf("member %d:\n  real    %+v\n  rebuilt %+v", r.ID, r, b)
		}
	}
	return nil
}

// TestRebuiltStateMatchesMembers runs seeds of both member kinds under
// every fault class, rebuilds the state from the trace at sampled events,
// and compares it with the members' real state at those events.
func TestRebuiltStateMatchesMembers(t *testing.T) {
	seeds := 24
	if testing.Short() {
		seeds = 6
	}
	for k := range seeds {
		kind := KindKV
		if k%2 == 1 {
			kind = KindLog
		}
		seed := uint64(1000 + k)
		t.Run(fmt.Sprintf("%s-seed-%d", kind, seed), func(t *testing.T) {
			var trace bytes.Buffer
			real := map[uint64]ClusterState{}
			var at []uint64
			var last uint64
			cfg := Config{Seed: seed, Kind: kind, Duration: 3 * time.Second, Trace: &trace, NoLinearizability: true}
			cfg.afterEvent = func(s *Simulation) {
				last = s.events
				if s.events%97 == 0 || s.events < 50 {
					real[s.events] = realState(s)
					at = append(at, s.events)
				}
			}
			res := Run(cfg)
			require.Nil(t, res.Failure)
			// The trace numbers the drops of what is still in flight when
			// the run ends with the last event: the real state sampled
			// after that event has them in flight, the rebuilt one not.
			at = slices.DeleteFunc(at, func(n uint64) bool { return n == last })
			_, rebuilt, err := RebuildAt(&trace, at)
			require.NoError(t, err)
			for _, n := range at {
				if err := compareStates(real[n], rebuilt[n]); err != nil {
					t.Fatalf("after event %d (replay: %s): %v", n, ReplayCommand(cfg), err)
				}
			}
		})
	}
}
