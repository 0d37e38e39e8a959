package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/raft"
)

// DefaultSegmentSize is the size a WAL segment is preallocated to.
const DefaultSegmentSize = 64 << 20

// minSegmentSize keeps a segment big enough for its header and some frames.
const minSegmentSize = 1 << 10

// ErrFailed is wrapped by every error a WAL returns once a write or an
// fsync has failed: it refuses further writes (see WAL).
var ErrFailed = errors.New("wal: failed earlier, refusing writes")

// errClosed is returned by a closed WAL.
var errClosed = errors.New("wal: closed")

// Options configure a WAL.
type Options struct {
	// SegmentSize is the size segments are preallocated to, and the point
	// at which the WAL moves to a new one. 0 means DefaultSegmentSize. A
	// batch bigger than a segment gets a segment of its own, made larger.
	SegmentSize int64
}

func (o Options) validate() (Options, error) {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize < minSegmentSize {
		return o, fmt.Errorf("wal: SegmentSize %d is below the minimum of %d bytes", o.SegmentSize, minSegmentSize)
	}
	return o, nil
}

// WAL is a write-ahead log of raft hard states, entries and snapshot
// markers, kept in a directory of segment files (see the package comment for
// the format and the recovery rules).
//
// A WAL is not safe for concurrent use: one goroutine (a member's event loop
// or its persistence goroutine) calls it.
//
// # Errors and fsyncgate
//
// Writes land in preallocated space, so a full disk shows up when a segment
// is created or grown; Save then returns an error wrapping ErrDiskFull,
// nothing of the batch is written, and the WAL remains usable (a later Save
// may succeed once there is room). But if a write or an fsync fails, the
// WAL can no longer know what the disk holds: Linux, for one, may drop the
// dirty pages and report the failure only once, so retrying the fsync would
// "succeed" without the data being there (the "fsyncgate" of PostgreSQL,
// 2018). The WAL therefore fails for good: that call and every later one
// return an error wrapping ErrFailed. Whatever earlier calls acknowledged
// (returned nil after a sync) is durable; the member must stop and recover
// from the WAL on restart.
type WAL struct {
	fs   FS
	dir  string
	opts Options

	// segments lists the live segments, oldest first; the last is the one
	// being written. Invariant: not empty; seq numbers are consecutive.
	segments []segmentInfo
	// file is the last segment, open for writing; nil once closed.
	file File
	// offset is where the next frame goes in file.
	// Invariant: dataStart <= offset <= size, and every byte of file from
	// offset on is zero (the WAL only appends into zero-filled space).
	offset int64
	// size is file's length (preallocated).
	size int64
	// dataStart is the offset just past file's segment header frame.
	dataStart int64
	// unsynced says file holds writes not yet fsynced.
	unsynced bool

	// hardState is the last hard state written.
	hardState raft.HardState
	// snapshot is the last snapshot marker written.
	snapshot raft.SnapshotMetadata
	// lastIndex is the index of the last entry in the log (or of the
	// snapshot, if none follows it). Invariant: lastIndex >= snapshot.Index.
	lastIndex uint64
	// terms holds the terms of the entries in (snapshot.Index, lastIndex]
	// as runs, so that SaveSnapshotMarker can tell whether the log holds the
	// snapshot's last entry. Invariant: terms[i].first increases, and
	// terms[0].first == snapshot.Index+1 unless terms is empty.
	terms []termRun

	// failed, once set, is returned (wrapped) by every call.
	failed error
	// buf is reused to encode batches.
	buf []byte
}

// segmentInfo describes one live segment.
type segmentInfo struct {
	name       string
	seq        uint64
	firstIndex uint64
	// maxIndex is the highest entry index written to the segment (0 if
	// none): ReleaseTo removes the segment once a snapshot covers it.
	maxIndex uint64
}

// termRun says that the entries from index first until the next run's first
// have term term.
type termRun struct {
	first, term uint64
}

// segmentName returns the file name of a segment: sequence number and first
// index in fixed-width hex, so that names sort in sequence order.
func segmentName(seq, firstIndex uint64) string {
	return fmt.Sprintf("%016x-%016x.wal", seq, firstIndex)
}

func parseSegmentName(name string) (segmentInfo, bool) {
	s, ok := strings.CutSuffix(name, ".wal")
	if !ok || len(s) != 33 || s[16] != '-' {
		return segmentInfo{}, false
	}
	seq, err1 := strconv.ParseUint(s[:16], 16, 64)
	first, err2 := strconv.ParseUint(s[17:], 16, 64)
	if err1 != nil || err2 != nil {
		return segmentInfo{}, false
	}
	return segmentInfo{name: name, seq: seq, firstIndex: first}, true
}

