package kvstore

import (
	"fmt"
	"strings"
)

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
		existing = parent.children().get(name)
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
		n.value = ""
		n.makeDir()
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
		child := current.children().get(p[start:end])
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
