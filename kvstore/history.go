package kvstore

import (
	"fmt"
	"strings"
)

// eventHistory is a ring buffer of the most recent events, for watches that
// start from a past index (spec §8.3). Every modifying event enters it,
// refreshes included.
type eventHistory struct {
	// events is the ring; its length is the capacity (historyCapacity,
	// except in tests that want the ring to wrap sooner).
	events []*Event
	// front is the position of the oldest retained event.
	front int
	// size is the number of retained events. Invariant: 0 <= size <= cap.
	// The retained events have consecutive indexes: the store adds one event
	// per index and no index is skipped.
	size int
}

func newEventHistory(capacity int) *eventHistory {
	return &eventHistory{events: make([]*Event, capacity)}
}

// add appends e, dropping the oldest event when the ring is full.
func (h *eventHistory) add(e *Event) {
	if h.size > 0 && e.Index() != h.lastIndex()+1 {
		panic(fmt.Sprintf("kvstore: history gap: event %d after %d", e.Index(), h.lastIndex()))
	}
	back := (h.front + h.size) % len(h.events)
	h.events[back] = e
	if h.size == len(h.events) {
		h.front = (h.front + 1) % len(h.events)
	} else {
		h.size++
	}
}

// startIndex is the index of the oldest retained event, or 0 when empty.
func (h *eventHistory) startIndex() uint64 {
	if h.size == 0 {
		return 0
	}
	return h.events[h.front].Index()
}

// lastIndex is the index of the newest retained event, or 0 when empty.
func (h *eventHistory) lastIndex() uint64 {
	if h.size == 0 {
		return 0
	}
	return h.at(h.size - 1).Index()
}

// at returns the i-th retained event, oldest first.
func (h *eventHistory) at(i int) *Event {
	return h.events[(h.front+i)%len(h.events)]
}

// scan returns the first retained event at or after index that a watch on
// key would see, or nil. An index older than the oldest retained event is
// error 401; its Index is left for the caller to fill in. The matching rules
// are etcd's (spec §8.3), quirks included: no hidden-key filtering, and a
// deleted or expired directory matches every key it is a string prefix of.
func (h *eventHistory) scan(key string, recursive bool, index uint64) (*Event, *Error) {
	start := h.startIndex()
	if index < start {
		return nil, NewError(CodeEventIndexCleared,
			fmt.Sprintf("the requested history has been cleared [%d/%d]", start, index), 0)
	}
	if index > h.lastIndex() {
		return nil, nil
	}
	dirPrefix := key
	if !strings.HasSuffix(dirPrefix, "/") {
		dirPrefix += "/"
	}
	for i := int(index - start); i < h.size; i++ {
		e := h.at(i)
		if e.Refresh {
			continue
		}
		match := e.Node.Key == key
		if recursive {
			match = match || strings.HasPrefix(e.Node.Key, dirPrefix)
		}
		if (e.Action == ActionDelete || e.Action == ActionExpire) && e.PrevNode != nil && e.PrevNode.Dir {
			match = match || strings.HasPrefix(key, e.PrevNode.Key)
		}
		if match {
			return e, nil
		}
	}
	return nil, nil
}