// Open opens the WAL in dir, creating dir and a first segment if there is
// none, or else recovering what the segments hold (see Recovered). It fails
// with an error wrapping ErrCorrupt, naming the segment and offset, if a
// record before the tail of the last segment is damaged.
func Open(fsys FS, dir string, opts Options) (*WAL, Recovered, error) {
	opts, err := opts.validate()
	if err != nil {
		return nil, Recovered{}, err
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, Recovered{}, fmt.Errorf("wal: create directory %s: %w", dir, err)
	}
	names, err := fsys.List(dir)
	if err != nil {
		return nil, Recovered{}, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	w := &WAL{fs: fsys, dir: dir, opts: opts}
	var segments []segmentInfo
	for _, name := range names {
		if strings.HasSuffix(name, ".wal.tmp") {
			// A segment whose creation did not finish: never part of the log.
			if err := fsys.Remove(w.path(name)); err != nil {
				return nil, Recovered{}, fmt.Errorf("wal: remove unfinished segment %s: %w", name, err)
			}
		} else if seg, ok := parseSegmentName(name); ok {
			segments = append(segments, seg)
		}
	}
	if len(segments) == 0 {
		if err := w.openNewSegment(1, 1); err != nil {
			return nil, Recovered{}, err
		}
		return w, Recovered{}, nil
	}
	slices.SortFunc(segments, func(a, b segmentInfo) int { return cmpUint64(a.seq, b.seq) })
	rec, err := w.recover(segments)
	if err != nil {
		return nil, Recovered{}, err
	}
	return w, rec, nil
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (w *WAL) path(name string) string { return filepath.Join(w.dir, name) }

// usable returns the error of a WAL that must not be written.
func (w *WAL) usable() error {
	switch {
	case w.file == nil:
		return errClosed
	case w.failed != nil:
		return fmt.Errorf("%w: %w", ErrFailed, w.failed)
	}
	return nil
}

// fail makes the WAL refuse further writes and returns the error for the
// call that failed.
func (w *WAL) fail(err error) error {
	w.failed = err
	return fmt.Errorf("%w: %w", ErrFailed, err)
}

// Save writes one batch, as a raft.Ready hands it out: the entries (which
// replace any written before from the same index on), then the hard state
// if it is not empty and changed. With sync it makes the batch, and all
// earlier ones, durable with one fsync before returning (group commit:
// callers batch whole Readys, and many proposals, into one Save). Entries
// that the last snapshot marker covers are skipped, as
// raft.MemoryStorage.Append skips them. The entries must be consecutive
// and must not leave a gap after the last index.
func (w *WAL) Save(hs raft.HardState, ents []raft.Entry, sync bool) error {
	if err := w.usable(); err != nil {
		return err
	}
	ents, err := w.checkEntries(ents)
	if err != nil {
		return err
	}
	writeHardState := !hs.IsEmpty() && hs != w.hardState
	buf := w.buf[:0]
	for i := range ents {
		buf = appendEntryFrame(buf, &ents[i])
	}
	if writeHardState {
		buf = appendHardStateFrame(buf, hs)
	}
	if cap(buf) <= 4<<20 { // keep the buffer, unless a huge batch made it huge
		w.buf = buf
	}
	if len(buf) > 0 {
		if err := w.write(buf); err != nil {
			return err
		}
		for i := range ents {
			w.noteEntry(ents[i].Index, ents[i].Term)
		}
		if writeHardState {
			w.hardState = hs
		}
	}
	if sync {
		return w.sync()
	}
	return nil
}

// checkEntries drops the entries the snapshot covers and checks that the
// rest follow on from the log.
func (w *WAL) checkEntries(ents []raft.Entry) ([]raft.Entry, error) {
	for len(ents) > 0 && ents[0].Index <= w.snapshot.Index {
		ents = ents[1:]
	}
	if len(ents) == 0 {
		return nil, nil
	}
	if ents[0].Index > w.lastIndex+1 {
		return nil, fmt.Errorf("wal: entry %d would leave a gap after the last index %d", ents[0].Index, w.lastIndex)
	}
	for i := range ents {
		if i > 0 && ents[i].Index != ents[i-1].Index+1 {
			return nil, fmt.Errorf("wal: entries are not consecutive: %d follows %d", ents[i].Index, ents[i-1].Index)
		}
		if len(ents[i].Data) > maxPayloadSize-64 {
			return nil, fmt.Errorf("wal: entry %d holds %d bytes, more than a record can", ents[i].Index, len(ents[i].Data))
		}
	}
	return ents, nil
}

// noteEntry records that entry index of term has been written: it replaces
// every entry from index on.
func (w *WAL) noteEntry(index, term uint64) {
	for len(w.terms) > 0 && w.terms[len(w.terms)-1].first >= index {
		w.terms = w.terms[:len(w.terms)-1]
	}
	if len(w.terms) == 0 || w.terms[len(w.terms)-1].term != term {
		w.terms = append(w.terms, termRun{first: index, term: term})
	}
	w.lastIndex = index
	seg := &w.segments[len(w.segments)-1]
	seg.maxIndex = max(seg.maxIndex, index)
}

// termAt returns the term of entry i, or 0 if the log does not hold it.
func (w *WAL) termAt(i uint64) uint64 {
	if i == w.snapshot.Index {
		return w.snapshot.Term
	}
	if i < w.snapshot.Index || i > w.lastIndex {
		return 0
	}
	k, _ := slices.BinarySearchFunc(w.terms, i, func(r termRun, i uint64) int { return cmpUint64(r.first, i+1) })
	if k == 0 {
		panic(fmt.Sprintf("wal: no term recorded for entry %d in (%d, %d]", i, w.snapshot.Index, w.lastIndex))
	}
	return w.terms[k-1].term
}

// SaveSnapshotMarker records that a snapshot as of meta is durable (save it
// with the Snapshotter first), and makes the record durable before it
// returns. If the log holds the snapshot's last entry (meta.Index, meta.Term)
// the entries after it stay; otherwise the snapshot replaces the log, as
// raft's restore does, and entries written before the marker are void.
// A marker equal to the last one is a no-op; an older one is an error.
func (w *WAL) SaveSnapshotMarker(meta raft.SnapshotMetadata) error {
	if err := w.usable(); err != nil {
		return err
	}
	if meta.Index <= w.snapshot.Index {
		if meta.Index == w.snapshot.Index && meta.Term == w.snapshot.Term {
			return nil
		}
		return fmt.Errorf("wal: snapshot marker %d (term %d) is not newer than the last one, %d (term %d)",
			meta.Index, meta.Term, w.snapshot.Index, w.snapshot.Term)
	}
	keepsLog := w.termAt(meta.Index) == meta.Term
	w.buf = appendSnapshotFrame(w.buf[:0], meta, keepsLog)
	if err := w.write(w.buf); err != nil {
		return err
	}
	w.snapshot = meta
	if keepsLog {
		// Drop the runs the snapshot covers; the one it splits starts after it.
		k, _ := slices.BinarySearchFunc(w.terms, meta.Index, func(r termRun, i uint64) int { return cmpUint64(r.first, i+1) })
		switch {
		case meta.Index == w.lastIndex:
			w.terms = w.terms[:0]
		case k < len(w.terms) && w.terms[k].first == meta.Index+1:
			w.terms = w.terms[k:]
		default:
			w.terms = w.terms[k-1:]
			w.terms[0].first = meta.Index + 1
		}
	} else {
		w.terms = w.terms[:0]
		w.lastIndex = meta.Index
	}
	return w.sync()
}

// ReleaseTo removes the oldest segments while they hold only entries at or
// before index (and are not the segment being written). Call it once a
// snapshot at index or later is durable and its marker saved: index must not
// be beyond the last snapshot marker.
//
// Segments are removed oldest first and each removal is made durable before
// the next, so that after a crash the segments left are still consecutive.
func (w *WAL) ReleaseTo(index uint64) error {
	if err := w.usable(); err != nil {
		return err
	}
	if index > w.snapshot.Index {
		return fmt.Errorf("wal: cannot release entries up to %d: the last snapshot marker is at %d", index, w.snapshot.Index)
	}
	for len(w.segments) > 1 && w.segments[0].maxIndex <= index {
		name := w.segments[0].name
		if err := w.fs.Remove(w.path(name)); err != nil {
			return fmt.Errorf("wal: remove segment %s: %w", name, err)
		}
		w.segments = w.segments[1:]
		if err := w.fs.SyncDir(w.dir); err != nil {
			// The removal may come undone in a crash, which is harmless.
			return fmt.Errorf("wal: sync directory %s after removing segment %s: %w", w.dir, name, err)
		}
	}
	return nil
}

// Close makes what was written durable and closes the WAL. A failed WAL
// is closed without syncing.
func (w *WAL) Close() error {
	if w.file == nil {
		return errClosed
	}
	var err error
	if w.failed == nil {
		err = w.sync()
	}
	if cerr := w.file.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("wal: close segment %s: %w", w.segments[len(w.segments)-1].name, cerr))
	}
	w.file = nil
	return err
}

