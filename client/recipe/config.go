package recipe

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/raftkv/raftkv/client"
)

// ActionSnapshot is the Action of the Change that starts a (re)read of the
// directory. The Resync changes after it, all at its Index, are how the
// directory at that index differs from what the callback saw before.
const ActionSnapshot = "snapshot"

// Change is one change of a watched directory, handed to a ConfigWatcher's
// callback.
type Change struct {
	// Action is etcd's action (set, create, update, compareAndSwap,
	// delete, compareAndDelete, expire) or ActionSnapshot.
	Action string
	// Key is the key changed; Value its new value ("" when removed);
	// PrevValue its value before, when the event carried it.
	Key, Value, PrevValue string
	// Dir says Key is a directory: its removal removed every key below.
	Dir bool
	// Index is the event's index; for a snapshot and its Resync changes,
	// the index of the read.
	Index uint64
	// Resync marks a difference found by a read after a snapshot marker,
	// rather than an event: the events between were gone from the server's
	// history (error 401), and only their net effect is known.
	Resync bool
}

// Removed reports whether the change removed its key.
func (c Change) Removed() bool { return isRemoval(c.Action) }

// ConfigWatcher follows a directory from a consistent snapshot: it reads
// the whole directory (and the index of the read), then watches it
// recursively from that index + 1, each event after the last. When the
// server answers 401 (the events it needs are gone from its 1000-event
// history) it reads the directory again and reports the differences, so
// that the callback's view never skips an event's effect nor sees one
// twice.
type ConfigWatcher struct {
	c   *client.Client
	dir string

	// view is the directory's files as reported so far; last the index of
	// the last change reported. Owned by Run.
	view map[string]string
	last uint64

	// afterResync, if set, is called after each (re)read's changes.
	afterResync func()

	bugs configBugs
}

// configBugs are bugs a test can plant; shipped code never sets them.
type configBugs struct {
	// skipOn401 carries on from the server's current index after a 401
	// instead of reading the directory again.
	skipOn401 bool
}

// NewConfigWatcher returns a watcher of dir (its hidden keys, whose name
// starts with "_", excepted).
func NewConfigWatcher(c *client.Client, dir string) *ConfigWatcher {
	return &ConfigWatcher{c: c, dir: "/" + strings.Trim(dir, "/"), view: map[string]string{}}
}

// Index returns the index of the last change reported.
func (w *ConfigWatcher) Index() uint64 { return w.last }

// Run reads the directory, reports it as a snapshot (a marker, then a
// Resync "set" per key), then reports each change, until ctx ends (nil)
// or fn fails (its error). Run is not safe for concurrent use.
func (w *ConfigWatcher) Run(ctx context.Context, fn func(Change) error) error {
	if err := w.resync(ctx, fn); err != nil {
		return endOfRun(ctx, err)
	}
	for attempt := 0; ; {
		ev, err := w.c.Watcher(w.dir, &client.WatcherOptions{AfterIndex: w.last, Recursive: true}).Next(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case client.IsIndexCleared(err) && w.bugs.skipOn401:
			var e *client.Error
			errors.As(err, &e)
			w.last = e.Index
			continue
		case client.IsIndexCleared(err):
			if err := w.resync(ctx, fn); err != nil {
				return endOfRun(ctx, err)
			}
			continue
		case err != nil:
			attempt++
			_ = sleep(ctx, retryBackoff(attempt))
			continue
		}
		attempt = 0
		if err := w.event(ev, fn); err != nil {
			return err
		}
	}
}

func endOfRun(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// event reports one watched event.
func (w *ConfigWatcher) event(ev *client.Response, fn func(Change) error) error {
	n := ev.Node
	w.last = n.ModifiedIndex
	if w.hidden(n.Key) {
		// A watch answered from the history does not filter hidden keys.
		return nil
	}
	ch := Change{Action: ev.Action, Key: n.Key, Value: n.Value, Dir: n.Dir, Index: n.ModifiedIndex}
	if ev.PrevNode != nil {
		ch.PrevValue = ev.PrevNode.Value
	}
	if ch.Removed() {
		ch.Value = ""
		delete(w.view, n.Key)
		for k := range w.view {
			if strings.HasPrefix(k, n.Key+"/") {
				delete(w.view, k)
			}
		}
	} else if !n.Dir {
		w.view[n.Key] = n.Value
	}
	return fn(ch)
}

// hidden reports whether key has a segment below the directory that
// starts with "_".
func (w *ConfigWatcher) hidden(key string) bool {
	rest, ok := strings.CutPrefix(key, strings.TrimSuffix(w.dir, "/")+"/")
	if !ok {
		return false
	}
	for _, seg := range strings.Split(rest, "/") {
		if strings.HasPrefix(seg, "_") {
			return true
		}
	}
	return false
}

// resync reads the directory and reports how it differs from the view.
func (w *ConfigWatcher) resync(ctx context.Context, fn func(Change) error) error {
	var nodes []*client.Node
	var index uint64
	for attempt := 0; ; attempt++ {
		var err error
		nodes, index, err = listDir(ctx, w.c, w.dir)
		if err == nil {
			break
		}
		if err := sleep(ctx, retryBackoff(attempt)); err != nil {
			return err
		}
	}
	now := make(map[string]string, len(nodes))
	for _, n := range nodes {
		now[n.Key] = n.Value
	}
	changes := []Change{{Action: ActionSnapshot, Index: index}}
	for _, n := range nodes {
		if old, ok := w.view[n.Key]; !ok || old != n.Value {
			changes = append(changes, Change{Action: "set", Key: n.Key, Value: n.Value, PrevValue: old, Index: index, Resync: true})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(w.view)) {
		if _, ok := now[k]; !ok {
			changes = append(changes, Change{Action: "delete", Key: k, PrevValue: w.view[k], Index: index, Resync: true})
		}
	}
	w.view, w.last = now, index
	for _, ch := range changes {
		if err := fn(ch); err != nil {
			return err
		}
	}
	if w.afterResync != nil {
		w.afterResync()
	}
	return nil
}

// View returns a copy of the directory's files as reported so far.
func (w *ConfigWatcher) View() map[string]string { return maps.Clone(w.view) }

// String names the watcher.
func (w *ConfigWatcher) String() string { return fmt.Sprintf("config watcher of %s", w.dir) }
