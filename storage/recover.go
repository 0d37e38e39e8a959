package storage

import (
	"errors"
	"fmt"

	"github.com/raftkv/raftkv/raft"
)

// ErrCorrupt is wrapped by the errors for damaged WAL segments and snapshot
// files. A *CorruptError says where.
var ErrCorrupt = errors.New("storage: corrupt data")

// CorruptError reports a WAL record that cannot be trusted, found before the
// tail of the log: recovery stops rather than guess.
type CorruptError struct {
	// Segment is the segment's file name.
	Segment string
	// Offset is the byte offset of the record in the segment.
	Offset int64
	// Reason says what is wrong.
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: segment %s: corrupt record at offset %d: %s", e.Segment, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Recovered is what Open read back from the WAL.
type Recovered struct {
	// HardState is the last hard state written (zero if none).
	HardState raft.HardState
	// Snapshot is the last snapshot marker written (zero if none): the
	// snapshot the member must restore (Snapshotter.Load) before the
	// entries.
	Snapshot raft.SnapshotMetadata
	// Entries is the log after Snapshot.Index: every entry written, later
	// writes of an index replacing earlier ones and everything after them.
	// Invariant: Entries[i].Index == Snapshot.Index+1+i.
	Entries []raft.Entry
	// TornTail, if not nil, describes the incomplete write found at the end
	// of the last segment and cut off. Nothing acknowledged is lost with it
	// (it was never synced); the server should log it.
	TornTail *TornTail
}

// TornTail describes a write that a crash interrupted.
type TornTail struct {
	// Segment is the last segment's file name.
	Segment string
	// Offset is where the good data ends: everything from here on was
	// discarded.
	Offset int64
	// Reason says what was found there.
	Reason string
}

func (t *TornTail) String() string {
	return fmt.Sprintf("wal: segment %s: discarded a torn write at offset %d: %s", t.Segment, t.Offset, t.Reason)
}

// replay rebuilds the log from the records of the segments, in order.
type replay struct {
	hardState raft.HardState
	snapshot  raft.SnapshotMetadata
	// entries is the log after snapshot.Index so far.
	// Invariant: entries[i].Index == entries[0].Index+i, and the last one's
	// index is last.
	entries []raft.Entry
	// last is the index of the log's last entry: set by the first segment's
	// header (the index before its first entry), then by every entry and
	// by a snapshot marker that replaces the log.
	last uint64
	// lastTerm is the term of entry last, kept the same way.
	lastTerm uint64
	// suspect is the damage that ended the previous segment early, if any:
	// harmless if the next segment's header agrees with what was replayed,
	// the error to report if it does not.
	suspect *CorruptError
}

// header applies a segment header. The first segment's sets the state that
// the removed segments before it left; every later one must agree with the
// state replayed so far, which catches a segment whose tail went missing.
func (r *replay) header(h segmentHeader, seg segmentInfo, first bool) error {
	if h.seq != seg.seq || h.firstIndex != seg.firstIndex {
		return fmt.Errorf("header says segment %d starting at index %d, the file name says otherwise", h.seq, h.firstIndex)
	}
	if first {
		if h.firstIndex == 0 || h.firstIndex-1 < h.snapshot.Index {
			return fmt.Errorf("header's first index %d is not after its snapshot %d", h.firstIndex, h.snapshot.Index)
		}
		r.hardState, r.snapshot, r.last, r.lastTerm = h.hardState, h.snapshot, h.firstIndex-1, h.lastTerm
		return nil
	}
	if h.firstIndex != r.last+1 || h.lastTerm != r.lastTerm || h.hardState != r.hardState ||
		h.snapshot.Index != r.snapshot.Index || h.snapshot.Term != r.snapshot.Term {
		return fmt.Errorf("header (log up to %d/%d, hard state %+v, snapshot %d/%d) disagrees with the segments before it (log up to %d/%d, hard state %+v, snapshot %d/%d): records are missing",
			h.firstIndex-1, h.lastTerm, h.hardState, h.snapshot.Index, h.snapshot.Term,
			r.last, r.lastTerm, r.hardState, r.snapshot.Index, r.snapshot.Term)
	}
	return nil
}

// entry applies an entry record: it replaces the entry at its index and
// every one after.
func (r *replay) entry(e raft.Entry) error {
	if e.Index <= r.snapshot.Index {
		return nil // the snapshot covers it; Save skips these too
	}
	if e.Index > r.last+1 {
		return fmt.Errorf("entry %d does not follow the last index %d", e.Index, r.last)
	}
	if len(r.entries) > 0 && e.Index >= r.entries[0].Index {
		r.entries = r.entries[:e.Index-r.entries[0].Index]
	} else {
		r.entries = r.entries[:0]
	}
	r.entries = append(r.entries, e)
	r.last, r.lastTerm = e.Index, e.Term
	return nil
}

// marker applies a snapshot marker (see SaveSnapshotMarker).
func (r *replay) marker(m raft.SnapshotMetadata, keepsLog bool) error {
	if m.Index <= r.snapshot.Index {
		return fmt.Errorf("snapshot marker %d is not newer than the last one, %d", m.Index, r.snapshot.Index)
	}
	r.snapshot = m
	if !keepsLog {
		r.entries, r.last, r.lastTerm = r.entries[:0], m.Index, m.Term
		return nil
	}
	if m.Index > r.last {
		return fmt.Errorf("snapshot marker %d keeps the log, which ends at %d", m.Index, r.last)
	}
	if len(r.entries) > 0 && m.Index >= r.entries[0].Index {
		r.entries = r.entries[m.Index-r.entries[0].Index+1:]
	}
	return nil
}

// record applies one record of seg.
func (r *replay) record(f frame, seg *segmentInfo, offset int, first bool) error {
	if (offset == 0) != (f.typ == recordSegmentHeader) {
		if offset == 0 {
			return fmt.Errorf("segment starts with a %s, not a header", f.typ)
		}
		return errors.New("segment header in the middle of a segment")
	}
	switch f.typ {
	case recordSegmentHeader:
		h, err := decodeSegmentHeader(f.payload)
		if err != nil {
			return err
		}
		return r.header(h, *seg, first)
	case recordEntry:
		var e raft.Entry
		if err := e.UnmarshalBinary(f.payload); err != nil {
			return err
		}
		seg.maxIndex = max(seg.maxIndex, e.Index)
		return r.entry(e)
	case recordHardState:
		return r.hardState.UnmarshalBinary(f.payload)
	case recordSnapshot:
		m, keepsLog, err := decodeSnapshotMarker(f.payload)
		if err != nil {
			return err
		}
		return r.marker(m, keepsLog)
	}
	panic(fmt.Sprintf("wal: decodeFrame returned %s", f.typ))
}

// segment replays one segment's data and returns where its good data ends.
// In the last segment a torn write at the end is cut off and described;
// anywhere else, damage is an error.
func (r *replay) segment(seg *segmentInfo, data []byte, first, last bool) (end int, torn *TornTail, err error) {
	corrupt := func(offset int, reason string) error {
		return &CorruptError{Segment: seg.name, Offset: int64(offset), Reason: reason}
	}
	off := 0
	for {
		f, err := decodeFrame(data, off)
		var fe *frameError
		switch {
		case errors.Is(err, errEndOfData) && off == 0:
			return 0, nil, corrupt(0, "segment has no header")
		case errors.Is(err, errEndOfData):
			if last && !allZero(data[off:]) {
				// Possible only if a later write survived a crash that an
				// earlier one did not: never synced, so never acknowledged.
				torn = &TornTail{Segment: seg.name, Offset: int64(off), Reason: "data after a gap of zeros"}
			}
			return off, torn, nil
		case errors.As(err, &fe) && fe.torn && off > 0 && last:
			return off, &TornTail{Segment: seg.name, Offset: int64(off), Reason: fe.reason}, nil
		case errors.As(err, &fe) && fe.torn && off > 0:
			// An older segment was fsynced whole before the next one was
			// made, so this is no torn write: most likely a flipped bit in
			// the zeros after its last frame. The next segment's header
			// tells whether anything before here is missing.
			r.suspect = &CorruptError{Segment: seg.name, Offset: int64(off), Reason: fe.reason}
			return off, nil, nil
		case errors.As(err, &fe):
			return 0, nil, corrupt(off, fe.reason)
		case err != nil:
			panic(err)
		}
		if err := r.record(f, seg, off, first); err != nil {
			if off == 0 && r.suspect != nil {
				return 0, nil, &CorruptError{Segment: r.suspect.Segment, Offset: r.suspect.Offset,
					Reason: fmt.Sprintf("%s (and segment %s: %v)", r.suspect.Reason, seg.name, err)}
			}
			return 0, nil, corrupt(off, fmt.Sprintf("%s: %v", f.typ, err))
		}
		if off == 0 {
			r.suspect = nil
		}
		off = f.end
	}
}

// recover replays the segments and sets the WAL up to append to the last.
func (w *WAL) recover(segments []segmentInfo) (Recovered, error) {
	var r replay
	var torn *TornTail
	var end, size, dataStart int
	for i := range segments {
		seg := &segments[i]
		if i > 0 && seg.seq != segments[i-1].seq+1 {
			return Recovered{}, fmt.Errorf("wal: %w: segment %d is missing between %s and %s",
				ErrCorrupt, segments[i-1].seq+1, segments[i-1].name, seg.name)
		}
		data, err := readAll(w.fs, w.path(seg.name))
		if err != nil {
			return Recovered{}, fmt.Errorf("wal: read segment %s: %w", seg.name, err)
		}
		last := i == len(segments)-1
		if end, torn, err = r.segment(seg, data, i == 0, last); err != nil {
			return Recovered{}, err
		}
		size = len(data)
		if last {
			h, _ := decodeFrame(data, 0) // replayed above: a good header
			dataStart = h.end
		}
	}
	if n := uint64(len(r.entries)); n != r.last-r.snapshot.Index {
		return Recovered{}, fmt.Errorf("wal: %w: the log should hold entries %d to %d after snapshot %d but holds %d of them",
			ErrCorrupt, r.snapshot.Index+1, r.last, r.snapshot.Index, n)
	}

	lastSeg := segments[len(segments)-1]
	f, err := w.fs.Open(w.path(lastSeg.name))
	if err != nil {
		return Recovered{}, fmt.Errorf("wal: open segment %s: %w", lastSeg.name, err)
	}
	if torn != nil {
		// Cut the torn write off and zero the space again, durably, before
		// anything new is written after the good data.
		err := f.Truncate(int64(end))
		if err == nil {
			err = f.Preallocate(int64(size))
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return Recovered{}, fmt.Errorf("wal: cut torn tail of segment %s at offset %d: %w", lastSeg.name, end, err)
		}
	}
	w.segments, w.file = segments, f
	w.offset, w.size, w.dataStart = int64(end), int64(size), int64(dataStart)
	w.hardState, w.snapshot, w.lastIndex = r.hardState, r.snapshot, r.last
	for _, e := range r.entries {
		w.noteEntry(e.Index, e.Term)
	}
	return Recovered{HardState: r.hardState, Snapshot: r.snapshot, Entries: r.entries, TornTail: torn}, nil
}

// NewMemoryStorage builds the raft.MemoryStorage a restarted member reads
// from: snap (which must be the snapshot rec.Snapshot names, loaded with
// Snapshotter.Load(rec.Snapshot.Index); empty if there is none), then
// rec.Entries, then rec.HardState. The hard state's commit index is raised to
// the snapshot's if it is behind: a snapshot holds only committed entries,
// and the hard state written after its marker may have been lost in a crash.
func NewMemoryStorage(rec Recovered, snap raft.Snapshot) (*raft.MemoryStorage, error) {
	if snap.Metadata.Index != rec.Snapshot.Index || snap.Metadata.Term != rec.Snapshot.Term {
		return nil, fmt.Errorf("storage: the wal needs snapshot %d (term %d), got snapshot %d (term %d)",
			rec.Snapshot.Index, rec.Snapshot.Term, snap.Metadata.Index, snap.Metadata.Term)
	}
	ms := raft.NewMemoryStorage()
	if !snap.IsEmpty() {
		if err := ms.ApplySnapshot(snap); err != nil {
			return nil, fmt.Errorf("storage: apply snapshot %d: %w", snap.Metadata.Index, err)
		}
	}
	if err := ms.Append(rec.Entries); err != nil {
		return nil, fmt.Errorf("storage: append recovered entries: %w", err)
	}
	hs := rec.HardState
	if !hs.IsEmpty() && hs.Commit < snap.Metadata.Index {
		hs.Commit = snap.Metadata.Index
	}
	// Entries and the hard state that came with them are one write; a
	// crash before its fsync may keep the entries and lose the hard state
	// (a torn write). The member must not come back in a term older than
	// its own log's: it would take appends from a deposed leader over
	// entries of a newer one. It comes back in its last entry's term,
	// having voted for no one — it sent no vote it had not synced.
	if last, err := ms.LastIndex(); err == nil {
		if term, err := ms.Term(last); err == nil && term > hs.Term {
			hs.Term, hs.Vote = term, 0
		}
	}
	if err := ms.SetHardState(hs); err != nil {
		return nil, fmt.Errorf("storage: set hard state: %w", err)
	}
	return ms, nil
}