// write appends buf, whole, to the segment being written, moving to a new
// segment first if it does not fit. A failed write fails the WAL.
func (w *WAL) write(buf []byte) error {
	if err := w.makeRoom(int64(len(buf))); err != nil {
		return err
	}
	name := w.segments[len(w.segments)-1].name
	if _, err := w.file.WriteAt(buf, w.offset); err != nil {
		return w.fail(fmt.Errorf("wal: write segment %s at offset %d: %w", name, w.offset, err))
	}
	w.offset += int64(len(buf))
	w.unsynced = true
	return nil
}

// makeRoom makes sure n bytes can be written at offset: it moves to a new
// segment when the current one has frames and too little room, and grows a
// segment for a batch larger than a segment. A failure here writes nothing
// and leaves the WAL usable.
func (w *WAL) makeRoom(n int64) error {
	if w.offset+n <= w.size {
		return nil
	}
	if w.offset > w.dataStart {
		if err := w.cut(); err != nil {
			return err
		}
	}
	if w.offset+n > w.size {
		name := w.segments[len(w.segments)-1].name
		if err := w.file.Preallocate(w.offset + n); err != nil {
			return fmt.Errorf("wal: grow segment %s to %d bytes: %w", name, w.offset+n, err)
		}
		w.size = w.offset + n
	}
	return nil
}

