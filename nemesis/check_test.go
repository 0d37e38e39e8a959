package nemesis

import (
	"fmt"
	"strings"
	"testing"
)

// Tests of the checks: each is given a history with a planted fault and
// must name it, and the same history without the fault must pass.

func set(index uint64, key, value string) Change {
	return Change{Index: index, Key: key, Action: "set", Value: value, HasValue: true}
}

func del(index uint64, key string) Change {
	return Change{Index: index, Key: key, Action: "delete"}
}

func mustFind(t *testing.T, problems []string, want string) {
	t.Helper()
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Fatalf("no problem mentions %q: %q", want, problems)
}

func mustPass(t *testing.T, problems []string) {
	t.Helper()
	if len(problems) > 0 {
		t.Fatalf("unexpected problems: %q", problems)
	}
}

func TestWatchChecks(t *testing.T) {
	full := []Change{set(11, "/a", "c0-1"), set(12, "/b", "c1-1"), del(13, "/a"), set(14, "/b", "c0-2")}
	acks := []Ack{{Client: 0, Change: full[0]}, {Client: 1, Change: full[1]}}
	t.Run("complete streams pass", func(t *testing.T) {
		streams := []WatchStream{{Member: 0, After: 10, Events: full}, {Member: 1, After: 10, Events: full}}
		applied, problems := buildApplied(streams, acks)
		mustPass(t, problems)
		mustPass(t, checkStreams(streams, applied))
	})
	t.Run("a missed event is named", func(t *testing.T) {
		streams := []WatchStream{{Member: 0, After: 10, Events: full}, {Member: 1, After: 10, Events: []Change{full[0], full[2], full[3]}}}
		applied, problems := buildApplied(streams, acks)
		mustPass(t, problems)
		mustFind(t, checkStreams(streams, applied), "the watch through m2 missed 12 set /b")
	})
	t.Run("a missed acknowledged write is named even if no watch saw it", func(t *testing.T) {
		streams := []WatchStream{{Member: 0, After: 10, Events: []Change{full[0], full[2], full[3]}}}
		applied, _ := buildApplied(streams, acks)
		mustFind(t, checkStreams(streams, applied), "missed 12 set /b")
	})
	t.Run("a gap the member announced excuses", func(t *testing.T) {
		streams := []WatchStream{{Member: 0, After: 10, Events: []Change{full[0], full[3]}, Gaps: []Gap{{From: 12, To: 13}}}}
		applied, _ := buildApplied(append(streams, WatchStream{Member: 1, After: 10, Events: full}), acks)
		mustPass(t, checkStreams(streams, applied))
	})
	t.Run("events out of order are named", func(t *testing.T) {
		streams := []WatchStream{{Member: 0, After: 10, Events: []Change{full[1], full[0]}}}
		_, problems := buildApplied(streams, nil)
		mustFind(t, problems, "out of order")
	})
	t.Run("two changes at one index are named", func(t *testing.T) {
		other := set(12, "/b", "c2-9")
		streams := []WatchStream{{Member: 0, After: 10, Events: full}, {Member: 1, After: 10, Events: []Change{full[0], other}}}
		_, problems := buildApplied(streams, nil)
		mustFind(t, problems, "two changes at index 12")
	})
	t.Run("an answer that disagrees with the watches is named", func(t *testing.T) {
		streams := []WatchStream{{Member: 0, After: 10, Events: full}}
		_, problems := buildApplied(streams, []Ack{{Client: 3, Change: set(14, "/b", "c3-1")}})
		mustFind(t, problems, "the answer to client 3")
	})
	t.Run("a value nobody wrote is named", func(t *testing.T) {
		applied := AppliedHistory{11: full[0], 12: set(12, "/b", "made-up")}
		values := map[string]string{"c0-1": "/a"}
		mustFind(t, checkValues(applied, values), "no client wrote")
		mustPass(t, checkValues(AppliedHistory{11: full[0]}, values))
	})
}

