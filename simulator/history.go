package simulator

import (
	"fmt"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// The log-appender's sequential specification for porcupine: the state is
// the list's length and last element; an append returns the new length, a
// read the length and the last element.

type appenderState struct{ length, last uint64 }

type appenderInput struct {
	read bool
	id   uint64
}

var appenderModel = porcupine.Model{
	Init: func() any { return appenderState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(appenderState), input.(appenderInput), output.(appenderState)
		if in.read {
			return out == st, st
		}
		next := appenderState{length: st.length + 1, last: in.id}
		return out.length == next.length, next
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(appenderInput), output.(appenderState)
		if in.read {
			return fmt.Sprintf("read() -> len %d, last %x", out.length, out.last)
		}
		return fmt.Sprintf("append(%x) -> len %d", in.id, out.length)
	},
}

// checkHistory checks the clients' history with porcupine. An append whose
// outcome the client never learned (a timeout) is resolved from the
// applied log: if it took effect, it did so at a known position and
// returned at the end of time; if not, it is left out. A refused append
// must not have taken effect.
func (s *Simulation) checkHistory() {
	positions := s.appliedPositions()
	end := int64(s.now) + 1
	var ops []porcupine.Operation
	for i := range s.history {
		rec := &s.history[i]
		op := porcupine.Operation{ClientId: rec.client, Input: appenderInput{read: rec.read, id: rec.id}, Call: int64(rec.call), Return: int64(rec.ret)}
		switch rec.status {
		case opOK:
			op.Output = appenderState{length: rec.length, last: rec.last}
		case opRefused:
			if pos, ok := positions[rec.id]; ok && !rec.read {
				s.fail(FailLinearizability, InvRefusedNoEffect, fmt.Sprintf("operation %x was refused but applied at position %d", rec.id, pos))
				return
			}
			continue
		case opUnknown, opPending:
			pos, ok := positions[rec.id]
			if rec.read || !ok {
				continue
			}
			op.Output, op.Return = appenderState{length: pos, last: rec.id}, end
		}
		ops = append(ops, op)
	}
	res := porcupine.CheckOperationsTimeout(appenderModel, ops, historyCheckTimeout)
	switch res {
	case porcupine.Ok:
		s.stats.Linearizability = "ok"
	case porcupine.Unknown:
		s.stats.Linearizability = "unknown"
	default:
		s.stats.Linearizability = "illegal"
		s.fail(FailLinearizability, InvLinearizable, fmt.Sprintf("the history of %d operations is not linearizable", len(ops)))
	}
}

// historyCheckTimeout bounds porcupine's time on a history (on each
// independent part of a key-space history): a check that runs out of it
// leaves the verdict unknown, which does not fail the run.
const historyCheckTimeout = 20 * time.Second

// appliedPositions replays the applied log (as the state machine does,
// skipping duplicates) and returns each append's position.
func (s *Simulation) appliedPositions() map[uint64]uint64 {
	var sm logAppender
	out := map[uint64]uint64{}
	for _, id := range s.check.appliedOps {
		if id == 0 {
			continue
		}
		if length, ok := sm.append(id); ok {
			out[id] = length
		}
	}
	return out
}

// ReplayCommand returns the raftkv command that replays a run of cfg.
func ReplayCommand(cfg Config) string {
	return "raftkv sim" + replayFlags(cfg, "--")
}

// ReplayTestCommand returns the go test command that replays a run of cfg.
func ReplayTestCommand(cfg Config) string {
	return "go test ./simulator -run TestSimulation" + replayFlags(cfg, "-")
}

func replayFlags(cfg Config, dash string) string {
	out := fmt.Sprintf(" %sseed=%d", dash, cfg.Seed)
	def := Config{}.withDefaults()
	if cfg.Duration != 0 && cfg.Duration != def.Duration {
		out += fmt.Sprintf(" %sduration=%v", dash, cfg.Duration)
	}
	if cfg.Members != 0 {
		out += fmt.Sprintf(" %smembers=%d", dash, cfg.Members)
	}
	if cfg.Clients != 0 {
		out += fmt.Sprintf(" %sclients=%d", dash, cfg.Clients)
	}
	if cfg.OpInterval != 0 {
		out += fmt.Sprintf(" %sop-interval=%v", dash, cfg.OpInterval)
	}
	if cfg.NoFaults || (cfg.Faults != 0 && cfg.Faults != AllFaults) {
		f := cfg.Faults
		if cfg.NoFaults {
			f = 0
		}
		out += fmt.Sprintf(" %sfaults=%s", dash, f)
	}
	if cfg.NoSwarm {
		out += " " + dash + "no-swarm"
	}
	if cfg.NoLiveness {
		out += " " + dash + "no-liveness"
	}
	if cfg.Bug != NoBug {
		out += fmt.Sprintf(" %sbug=%s", dash, cfg.Bug)
	}
	if cfg.LockRecipe && !slices.Contains(RecipeBugs(), cfg.Bug) {
		out += " " + dash + "lock-recipe"
	}
	if cfg.withDefaults().Kind != KindKV && cfg.Bug != BugForgetVote {
		out += fmt.Sprintf(" %skind=%s", dash, cfg.Kind)
	}
	return out
}
