package kvstore

import (
	"fmt"
	"strings"
	"time"
)

// Result is the outcome of applying one command: an event, or an error
// with nothing changed.
type Result struct {
	// Event is the event of a successful operation other than OpExpire.
	Event *Event
	// Expired holds OpExpire's events, one per expired node, in index order;
	// empty when nothing was due.
	Expired []*Event
	// Err is the etcd error of a failed operation; nil on success.
	Err *Error
}

// Apply applies one committed command. index is the Raft log index of the
// entry that carried it; it is informational only. The store's own etcd
// index advances by one per event (spec §6.2). A failed command changes
// nothing.
func (s *Store) Apply(index uint64, cmd Command) Result {
	s.raftIndex = index
	op := cmd.EffectiveOp()
	p := ""
	if op != OpExpire {
		p = cleanPath(cmd.Path)
	}
	if err := s.checkCommand(op, p, cmd); err != nil {
		return Result{Err: err}
	}
	if op == OpExpire {
		return Result{Expired: s.expire(cmd.Now)}
	}
	var e *Event
	var err *Error
	switch op {
	case OpSet:
		e, err = s.set(p, cmd)
	case OpCreate:
		e, err = s.create(creation{path: p, action: ActionCreate, dir: cmd.Dir, value: cmd.Value}, cmd)
	case OpCreateInOrder:
		e, err = s.createInOrder(p, cmd)
	case OpUpdate:
		e, err = s.update(p, cmd)
	case OpCompareAndSwap:
		e, err = s.compareAndSwap(p, cmd)
	case OpDelete:
		e, err = s.delete(p, cmd)
	case OpCompareAndDelete:
		e, err = s.compareAndDelete(p, cmd)
	default:
		panic(fmt.Sprintf("kvstore: raft entry %d: operation %v passed checkCommand", index, op))
	}
	if err != nil {
		return Result{Err: err}
	}
	return Result{Event: e}
}

// checkCommand rejects malformed commands before anything changes, with
// the request errors etcd gives (index 0). p is the cleaned cmd.Path.
func (s *Store) checkCommand(op Op, p string, cmd Command) *Error {
	if !op.valid() {
		return NewError(CodeInvalidField, fmt.Sprintf("unknown operation %v", op), 0)
	}
	if cmd.Refresh && cmd.Value != "" {
		return NewError(CodeRefreshValue, "A value was provided on a refresh", 0)
	}
	if cmd.Refresh && !cmd.HasTTL {
		return NewError(CodeRefreshTTLRequired, "No TTL value set", 0)
	}
	if cmd.HasTTL && cmd.Now.IsZero() {
		return NewError(CodeInvalidField, "a ttl was given without the proposer's time (Command.Now)", 0)
	}
	if op == OpExpire {
		return nil
	}
	if len(cmd.Value) > s.cfg.MaxValueSize {
		return NewError(CodeInvalidField,
			fmt.Sprintf("value is %d bytes long, the limit is %d", len(cmd.Value), s.cfg.MaxValueSize), 0)
	}
	return s.checkPath(p)
}

// set creates or replaces the node at p (spec §6.4).
func (s *Store) set(p string, cmd Command) (*Event, *Error) {
	if p == "/" {
		return nil, s.rootReadOnly()
	}
	c := creation{path: p, action: ActionSet, dir: cmd.Dir, value: cmd.Value, replace: true}
	if cmd.Refresh {
		// A refresh needs the node to exist. Without refresh, create finds
		// the same errors a lookup would (a file in the way is 104) and a
		// missing node is simply created.
		existing, err := s.lookup(p)
		if err != nil {
			return nil, err
		}
		c.value, c.refresh = existing.value, true
	}
	return s.create(c, cmd)
}

// createInOrder creates a node under the directory p named by the new index
// (spec §6.6).
func (s *Store) createInOrder(p string, cmd Command) (*Event, *Error) {
	child := childPath(p, fmt.Sprintf("%020d", s.index+1))
	if err := s.checkPath(child); err != nil {
		return nil, err
	}
	return s.create(creation{path: child, action: ActionCreate, dir: cmd.Dir, value: cmd.Value}, cmd)
}

// creation describes what create makes.
type creation struct {
	// path is the clean path of the new node.
	path string
	// action is the event's action: set or create.
	action string
	// dir asks for a directory; value is the file's value otherwise.
	dir   bool
	value string
	// replace allows an existing file to be replaced (set); without it any
	// existing node is error 105 (create).
	replace bool
	// refresh marks the event as a TTL refresh, which wakes no watcher.
	refresh bool
}

