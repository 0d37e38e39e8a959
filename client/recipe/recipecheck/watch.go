package recipecheck

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ActionSnapshot is the Action of the marker a watcher reports when it
// (re)reads the directory: the Resync changes after it carry the same
// Index and make the watcher's view equal to the directory at that index.
const ActionSnapshot = "snapshot"

// WatchEvent is one change of a directory: in the key space's history (the
// truth), or as a watcher reported it.
type WatchEvent struct {
	// Index is the event's index (its modifiedIndex); for a snapshot marker
	// and the Resync changes after it, the index of the read.
	Index uint64
	// Key is the key the event is about.
	Key string
	// Action is etcd's action (set, create, update, compareAndSwap,
	// delete, compareAndDelete, expire), or ActionSnapshot.
	Action string
	// Value is the key's new value (empty for removals).
	Value string
	// Dir says the event is about a directory: its removal takes every key
	// below it; its creation changes no value.
	Dir bool
	// Resync marks a difference reported after a snapshot marker rather
	// than an event of the history.
	Resync bool
}

// isRemoval reports whether an action removes its key.
func isRemoval(action string) bool {
	return action == "delete" || action == "compareAndDelete" || action == "expire"
}

// view is the files of a directory and their values.
type view map[string]string

func (m view) apply(e WatchEvent) {
	if isRemoval(e.Action) {
		delete(m, e.Key)
		for k := range m {
			if strings.HasPrefix(k, e.Key+"/") {
				delete(m, k)
			}
		}
		return
	}
	if !e.Dir {
		m[e.Key] = e.Value
	}
}

// diff describes how got differs from want, at most a few keys.
func (m view) diff(want view) string {
	var out []string
	keys := slices.Sorted(maps.Keys(want))
	for _, k := range keys {
		if g, ok := m[k]; !ok {
			out = append(out, fmt.Sprintf("%s missing (want %q)", k, want[k]))
		} else if g != want[k] {
			out = append(out, fmt.Sprintf("%s is %q (want %q)", k, g, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s is %q but does not exist", k, m[k]))
		}
	}
	if len(out) > 4 {
		out = append(out[:4], fmt.Sprintf("and %d more", len(out)-4))
	}
	return strings.Join(out, "; ")
}

// watchCheck is the state of CheckWatch's walk.
type watchCheck struct {
	v     *Violations
	truth []WatchEvent
	// next is the first truth event not yet applied to state.
	next int
	// state is the directory after every truth event before next.
	state view
	// mirror is the directory as the watcher's changes describe it.
	mirror view
	// last is the index of the last change seen.
	last uint64
	// group is the index of the snapshot whose Resync changes are being
	// read (0: none).
	group uint64
}

// advance applies the truth events up to index i.
func (w *watchCheck) advance(i uint64) {
	for w.next < len(w.truth) && w.truth[w.next].Index <= i {
		w.state.apply(w.truth[w.next])
		w.next++
	}
}

// closeGroup checks the view after a snapshot's differences.
func (w *watchCheck) closeGroup() {
	if w.group == 0 {
		return
	}
	if d := w.mirror.diff(w.state); d != "" {
		w.v.add("after the re-read at index %d the watcher's view differs from the directory: %s", w.group, d)
		w.mirror = maps.Clone(w.state)
	}
	w.group = 0
}

// CheckWatch checks a watcher's sequence of changes (seen) against the key
// space's history of the directory (truth: every event under it, in index
// order, starting from an empty directory). Every event must be reported
// once, in order, with its key, action and value, except that a snapshot
// marker may skip events: its Resync changes must then bring the
// watcher's view to the directory's state at the marker's index. The
// watcher must have reported everything up to the last truth event.
func CheckWatch(truth, seen []WatchEvent) error {
	w := &watchCheck{v: &Violations{Check: "watch"}, truth: truth, state: view{}, mirror: view{}}
	for i := 1; i < len(truth); i++ {
		if truth[i].Index <= truth[i-1].Index {
			w.v.add("the truth is not in index order: %d after %d", truth[i].Index, truth[i-1].Index)
			return w.v.result()
		}
	}
	for _, s := range seen {
		switch {
		case s.Action == ActionSnapshot:
			w.closeGroup()
			if s.Index < w.last {
				w.v.add("re-read at index %d goes back before index %d, already reported", s.Index, w.last)
			}
			w.advance(s.Index)
			w.group, w.last = s.Index, max(w.last, s.Index)
		case s.Resync:
			if w.group == 0 || s.Index != w.group {
				w.v.add("a re-read change of %s at index %d follows no re-read at that index", s.Key, s.Index)
			}
			w.mirror.apply(s)
		default:
			w.closeGroup()
			w.event(s)
		}
	}
	w.closeGroup()
	if w.next < len(truth) {
		missed := truth[w.next:]
		w.v.add("the watcher never reported %d event(s) from index %d (%s %s) on", len(missed), missed[0].Index, missed[0].Action, missed[0].Key)
	}
	return w.v.result()
}

// event checks one reported event.
func (w *watchCheck) event(s WatchEvent) {
	if s.Index <= w.last {
		w.v.add("event at index %d (%s %s) repeated or out of order: index %d was already reported", s.Index, s.Action, s.Key, w.last)
		return
	}
	skipped := 0
	first := uint64(0)
	for w.next < len(w.truth) && w.truth[w.next].Index < s.Index {
		if skipped == 0 {
			first = w.truth[w.next].Index
		}
		skipped++
		w.state.apply(w.truth[w.next])
		w.next++
	}
	if skipped > 0 {
		w.v.add("the watcher skipped %d event(s) from index %d before index %d", skipped, first, s.Index)
	}
	w.last = s.Index
	if w.next >= len(w.truth) || w.truth[w.next].Index != s.Index {
		w.v.add("the watcher reported %s %s at index %d, which is not in the directory's history", s.Action, s.Key, s.Index)
		return
	}
	t := w.truth[w.next]
	if t.Key != s.Key || t.Action != s.Action || t.Value != s.Value {
		w.v.add("at index %d the watcher reported %s %s=%q, the history has %s %s=%q", s.Index, s.Action, s.Key, s.Value, t.Action, t.Key, t.Value)
	}
	w.advance(s.Index)
	w.mirror.apply(s)
	if d := w.mirror.diff(w.state); d != "" {
		w.v.add("after index %d the watcher's view differs from the directory: %s", s.Index, d)
		w.mirror = maps.Clone(w.state)
	}
}
