package simulator

import "time"

// eventKind says what an event does when it fires.
type eventKind uint8

const (
	evDeliver       eventKind = iota + 1 // a message reaches its recipient
	evTick                               // a member's clock ticks
	evProcess                            // a member does its pending work
	evClient                             // a client issues its next operation
	evTimeout                            // a client gives up on an operation
	evReturn                             // a member's answer reaches a client
	evFault                              // a fault driver injects or heals a fault
	evHeal                               // the fault phase ends: heal everything
	evEnd                                // the run ends
	evLiveness                           // check whether the healed cluster converged
	evAction                             // a Script's action
	evRecipe                             // a recipe client's next step
	evRecipeTimeout                      // a recipe client gives up on an operation
	evDeferred                           // an answer leaves a member after its disk work
)

func (k eventKind) String() string {
	return [...]string{"?", "deliver", "tick", "process", "client", "timeout", "return", "fault", "heal", "end", "liveness"}[k]
}

// event is one entry of the queue. Events live in a slab and are referred to
// by their slot, so that the heap moves small items only.
type event struct {
	at   time.Duration
	kind eventKind
	// member is the member (index into Simulation.members) the event is
	// for, or the client for client events.
	member int
	// arg is a kind-specific argument: the member's incarnation for ticks
	// and processing, the fault class for faults, the operation for
	// timeouts and returns.
	arg uint64
}

// heapItem orders events by (time, sequence number): two events at the same
// virtual time fire in the order they were scheduled, never in an order that
// depends on anything else.
type heapItem struct {
	at   time.Duration
	seq  uint64
	slot int32
}

func (a heapItem) less(b heapItem) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// eventQueue is a binary min-heap of events.
// Invariant: every slot in heap is in use in slab; free holds the others.
type eventQueue struct {
	heap []heapItem
	slab []event
	free []int32
	seq  uint64
}

func (q *eventQueue) len() int { return len(q.heap) }

// push schedules e.
func (q *eventQueue) push(e event) {
	var slot int32
	if n := len(q.free); n > 0 {
		slot = q.free[n-1]
		q.free = q.free[:n-1]
		q.slab[slot] = e
	} else {
		slot = int32(len(q.slab))
		q.slab = append(q.slab, e)
	}
	q.seq++
	q.heap = append(q.heap, heapItem{at: e.at, seq: q.seq, slot: slot})
	q.up(len(q.heap) - 1)
}

// peekTime returns the time of the next event; the queue must not be empty.
func (q *eventQueue) peekTime() time.Duration { return q.heap[0].at }

// pop removes and returns the earliest event.
func (q *eventQueue) pop() event {
	top := q.heap[0]
	last := len(q.heap) - 1
	q.heap[0] = q.heap[last]
	q.heap = q.heap[:last]
	if last > 0 {
		q.down(0)
	}
	e := q.slab[top.slot]
	q.slab[top.slot] = event{}
	q.free = append(q.free, top.slot)
	return e
}

func (q *eventQueue) up(i int) {
	h := q.heap
	item := h[i]
	for i > 0 {
		parent := (i - 1) / 2
		if !item.less(h[parent]) {
			break
		}
		h[i] = h[parent]
		i = parent
	}
	h[i] = item
}

func (q *eventQueue) down(i int) {
	h := q.heap
	n := len(h)
	item := h[i]
	for {
		child := 2*i + 1
		if child >= n {
			break
		}
		if r := child + 1; r < n && h[r].less(h[child]) {
			child = r
		}
		if !h[child].less(item) {
			break
		}
		h[i] = h[child]
		i = child
	}
	h[i] = item
}
