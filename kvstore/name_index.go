package kvstore

import "hash/maphash"

// nameIndex finds a big directory's children by name: an open-addressing
// hash table of pointers to them, a slot of 8 bytes per power of two kept
// at most 3/4 full (some 14 bytes a child on average, where a Go map of
// names spends over 50). A lookup hashes the name and reads the node of a
// slot or two: a few cache misses where a binary search among a million
// names takes some twenty.
type nameIndex struct {
	// slots hold the children, each in the first free slot at or after
	// the one its name hashes to (linear probing); nil is free. Invariant:
	// len(slots) is a power of two; between a child's home slot and its
	// slot no slot is free.
	slots []*node
	count int
}

// indexSeed seeds the names' hashes. It is random per process, so that
// names chosen to collide cannot make a directory slow; no result depends
// on it, only where in the table a child sits.
var indexSeed = maphash.MakeSeed()

func newNameIndex(size int) *nameIndex {
	n := 8
	for 3*n < 4*size {
		n *= 2
	}
	return &nameIndex{slots: make([]*node, n)}
}

func (x *nameIndex) home(name string) int {
	return int(maphash.String(indexSeed, name) & uint64(len(x.slots)-1))
}

// get returns the child called name, or nil.
func (x *nameIndex) get(name string) *node {
	mask := len(x.slots) - 1
	for i := x.home(name); ; i = (i + 1) & mask {
		if n := x.slots[i]; n == nil || n.name == name {
			return n
		}
	}
}

// add puts n in, whose name no child in x has.
func (x *nameIndex) add(n *node) {
	if 4*(x.count+1) > 3*len(x.slots) {
		x.resize(2 * len(x.slots))
	}
	x.place(n)
	x.count++
}

func (x *nameIndex) place(n *node) {
	mask := len(x.slots) - 1
	i := x.home(n.name)
	for x.slots[i] != nil {
		i = (i + 1) & mask
	}
	x.slots[i] = n
}

// remove takes out the child called name, if x holds it.
func (x *nameIndex) remove(name string) {
	mask := len(x.slots) - 1
	i := x.home(name)
	for {
		n := x.slots[i]
		if n == nil {
			return
		}
		if n.name == name {
			break
		}
		i = (i + 1) & mask
	}
	x.slots[i] = nil
	x.count--
	// Close the gap: a child further on whose home is not between the gap
	// and its slot would no longer be found past the free slot; move it
	// into the gap, which moves the gap to its old slot.
	for j := (i + 1) & mask; x.slots[j] != nil; j = (j + 1) & mask {
		if h := x.home(x.slots[j].name); (j-h)&mask >= (j-i)&mask {
			x.slots[i], x.slots[j] = x.slots[j], nil
			i = j
		}
	}
	if len(x.slots) > 8 && 8*x.count < len(x.slots) {
		x.resize(len(x.slots) / 2)
	}
}

func (x *nameIndex) resize(n int) {
	old := x.slots
	x.slots = make([]*node, n)
	for _, child := range old {
		if child != nil {
			x.place(child)
		}
	}
}