func TestSerialReadChecks(t *testing.T) {
	applied := AppliedHistory{11: set(11, "/a", "c0-1"), 12: set(12, "/a", "c0-2")}
	complete := func(x uint64) bool { return x > 10 && x <= 12 }
	read := func(inc int, value string, modified, index uint64, call int64) SerialRead {
		return SerialRead{Client: 1, Member: 0, Incarnation: inc, Key: "/a", Found: true, Value: value, ModifiedIndex: modified, Index: index, Call: call}
	}
	t.Run("stale but real reads pass", func(t *testing.T) {
		mustPass(t, checkSerial([]SerialRead{read(1, "c0-1", 11, 11, 1), read(1, "c0-1", 11, 11, 2), read(1, "c0-2", 12, 12, 3)}, applied, complete))
	})
	t.Run("a value the cluster never held at that index is named", func(t *testing.T) {
		mustFind(t, checkSerial([]SerialRead{read(1, "c0-1", 12, 12, 1)}, applied, complete), "the change at that index is")
		mustFind(t, checkSerial([]SerialRead{read(1, "c0-9", 9, 12, 1)}, AppliedHistory{}, func(uint64) bool { return true }), "no watch and no answer saw")
	})
	t.Run("a member going back in time is named", func(t *testing.T) {
		mustFind(t, checkSerial([]SerialRead{read(1, "c0-2", 12, 12, 1), read(1, "c0-1", 11, 11, 2)}, applied, complete), "went back")
	})
	t.Run("a restarted member may start behind", func(t *testing.T) {
		mustPass(t, checkSerial([]SerialRead{read(1, "c0-2", 12, 12, 1), read(2, "c0-1", 11, 11, 2)}, applied, complete))
	})
}

func TestFinalStateChecks(t *testing.T) {
	applied := AppliedHistory{11: set(11, "/a", "c0-1"), 12: set(12, "/q0/00000000000000000012", "c1-1"), 13: del(13, "/a"), 14: set(14, "/b", "c0-2")}
	want, holes := replay(applied, 10, 14)
	if len(holes) > 0 {
		t.Fatalf("holes %v", holes)
	}
	got := map[string]Change{"/q0/00000000000000000012": applied[12], "/b": applied[14]}
	mustPass(t, compareFinal("m1", got, want))
	lost := map[string]Change{"/b": applied[14]}
	mustFind(t, compareFinal("m1", lost, want), "m1 lacks /q0/00000000000000000012")
	resurrected := map[string]Change{"/a": applied[11], "/q0/00000000000000000012": applied[12], "/b": applied[14]}
	mustFind(t, compareFinal("m2", resurrected, want), "m2 holds /a")
	_, holes = replay(AppliedHistory{11: applied[11], 13: applied[13]}, 10, 13)
	if len(holes) != 1 || holes[0] != 12 {
		t.Fatalf("holes %v, want [12]", holes)
	}
	post := Ack{Client: 1, Change: Change{Index: 12, Key: "/q0/00000000000000000012", Action: "create", Value: "c1-1", HasValue: true}}
	mustPass(t, checkAcked([]Ack{post}, got))
	mustFind(t, checkAcked([]Ack{post}, lost), "is gone at the end")
}

func TestScheduleIsDrawnFromTheSeed(t *testing.T) {
	o := ScheduleOptions{Seed: 7, Members: 5, DiskMember: 4, Kinds: AllKinds(), Duration: 10 * 60e9, Liveness: 1e9}
	a, b := NewSchedule(o), NewSchedule(o)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("schedules of %d and %d faults", len(a), len(b))
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			t.Fatalf("fault %d: %s, then %s", i, a[i], b[i])
		}
	}
	seen := map[Kind]bool{}
	for _, f := range a[:len(AllKinds())] {
		seen[f.Kind] = true
	}
	if len(seen) != len(AllKinds()) {
		t.Fatalf("the first %d faults are not one of each kind: %v", len(AllKinds()), seen)
	}
	o.Seed = 8
	if c := NewSchedule(o); c[0].String() == a[0].String() && c[1].String() == a[1].String() && c[2].String() == a[2].String() {
		t.Fatal("seeds 7 and 8 draw the same schedule")
	}
}

func TestDropProgram(t *testing.T) {
	if got := dropProgram(1); got != "1,6 0 0 2" {
		t.Fatalf("a cut: %q", got)
	}
	if got := dropProgram(0.5); !strings.HasPrefix(got, "4,32 0 0 4294963256,37 0 1 2147483647,") {
		t.Fatalf("half: %q", got)
	}
}

