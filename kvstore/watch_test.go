package kvstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mustWatch registers a watch and fails the test on an error.
func mustWatch(t testing.TB, s *Store, path string, opts WatchOptions) *Watcher {
	t.Helper()
	w, err := s.Watch(path, opts)
	require.NoError(t, err)
	return w
}

// received drains what w holds now, and reports whether its channel is
// closed.
func received(w *Watcher) (events []*Event, closed bool) {
	for {
		select {
		case e, ok := <-w.EventChan():
			if !ok {
				return events, true
			}
			events = append(events, e)
		default:
			return events, false
		}
	}
}

func TestWatchGetsTheWriteEvent(t *testing.T) {
	s := newTestStore(t)
	mustApply(t, s, set("/other", "x"))
	w := mustWatch(t, s, "/foo", WatchOptions{})
	assert.Equal(t, uint64(1), w.StartIndex())
	write := mustApply(t, s, set("/foo", "bar"))
	events, closed := received(w)
	require.Len(t, events, 1)
	assert.Same(t, write, events[0], "the watcher gets the write's own event")
	assert.True(t, closed, "a one-shot watcher is done after its event")
	assert.Equal(t, 0, s.WatcherCount())
}

func TestWatchMatching(t *testing.T) {
	cases := []struct {
		name      string
		setup     []Command
		watch     string
		opts      WatchOptions
		cmd       Command
		wantKey   string // "" means no event
		wantTwice bool
	}{
		{name: "exact", watch: "/a", cmd: set("/a", "v"), wantKey: "/a"},
		{name: "other key", watch: "/a", cmd: set("/b", "v")},
		{name: "child, not recursive", watch: "/d", cmd: set("/d/x", "v")},
		{name: "child, recursive", watch: "/d", opts: WatchOptions{Recursive: true}, cmd: set("/d/x", "v"), wantKey: "/d/x"},
		{name: "grandchild, recursive", watch: "/d", opts: WatchOptions{Recursive: true}, cmd: set("/d/x/y", "v"), wantKey: "/d/x/y"},
		{name: "recursive on root", watch: "/", opts: WatchOptions{Recursive: true}, cmd: set("/d/x/y", "v"), wantKey: "/d/x/y"},
		{name: "string prefix is not a parent", watch: "/d", opts: WatchOptions{Recursive: true}, cmd: set("/dx", "v")},
		{name: "hidden key, recursive on root", watch: "/", opts: WatchOptions{Recursive: true}, cmd: set("/_h", "v")},
		{name: "hidden dir below, recursive", watch: "/a", opts: WatchOptions{Recursive: true}, cmd: set("/a/_d/x", "v")},
		{name: "inside a hidden dir, watched from it", watch: "/_a", opts: WatchOptions{Recursive: true}, cmd: set("/_a/b", "v"), wantKey: "/_a/b"},
		{name: "hidden key watched directly", watch: "/a/_b", cmd: set("/a/_b", "v"), wantKey: "/a/_b"},
		{name: "refresh wakes nobody", setup: []Command{withTTL(set("/a", "v"), 5)}, watch: "/a",
			cmd: Command{Op: OpSet, Path: "/a", Refresh: true, HasTTL: true, TTL: 9}},
		{name: "delete of a parent dir reaches a watch below", setup: []Command{set("/dir/a", "v")},
			watch: "/dir/a", cmd: Command{Op: OpDelete, Path: "/dir", Recursive: true}, wantKey: "/dir"},
		{name: "delete of a parent reaches hidden watches below", setup: []Command{set("/dir/_a/b", "v")},
			watch: "/dir/_a/b", opts: WatchOptions{Recursive: true}, cmd: Command{Op: OpDelete, Path: "/dir", Recursive: true}, wantKey: "/dir"},
		{name: "a stream watch on a deleted key gets the event twice (etcd quirk)", setup: []Command{set("/k", "v")},
			watch: "/k", opts: WatchOptions{Stream: true}, cmd: Command{Op: OpDelete, Path: "/k"}, wantKey: "/k", wantTwice: true},
		{name: "compare-and-delete", setup: []Command{set("/k", "v")},
			watch: "/", opts: WatchOptions{Recursive: true}, cmd: Command{Op: OpDelete, Path: "/k", PrevValue: "v"}, wantKey: "/k"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t)
			for _, c := range tc.setup {
				mustApply(t, s, c)
			}
			w := mustWatch(t, s, tc.watch, tc.opts)
			write := mustApply(t, s, tc.cmd)
			events, _ := received(w)
			if tc.wantKey == "" {
				assert.Empty(t, events)
				return
			}
			want := 1
			if tc.wantTwice {
				want = 2
			}
			require.Len(t, events, want)
			for _, e := range events {
				assert.Equal(t, tc.wantKey, e.Node.Key)
				assert.Same(t, write, e)
			}
		})
	}
}