// create makes the node c describes, making the missing parent
// directories, with the TTL cmd asks for (spec §6.4, §6.5).
func (s *Store) create(c creation, cmd Command) (*Event, *Error) {
	p := c.path
	if p == "/" {
		return nil, s.rootReadOnly()
	}
	dirPath, name := splitPath(p)
	parent, missing, err := s.findDir(dirPath)
	if err != nil {
		return nil, err
	}
	var existing *node
	if missing == "" {
		existing = parent.children[name]
	}
	if existing != nil && !c.replace {
		return nil, NewError(CodeNodeExist, p, s.index)
	}
	if existing != nil && existing.isDir() {
		return nil, NewError(CodeNotFile, p, s.index)
	}

	// Every check has passed: from here on the command succeeds.
	next := s.index + 1
	block := newEvent(c.action, next)
	block.event.Refresh = c.refresh
	n := existing
	if n != nil {
		block.renderPrevNode(n, p, cmd.Now)
		n.createdIndex, n.modifiedIndex = next, next
	} else {
		parent = s.makeDirs(parent, missing, next)
		n = &node{name: strings.Clone(name), createdIndex: next, modifiedIndex: next}
		parent.attach(n)
	}
	if c.dir {
		n.value, n.children = "", map[string]*node{}
	} else {
		n.value = c.value
	}
	at, hasTTL := cmd.expiration()
	if at < minExpiration {
		hasTTL = false
	}
	s.setExpiry(n, at, hasTTL)
	block.renderNode(n, p, cmd.Now)
	s.commit(&block.event)
	return &block.event, nil
}

// findDir finds the directory at the clean path p without creating
// anything. It returns the deepest existing directory on the way and the
// rest of p still to be created ("" when p exists). A file on the way is
// error 104 with the file's path as cause.
func (s *Store) findDir(p string) (*node, string, *Error) {
	current := s.root
	for start := 1; start < len(p); {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		child := current.children[p[start:end]]
		if child == nil {
			return current, p[start:], nil
		}
		if !child.isDir() {
			return nil, "", NewError(CodeNotDir, p[:end], s.index)
		}
		current = child
		start = end + 1
	}
	return current, "", nil
}

// makeDirs creates the permanent directories named by the segments of
// missing under parent, all at index, and returns the deepest.
func (s *Store) makeDirs(parent *node, missing string, index uint64) *node {
	for missing != "" {
		name, rest, _ := strings.Cut(missing, "/")
		dir := newDir(strings.Clone(name), index)
		parent.attach(dir)
		parent, missing = dir, rest
	}
	return parent
}

// update changes the value and TTL of an existing node (spec §6.7). On a
// directory it changes the TTL only, the documented etcd 2.3 behaviour: the
// event reports the new index as modifiedIndex, the directory keeps its own.
func (s *Store) update(p string, cmd Command) (*Event, *Error) {
	if p == "/" {
		return nil, s.rootReadOnly()
	}
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.isDir() && cmd.Value != "" {
		return nil, NewError(CodeNotFile, p, s.index)
	}
	next := s.index + 1
	block := newEvent(ActionUpdate, next)
	block.event.Refresh = cmd.Refresh
	block.renderPrevNode(n, p, cmd.Now)
	if !n.isDir() {
		if !cmd.Refresh {
			n.value = cmd.Value
		}
		n.modifiedIndex = next
	}
	at, hasTTL := cmd.expiration()
	s.setExpiry(n, at, hasTTL)
	block.renderNode(n, p, cmd.Now)
	block.node.ModifiedIndex = next
	s.commit(&block.event)
	return &block.event, nil
}

// compareAndSwap updates a file if its value and index match (spec §6.8).
func (s *Store) compareAndSwap(p string, cmd Command) (*Event, *Error) {
	if p == "/" {
		return nil, s.rootReadOnly()
	}
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, NewError(CodeNotFile, p, s.index)
	}
	if err := s.compare(n, cmd); err != nil {
		return nil, err
	}
	next := s.index + 1
	block := newEvent(ActionCompareAndSwap, next)
	block.event.Refresh = cmd.Refresh
	block.renderPrevNode(n, p, cmd.Now)
	if !cmd.Refresh {
		n.value = cmd.Value
	}
	n.modifiedIndex = next
	at, hasTTL := cmd.expiration()
	s.setExpiry(n, at, hasTTL)
	block.renderNode(n, p, cmd.Now)
	s.commit(&block.event)
	return &block.event, nil
}

