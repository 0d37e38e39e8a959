package raft

import (
	"errors"
	"fmt"
	"sync"
)

// ErrCompacted is returned by Storage.Entries and Storage.Term for an index
// that a snapshot has replaced.
var ErrCompacted = errors.New("raft: requested index is unavailable due to compaction")

// ErrSnapOutOfDate is returned by MemoryStorage.ApplySnapshot for a snapshot
// older than the one it holds.
var ErrSnapOutOfDate = errors.New("raft: requested snapshot is older than the existing snapshot")

// ErrUnavailable is returned by Storage.Entries and Storage.Term for an index
// beyond the last one stored.
var ErrUnavailable = errors.New("raft: requested entry at index is unavailable")

// ErrSnapshotTemporarilyUnavailable is returned by Storage.Snapshot when the
// snapshot is being prepared; the leader will ask again later.
var ErrSnapshotTemporarilyUnavailable = errors.New("raft: snapshot is temporarily unavailable")

// Storage is the durable part of a member's log, read by raft. The
// application writes to it (entries and hard state from a Ready, once they
// are durable); raft only reads.
//
// Ownership and concurrency: raft calls Storage only from within its own
// methods (Step, Tick, Ready, ...), on the goroutine that drives it. An
// implementation that the application also writes from another goroutine must
// synchronise itself (MemoryStorage does).
//
// Index layout: the log holds entries FirstIndex()..LastIndex(). The entry
// just before FirstIndex is the last one a snapshot replaced; its term is
// still answered by Term, so that the entry after it can be matched.
type Storage interface {
	// InitialState returns the hard state and configuration saved last.
	InitialState() (HardState, ConfState, error)
	// Entries returns the entries in [lo, hi), at least one if any are in
	// range, and no more than maxSize bytes beyond the first.
	Entries(lo, hi, maxSize uint64) ([]Entry, error)
	// Term returns the term of entry i, for i in [FirstIndex()-1, LastIndex()].
	Term(i uint64) (uint64, error)
	// LastIndex returns the index of the last stored entry (or of the
	// snapshot, if the log after it is empty).
	LastIndex() (uint64, error)
	// FirstIndex returns the index of the first entry that may be read; older
	// ones are only in the snapshot.
	FirstIndex() (uint64, error)
	// Snapshot returns the most recent snapshot. It may return
	// ErrSnapshotTemporarilyUnavailable.
	Snapshot() (Snapshot, error)
}

// MemoryStorage is a Storage held in memory. Production members put it in
// front of the write-ahead log (the WAL makes data durable; MemoryStorage
// answers raft's reads); tests and the simulator use it directly.
type MemoryStorage struct {
	mu        sync.Mutex
	hardState HardState
	snapshot  Snapshot
	// ents[0] is a dummy entry standing for the snapshot: its Index and Term
	// are those of the last entry the snapshot replaced.
	// Invariant: ents[i].Index == ents[0].Index + i.
	ents []Entry
}

// NewMemoryStorage returns an empty MemoryStorage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{ents: make([]Entry, 1)}
}

// InitialState implements Storage.
func (ms *MemoryStorage) InitialState() (HardState, ConfState, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.hardState, ms.snapshot.Metadata.ConfState, nil
}

// SetHardState records the hard state.
func (ms *MemoryStorage) SetHardState(st HardState) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.hardState = st
	return nil
}

// Entries implements Storage.
func (ms *MemoryStorage) Entries(lo, hi, maxSize uint64) ([]Entry, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	offset := ms.ents[0].Index
	if lo <= offset {
		return nil, ErrCompacted
	}
	if hi > ms.lastIndex()+1 {
		return nil, fmt.Errorf("%w: entries [%d, %d) requested, last index is %d", ErrUnavailable, lo, hi, ms.lastIndex())
	}
	ents := ms.ents[lo-offset : hi-offset]
	return limitSize(ents, maxSize), nil
}

// Term implements Storage.
func (ms *MemoryStorage) Term(i uint64) (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	offset := ms.ents[0].Index
	if i < offset {
		return 0, ErrCompacted
	}
	if int(i-offset) >= len(ms.ents) {
		return 0, ErrUnavailable
	}
	return ms.ents[i-offset].Term, nil
}

