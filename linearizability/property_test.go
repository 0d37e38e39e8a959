package linearizability

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"pgregory.net/rapid"
)

// The property tests draw a sequential run of the real key space
// (kvstore.Store, the reference), then record it as a concurrent history:
// every operation gets an interval around its place in the run, so the run
// itself is a linearization and the history must check as linearizable.
// A history with one answer falsified must not.

// run is a drawn sequential run, recorded as a history.
type run struct {
	history History
	// reads are the operations that read a file successfully.
	reads []int
	// writes are the operations that wrote with a known index.
	writes []int
}

// paths are the keys operations name: files, directories, a hidden key,
// keys under a file, and the queue in-order creates go to.
var paths = []string{"/a", "/b", "/d", "/d/x", "/d/y", "/d/_h", "/d/x/z", "/q", "/a/b"}

// drawRun draws a run of the store of up to n operations. With root, some
// operations name the root, which makes the history one part. Writes lose
// their answer unknown times in a hundred, and are applied but unseen
// unseen times in a hundred.
func drawRun(t *rapid.T, n int, root bool, unknown, unseen int) run {
	store, err := kvstore.New(kvstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	choices := paths
	if root {
		choices = append([]string{"/"}, paths...)
	}
	// spread is how far an interval may reach from its linearization point:
	// from nothing (a sequential history) to several operations' worth.
	spread := rapid.SampledFrom([]int64{0, 50 * ms, 300 * ms, 1000 * ms}).Draw(t, "spread")
	clients := rapid.IntRange(1, 5).Draw(t, "clients")
	rec := NewRecorder()
	var r run
	now := int64(0)
	for i := range rapid.IntRange(1, n).Draw(t, "operations") {
		now += rapid.Int64Range(1, 400*ms).Draw(t, "gap")
		if rapid.IntRange(0, 5).Draw(t, "expire") == 0 {
			// The leader's expiry sweep: not a client operation.
			store.Apply(0, kvstore.Command{Op: kvstore.OpExpire, Now: epoch.Add(time.Duration(now))})
			now++
		}
		at := epoch.Add(time.Duration(now))
		call := now - rapid.Int64Range(0, spread).Draw(t, "early")
		ret := now + rapid.Int64Range(0, spread).Draw(t, "late")
		client := i % clients
		if rapid.IntRange(0, 2).Draw(t, "read") == 0 {
			p := rapid.SampledFrom(choices).Draw(t, "path")
			recursive := rapid.Bool().Draw(t, "recursive")
			ev, err := store.Get(p, kvstore.GetOptions{Recursive: recursive, Now: at})
			out := OutputOf(ev, err)
			id := rec.Call(client, Read(p, recursive), call)
			rec.Return(id, out, ret)
			if out.Err == 0 && !out.Node.Dir {
				r.reads = append(r.reads, id)
			}
			continue
		}
		cmd := drawCommand(t, store, choices, at, i)
		id := rec.Call(client, Write(cmd), call)
		// rapid favours small numbers: the rare outcomes are the large ones.
		switch outcome := 99 - rapid.IntRange(0, 99).Draw(t, "outcome"); {
		case outcome < unknown && outcome%2 == 0:
			// Lost before it reached the log: no effect, outcome unknown.
			rec.Unknown(id)
		case outcome < unknown:
			// Applied, but the answer was lost.
			store.Apply(0, cmd)
			rec.Unknown(id)
		case outcome < unknown+unseen:
			// Applied, the answer lost but learned from the applied log.
			res := store.Apply(0, cmd)
			rec.Applied(id, OutputOf(res.Event, errorOf(res.Err)))
		default:
			res := store.Apply(0, cmd)
			out := OutputOf(res.Event, errorOf(res.Err))
			rec.Return(id, out, ret)
			if out.Err == 0 {
				r.writes = append(r.writes, id)
			}
		}
	}
	r.history = rec.History()
	return r
}

// drawCommand draws a write: every kind, with flags right and wrong, and
// comparisons that mostly match what the store holds.
func drawCommand(t *rapid.T, store *kvstore.Store, choices []string, at time.Time, i int) kvstore.Command {
	p := rapid.SampledFrom(choices).Draw(t, "path")
	cmd := kvstore.Command{Path: p, Value: fmt.Sprintf("v%d", i), Now: at}
	switch rapid.IntRange(0, 6).Draw(t, "kind") {
	case 0, 1:
		cmd.Op = kvstore.OpSet
		cmd.PrevExist = kvstore.PrevExist(rapid.IntRange(0, 2).Draw(t, "prevExist"))
	case 2:
		cmd.Op = kvstore.OpSet
		fallthrough
	case 3:
		if cmd.Op == 0 {
			cmd.Op = kvstore.OpDelete
		}
		// A comparison, usually against the current node.
		var current *kvstore.Node
		if ev, err := store.Get(p, kvstore.GetOptions{Now: at}); err == nil {
			current = ev.Node
		}
		if current != nil && current.Value != nil && rapid.Bool().Draw(t, "match-value") {
			cmd.PrevValue = *current.Value
		} else if rapid.Bool().Draw(t, "other-value") {
			cmd.PrevValue = "nope"
		}
		if current != nil && rapid.Bool().Draw(t, "match-index") {
			cmd.PrevIndex = current.ModifiedIndex
		} else if rapid.IntRange(0, 3).Draw(t, "other-index") == 0 {
			cmd.PrevIndex = store.CurrentIndex()
		}
	case 4:
		cmd.Op = kvstore.OpDelete
		cmd.Dir = rapid.Bool().Draw(t, "dir")
		cmd.Recursive = rapid.Bool().Draw(t, "recursive")
		return cmd
	case 5, 6:
		cmd.Op = kvstore.OpCreateInOrder
		cmd.Path = rapid.SampledFrom([]string{"/q", "/q", "/a", choices[0]}).Draw(t, "queue")
	}
	if rapid.IntRange(0, 4).Draw(t, "make-dir") == 0 {
		cmd.Dir, cmd.Value = true, ""
	}
	if rapid.IntRange(0, 2).Draw(t, "ttl") == 0 {
		cmd.HasTTL, cmd.TTL = true, rapid.Uint64Range(0, 3).Draw(t, "ttl-seconds")
		if cmd.Op == kvstore.OpSet && rapid.IntRange(0, 3).Draw(t, "refresh") == 0 {
			cmd.Refresh, cmd.Value = true, ""
		}
	}
	return cmd
}

// errorOf keeps a nil *kvstore.Error a nil error.
func errorOf(err *kvstore.Error) error {
	if err == nil {
		return nil
	}
	return err
}

// drawAnyRun draws a run partitioned by key, or, one time in four, a
// shorter one with operations on the root, which is checked as one part.
// The checker's cost grows exponentially with the operations that overlap
// in one part, unknown outcomes above all, and proving a history illegal
// explores every choice: runs to be falsified have fewer unknowns.
func drawAnyRun(t *rapid.T, falsify bool) run {
	unknown := 10
	if falsify {
		unknown = 3
	}
	if rapid.IntRange(0, 3).Draw(t, "root") == 0 {
		return drawRun(t, 20, true, unknown*2/3, 10)
	}
	return drawRun(t, 80, false, unknown, 10)
}

func checkQuietly(h History) Result {
	return Check(h, Options{Epoch: epoch, Log: io.Discard, VisualizationPath: "/dev/null"})
}

func TestPropertyRunsOfTheStoreAreLinearizable(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := drawAnyRun(t, false)
		if res := checkQuietly(r.history); !res.Ok {
			t.Fatalf("a run of the store does not check: %s", res)
		}
	})
}

