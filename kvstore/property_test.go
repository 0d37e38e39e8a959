package kvstore

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// propertyConfig has small limits, so that random operations meet them.
var propertyConfig = Config{MaxKeyLength: 26, MaxValueSize: 2, MaxDepth: 3, MaxListNodes: 7, WatchBuffer: 2}

// genPath draws a key from a small space, so that operations collide:
// nested paths, hidden segments, names that are string prefixes of their
// siblings, the root, and unclean spellings.
func genPath(t *rapid.T, label string) string {
	segments := rapid.SliceOfN(rapid.SampledFrom([]string{"a", "ab", "b", "_h"}), 0, 4).Draw(t, label+"-segments")
	p := "/" + strings.Join(segments, "/")
	switch rapid.IntRange(0, 9).Draw(t, label+"-spelling") {
	case 0:
		p = strings.TrimPrefix(p, "/") + "/"
	case 1:
		p = strings.Replace(p, "/", "//", 1) + "/./"
	}
	return p
}

// clock is the test's proposer clock: mostly moving forward, sometimes a
// little backwards (a new leader's clock may lag the old one's).
type clock struct{ now time.Time }

func (c *clock) step(t *rapid.T) time.Time {
	// Many steps of 0 make commands share a clock, so TTLs tie.
	ms := rapid.SampledFrom([]int64{0, 0, 0, 1, 400, 999, 1000, 2500, -500}).Draw(t, "clock-step-ms")
	c.now = c.now.Add(time.Duration(ms) * time.Millisecond)
	return c.now
}

// genCommand draws a command of any kind, with flag combinations valid and
// invalid.
func genCommand(t *rapid.T, now time.Time, index uint64) Command {
	c := Command{
		Op:   Op(rapid.IntRange(int(OpSet), int(OpExpire)).Draw(t, "op")),
		Path: genPath(t, "path"),
		Now:  now,
	}
	if rapid.IntRange(0, 50).Draw(t, "bad-op") == 0 {
		c.Op = 0
	}
	c.Value = rapid.SampledFrom([]string{"", "x", "yy", "zzz"}).Draw(t, "value")
	c.Dir = rapid.IntRange(0, 3).Draw(t, "dir") == 0
	c.Recursive = rapid.IntRange(0, 3).Draw(t, "recursive") == 0
	c.PrevExist = PrevExist(rapid.IntRange(0, 2).Draw(t, "prevExist"))
	if rapid.Bool().Draw(t, "has-prevValue") {
		c.PrevValue = rapid.SampledFrom([]string{"x", "yy", "q"}).Draw(t, "prevValue")
	}
	if rapid.IntRange(0, 3).Draw(t, "has-prevIndex") == 0 {
		c.PrevIndex = rapid.Uint64Range(0, index+1).Draw(t, "prevIndex")
	}
	if rapid.Bool().Draw(t, "has-ttl") {
		c.HasTTL = true
		// Huge TTLs wrap around (spec §6.1): 9999999999 lands before 1970,
		// 17500000000 between 1970 and 2000, 2^64-1 one second ago.
		c.TTL = rapid.SampledFrom([]uint64{0, 1, 2, 3, 5, 10, 9999999999, 17500000000, 1<<64 - 1}).Draw(t, "ttl")
	}
	if rapid.IntRange(0, 4).Draw(t, "refresh") == 0 {
		c.Refresh = true
		if rapid.IntRange(0, 4).Draw(t, "refresh-valid") > 0 {
			c.Value, c.HasTTL = "", true
		}
	}
	return c
}

// roundTrip sends c through its binary encoding, as a Raft entry would.
// A command with an invalid op cannot be encoded and is passed as it is.
func roundTrip(t *rapid.T, c Command) Command {
	if !c.Op.valid() {
		return c
	}
	data, err := c.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal %+v: %v", c, err)
	}
	var out Command
	if err := out.UnmarshalBinary(data); err != nil {
		t.Fatalf("unmarshal %+v: %v", c, err)
	}
	return out
}

// resultJSON renders a result for comparison, event metadata included.
func resultJSON(t *rapid.T, r Result) string {
	var b strings.Builder
	if r.Err != nil {
		b.WriteString(mustJSON(t, r.Err))
	}
	if r.Event != nil {
		b.WriteString(eventJSON(t, r.Event))
	}
	for _, e := range r.Expired {
		b.WriteString(eventJSON(t, e) + "\n")
	}
	return b.String()
}

func eventJSON(t *rapid.T, e *Event) string {
	return fmt.Sprintf("%s etcdIndex=%d refresh=%v", mustJSON(t, e), e.EtcdIndex, e.Refresh)
}