// compare checks cmd's PrevValue and PrevIndex against the file n; a
// mismatch is error 101 with etcd's bracketed cause (spec §5).
func (s *Store) compare(n *node, cmd Command) *Error {
	valueOK := cmd.PrevValue == "" || cmd.PrevValue == n.value
	indexOK := cmd.PrevIndex == 0 || cmd.PrevIndex == n.modifiedIndex
	var cause string
	switch {
	case valueOK && indexOK:
		return nil
	case indexOK:
		cause = fmt.Sprintf("[%s != %s]", cmd.PrevValue, n.value)
	case valueOK:
		cause = fmt.Sprintf("[%d != %d]", cmd.PrevIndex, n.modifiedIndex)
	default:
		cause = fmt.Sprintf("[%s != %s] [%d != %d]", cmd.PrevValue, n.value, cmd.PrevIndex, n.modifiedIndex)
	}
	return NewError(CodeCompareFailed, cause, s.index)
}

// delete removes a file, or a directory if allowed (spec §6.9).
func (s *Store) delete(p string, cmd Command) (*Event, *Error) {
	if p == "/" {
		return nil, s.rootReadOnly()
	}
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		if !cmd.Dir && !cmd.Recursive {
			return nil, NewError(CodeNotFile, p, s.index)
		}
		if len(n.children) > 0 && !cmd.Recursive {
			return nil, NewError(CodeDirNotEmpty, p, s.index)
		}
	}
	return s.remove(n, p, ActionDelete, cmd.Now), nil
}

// compareAndDelete removes a file if its value and index match (spec
// §6.10). Unlike the other writes it has no root check: the root is a
// directory, error 102 with an empty cause.
func (s *Store) compareAndDelete(p string, cmd Command) (*Event, *Error) {
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, NewError(CodeNotFile, keyOf(p), s.index)
	}
	if err := s.compare(n, cmd); err != nil {
		return nil, err
	}
	return s.remove(n, p, ActionCompareAndDelete, cmd.Now), nil
}

// expire removes every node due at now, earliest first, each with its own
// index and expire event (spec §9).
func (s *Store) expire(now time.Time) []*Event {
	var events []*Event
	for {
		n := s.expiries.top()
		if n == nil || time.Unix(0, n.expiry.at).After(now) {
			return events
		}
		events = append(events, s.remove(n, n.path(), ActionExpire, now))
	}
}

// remove takes the node n at path p and its subtree out of the tree as one
// event with the given action, and returns that event. Watchers registered
// at any removed path receive it (spec §8.4).
func (s *Store) remove(n *node, p, action string, now time.Time) *Event {
	next := s.index + 1
	block := newEvent(action, next)
	block.node = Node{Key: p, Dir: n.isDir(), ModifiedIndex: next, CreatedIndex: n.createdIndex}
	block.event.Node = &block.node
	block.renderPrevNode(n, p, now)
	e := &block.event
	notify := s.hub.len() > 0
	if !notify && s.expiries.len() == 0 {
		// Nothing in the subtree needs a visit: no TTL to drop, no watcher.
		n.detach()
		s.commit(e)
		return e
	}
	var walk func(n *node, p string)
	walk = func(n *node, p string) {
		for _, child := range n.children {
			childP := ""
			if notify {
				childP = childPath(p, child.name)
			}
			walk(child, childP)
		}
		s.setExpiry(n, 0, false)
		if notify {
			s.hub.notifyRemoved(e, p)
		}
	}
	walk(n, p)
	n.detach()
	s.commit(e)
	return e
}

// setExpiry gives n the expiration at, or makes it permanent, keeping the
// expiry heap in step.
func (s *Store) setExpiry(n *node, at int64, hasTTL bool) {
	switch {
	case hasTTL && n.expiry == nil:
		n.expiry = &expiry{at: at}
		s.expiries.push(n)
	case hasTTL:
		n.expiry.at = at
		s.expiries.fix(n.expiry.heapIndex)
	case n.expiry != nil:
		s.expiries.remove(n)
		n.expiry = nil
	}
}

// commit makes e the newest event: it advances the index, records e in the
// history and wakes the watchers, unless e is a refresh.
func (s *Store) commit(e *Event) {
	if e.Index() != s.index+1 {
		panic(fmt.Sprintf("kvstore: raft entry %d: event index %d after %d", s.raftIndex, e.Index(), s.index))
	}
	s.index = e.Index()
	s.history.add(e)
	if !e.Refresh {
		s.hub.notify(e)
	}
}

// rootReadOnly is error 107, for writes to the root.
func (s *Store) rootReadOnly() *Error {
	return NewError(CodeRootReadOnly, "/", s.index)
}