func TestPropertyAFalsifiedReadFails(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := drawAnyRun(t, true)
		if len(r.reads) == 0 {
			t.Skip("no read of a file")
		}
		id := rapid.SampledFrom(r.reads).Draw(t, "falsified")
		op := &r.history.Operations[id]
		node := op.Output.Node.Clone()
		switch rapid.IntRange(0, 1).Draw(t, "how") {
		case 0:
			value := "never written"
			node.Value = &value
		case 1:
			// A node changed after the index it was served at. (Shifting
			// the index by less is not always wrong: a refresh changes
			// the index and keeps the value, and a write whose outcome is
			// unknown may have any index.)
			node.ModifiedIndex = op.Output.Index + uint64(rapid.IntRange(1, 3).Draw(t, "index-shift"))
		}
		op.Output.Node = node
		if res := checkQuietly(r.history); res.Ok {
			t.Fatalf("operation %d falsified, yet the history checks", id)
		}
	})
}

func TestPropertyADuplicatedIndexFails(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := drawRun(t, 60, false, 3, 10)
		if len(r.writes) < 2 {
			t.Skip("fewer than two writes")
		}
		from := rapid.SampledFrom(r.writes).Draw(t, "from")
		to := rapid.SampledFrom(r.writes).Filter(func(id int) bool { return id != from }).Draw(t, "to")
		r.history.Operations[to].Output.Index = r.history.Operations[from].Output.Index
		res := checkQuietly(r.history)
		if res.Ok || res.IndexOrder == nil {
			t.Fatalf("operations %d and %d share an index, yet: %s", from, to, res)
		}
	})
}
