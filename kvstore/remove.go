package kvstore

import "time"

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
		if n.children().len() > 0 && !cmd.Recursive {
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
		if n == nil || time.Unix(0, n.expiry().at).After(now) {
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
		for child := range n.children().all() {
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