func mustJSON(t *rapid.T, v any) string {
	data, err := jsonMarshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(data)
}

// dumpStore lists every node of the store, hidden ones included, with all
// of its state, sorted by path.
func dumpStore(s *Store) string {
	var lines []string
	var walk func(n *node, p string)
	walk = func(n *node, p string) {
		line := fmt.Sprintf("%s dir=%v value=%q %d/%d", p, n.isDir(), n.value, n.createdIndex, n.modifiedIndex)
		if n.expiry() != nil {
			line += fmt.Sprintf(" expires=%d", n.expiry().at)
		}
		lines = append(lines, line)
		for child := range n.children().all() {
			walk(child, childPath(p, child.name))
		}
	}
	walk(s.root, "/")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func dumpModel(m *model) string {
	var lines []string
	for p, n := range m.nodes {
		line := fmt.Sprintf("%s dir=%v value=%q %d/%d", p, n.dir, n.value, n.created, n.modified)
		if n.hasTTL {
			line += fmt.Sprintf(" expires=%d", n.expires)
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// watchPair is a watcher of the store and its counterpart in the model.
type watchPair struct {
	real  *Watcher
	model *modelWatcher
	desc  string
}

// compareWatchers drains every store watcher and checks it received what
// the model says, and is closed exactly when the model's is.
func compareWatchers(t *rapid.T, pairs []*watchPair) []*watchPair {
	var live []*watchPair
	for _, p := range pairs {
		events, closed := received(p.real)
		if len(events) != len(p.model.pending) {
			t.Fatalf("watcher %s: got %d events, model %d", p.desc, len(events), len(p.model.pending))
		}
		for i := range events {
			got, want := eventJSON(t, events[i]), eventJSON(t, p.model.pending[i])
			if got != want {
				t.Fatalf("watcher %s event %d:\n got %s\nwant %s", p.desc, i, got, want)
			}
		}
		p.model.pending = nil
		if closed != p.model.closed {
			t.Fatalf("watcher %s: closed=%v, model %v", p.desc, closed, p.model.closed)
		}
		if !closed {
			live = append(live, p)
		}
	}
	return live
}

// TestPropertyStoreMatchesModel applies random sequences of commands,
// reads and watches to the store and to the reference model, comparing
// every result, index, node and watch event.
func TestPropertyStoreMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s, err := New(propertyConfig)
		if err != nil {
			t.Fatal(err)
		}
		m := newModel(propertyConfig)
		// A short history makes the ring wrap and error 401 reachable.
		m.historyCap = rapid.SampledFrom([]int{3, 10, historyCapacity}).Draw(t, "history")
		s.history = newEventHistory(m.historyCap)
		clk := &clock{now: t0}
		var watchers []*watchPair
		steps := rapid.IntRange(1, 100).Draw(t, "steps")
		for step := range steps {
			now := clk.step(t)
			switch rapid.IntRange(0, 9).Draw(t, "kind") {
			case 0: // a read
				p := genPath(t, "get")
				opts := GetOptions{Recursive: rapid.Bool().Draw(t, "get-recursive"), Sorted: rapid.Bool().Draw(t, "get-sorted"), Now: now}
				e, err := s.Get(p, opts)
				want, wantErr := m.get(p, opts)
				got, expect := "", ""
				if err != nil {
					got = mustJSON(t, err)
				} else {
					got = eventJSON(t, e)
				}
				if wantErr != nil {
					expect = mustJSON(t, wantErr)
				} else {
					expect = eventJSON(t, want)
				}
				if got != expect {
					t.Fatalf("step %d get %s %+v:\n got %s\nwant %s", step, p, opts, got, expect)
				}
			case 1: // a watch
				p := genPath(t, "watch")
				opts := WatchOptions{
					Recursive:  rapid.Bool().Draw(t, "watch-recursive"),
					Stream:     rapid.Bool().Draw(t, "watch-stream"),
					SinceIndex: rapid.Uint64Range(0, m.index+2).Draw(t, "watch-since"),
				}
				w, err := s.Watch(p, opts)
				mw, wantErr := m.watch(p, opts)
				if (err != nil) != (wantErr != nil) {
					t.Fatalf("step %d watch %s %+v: err %v, model %v", step, p, opts, err, wantErr)
				}
				if err != nil {
					if got, want := mustJSON(t, err), mustJSON(t, wantErr); got != want {
						t.Fatalf("step %d watch error:\n got %s\nwant %s", step, got, want)
					}
					continue
				}
				if w.StartIndex() != m.index {
					t.Fatalf("watch start index %d, model %d", w.StartIndex(), m.index)
				}
				watchers = append(watchers, &watchPair{real: w, model: mw, desc: fmt.Sprintf("%s %+v (step %d)", p, opts, step)})
			case 2: // an expiry sweep, as the leader would propose
				c := Command{Op: OpExpire, Now: now}
				got, want := resultJSON(t, s.Apply(uint64(step), roundTrip(t, c))), resultJSON(t, m.apply(c))
				if got != want {
					t.Fatalf("step %d expire at %v:\n got %s\nwant %s", step, now, got, want)
				}
			default: // a write
				c := genCommand(t, now, m.index)
				got, want := resultJSON(t, s.Apply(uint64(step), roundTrip(t, c))), resultJSON(t, m.apply(c))
				if got != want {
					t.Fatalf("step %d apply %+v:\n got %s\nwant %s", step, c, got, want)
				}
			}
			if s.CurrentIndex() != m.index {
				t.Fatalf("step %d: index %d, model %d", step, s.CurrentIndex(), m.index)
			}
			if err := checkInvariants(s); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if got, want := dumpStore(s), dumpModel(m); got != want {
				t.Fatalf("step %d: state differs:\n got\n%s\nwant\n%s", step, got, want)
			}
			watchers = compareWatchers(t, watchers)
			if s.WatcherCount() != len(watchers) {
				t.Fatalf("step %d: %d watchers registered, %d expected", step, s.WatcherCount(), len(watchers))
			}
		}
		for _, w := range watchers {
			w.real.Remove()
		}
		if s.WatcherCount() != 0 {
			t.Fatalf("%d watchers left after removing all", s.WatcherCount())
		}
	})
}

// TestPropertySnapshot saves the store at a random point, restores the
// snapshot into a fresh store, and checks that both answer every later
// command, read and watch identically.
func TestPropertySnapshot(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		original, _ := New(propertyConfig)
		clk := &clock{now: t0}
		before := rapid.IntRange(0, 40).Draw(t, "before")
		for i := range before {
			now := clk.step(t)
			c := genCommand(t, now, original.CurrentIndex())
			if rapid.IntRange(0, 4).Draw(t, "expire") == 0 {
				c = Command{Op: OpExpire, Now: now}
			}
			original.Apply(uint64(i), c)
		}
		data, err := original.Save()
		if err != nil {
			t.Fatal(err)
		}
		restored, _ := New(propertyConfig)
		if err := restored.Restore(data); err != nil {
			t.Fatalf("restore: %v", err)
		}
		stores := []*Store{original, restored}
		after := rapid.IntRange(1, 30).Draw(t, "after")
		for i := range after {
			now := clk.step(t)
			var answers [2]string
			kind := rapid.IntRange(0, 5).Draw(t, "kind")
			var c Command
			var p string
			var gopts GetOptions
			var wopts WatchOptions
			switch kind {
			case 0:
				p = genPath(t, "get")
				gopts = GetOptions{Recursive: true, Now: now}
			case 1:
				p = genPath(t, "watch")
				wopts = WatchOptions{Recursive: rapid.Bool().Draw(t, "rec"), SinceIndex: rapid.Uint64Range(0, original.CurrentIndex()+1).Draw(t, "since")}
			case 2:
				c = Command{Op: OpExpire, Now: now}
			default:
				c = genCommand(t, now, original.CurrentIndex())
			}
			for j, s := range stores {
				switch kind {
				case 0:
					e, err := s.Get(p, gopts)
					answers[j] = fmt.Sprint(mustJSON(t, e), err)
				case 1:
					w, err := s.Watch(p, wopts)
					if err != nil {
						answers[j] = mustJSON(t, err)
						continue
					}
					events, closed := received(w)
					answers[j] = fmt.Sprint(mustJSON(t, events), closed)
					w.Remove()
				default:
					answers[j] = resultJSON(t, s.Apply(uint64(before+i), c))
				}
			}
			if answers[0] != answers[1] {
				t.Fatalf("step %d differs after restore:\noriginal %s\nrestored %s", i, answers[0], answers[1])
			}
			if err := checkInvariants(restored); err != nil {
				t.Fatalf("step %d: restored store: %v", i, err)
			}
			if original.Hash() != restored.Hash() {
				t.Fatalf("step %d: hashes differ", i)
			}
			if dumpStore(original) != dumpStore(restored) {
				t.Fatalf("step %d: states differ", i)
			}
		}
		a, _ := original.Save()
		b, _ := restored.Save()
		if string(a) != string(b) {
			t.Fatal("snapshots differ at the end")
		}
	})
}