// sync makes the segment being written durable. A failed fsync fails the
// WAL (see WAL).
func (w *WAL) sync() error {
	if !w.unsynced {
		return nil
	}
	if err := w.file.Sync(); err != nil {
		return w.fail(fmt.Errorf("wal: fsync segment %s: %w", w.segments[len(w.segments)-1].name, err))
	}
	w.unsynced = false
	return nil
}

// cut moves to a new segment: the current one is made durable first (a
// newer segment must never survive a crash that an older one's tail does
// not), then the new one is made and named durably.
func (w *WAL) cut() error {
	if err := w.sync(); err != nil {
		return err
	}
	old := w.file
	last := w.segments[len(w.segments)-1]
	if err := w.openNewSegment(last.seq+1, w.lastIndex+1); err != nil {
		return err
	}
	// The old segment is durable and will not be read through this handle:
	// an error closing it loses nothing.
	_ = old.Close()
	return nil
}

// openNewSegment creates segment seq, whose first entry will be firstIndex,
// and makes it the one being written. It is written under a temporary name,
// preallocated, given its header, fsynced, and only then renamed into place
// and the directory fsynced, so a segment with a proper name always starts
// with a good header. Running out of space leaves the WAL as it was; a
// failed fsync fails it.
func (w *WAL) openNewSegment(seq, firstIndex uint64) error {
	name := segmentName(seq, firstIndex)
	path := w.path(name)
	tmp := path + ".tmp"
	f, err := w.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("wal: create segment %s: %w", tmp, err)
	}
	abandon := func(err error) error {
		f.Close()
		w.fs.Remove(tmp) // best effort: Open removes leftovers too
		return err
	}
	if err := f.Preallocate(w.opts.SegmentSize); err != nil {
		return abandon(fmt.Errorf("wal: preallocate segment %s: %w", tmp, err))
	}
	header := appendSegmentHeaderFrame(nil, segmentHeader{
		version: formatVersion, seq: seq, firstIndex: firstIndex, lastTerm: w.termAt(firstIndex - 1),
		hardState: w.hardState, snapshot: w.snapshot,
	})
	if _, err := f.WriteAt(header, 0); err != nil {
		return abandon(fmt.Errorf("wal: write header of segment %s: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		return w.fail(abandon(fmt.Errorf("wal: fsync segment %s: %w", tmp, err)))
	}
	if err := w.fs.Rename(tmp, path); err != nil {
		return abandon(fmt.Errorf("wal: rename segment %s: %w", tmp, err))
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		f.Close()
		return w.fail(fmt.Errorf("wal: sync directory %s after creating segment %s: %w", w.dir, name, err))
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return w.fail(fmt.Errorf("wal: size of segment %s: %w", name, err))
	}
	w.segments = append(w.segments, segmentInfo{name: name, seq: seq, firstIndex: firstIndex})
	w.file, w.size = f, size
	w.offset, w.dataStart = int64(len(header)), int64(len(header))
	w.unsynced = false
	return nil
}
