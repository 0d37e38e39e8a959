package kvstore

import (
	"strings"
	"sync"
)

// WatchOptions are the parameters of a watch (spec §8.1).
type WatchOptions struct {
	// Recursive also reports changes below the watched key, except those
	// to hidden keys (a segment below the watched key starting with '_').
	Recursive bool
	// Stream keeps the watcher after its first event.
	Stream bool
	// SinceIndex is the first index to report (etcd's waitIndex); 0 means
	// the store's current index + 1, i.e. only changes still to come.
	SinceIndex uint64
}

// Watcher receives the events of one watch.
//
// A one-shot watcher receives one event, then its channel is closed. A
// stream watcher receives events until it is removed; if its buffer is full
// when an event arrives it is dropped and its channel closed, so a slow
// watcher never blocks Apply. A closed channel without an event means the
// watch ended early (dropped, removed, or the store was restored); an etcd
// server then ends the response, and etcd clients re-issue the watch.
type Watcher struct {
	// hub is the hub the watcher is registered with; nil if the watch was
	// answered from the history and never registered.
	hub *watchHub
	// path is the watched path (cleaned).
	path string
	// recursive and stream are the watch options.
	recursive, stream bool
	// sinceIndex is the first index the watcher reports.
	sinceIndex uint64
	// startIndex is the store's index when the watch was registered: what
	// the HTTP layer reports in X-Etcd-Index.
	startIndex uint64
	// events carries the events; closed when the watcher is removed.
	events chan *Event

	// The fields below are guarded by hub.mu.

	// prev and next link the watchers registered at the same path.
	prev, next *Watcher
	// removed is set once the watcher left the hub and events was closed.
	removed bool
}

// EventChan returns the channel the watcher's events arrive on.
func (w *Watcher) EventChan() <-chan *Event {
	return w.events
}

// StartIndex is the store's index when the watch was registered.
func (w *Watcher) StartIndex() uint64 {
	return w.startIndex
}

// Remove cancels the watch and closes its channel. It is safe to call at
// any time, more than once, and from any goroutine (for example an HTTP
// handler whose client went away while the store applies commands).
func (w *Watcher) Remove() {
	if w.hub == nil {
		return
	}
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	w.hub.unlink(w)
}

// watcherList is the doubly linked list of watchers registered at one path.
type watcherList struct {
	head *Watcher
}

// watchHub indexes the live watchers by the path they watch, so that an
// event costs one map lookup per prefix of its key, however many watchers
// exist elsewhere.
type watchHub struct {
	// mu guards byPath, count and every Watcher's prev, next and removed;
	// Watcher.Remove may run on another goroutine than Apply.
	mu sync.Mutex
	// byPath maps a watched path to its watchers.
	// Invariant: no list in it is empty.
	byPath map[string]*watcherList
	// count is the number of registered watchers.
	count int
}

func newWatchHub() *watchHub {
	return &watchHub{byPath: map[string]*watcherList{}}
}

// add registers w.
func (h *watchHub) add(w *Watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w.hub = h
	list := h.byPath[w.path]
	if list == nil {
		list = &watcherList{}
		h.byPath[w.path] = list
	}
	w.next = list.head
	if list.head != nil {
		list.head.prev = w
	}
	list.head = w
	h.count++
}

// unlink removes w from the hub and closes its channel, once.
// The caller holds h.mu.
func (h *watchHub) unlink(w *Watcher) {
	if w.removed {
		return
	}
	w.removed = true
	list := h.byPath[w.path]
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		list.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
	if list.head == nil {
		delete(h.byPath, w.path)
	}
	h.count--
	close(w.events)
}

// len returns the number of registered watchers.
func (h *watchHub) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// notify delivers e, an event at key e.Node.Key, to the watchers registered
// at every prefix of the key (spec §8.4): an exact watch always matches, a
// recursive watch on a proper prefix matches unless the rest of the key has
// a hidden segment.
func (h *watchHub) notify(e *Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count == 0 {
		return
	}
	key := e.Node.Key
	if list := h.byPath["/"]; list != nil {
		h.deliver(list, e, func(w *Watcher) bool {
			return w.recursive && !strings.Contains(key, "/_")
		})
	}
	for end := 1; end <= len(key); end++ {
		if end < len(key) && key[end] != '/' {
			continue
		}
		list := h.byPath[key[:end]]
		if list == nil {
			continue
		}
		exact := end == len(key)
		hidden := strings.Contains(key[end:], "/_")
		h.deliver(list, e, func(w *Watcher) bool {
			return exact || (w.recursive && !hidden)
		})
	}
}

// notifyRemoved delivers e, the event that removed the node at p (p is the
// removed node or a node of its removed subtree), to every watcher
// registered exactly at p, recursive or not, hidden or not (spec §8.4).
func (h *watchHub) notifyRemoved(e *Event, p string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if list := h.byPath[p]; list != nil {
		h.deliver(list, e, func(*Watcher) bool { return true })
	}
}

// deliver sends e to the watchers of list that match and whose sinceIndex
// e has reached. One-shot watchers are removed after their event; watchers
// whose buffer is full are dropped. The caller holds h.mu.
func (h *watchHub) deliver(list *watcherList, e *Event, match func(*Watcher) bool) {
	for w := list.head; w != nil; {
		next := w.next
		if e.Index() >= w.sinceIndex && match(w) {
			select {
			case w.events <- e:
				if !w.stream {
					h.unlink(w)
				}
			default:
				h.unlink(w)
			}
		}
		w = next
	}
}

// closeAll removes every watcher, closing its channel.
func (h *watchHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, list := range h.byPath {
		for w := list.head; w != nil; {
			next := w.next
			h.unlink(w)
			w = next
		}
	}
}
