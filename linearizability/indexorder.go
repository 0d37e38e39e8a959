package linearizability

import (
	"fmt"
	"math"
	"sort"
)

// The etcd index is one counter for the whole key space, so it orders
// operations on different keys too, which the per-key partitions cannot
// see. checkIndexOrder checks that order directly: in any linearization
// the counter never goes down, so an operation that completed before
// another was called cannot have seen a larger index, and a write's index
// must be larger than every index seen before it was called.
//
// Each operation with a known index gets a position: a write that produced
// index i sits at 2i; a read (or a failure) served at index x sits at 2x+1,
// after the write of x and before the write of x+1. Then an operation that
// returned before another was called must not have a larger position, and
// no two writes may share one. That is exactly the condition for a
// sequence of counter reads and increments to be linearizable, checked
// with one sort and one sweep.

// indexed is an operation with a known position.
type indexed struct {
	op       *Operation
	position uint64
	write    bool
}

// IndexViolation describes two operations whose etcd indexes contradict
// their order in real time.
type IndexViolation struct {
	// Before returned before After was called, or both are writes that
	// claim the same index.
	Before, After Operation
	// Reason says what is wrong, in a sentence.
	Reason string
}

func (v *IndexViolation) String() string {
	return v.Reason
}

// checkIndexOrder returns the first violation in call order, or nil.
func checkIndexOrder(ops []Operation) *IndexViolation {
	var known []indexed
	writers := map[uint64]*Operation{}
	for i := range ops {
		op := &ops[i]
		x := op.Output.Index
		if unknown(op) || x == 0 {
			continue
		}
		write := op.Input.isWrite() && op.Output.Err == 0
		pos := 2*x + 1
		if write {
			pos = 2 * x
			if other, ok := writers[x]; ok {
				return &IndexViolation{Before: *other, After: *op, Reason: fmt.Sprintf(
					"operations %d and %d both produced index %d", other.ID, op.ID, x)}
			}
			writers[x] = op
		}
		known = append(known, indexed{op: op, position: pos, write: write})
	}
	byCall := append([]indexed(nil), known...)
	sort.SliceStable(byCall, func(i, j int) bool { return byCall[i].op.Call < byCall[j].op.Call })
	byReturn := append([]indexed(nil), known...)
	sort.SliceStable(byReturn, func(i, j int) bool { return returned(byReturn[i].op) < returned(byReturn[j].op) })
	var highest *indexed
	next := 0
	for i := range byCall {
		b := &byCall[i]
		for next < len(byReturn) && returned(byReturn[next].op) < b.op.Call {
			if highest == nil || byReturn[next].position > highest.position {
				highest = &byReturn[next]
			}
			next++
		}
		if highest != nil && highest.position > b.position {
			return &IndexViolation{Before: *highest.op, After: *b.op, Reason: fmt.Sprintf(
				"operation %d (%s index %d) returned at %d, before operation %d (%s index %d) was called at %d",
				highest.op.ID, seenOrMade(highest), highest.op.Output.Index, highest.op.Return,
				b.op.ID, seenOrMade(b), b.op.Output.Index, b.op.Call)}
		}
	}
	return nil
}

// returned is when op's client received its answer; never, if Unseen.
func returned(op *Operation) int64 {
	if op.Unseen {
		return math.MaxInt64
	}
	return op.Return
}

func seenOrMade(i *indexed) string {
	if i.write {
		return "made"
	}
	return "saw"
}
