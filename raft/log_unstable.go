package raft

import "fmt"

// unstable holds what raft has accepted but the application has not yet
// made durable: at most one incoming snapshot and the entries after it (or
// after the durable log).
type unstable struct {
	// snapshot is a snapshot received from a leader and not yet persisted.
	snapshot *Snapshot
	// entries are not yet durable; entries[i].Index == offset + i.
	// Invariant: if snapshot != nil, offset == snapshot.Metadata.Index + 1.
	entries []Entry
	offset  uint64
}

// maybeFirstIndex returns the first index of the log if the unstable part
// decides it (it does only when it holds a snapshot).
func (u *unstable) maybeFirstIndex() (uint64, bool) {
	if u.snapshot != nil {
		return u.snapshot.Metadata.Index + 1, true
	}
	return 0, false
}

// maybeLastIndex returns the last index if the unstable part holds it.
func (u *unstable) maybeLastIndex() (uint64, bool) {
	if l := len(u.entries); l != 0 {
		return u.offset + uint64(l) - 1, true
	}
	if u.snapshot != nil {
		return u.snapshot.Metadata.Index, true
	}
	return 0, false
}

// maybeTerm returns the term of entry i if the unstable part holds it.
func (u *unstable) maybeTerm(i uint64) (uint64, bool) {
	if i < u.offset {
		if u.snapshot != nil && u.snapshot.Metadata.Index == i {
			return u.snapshot.Metadata.Term, true
		}
		return 0, false
	}
	last, ok := u.maybeLastIndex()
	if !ok || i > last {
		return 0, false
	}
	return u.entries[i-u.offset].Term, true
}

// stableTo marks the entries up to index i (of term t) durable. Entries that
// were replaced since they were handed out (a different term at i) stay.
func (u *unstable) stableTo(i, t uint64) {
	gt, ok := u.maybeTerm(i)
	if !ok || gt != t || i < u.offset {
		return
	}
	n := int(i + 1 - u.offset)
	// Later appends go after the end of the backing array's used part,
	// never over entries handed out earlier (which messages in flight may
	// still reference).
	u.entries = u.entries[n:]
	u.offset = i + 1
}

// stableSnapTo marks the snapshot at index i durable.
func (u *unstable) stableSnapTo(i uint64) {
	if u.snapshot != nil && u.snapshot.Metadata.Index == i {
		u.snapshot = nil
	}
}

// restore replaces everything with snapshot s.
func (u *unstable) restore(s Snapshot) {
	u.offset = s.Metadata.Index + 1
	u.entries = nil
	u.snapshot = &s
}

// truncateAndAppend adds ents, replacing any unstable entries from
// ents[0].Index on.
func (u *unstable) truncateAndAppend(ents []Entry) {
	from := ents[0].Index
	switch {
	case from == u.offset+uint64(len(u.entries)):
		u.entries = append(u.entries, ents...)
	case from <= u.offset:
		// Everything unstable is replaced; the durable log is truncated too,
		// which the application sees as entries that overwrite it.
		u.offset = from
		u.entries = append([]Entry(nil), ents...)
	default:
		// Keep the prefix before from; copy it so that a slice handed out
		// earlier (in a Ready) is not overwritten.
		u.entries = append([]Entry(nil), u.slice(u.offset, from)...)
		u.entries = append(u.entries, ents...)
	}
}

func (u *unstable) slice(lo, hi uint64) []Entry {
	u.mustCheckOutOfBounds(lo, hi)
	return u.entries[lo-u.offset : hi-u.offset]
}

func (u *unstable) mustCheckOutOfBounds(lo, hi uint64) {
	if lo > hi {
		panic(fmt.Sprintf("raft: invalid unstable.slice %d > %d", lo, hi))
	}
	upper := u.offset + uint64(len(u.entries))
	if lo < u.offset || hi > upper {
		panic(fmt.Sprintf("raft: unstable.slice[%d,%d) out of bound [%d,%d)", lo, hi, u.offset, upper))
	}
}
