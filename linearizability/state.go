package linearizability

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"
)

// maxIndex is the upper end of an index nothing bounds yet.
const maxIndex = math.MaxUint64

// span is what the model knows of an etcd index: lo <= index <= hi.
// Invariant: 1 <= lo <= hi.
type span struct{ lo, hi uint64 }

func exactly(i uint64) span { return span{i, i} }

func (s span) known() bool       { return s.lo == s.hi }
func (s span) has(i uint64) bool { return s.lo <= i && i <= s.hi }

// bounded returns s with its upper end at most hi.
func (s span) bounded(hi uint64) span {
	if hi < s.hi {
		s.hi = hi
	}
	return s
}

func (s span) String() string {
	switch {
	case s.known():
		return strconv.FormatUint(s.lo, 10)
	case s.hi == maxIndex:
		return strconv.FormatUint(s.lo, 10) + ".."
	}
	return strconv.FormatUint(s.lo, 10) + ".." + strconv.FormatUint(s.hi, 10)
}

// mnode is one node of the model's key space.
type mnode struct {
	// path is the node's clean path. For a pending node it is the path of
	// its directory instead: a pending node is an in-order create whose
	// outcome was unknown, so its name (its index) is not known.
	path    string
	pending bool
	// dir is true for directories; value is a file's value.
	dir   bool
	value string
	// index is the node's modifiedIndex (for a pending node also its
	// name). Directories keep the index they were made at.
	index span
	// ttl says the node has a TTL, and vanishAt is the earliest time, in
	// the recorder's clock, at which an expiry could have removed it.
	ttl      bool
	vanishAt int64
}

// parent returns the path of the directory that holds n.
func (n *mnode) parent() string {
	if n.pending {
		return n.path
	}
	dir, _ := splitKey(n.path)
	return dir
}

// canMaterialize reports whether the pending node n can be the node at p,
// a direct child of its directory.
func (n *mnode) canMaterialize(p string) bool {
	dir, name := splitKey(p)
	if dir != n.path || len(name) != 20 {
		return false
	}
	i, err := strconv.ParseUint(name, 10, 64)
	return err == nil && n.index.has(i)
}

// inOrderName is the name an in-order create at index i gives its node:
// the index, zero-padded to 20 digits (spec §6.6).
func inOrderName(i uint64) string {
	return fmt.Sprintf("%020d", i)
}

// tree is one state of the model: a part of the key space (one top-level
// subtree, or all of it) and a lower bound of the etcd index. Trees are
// immutable once sealed; the step function works on clones.
type tree struct {
	// nodes are the concrete nodes, sorted by path. The root directory is
	// implicit and always exists.
	nodes []mnode
	// pending are the in-order creates that may have happened, whose name
	// nobody has seen yet, sorted by their encoding.
	pending []mnode
	// floor is a lower bound of the etcd index: every index observed so far
	// along this linearization is at most floor.
	floor uint64
	// key is the canonical encoding and sum its hash, set by seal: equal
	// keys, equal trees.
	key string
	sum uint64
}

func (t *tree) clone() *tree {
	return &tree{
		nodes:   append([]mnode(nil), t.nodes...),
		pending: append([]mnode(nil), t.pending...),
		floor:   t.floor,
	}
}

// find returns the position of the concrete node at p, or -1.
func (t *tree) find(p string) int {
	i := sort.Search(len(t.nodes), func(i int) bool { return t.nodes[i].path >= p })
	if i < len(t.nodes) && t.nodes[i].path == p {
		return i
	}
	return -1
}

// get returns the concrete node at p, or nil. The pointer is valid until
// the tree changes.
func (t *tree) get(p string) *mnode {
	if i := t.find(p); i >= 0 {
		return &t.nodes[i]
	}
	return nil
}

// put adds the concrete node n, replacing any node at its path.
func (t *tree) put(n mnode) {
	if n.pending {
		t.pending = append(t.pending, n)
		return
	}
	i := sort.Search(len(t.nodes), func(i int) bool { return t.nodes[i].path >= n.path })
	if i < len(t.nodes) && t.nodes[i].path == n.path {
		t.nodes[i] = n
		return
	}
	t.nodes = append(t.nodes, mnode{})
	copy(t.nodes[i+1:], t.nodes[i:])
	t.nodes[i] = n
}

// remove takes the node at p and everything below it out of the tree,
// pending nodes included.
func (t *tree) remove(p string) {
	nodes := t.nodes[:0]
	for _, n := range t.nodes {
		if !under(n.path, p) {
			nodes = append(nodes, n)
		}
	}
	t.nodes = nodes
	pending := t.pending[:0]
	for _, n := range t.pending {
		if !under(n.path, p) {
			pending = append(pending, n)
		}
	}
	t.pending = pending
}

