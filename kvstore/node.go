package kvstore

import (
	"strings"
	"time"
)

// node is one file or directory of the key space. A node does not store its
// full path (that would dominate the memory of a large store); the path is
// known to whoever reached the node, or rebuilt by path().
type node struct {
	// name is the node's last path segment.
	// Invariant: "" for the root only; otherwise non-empty and without '/'.
	name string
	// parent is the directory holding the node.
	// Invariant: nil for the root only; parent.children().get(name) == this node.
	parent *node
	// createdIndex is the index at which the node was created.
	// Invariant: createdIndex <= modifiedIndex <= the store's index.
	createdIndex uint64
	// modifiedIndex is the index of the node's last change.
	// Invariant: createdIndex <= modifiedIndex <= the store's index.
	modifiedIndex uint64
	// value is a file's value. Invariant: "" for directories.
	value string
	// extra holds what only some nodes have: a directory's children, a
	// TTL. A permanent file, which most nodes of a big store are, then
	// takes 64 bytes rather than 80 (Go's size classes).
	// Invariant: nil only for a permanent file; non-nil for a directory.
	extra *nodeExtra
}

// nodeExtra is the part of a node that only directories and nodes with a
// TTL have.
type nodeExtra struct {
	// children holds a directory's children in name order.
	// Invariant: non-nil if and only if the node is a directory.
	children *childList
	// descendants counts the nodes below the node (so that the store knows
	// its size without a walk). Invariant: 0 for a file; for a directory,
	// the sum over its children of 1 + their descendants.
	descendants int
	// expiry is the node's TTL state.
	// Invariant: nil if and only if the node is permanent; when non-nil the
	// node is in the store's expiry heap at expiry.heapIndex.
	expiry *expiry
}

// expiry is the TTL state of a node that has one.
type expiry struct {
	// at is the expiration instant in Unix nanoseconds.
	at int64
	// heapIndex is the node's position in the expiry heap.
	// Invariant: heap.nodes[heapIndex].expiry() == this expiry.
	heapIndex int
}

// newDir returns a detached, empty directory node created at index.
func newDir(name string, index uint64) *node {
	n := &node{name: name, createdIndex: index, modifiedIndex: index}
	n.makeDir()
	return n
}

// makeDir turns n, a file without children, into an empty directory.
func (n *node) makeDir() {
	if n.extra == nil {
		n.extra = &nodeExtra{}
	}
	n.extra.children = &childList{}
}

// children returns a directory's children; nil for a file.
func (n *node) children() *childList {
	if n.extra == nil {
		return nil
	}
	return n.extra.children
}

// descendants returns the number of nodes below n.
func (n *node) descendants() int {
	if n.extra == nil {
		return 0
	}
	return n.extra.descendants
}

// expiry returns n's TTL state, nil when n is permanent.
func (n *node) expiry() *expiry {
	if n.extra == nil {
		return nil
	}
	return n.extra.expiry
}

// setExpiryState gives n a TTL state, or none (nil), dropping the extra
// part of a permanent file. The expiry heap is the caller's to keep.
func (n *node) setExpiryState(e *expiry) {
	switch {
	case e != nil && n.extra == nil:
		n.extra = &nodeExtra{expiry: e}
	case e != nil:
		n.extra.expiry = e
	case n.extra != nil && n.extra.children == nil:
		n.extra = nil
	case n.extra != nil:
		n.extra.expiry = nil
	}
}

// isDir reports whether n is a directory.
func (n *node) isDir() bool {
	return n.children() != nil
}

// isHidden reports whether n's own name starts with '_' (spec §7.3).
func (n *node) isHidden() bool {
	return strings.HasPrefix(n.name, "_")
}

// path rebuilds n's full path by walking up to the root. Used where the
// path is not already known: expiry, tie-breaking in the expiry heap.
func (n *node) path() string {
	if n.parent == nil {
		return "/"
	}
	size := 0
	for m := n; m.parent != nil; m = m.parent {
		size += 1 + len(m.name)
	}
	buf := make([]byte, size)
	end := size
	for m := n; m.parent != nil; m = m.parent {
		end -= len(m.name)
		copy(buf[end:], m.name)
		end--
		buf[end] = '/'
	}
	return string(buf)
}

// attach makes child a child of dir.
func (dir *node) attach(child *node) {
	if !dir.isDir() || child.parent != nil {
		panic("kvstore: attach to a non-directory or of an attached node")
	}
	child.parent = dir
	dir.children().insert(child) // panics over an existing child
	for d := dir; d != nil; d = d.parent {
		d.extra.descendants += 1 + child.descendants()
	}
}

// detach removes n from its parent directory.
func (n *node) detach() {
	if n.parent == nil || n.parent.children().get(n.name) != n {
		panic("kvstore: detach of a node that is not attached")
	}
	for d := n.parent; d != nil; d = d.parent {
		d.extra.descendants -= 1 + n.descendants()
	}
	n.parent.children().remove(n.name)
	n.parent = nil
}

// childPath joins a directory path and a child name.
func childPath(dirPath, name string) string {
	if dirPath == "/" {
		return "/" + name
	}
	return dirPath + "/" + name
}

// keyOf turns an internal path into the key etcd shows: the root's key is
// the empty string (spec §2).
func keyOf(p string) string {
	if p == "/" {
		return ""
	}
	return p
}

// render returns n as etcd shows it at path p, without children: the form
// of prevNode and of the nodes of write events.
func (n *node) render(p string, now time.Time) *Node {
	block := &renderedNode{}
	return n.renderInto(&block.node, &block.value, p, now)
}

// renderedNode is a Node together with the storage its Value points to,
// so that rendering a file costs one allocation instead of two.
type renderedNode struct {
	node  Node
	value string
}

// renderInto renders n at path p into out, keeping a file's value in
// *valueSlot (which must outlive out), and returns out.
func (n *node) renderInto(out *Node, valueSlot *string, p string, now time.Time) *Node {
	*out = Node{
		Key:           keyOf(p),
		ModifiedIndex: n.modifiedIndex,
		CreatedIndex:  n.createdIndex,
	}
	if n.isDir() {
		out.Dir = true
	} else {
		*valueSlot = n.value
		out.Value = valueSlot
	}
	out.Expiration, out.TTL = n.expirationAndTTL(now)
	return out
}

// expirationAndTTL returns what etcd reports for n's TTL at time now: the
// expiration in UTC and the seconds left, rounded up (spec §4.2); nil and 0
// for a permanent node.
func (n *node) expirationAndTTL(now time.Time) (*time.Time, int64) {
	if n.expiry() == nil {
		return nil, 0
	}
	return expirationAndTTL(n.expiry().at, now)
}

// expirationAndTTL is node.expirationAndTTL for a bare expiration instant.
func expirationAndTTL(at int64, now time.Time) (*time.Time, int64) {
	expiration := time.Unix(0, at).UTC()
	left := expiration.Sub(now)
	ttl := left / time.Second
	if left%time.Second > 0 {
		ttl++
	}
	return &expiration, int64(ttl)
}