// LastIndex implements Storage.
func (ms *MemoryStorage) LastIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.lastIndex(), nil
}

func (ms *MemoryStorage) lastIndex() uint64 { return ms.ents[0].Index + uint64(len(ms.ents)) - 1 }

// FirstIndex implements Storage.
func (ms *MemoryStorage) FirstIndex() (uint64, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.ents[0].Index + 1, nil
}

// Snapshot implements Storage.
func (ms *MemoryStorage) Snapshot() (Snapshot, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.snapshot, nil
}

// ApplySnapshot replaces the storage's contents with snap: the log is
// emptied and starts after snap.Metadata.Index.
func (ms *MemoryStorage) ApplySnapshot(snap Snapshot) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.snapshot.Metadata.Index >= snap.Metadata.Index {
		return ErrSnapOutOfDate
	}
	ms.snapshot = snap
	ms.ents = []Entry{{Term: snap.Metadata.Term, Index: snap.Metadata.Index}}
	return nil
}

// CreateSnapshot records a snapshot of the state machine as of index i,
// which must be applied and still in the log. It does not compact; call
// Compact for that (the application may keep some entries for slow
// followers).
func (ms *MemoryStorage) CreateSnapshot(i uint64, cs *ConfState, data []byte) (Snapshot, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if i <= ms.snapshot.Metadata.Index {
		return Snapshot{}, ErrSnapOutOfDate
	}
	offset := ms.ents[0].Index
	if i > ms.lastIndex() {
		return Snapshot{}, fmt.Errorf("raft: snapshot index %d is beyond the last index %d", i, ms.lastIndex())
	}
	ms.snapshot.Metadata.Index = i
	ms.snapshot.Metadata.Term = ms.ents[i-offset].Term
	if cs != nil {
		ms.snapshot.Metadata.ConfState = *cs
	}
	ms.snapshot.Data = data
	return ms.snapshot, nil
}

// Compact discards the entries up to and including compactIndex, which must
// not be beyond the last applied index (the caller's duty).
func (ms *MemoryStorage) Compact(compactIndex uint64) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	offset := ms.ents[0].Index
	if compactIndex <= offset {
		return ErrCompacted
	}
	if compactIndex > ms.lastIndex() {
		return fmt.Errorf("raft: compact index %d is beyond the last index %d", compactIndex, ms.lastIndex())
	}
	i := compactIndex - offset
	// Leave room to grow back to the length the log had, or the next
	// appends copy everything again and again as the slice regrows.
	remaining := uint64(len(ms.ents)) - i
	ents := make([]Entry, 1, max(2*remaining, uint64(len(ms.ents)), 64))
	ents[0] = Entry{Index: ms.ents[i].Index, Term: ms.ents[i].Term}
	ms.ents = append(ents, ms.ents[i+1:]...)
	return nil
}

// Append adds entries to the log, replacing any that conflict (same index)
// and everything after them. Entries that a snapshot has already replaced
// are skipped.
func (ms *MemoryStorage) Append(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	first := ms.ents[0].Index + 1
	last := entries[0].Index + uint64(len(entries)) - 1
	if last < first {
		return nil
	}
	if first > entries[0].Index {
		entries = entries[first-entries[0].Index:]
	}
	offset := entries[0].Index - ms.ents[0].Index
	switch {
	case uint64(len(ms.ents)) > offset:
		// Truncate what follows the first new entry, then append. The copy
		// keeps slices handed out earlier by Entries intact.
		ms.ents = append([]Entry{}, ms.ents[:offset]...)
		ms.ents = append(ms.ents, entries...)
	case uint64(len(ms.ents)) == offset:
		ms.ents = append(ms.ents, entries...)
	default:
		return fmt.Errorf("raft: appending entries from index %d leaves a gap after the last index %d", entries[0].Index, ms.lastIndex())
	}
	return nil
}

// limitSize returns the longest prefix of ents, at least one entry, whose
// total size is at most maxSize.
func limitSize(ents []Entry, maxSize uint64) []Entry {
	if len(ents) == 0 {
		return ents
	}
	size := ents[0].size()
	n := 1
	for ; n < len(ents); n++ {
		size += ents[n].size()
		if size > maxSize {
			break
		}
	}
	return ents[:n]
}
