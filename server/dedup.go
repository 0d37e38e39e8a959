package server

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// dedup remembers which proposals have been applied, so that a proposal the
// log holds twice applies once. It is part of the replicated state: every
// member builds the same one from the same log, and snapshots carry it.
//
// Per proposer incarnation it keeps a window: every request ID at or below
// floor counts as applied, and applied holds the IDs above it. Request IDs
// grow over an incarnation, so the window stays small; when it outgrows
// dedupWindow the floor rises (a proposal that old arriving only now is
// dropped: at most once). Only the dedupIncarnations most recently used
// incarnations of a proposer are kept.
type dedup struct {
	// sources is keyed by proposer and incarnation.
	sources map[dedupSource]*dedupWindow
	// lastUse orders sources by the log index that last used them.
	lastUse map[dedupSource]uint64
}

type dedupSource struct{ proposer, incarnation uint64 }

type dedupWindow struct {
	// floor: every ID <= floor counts as applied.
	floor   uint64
	applied map[uint64]struct{}
}

const (
	dedupWindowSize   = 4096
	dedupIncarnations = 4
)

func newDedup() *dedup {
	return &dedup{sources: map[dedupSource]*dedupWindow{}, lastUse: map[dedupSource]uint64{}}
}

// firstTime records proposal (proposer, incarnation, id) applied at index
// and reports whether this is its first application. ID 0 is never
// deduplicated.
func (d *dedup) firstTime(proposer, incarnation, id, index uint64) bool {
	if id == 0 {
		return true
	}
	src := dedupSource{proposer, incarnation}
	w := d.sources[src]
	d.lastUse[src] = index
	if w == nil {
		w = &dedupWindow{applied: map[uint64]struct{}{}}
		d.sources[src] = w
		d.evictOld(src)
	}
	if _, seen := w.applied[id]; seen || id <= w.floor {
		return false
	}
	w.applied[id] = struct{}{}
	// IDs mostly arrive in order: fold the contiguous run above the floor
	// into it, which keeps the set small.
	for {
		if _, ok := w.applied[w.floor+1]; !ok {
			break
		}
		delete(w.applied, w.floor+1)
		w.floor++
	}
	if len(w.applied) > dedupWindowSize {
		ids := w.sortedIDs()
		w.floor = ids[len(ids)-dedupWindowSize/2-1]
		for _, old := range ids[:len(ids)-dedupWindowSize/2] {
			delete(w.applied, old)
		}
	}
	return true
}

// evictOld keeps only the dedupIncarnations most recently used incarnations
// of keep's proposer (ties broken by incarnation, for determinism), keep
// among them: it is the one in use.
func (d *dedup) evictOld(keep dedupSource) {
	var srcs []dedupSource
	for src := range d.sources {
		if src.proposer == keep.proposer && src != keep {
			srcs = append(srcs, src)
		}
	}
	srcs = append(srcs, keep) // the most recent, whatever its index says
	if len(srcs) <= dedupIncarnations {
		return
	}
	slices.SortFunc(srcs[:len(srcs)-1], func(a, b dedupSource) int {
		if d.lastUse[a] != d.lastUse[b] {
			return compareUint(d.lastUse[a], d.lastUse[b])
		}
		return compareUint(a.incarnation, b.incarnation)
	})
	for _, src := range srcs[:len(srcs)-dedupIncarnations] {
		delete(d.sources, src)
		delete(d.lastUse, src)
	}
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (w *dedupWindow) sortedIDs() []uint64 {
	ids := make([]uint64, 0, len(w.applied))
	for id := range w.applied {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (d *dedup) sortedSources() []dedupSource {
	srcs := make([]dedupSource, 0, len(d.sources))
	for src := range d.sources {
		srcs = append(srcs, src)
	}
	slices.SortFunc(srcs, func(a, b dedupSource) int {
		if a.proposer != b.proposer {
			return compareUint(a.proposer, b.proposer)
		}
		return compareUint(a.incarnation, b.incarnation)
	})
	return srcs
}

// appendBinary encodes d deterministically.
func (d *dedup) appendBinary(b []byte) []byte {
	srcs := d.sortedSources()
	b = binary.AppendUvarint(b, uint64(len(srcs)))
	for _, src := range srcs {
		w := d.sources[src]
		b = binary.AppendUvarint(b, src.proposer)
		b = binary.AppendUvarint(b, src.incarnation)
		b = binary.AppendUvarint(b, d.lastUse[src])
		b = binary.AppendUvarint(b, w.floor)
		ids := w.sortedIDs()
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = binary.AppendUvarint(b, id)
		}
	}
	return b
}

// decodeDedup reads what appendBinary wrote and returns the rest of b.
func decodeDedup(b []byte) (*dedup, []byte, error) {
	d := newDedup()
	r := reader{buf: b}
	n := r.count()
	for range n {
		src := dedupSource{proposer: r.uvarint(), incarnation: r.uvarint()}
		lastUse := r.uvarint()
		w := &dedupWindow{floor: r.uvarint(), applied: map[uint64]struct{}{}}
		for range r.count() {
			w.applied[r.uvarint()] = struct{}{}
		}
		d.sources[src], d.lastUse[src] = w, lastUse
	}
	if r.err != nil {
		return nil, nil, fmt.Errorf("decode deduplication table: %w", r.err)
	}
	return d, r.buf, nil
}

// reader decodes uvarints with a sticky error.
type reader struct {
	buf []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.err = errBadSnapshot
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// count reads a list length, at most the bytes left (each element takes at
// least one), so that a corrupt count cannot make us loop for long.
func (r *reader) count() uint64 {
	n := r.uvarint()
	if n > uint64(len(r.buf)) {
		r.err = errBadSnapshot
		return 0
	}
	return n
}

func (r *reader) bytes() []byte {
	n := r.count()
	if r.err != nil {
		return nil
	}
	v := append([]byte(nil), r.buf[:n]...)
	r.buf = r.buf[n:]
	return v
}
