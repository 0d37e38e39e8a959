package kvstore

// expiryHeap is a min-heap of the nodes that have a TTL, earliest expiration
// first. Ties are broken by path so that the order is total: every member,
// and a member restored from a snapshot, expires nodes in the same order
// whatever the heap's internal layout.
type expiryHeap struct {
	// nodes is the heap array.
	// Invariant: nodes[i].expiry.heapIndex == i, and no node sorts before
	// its parent position (i-1)/2.
	nodes []*node
}

// len returns the number of nodes with a TTL.
func (h *expiryHeap) len() int {
	return len(h.nodes)
}

// top returns the node that expires first, or nil.
func (h *expiryHeap) top() *node {
	if len(h.nodes) == 0 {
		return nil
	}
	return h.nodes[0]
}

// push adds n, whose expiry must be set and not yet in the heap.
func (h *expiryHeap) push(n *node) {
	n.expiry().heapIndex = len(h.nodes)
	h.nodes = append(h.nodes, n)
	h.up(n.expiry().heapIndex)
}

// remove takes n out of the heap.
func (h *expiryHeap) remove(n *node) {
	i := n.expiry().heapIndex
	if i >= len(h.nodes) || h.nodes[i] != n {
		panic("kvstore: expiry heap does not hold the node it is asked to remove")
	}
	last := len(h.nodes) - 1
	if i != last {
		h.swap(i, last)
	}
	h.nodes[last] = nil
	h.nodes = h.nodes[:last]
	if i != last {
		h.fix(i)
	}
}

// fix restores the heap order after the expiration of nodes[i] changed.
func (h *expiryHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// less orders nodes by expiration, then by path.
func (h *expiryHeap) less(i, j int) bool {
	a, b := h.nodes[i], h.nodes[j]
	if a.expiry().at != b.expiry().at {
		return a.expiry().at < b.expiry().at
	}
	return a.path() < b.path()
}

func (h *expiryHeap) swap(i, j int) {
	h.nodes[i], h.nodes[j] = h.nodes[j], h.nodes[i]
	h.nodes[i].expiry().heapIndex = i
	h.nodes[j].expiry().heapIndex = j
}

func (h *expiryHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down sifts nodes[i] down and reports whether it moved.
func (h *expiryHeap) down(i int) bool {
	start := i
	for {
		smallest := i
		left, right := 2*i+1, 2*i+2
		if left < len(h.nodes) && h.less(left, smallest) {
			smallest = left
		}
		if right < len(h.nodes) && h.less(right, smallest) {
			smallest = right
		}
		if smallest == i {
			return i != start
		}
		h.swap(i, smallest)
		i = smallest
	}
}