// removePending takes out the i-th pending node.
func (t *tree) removePending(i int) {
	t.pending = append(t.pending[:i], t.pending[i+1:]...)
}

// hasChildren reports whether the directory at p holds any node, hidden
// and pending ones included.
func (t *tree) hasChildren(p string) bool {
	for i := range t.nodes {
		if t.nodes[i].parent() == p {
			return true
		}
	}
	for i := range t.pending {
		if t.pending[i].path == p {
			return true
		}
	}
	return false
}

// bound records that the etcd index is at most hi wherever this tree is:
// every index not exactly known is at most hi. It reports false if that
// contradicts what the tree knows.
func (t *tree) bound(hi uint64) bool {
	for _, list := range [][]mnode{t.nodes, t.pending} {
		for i := range list {
			if list[i].index.known() {
				if list[i].index.lo > hi {
					return false
				}
				continue
			}
			list[i].index = list[i].index.bounded(hi)
			if list[i].index.lo > list[i].index.hi {
				return false
			}
		}
	}
	return true
}

// seal sorts the pending nodes and computes the canonical key.
func (t *tree) seal() *tree {
	enc := make([][]byte, len(t.pending))
	for i := range t.pending {
		enc[i] = appendNode(nil, &t.pending[i])
	}
	sort.Sort(byEncoding{t.pending, enc})
	b := binary.AppendUvarint(make([]byte, 0, 64*(len(t.nodes)+len(t.pending))), t.floor)
	for i := range t.nodes {
		b = appendNode(b, &t.nodes[i])
	}
	for _, e := range enc {
		b = append(b, e...)
	}
	t.key = string(b)
	h := fnv.New64a()
	h.Write(b)
	t.sum = h.Sum64()
	return t
}

func appendNode(b []byte, n *mnode) []byte {
	b = binary.AppendUvarint(b, uint64(len(n.path)))
	b = append(b, n.path...)
	b = binary.AppendUvarint(b, uint64(len(n.value)))
	b = append(b, n.value...)
	flags := byte(0)
	if n.pending {
		flags |= 1
	}
	if n.dir {
		flags |= 2
	}
	if n.ttl {
		flags |= 4
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, n.index.lo)
	b = binary.AppendUvarint(b, n.index.hi)
	if n.ttl {
		b = binary.AppendVarint(b, n.vanishAt)
	}
	return b
}

type byEncoding struct {
	nodes []mnode
	enc   [][]byte
}

func (s byEncoding) Len() int           { return len(s.nodes) }
func (s byEncoding) Less(i, j int) bool { return string(s.enc[i]) < string(s.enc[j]) }
func (s byEncoding) Swap(i, j int) {
	s.nodes[i], s.nodes[j] = s.nodes[j], s.nodes[i]
	s.enc[i], s.enc[j] = s.enc[j], s.enc[i]
}

// String describes the tree for the visualisation: the index bound, then
// every node, with pending in-order creates shown as <dir>/?.
func (t *tree) String() string {
	var b strings.Builder
	b.WriteString("index≥")
	b.WriteString(strconv.FormatUint(t.floor, 10))
	describe := func(n *mnode, p string) {
		b.WriteString("  ")
		b.WriteString(p)
		if n.dir {
			b.WriteString("/")
		} else {
			b.WriteString("=")
			b.WriteString(strconv.Quote(n.value))
		}
		b.WriteString("@")
		b.WriteString(n.index.String())
		if n.ttl {
			b.WriteString(" ttl")
		}
	}
	for i := range t.nodes {
		describe(&t.nodes[i], t.nodes[i].path)
	}
	for i := range t.pending {
		describe(&t.pending[i], childKey(t.pending[i].path, "?"))
	}
	return b.String()
}

// under reports whether the clean path q is p or below it.
func under(q, p string) bool {
	if p == "/" {
		return true
	}
	return q == p || (len(q) > len(p) && q[len(p)] == '/' && q[:len(p)] == p)
}

// splitKey splits a clean, non-root path into its directory and its last
// segment.
func splitKey(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

// childKey joins a directory's clean path and a name.
func childKey(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// ancestors returns the clean paths from the top-level node down to p
// itself ("/a", "/a/b", "/a/b/c"); none for the root.
func ancestors(p string) []string {
	if p == "/" {
		return nil
	}
	var out []string
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return append(out, p)
}

// hidden reports whether the node at the clean path p is hidden: its own
// name starts with '_' (spec §7.3).
func hidden(p string) bool {
	_, name := splitKey(p)
	return strings.HasPrefix(name, "_")
}
