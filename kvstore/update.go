package kvstore

import "fmt"

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
