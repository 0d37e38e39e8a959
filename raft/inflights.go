package raft

// inflights bounds the appends a leader has sent to one follower and not yet
// heard back about: at most maxCount messages and maxBytes bytes of entries.
// Each element is the last index of one message; acknowledgements free them
// in order.
type inflights struct {
	// buffer is a ring of (last index, bytes) pairs; start is the oldest.
	// Invariant: count <= len(buffer) == maxCount, and indexes increase from
	// start around the ring.
	buffer   []inflight
	start    int
	count    int
	bytes    uint64
	maxCount int
	// maxBytes is the byte budget; 0 means unlimited.
	maxBytes uint64
}

type inflight struct {
	index uint64
	bytes uint64
}

func newInflights(maxCount int, maxBytes uint64) *inflights {
	return &inflights{maxCount: maxCount, maxBytes: maxBytes}
}

// add records a message whose last entry is index, carrying bytes bytes.
func (in *inflights) add(index, bytes uint64) {
	if in.full() {
		panic("raft: inflights.add on a full window")
	}
	if in.buffer == nil {
		// Allocated lazily: most followers of an idle cluster never need it.
		in.buffer = make([]inflight, in.maxCount)
	}
	next := (in.start + in.count) % in.maxCount
	in.buffer[next] = inflight{index: index, bytes: bytes}
	in.count++
	in.bytes += bytes
}

// freeLE frees every message whose last index is at most to.
func (in *inflights) freeLE(to uint64) {
	for in.count > 0 && in.buffer[in.start].index <= to {
		in.bytes -= in.buffer[in.start].bytes
		in.buffer[in.start] = inflight{}
		in.start = (in.start + 1) % in.maxCount
		in.count--
	}
	if in.count == 0 {
		in.start = 0
	}
}

// full reports whether no further message may be sent.
func (in *inflights) full() bool {
	return in.count == in.maxCount || (in.maxBytes != 0 && in.bytes >= in.maxBytes)
}

func (in *inflights) reset() {
	in.start, in.count, in.bytes = 0, 0, 0
}