// visible returns, for each member, the members it can send to after cuts.
func visible(n int, cuts []link) []map[int]bool {
	cut := map[link]bool{}
	for _, l := range cuts {
		cut[l] = true
	}
	out := make([]map[int]bool, n)
	for i := range n {
		out[i] = map[int]bool{i: true}
		for j := range n {
			if i != j && !cut[link{i, j}] && !cut[link{j, i}] {
				out[i][j] = true
			}
		}
	}
	return out
}

func TestCuts(t *testing.T) {
	t.Run("a ring of five leaves each member its own majority", func(t *testing.T) {
		cuts, desc := cutsOf(Fault{Kind: Ring}, 5, 0, "m1")
		seen := map[string]bool{}
		for i, v := range visible(5, cuts) {
			if len(v) != 3 {
				t.Fatalf("m%d sees %d members, want 3 (itself and its neighbours): %s", i+1, len(v), desc)
			}
			key := fmt.Sprint(v)
			if seen[key] {
				t.Fatalf("two members see the same majority %v: %s", v, desc)
			}
			seen[key] = true
		}
	})
	t.Run("a ring of three is a bridge through the victim", func(t *testing.T) {
		cuts, _ := cutsOf(Fault{Kind: Ring}, 3, 1, "m2")
		v := visible(3, cuts)
		if len(v[1]) != 3 || len(v[0]) != 2 || len(v[2]) != 2 || v[0][2] {
			t.Fatalf("visible: %v", v)
		}
	})
	t.Run("halves cut every link across and none within", func(t *testing.T) {
		f := Fault{Kind: Halves, Groups: []int{0, 1, 0, 1, 0}}
		cuts, _ := cutsOf(f, 5, 0, "m1")
		for i, v := range visible(5, cuts) {
			for j := range 5 {
				if v[j] != (f.Groups[i] == f.Groups[j]) {
					t.Fatalf("m%d sees m%d: %v", i+1, j+1, v[j])
				}
			}
		}
	})
	t.Run("isolation cuts the victim both ways", func(t *testing.T) {
		cuts, _ := cutsOf(Fault{Kind: Isolate}, 3, 2, "m3")
		if v := visible(3, cuts); len(v[2]) != 1 || len(v[0]) != 2 {
			t.Fatalf("visible: %v", v)
		}
		if len(cuts) != 4 {
			t.Fatalf("%d cuts, want 4", len(cuts))
		}
	})
	t.Run("one-way cuts one direction", func(t *testing.T) {
		out, _ := cutsOf(Fault{Kind: OneWay, Out: true}, 3, 0, "m1")
		in, _ := cutsOf(Fault{Kind: OneWay}, 3, 0, "m1")
		for _, l := range out {
			if l.from != 0 {
				t.Fatalf("cannot send cuts %v", l)
			}
		}
		for _, l := range in {
			if l.to != 0 {
				t.Fatalf("cannot receive cuts %v", l)
			}
		}
		if len(out) != 2 || len(in) != 2 {
			t.Fatalf("%d and %d cuts, want 2 each", len(out), len(in))
		}
	})
}

// TestFinalListingsAreCheckedAtTheirOwnIndex: a write still in flight when
// the clients stopped lands after the last acknowledged one (index 14),
// between two members' listings; each listing is checked against the
// history up to the index it was read at.
func TestFinalListingsAreCheckedAtTheirOwnIndex(t *testing.T) {
	applied := AppliedHistory{11: set(11, "/a", "c0-1"), 12: set(12, "/b", "c1-1"), 13: set(13, "/a", "c2-1"),
		14: set(14, "/nemesis-probe", "end"), 15: set(15, "/a", "c0-9")}
	before := map[string]Change{"/a": applied[13], "/b": applied[12], "/nemesis-probe": applied[14]}
	after := map[string]Change{"/a": applied[15], "/b": applied[12], "/nemesis-probe": applied[14]}
	names := []string{"m1", "m2", "m3"}
	mustPass(t, checkFinals(names, applied, 10, 15, []map[string]Change{before, after, after}, []uint64{14, 15, 15}))
	mustFind(t, checkFinals(names, applied, 10, 15, []map[string]Change{before, before, after}, []uint64{14, 15, 15}),
		`m2 holds /a="c2-1"@13, the applied history "c0-9"@15`)
	// A listing that failed is held to the whole history.
	mustFind(t, checkFinals(names, applied, 10, 15, []map[string]Change{before, after, {}}, []uint64{14, 15, 0}), "m3 lacks /a")
}
