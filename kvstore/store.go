package kvstore

import (
	"fmt"
	"time"
)

// Store is the etcd v2 key space: a tree of files and directories, a TTL
// heap, the event history and the watchers.
//
// Store is a deterministic state machine: Apply's results depend only on
// the commands applied before, never on a clock, a random source or map
// iteration order. It is not safe for concurrent use, with one exception:
// Watcher.Remove and reading a Watcher's channel may happen on any
// goroutine while the store is used on its own.
type Store struct {
	// cfg holds the limits, defaults filled in.
	cfg Config
	// root is the root directory "/".
	// Invariant: a directory, never removed, with index 0 and no TTL.
	root *node
	// index is the etcd index: the number of modifying events so far.
	// Invariant: equals the index of the newest event in history.
	index uint64
	// expiries holds every node that has a TTL.
	expiries expiryHeap
	// history holds the most recent events.
	history *eventHistory
	// hub holds the live watchers.
	hub *watchHub
	// raftIndex is the Raft log index of the last applied command, kept for
	// diagnostics only: nothing the store answers depends on it.
	raftIndex uint64
}

// New returns an empty store with the given limits.
func New(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Store{
		cfg:     cfg,
		root:    newDir("", 0),
		history: newEventHistory(historyCapacity),
		hub:     newWatchHub(),
	}, nil
}

// CurrentIndex is the etcd index: the index of the last modifying event.
func (s *Store) CurrentIndex() uint64 {
	return s.index
}

// NodeCount is the number of keys and directories in the key space, the
// root not counted (hidden ones included).
func (s *Store) NodeCount() int {
	return s.root.descendants()
}

// NextExpiration returns the earliest expiration of any node, if some node
// has a TTL. The leader proposes an OpExpire command once its clock reaches
// it.
func (s *Store) NextExpiration() (time.Time, bool) {
	top := s.expiries.top()
	if top == nil {
		return time.Time{}, false
	}
	return time.Unix(0, top.expiry().at).UTC(), true
}

// WatcherCount returns the number of registered watchers.
func (s *Store) WatcherCount() int {
	return s.hub.len()
}

// GetOptions are the parameters of a read (spec §6.3).
type GetOptions struct {
	// Recursive lists a directory's whole visible subtree instead of only
	// its direct children.
	Recursive bool
	// Sorted asks for children sorted by key. The store always sorts them,
	// since an unsorted listing would leak map order; etcd's unsorted order
	// is arbitrary, so a sorted one is one of the orders it may give.
	Sorted bool
	// Now is the serving member's clock, used for the remaining ttl.
	Now time.Time
}

// Get reads the node at path as etcd does (spec §6.3): a file with its
// value, or a directory with its visible children. The returned error is
// always an *Error.
func (s *Store) Get(path string, opts GetOptions) (*Event, error) {
	p := cleanPath(path)
	if err := s.checkPath(p); err != nil {
		return nil, err
	}
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	out := n.render(p, opts.Now)
	if n.isDir() {
		l := lister{opts: opts, top: p, budget: s.cfg.MaxListNodes, limit: s.cfg.MaxListNodes}
		if out.Nodes, err = l.list(n, p); err != nil {
			return nil, err
		}
	}
	return &Event{Action: ActionGet, Node: out, EtcdIndex: s.index}, nil
}

// lister renders directory listings for one Get.
type lister struct {
	opts GetOptions
	// top is the path the Get asked for, named in a limit error.
	top string
	// budget is the number of nodes the listing may still hold.
	budget int
	// limit is the store's MaxListNodes, for the error message.
	limit int
}

// list renders the visible children of the directory n at path p, and
// their own children too when recursive (spec §7.2). Listing more nodes
// than the budget allows, at all levels together, is a limit error.
func (l *lister) list(n *node, p string) ([]*Node, *Error) {
	out := make([]*Node, 0, n.children().len())
	for child := range n.children().all() {
		if child.isHidden() {
			continue
		}
		if l.budget == 0 {
			return nil, NewError(CodeInvalidField,
				fmt.Sprintf("the listing of %s has more than %d nodes", l.top, l.limit), 0)
		}
		l.budget--
		path := childPath(p, child.name)
		rendered := child.render(path, l.opts.Now)
		if l.opts.Recursive && child.isDir() {
			var err *Error
			if rendered.Nodes, err = l.list(child, path); err != nil {
				return nil, err
			}
		}
		out = append(out, rendered)
	}
	return out, nil
}

// Watch registers a watch on path (spec §8). If the history holds a
// matching event at or after opts.SinceIndex, the watcher is answered at
// once with it and its channel closed; otherwise it waits for live events.
// A SinceIndex older than the history is error 401. The returned error is
// always an *Error.
func (s *Store) Watch(path string, opts WatchOptions) (*Watcher, error) {
	p := cleanPath(path)
	if err := s.checkPath(p); err != nil {
		return nil, err
	}
	since := opts.SinceIndex
	if since == 0 {
		since = s.index + 1
	}
	past, err := s.history.scan(p, opts.Recursive, since)
	if err != nil {
		err.Index = s.index
		return nil, err
	}
	// A one-shot watcher is removed at its first event, so one slot is all
	// it ever needs; only stream watchers get the configured buffer. This
	// keeps 100,000 waiting one-shot watchers small.
	buffer := 1
	if opts.Stream {
		buffer = s.cfg.WatchBuffer
	}
	w := &Watcher{
		path:       p,
		recursive:  opts.Recursive,
		stream:     opts.Stream,
		sinceIndex: since,
		startIndex: s.index,
		events:     make(chan *Event, buffer),
	}
	if past != nil {
		e := past.Clone()
		e.EtcdIndex = s.index
		w.events <- e
		close(w.events)
		w.removed = true
		return w, nil
	}
	s.hub.add(w)
	return w, nil
}
