package kvstore

import (
	"iter"
	"slices"
	"strings"
)

// childList is a directory's children in name order: sorted runs
// ("chunks") of at most childChunkMax nodes, one after the other. It takes
// the place of a map from name to node, for two reasons:
//   - memory: a pointer per child (plus slack), where a Go map spends a
//     name header, a pointer and its own slack, some 50 bytes per child of
//     a big directory;
//   - order: listings and snapshots walk the children sorted, with no
//     sort and no copy of a million entries at a time.
//
// A lookup is a binary search over the chunks' first names, then one in a
// chunk; an insert or removal moves at most a chunk's worth of pointers,
// plus the chunk headers when a chunk splits or empties. A directory of
// more than a chunk's worth of children also keeps an index from name to
// child: a set of an existing key (the common write) then finds it with a
// hash instead of some twenty string comparisons, each a cache miss in a
// big directory.
type childList struct {
	// chunks hold the children.
	// Invariant: every chunk is non-empty, sorted by name, at most
	// childChunkMax long, and its names all sort before the next chunk's.
	chunks [][]*node
	// firsts are the chunks' first names, side by side, so that the
	// search for the chunk reads one string per step rather than a chunk
	// header, a node and then its name: in a directory of many children
	// each of those is a cache miss. A name's bytes are shared with its
	// node. Invariant: len(firsts) == len(chunks) and firsts[i] ==
	// chunks[i][0].name.
	firsts []string
	// count is the number of children. Invariant: the sum of the chunks'
	// lengths.
	count int
	// index finds the children by name while the list holds more than
	// indexFrom of them; nil otherwise (it is dropped below indexFrom/2,
	// so that a directory around the threshold does not rebuild it again
	// and again). Invariant: nil, or holds exactly the children.
	index *nameIndex
}

// indexFrom is the number of children above which a list keeps an index.
const indexFrom = childChunkMax

// childChunkMax bounds a chunk: small enough that inserting into one is a
// short copy, large enough that the chunk headers are a small part of the
// whole.
const childChunkMax = 128

// len returns the number of children; 0 for a nil list (a file).
func (c *childList) len() int {
	if c == nil {
		return 0
	}
	return c.count
}

// find returns the chunk that holds name or would hold it, and name's
// position in it (and whether it is there).
func (c *childList) find(name string) (chunk, at int, found bool) {
	// The last chunk whose first name is <= name.
	chunk = sortSearch(len(c.firsts), func(i int) bool { return c.firsts[i] > name }) - 1
	if chunk < 0 {
		return 0, 0, false
	}
	at, found = slices.BinarySearchFunc(c.chunks[chunk], name, func(n *node, name string) int {
		return strings.Compare(n.name, name)
	})
	return chunk, at, found
}

// sortSearch is sort.Search: the smallest i in [0, n) for which f(i) is
// true, or n.
func sortSearch(n int, f func(int) bool) int {
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if !f(mid) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// get returns the child called name, or nil.
func (c *childList) get(name string) *node {
	if c == nil || c.count == 0 {
		return nil
	}
	if c.index != nil {
		return c.index.get(name)
	}
	chunk, at, found := c.find(name)
	if !found {
		return nil
	}
	return c.chunks[chunk][at]
}

// insert adds n, whose name no child has yet.
func (c *childList) insert(n *node) {
	if len(c.chunks) == 0 {
		c.chunks, c.firsts = [][]*node{{n}}, []string{n.name}
		c.count = 1
		return
	}
	chunk, at, found := c.find(n.name)
	if found {
		panic("kvstore: insert of a child name already present")
	}
	c.chunks[chunk] = slices.Insert(c.chunks[chunk], at, n)
	if at == 0 {
		c.firsts[chunk] = n.name
	}
	c.count++
	switch {
	case c.index != nil:
		c.index.add(n)
	case c.count > indexFrom:
		c.index = newNameIndex(c.count)
		for child := range c.all() {
			c.index.add(child)
		}
	}
	if full := c.chunks[chunk]; len(full) > childChunkMax {
		// Split in two. Names mostly arrive in order (keys with counters,
		// in-order keys), so when the new name went last the first part
		// stays full and the second starts small: chunks then end up full
		// rather than half-full.
		cut := len(full) / 2
		if at == len(full)-1 {
			cut = len(full) - 1
		}
		// Both parts are copied into arrays of their own size: the one
		// Insert grew for the 129th pointer is twice as large.
		first, second := slices.Clone(full[:cut]), slices.Clone(full[cut:])
		c.chunks[chunk] = first
		c.chunks = slices.Insert(c.chunks, chunk+1, second)
		c.firsts = slices.Insert(c.firsts, chunk+1, second[0].name)
	}
}

// remove takes out the child called name and reports whether there was
// one.
func (c *childList) remove(name string) bool {
	if c.count == 0 {
		return false
	}
	chunk, at, found := c.find(name)
	if !found {
		return false
	}
	c.chunks[chunk] = slices.Delete(c.chunks[chunk], at, at+1)
	c.count--
	if c.index != nil {
		c.index.remove(name)
		if c.count < indexFrom/2 {
			c.index = nil
		}
	}
	if len(c.chunks[chunk]) == 0 {
		c.chunks = slices.Delete(c.chunks, chunk, chunk+1)
		c.firsts = slices.Delete(c.firsts, chunk, chunk+1)
		return true
	}
	if at == 0 {
		c.firsts[chunk] = c.chunks[chunk][0].name
	}
	if len(c.chunks[chunk]) < cap(c.chunks[chunk])/4 {
		// Give back what a shrunken chunk no longer uses.
		c.chunks[chunk] = slices.Clone(c.chunks[chunk])
	}
	return true
}

// all yields the children in name order. The list must not change during
// the iteration.
func (c *childList) all() iter.Seq[*node] {
	return func(yield func(*node) bool) {
		if c == nil {
			return
		}
		for _, chunk := range c.chunks {
			for _, n := range chunk {
				if !yield(n) {
					return
				}
			}
		}
	}
}