func TestWatchFromHistory(t *testing.T) {
	s := newTestStore(t)
	mustApply(t, s, set("/a", "1"))                                                      // 1
	mustApply(t, s, set("/b", "2"))                                                      // 2
	mustApply(t, s, Command{Op: OpSet, Path: "/a", Refresh: true, HasTTL: true, TTL: 5}) // 3
	mustApply(t, s, set("/a", "3"))                                                      // 4
	mustApply(t, s, set("/foo/x", "4"))                                                  // 5
	mustApply(t, s, Command{Op: OpDelete, Path: "/foo", Recursive: true})                // 6

	cases := []struct {
		name      string
		path      string
		opts      WatchOptions
		wantIndex uint64 // 0: no history match, the watcher waits
	}{
		{"first match at the index", "/a", WatchOptions{SinceIndex: 1}, 1},
		{"refresh events are skipped", "/a", WatchOptions{SinceIndex: 2}, 4},
		{"recursive", "/", WatchOptions{SinceIndex: 2, Recursive: true}, 2},
		{"future index waits", "/a", WatchOptions{SinceIndex: 7}, 0},
		{"no match waits", "/zzz", WatchOptions{SinceIndex: 1}, 0},
		{"deleted directory matches keys below it", "/foo/x/y", WatchOptions{SinceIndex: 6}, 6},
		{"deleted directory matches by string prefix (etcd quirk)", "/foobar", WatchOptions{SinceIndex: 6}, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := mustWatch(t, s, tc.path, tc.opts)
			assert.Equal(t, uint64(6), w.StartIndex())
			events, closed := received(w)
			if tc.wantIndex == 0 {
				assert.Empty(t, events)
				assert.False(t, closed)
				w.Remove()
				return
			}
			require.Len(t, events, 1)
			assert.Equal(t, tc.wantIndex, events[0].Index())
			assert.Equal(t, uint64(6), events[0].EtcdIndex, "history hits report the current index")
			assert.True(t, closed)
		})
	}
	assert.Equal(t, 0, s.WatcherCount())
}

func TestWatchHistoryCleared(t *testing.T) {
	s := newTestStore(t)
	for i := range 1010 {
		mustApply(t, s, set("/k", fmt.Sprint(i)))
	}
	_, err := s.Watch("/k", WatchOptions{SinceIndex: 5})
	var kvErr *Error
	require.ErrorAs(t, err, &kvErr)
	assert.Equal(t,
		`{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [11/5]","index":1010}`,
		jsonOf(t, kvErr))
	assert.Equal(t, 400, kvErr.StatusCode())

	w := mustWatch(t, s, "/k", WatchOptions{SinceIndex: 11})
	events, _ := received(w)
	require.Len(t, events, 1)
	assert.Equal(t, uint64(11), events[0].Index())
}

func TestWatchSinceIndexInTheFuture(t *testing.T) {
	s := newTestStore(t)
	w := mustWatch(t, s, "/k", WatchOptions{SinceIndex: 3})
	mustApply(t, s, set("/k", "1"))
	mustApply(t, s, set("/k", "2"))
	events, _ := received(w)
	assert.Empty(t, events)
	mustApply(t, s, set("/k", "3"))
	events, _ = received(w)
	require.Len(t, events, 1)
	assert.Equal(t, uint64(3), events[0].Index())
}

func TestStreamWatcher(t *testing.T) {
	s, err := New(Config{WatchBuffer: 3})
	require.NoError(t, err)
	w := mustWatch(t, s, "/d", WatchOptions{Recursive: true, Stream: true})
	mustApply(t, s, set("/d/a", "1"))
	mustApply(t, s, set("/d/b", "2"))
	events, closed := received(w)
	require.Len(t, events, 2)
	assert.False(t, closed)

	// Four events into a buffer of three: the watcher is dropped, its
	// channel closed after the three it holds, and Apply never blocks.
	for i := range 4 {
		mustApply(t, s, set("/d/a", fmt.Sprint(i)))
	}
	events, closed = received(w)
	assert.Len(t, events, 3)
	assert.True(t, closed)
	assert.Equal(t, 0, s.WatcherCount())
	w.Remove() // harmless after a drop
}

func TestWatchRemove(t *testing.T) {
	s := newTestStore(t)
	w1 := mustWatch(t, s, "/k", WatchOptions{})
	w2 := mustWatch(t, s, "/k", WatchOptions{})
	w3 := mustWatch(t, s, "/k", WatchOptions{})
	require.Equal(t, 3, s.WatcherCount())
	w2.Remove()
	w2.Remove()
	_, closed := received(w2)
	assert.True(t, closed)
	require.Equal(t, 2, s.WatcherCount())
	mustApply(t, s, set("/k", "v"))
	for _, w := range []*Watcher{w1, w3} {
		events, closed := received(w)
		assert.Len(t, events, 1)
		assert.True(t, closed)
	}
	assert.Equal(t, 0, s.WatcherCount())
}

func TestWatchRemoveConcurrentWithApply(t *testing.T) {
	s := newTestStore(t)
	watchers := make([]*Watcher, 200)
	for i := range watchers {
		watchers[i] = mustWatch(t, s, fmt.Sprintf("/k%d", i%10), WatchOptions{Stream: true})
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, w := range watchers {
			w.Remove()
		}
	}()
	for i := range 500 {
		mustApply(t, s, set(fmt.Sprintf("/k%d", i%10), "v"))
	}
	wg.Wait()
	assert.Equal(t, 0, s.WatcherCount())
	for _, w := range watchers {
		for range w.EventChan() {
		}
	}
}

func TestWatchExpireEvent(t *testing.T) {
	s := newTestStore(t)
	mustApply(t, s, withTTL(set("/t", "v"), 5))
	w := mustWatch(t, s, "/t", WatchOptions{})
	r := apply(s, Command{Op: OpExpire, Now: t0.Add(6 * time.Second)})
	require.Len(t, r.Expired, 1)
	events, _ := received(w)
	require.Len(t, events, 1)
	assert.Equal(t,
		`{"action":"expire","node":{"key":"/t","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/t","value":"v","expiration":"2024-05-01T10:00:05Z","ttl":-1,"modifiedIndex":1,"createdIndex":1}}`,
		jsonOf(t, events[0]))
}

func TestWatchKeyLimits(t *testing.T) {
	s, err := New(Config{MaxKeyLength: 8})
	require.NoError(t, err)
	_, err = s.Watch("/123456789", WatchOptions{})
	var kvErr *Error
	require.ErrorAs(t, err, &kvErr)
	assert.Equal(t, CodeInvalidField, kvErr.Code)
}
