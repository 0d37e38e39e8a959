package kvstore

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// model is a deliberately simple reference for the store: a flat map from
// path to node, with every rule of the spec written out directly and no
// attempt at speed. The property tests check the real store against it.
type model struct {
	cfg   Config
	nodes map[string]*modelNode // "/" is always present, as a directory
	index uint64
	// history is every event so far; the store keeps the last historyCap.
	history    []*Event
	historyCap int
	watchers   []*modelWatcher
}

type modelNode struct {
	dir               bool
	value             string
	created, modified uint64
	hasTTL            bool
	expires           int64 // Unix nanoseconds
}

// modelWatcher is what a watcher should have received since the last
// comparison.
type modelWatcher struct {
	path              string
	recursive, stream bool
	since             uint64
	pending           []*Event
	closed            bool
}

func newModel(cfg Config) *model {
	return &model{cfg: cfg.withDefaults(), nodes: map[string]*modelNode{"/": {dir: true}}, historyCap: historyCapacity}
}

func modelClean(p string) string { return path.Clean("/" + p) }

// ancestors returns the proper ancestors of p below the root, top first.
func ancestors(p string) []string {
	var out []string
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

func (m *model) children(p string) []string {
	var out []string
	for k := range m.nodes {
		if k != "/" && path.Dir(k) == p {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// subtree returns p and every path below it.
func (m *model) subtree(p string) []string {
	var out []string
	for k := range m.nodes {
		if k == p || strings.HasPrefix(k, p+"/") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func (m *model) fail(code int, cause string) *Error { return NewError(code, cause, m.index) }

// lookup finds p: the first missing path is 100, a file with more path
// below it is 104.
func (m *model) lookup(p string) (*modelNode, *Error) {
	if p == "/" {
		return m.nodes["/"], nil
	}
	for _, a := range append(ancestors(p), p) {
		n := m.nodes[a]
		if n == nil {
			return nil, m.fail(CodeKeyNotFound, a)
		}
		if !n.dir && a != p {
			return nil, m.fail(CodeNotDir, a)
		}
	}
	return m.nodes[p], nil
}

func (m *model) render(p string, n *modelNode, now time.Time) *Node {
	out := &Node{Key: p, Dir: n.dir, ModifiedIndex: n.modified, CreatedIndex: n.created}
	if p == "/" {
		out.Key = ""
	}
	if !n.dir {
		v := n.value
		out.Value = &v
	}
	if n.hasTTL {
		exp := time.Unix(0, n.expires).UTC()
		out.Expiration = &exp
		left := exp.Sub(now)
		out.TTL = int64(left / time.Second)
		if left%time.Second > 0 {
			out.TTL++
		}
	}
	return out
}

func (m *model) checkLimits(p string) *Error {
	if len(p) > m.cfg.MaxKeyLength {
		return NewError(CodeInvalidField, fmt.Sprintf("key is %d bytes long, the limit is %d", len(p), m.cfg.MaxKeyLength), 0)
	}
	if d := len(ancestors(p)) + 1; p != "/" && d > m.cfg.MaxDepth {
		return NewError(CodeInvalidField, fmt.Sprintf("key has %d segments, the limit is %d", d, m.cfg.MaxDepth), 0)
	}
	return nil
}

// apply is the model's Apply.
func (m *model) apply(c Command) Result {
	op := c.Op
	compare := c.PrevValue != "" || c.PrevIndex > 0
	if op == OpSet && c.PrevExist == PrevExistTrue {
		op = OpUpdate
		if compare {
			op = OpCompareAndSwap
		}
	} else if op == OpSet && c.PrevExist == PrevExistFalse {
		op = OpCreate
	} else if op == OpSet && compare {
		op = OpCompareAndSwap
	} else if op == OpDelete && compare {
		op = OpCompareAndDelete
	}
	switch {
	case op < OpSet || op > OpExpire:
		return Result{Err: NewError(CodeInvalidField, fmt.Sprintf("unknown operation %v", op), 0)}
	case c.Refresh && c.Value != "":
		return Result{Err: NewError(CodeRefreshValue, "A value was provided on a refresh", 0)}
	case c.Refresh && !c.HasTTL:
		return Result{Err: NewError(CodeRefreshTTLRequired, "No TTL value set", 0)}
	}
	if op == OpExpire {
		return Result{Expired: m.expire(c.Now)}
	}
	if len(c.Value) > m.cfg.MaxValueSize {
		return Result{Err: NewError(CodeInvalidField, fmt.Sprintf("value is %d bytes long, the limit is %d", len(c.Value), m.cfg.MaxValueSize), 0)}
	}
	p := modelClean(c.Path)
	if err := m.checkLimits(p); err != nil {
		return Result{Err: err}
	}
	var e *Event
	var err *Error
	switch op {
	case OpSet:
		e, err = m.set(p, c)
	case OpCreate:
		e, err = m.create(p, c, c.Value, ActionCreate, false, false)
	case OpCreateInOrder:
		child := path.Join(p, fmt.Sprintf("%020d", m.index+1))
		if err = m.checkLimits(child); err == nil {
			e, err = m.create(child, c, c.Value, ActionCreate, false, false)
		}
	case OpUpdate:
		e, err = m.update(p, c)
	case OpCompareAndSwap:
		e, err = m.cas(p, c)
	case OpDelete:
		e, err = m.del(p, c)
	case OpCompareAndDelete:
		e, err = m.cad(p, c)
	}
	if err != nil {
		return Result{Err: err}
	}
	return Result{Event: e}
}

// ttl returns the expiration c asks for, as etcd computes it.
func (m *model) ttl(c Command) (int64, bool) {
	if !c.HasTTL {
		return 0, false
	}
	at := c.Now.Add(time.Duration(c.TTL) * time.Second).UnixNano()
	return at, at != 0
}

func (m *model) set(p string, c Command) (*Event, *Error) {
	if p == "/" {
		return nil, m.fail(CodeRootReadOnly, "/")
	}
	n, err := m.lookup(p)
	if err != nil && err.Code != CodeKeyNotFound {
		return nil, err
	}
	value := c.Value
	if c.Refresh {
		if err != nil {
			return nil, err
		}
		value = n.value
	}
	return m.create(p, c, value, ActionSet, true, c.Refresh)
}

func (m *model) create(p string, c Command, value, action string, replace, refresh bool) (*Event, *Error) {
	if p == "/" {
		return nil, m.fail(CodeRootReadOnly, "/")
	}
	for _, a := range ancestors(p) {
		if n := m.nodes[a]; n != nil && !n.dir {
			return nil, m.fail(CodeNotDir, a)
		}
	}
	old := m.nodes[p]
	if old != nil && !replace {
		return nil, m.fail(CodeNodeExist, p)
	}
	if old != nil && old.dir {
		return nil, m.fail(CodeNotFile, p)
	}
	next := m.index + 1
	e := &Event{Action: action, EtcdIndex: next, Refresh: refresh}
	if old != nil {
		e.PrevNode = m.render(p, old, c.Now)
	}
	for _, a := range ancestors(p) {
		if m.nodes[a] == nil {
			m.nodes[a] = &modelNode{dir: true, created: next, modified: next}
		}
	}
	n := &modelNode{dir: c.Dir, created: next, modified: next}
	if !c.Dir {
		n.value = value
	}
	if at, ok := m.ttl(c); ok && !time.Unix(0, at).Before(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		n.hasTTL, n.expires = true, at
	}
	m.nodes[p] = n
	e.Node = m.render(p, n, c.Now)
	m.commit(e, nil)
	return e, nil
}

func (m *model) update(p string, c Command) (*Event, *Error) {
	if p == "/" {
		return nil, m.fail(CodeRootReadOnly, "/")
	}
	n, err := m.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir && c.Value != "" {
		return nil, m.fail(CodeNotFile, p)
	}
	next := m.index + 1
	e := &Event{Action: ActionUpdate, EtcdIndex: next, Refresh: c.Refresh, PrevNode: m.render(p, n, c.Now)}
	if !n.dir {
		if !c.Refresh {
			n.value = c.Value
		}
		n.modified = next
	}
	n.expires, n.hasTTL = m.ttl(c)
	e.Node = m.render(p, n, c.Now)
	e.Node.ModifiedIndex = next // a directory keeps its own (etcd 2.3)
	m.commit(e, nil)
	return e, nil
}

func (m *model) compare(n *modelNode, c Command) *Error {
	var causes []string
	if c.PrevValue != "" && c.PrevValue != n.value {
		causes = append(causes, fmt.Sprintf("[%s != %s]", c.PrevValue, n.value))
	}
	if c.PrevIndex != 0 && c.PrevIndex != n.modified {
		causes = append(causes, fmt.Sprintf("[%d != %d]", c.PrevIndex, n.modified))
	}
	if len(causes) > 0 {
		return m.fail(CodeCompareFailed, strings.Join(causes, " "))
	}
	return nil
}

func (m *model) cas(p string, c Command) (*Event, *Error) {
	if p == "/" {
		return nil, m.fail(CodeRootReadOnly, "/")
	}
	n, err := m.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, m.fail(CodeNotFile, p)
	}
	if err := m.compare(n, c); err != nil {
		return nil, err
	}
	next := m.index + 1
	e := &Event{Action: ActionCompareAndSwap, EtcdIndex: next, Refresh: c.Refresh, PrevNode: m.render(p, n, c.Now)}
	if !c.Refresh {
		n.value = c.Value
	}
	n.modified = next
	n.expires, n.hasTTL = m.ttl(c)
	e.Node = m.render(p, n, c.Now)
	m.commit(e, nil)
	return e, nil
}

func (m *model) del(p string, c Command) (*Event, *Error) {
	if p == "/" {
		return nil, m.fail(CodeRootReadOnly, "/")
	}
	n, err := m.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir && !c.Dir && !c.Recursive {
		return nil, m.fail(CodeNotFile, p)
	}
	if n.dir && !c.Recursive && len(m.children(p)) > 0 {
		return nil, m.fail(CodeDirNotEmpty, p)
	}
	return m.removeAt(p, ActionDelete, c.Now), nil
}

func (m *model) cad(p string, c Command) (*Event, *Error) {
	n, err := m.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.dir {
		cause := p
		if p == "/" {
			cause = ""
		}
		return nil, m.fail(CodeNotFile, cause)
	}
	if err := m.compare(n, c); err != nil {
		return nil, err
	}
	return m.removeAt(p, ActionCompareAndDelete, c.Now), nil
}

func (m *model) removeAt(p, action string, now time.Time) *Event {
	n := m.nodes[p]
	next := m.index + 1
	e := &Event{
		Action:    action,
		EtcdIndex: next,
		Node:      &Node{Key: p, Dir: n.dir, ModifiedIndex: next, CreatedIndex: n.created},
		PrevNode:  m.render(p, n, now),
	}
	removed := m.subtree(p)
	for _, k := range removed {
		delete(m.nodes, k)
	}
	m.commit(e, removed)
	return e
}

func (m *model) expire(now time.Time) []*Event {
	var events []*Event
	for {
		due := ""
		for k, n := range m.nodes {
			if !n.hasTTL || time.Unix(0, n.expires).After(now) {
				continue
			}
			if due == "" || n.expires < m.nodes[due].expires || (n.expires == m.nodes[due].expires && k < due) {
				due = k
			}
		}
		if due == "" {
			return events
		}
		events = append(events, m.removeAt(due, ActionExpire, now))
	}
}

// commit records e and computes what every watcher receives: first the
// watchers at removed paths, then those at the prefixes of the key.
func (m *model) commit(e *Event, removed []string) {
	m.index++
	m.history = append(m.history, e)
	if e.Refresh {
		return
	}
	for _, w := range m.watchers {
		if w.closed || e.Index() < w.since {
			continue
		}
		if contains(removed, w.path) {
			m.deliver(w, e)
		}
		if w.closed {
			continue
		}
		key := e.Node.Key
		var rest string
		switch {
		case key == w.path:
			m.deliver(w, e)
			continue
		case w.path == "/":
			rest = key
		case strings.HasPrefix(key, w.path+"/"):
			rest = key[len(w.path):]
		default:
			continue
		}
		if w.recursive && !strings.Contains(rest, "/_") {
			m.deliver(w, e)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (m *model) deliver(w *modelWatcher, e *Event) {
	if len(w.pending) == m.cfg.WatchBuffer {
		w.closed = true
		return
	}
	w.pending = append(w.pending, e)
	if !w.stream {
		w.closed = true
	}
}

// watch is the model's Watch. A watch answered from the history returns
// a closed watcher holding that event.
func (m *model) watch(p string, opts WatchOptions) (*modelWatcher, *Error) {
	p = modelClean(p)
	if err := m.checkLimits(p); err != nil {
		return nil, err
	}
	since := opts.SinceIndex
	if since == 0 {
		since = m.index + 1
	}
	retained := m.history
	if len(retained) > m.historyCap {
		retained = retained[len(retained)-m.historyCap:]
	}
	var oldest uint64
	if len(retained) > 0 {
		oldest = retained[0].Index()
	}
	if since < oldest {
		return nil, m.fail(CodeEventIndexCleared, fmt.Sprintf("the requested history has been cleared [%d/%d]", oldest, since))
	}
	w := &modelWatcher{path: p, recursive: opts.Recursive, stream: opts.Stream, since: since}
	for _, e := range retained {
		if e.Index() < since || e.Refresh {
			continue
		}
		match := e.Node.Key == p ||
			(opts.Recursive && (p == "/" || strings.HasPrefix(e.Node.Key, p+"/"))) ||
			((e.Action == ActionDelete || e.Action == ActionExpire) && e.PrevNode.Dir && strings.HasPrefix(p, e.PrevNode.Key))
		if match {
			hit := e.Clone()
			hit.EtcdIndex = m.index
			w.pending, w.closed = []*Event{hit}, true
			return w, nil
		}
	}
	m.watchers = append(m.watchers, w)
	return w, nil
}

// get is the model's Get.
func (m *model) get(p string, opts GetOptions) (*Event, *Error) {
	p = modelClean(p)
	if err := m.checkLimits(p); err != nil {
		return nil, err
	}
	n, err := m.lookup(p)
	if err != nil {
		return nil, err
	}
	out := m.render(p, n, opts.Now)
	if n.dir {
		count := 0
		out.Nodes = m.list(p, opts, &count)
		if count > m.cfg.MaxListNodes {
			return nil, NewError(CodeInvalidField, fmt.Sprintf("the listing of %s has more than %d nodes", p, m.cfg.MaxListNodes), 0)
		}
	}
	return &Event{Action: ActionGet, Node: out, EtcdIndex: m.index}, nil
}

func (m *model) list(p string, opts GetOptions, count *int) []*Node {
	out := []*Node{}
	for _, k := range m.children(p) {
		if strings.HasPrefix(path.Base(k), "_") {
			continue
		}
		*count++
		child := m.render(k, m.nodes[k], opts.Now)
		if opts.Recursive && m.nodes[k].dir {
			child.Nodes = m.list(k, opts, count)
		}
		out = append(out, child)
	}
	return out
}
