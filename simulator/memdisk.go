package simulator

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/raftkv/raftkv/raft"
)

// MemDisk is the raft adapter's disk: a raft.MemoryStorage split into what
// was written (current, which raft reads) and what was synced (durable,
// which survives a crash). Writes are kept in order until a sync; a crash
// keeps a random prefix of them, the last possibly torn, as an append-only
// log on a real disk would.
//
// It stands in for the write-ahead log until the storage package exists;
// server.Member will then write a WAL over storage's FaultyFS, which
// implements Disk the same way.
type MemDisk struct {
	// current holds every write, synced or not: what a live member sees.
	current *raft.MemoryStorage
	// durable holds the synced writes: what a crash leaves.
	durable *raft.MemoryStorage
	// pending are the writes since the last sync, in order.
	// Invariant: applying pending to durable gives current.
	pending []diskWrite
	// full makes writes fail with ErrDiskFull.
	full bool
	// armed counts the writes left before the disk dies (0: not armed).
	armed int
	// dead says the disk died in the middle of a write; every later write
	// fails with ErrDiskCrashed until Crash.
	dead bool
	// corrupt names a damaged durable record, or is empty.
	corrupt string
	// writes and syncs count the work since the last Elapsed.
	writes, syncs int
	// tornAtCrash says the last crash kept only part of the last write it
	// kept (a torn write of entries).
	tornAtCrash bool
}

// diskWrite is one write: exactly one of its fields is set (hardState may be
// set on its own).
type diskWrite struct {
	kind      diskWriteKind
	snapshot  raft.Snapshot
	entries   []raft.Entry
	hardState raft.HardState
	// index is the snapshot index of a created snapshot, or the compaction
	// index.
	index     uint64
	confState raft.ConfState
	data      []byte
}

type diskWriteKind uint8

const (
	writeSnapshot diskWriteKind = iota + 1
	writeEntries
	writeHardState
	writeCreateSnapshot
	writeCompact
)

// NewMemDisk returns an empty disk.
func NewMemDisk() *MemDisk {
	return &MemDisk{current: raft.NewMemoryStorage(), durable: raft.NewMemoryStorage()}
}

// Wipe empties the disk, as if just formatted: a founder whose bootstrap
// write was torn starts again (see raft.TornBootstrap).
func (d *MemDisk) Wipe() {
	d.current, d.durable, d.pending = raft.NewMemoryStorage(), raft.NewMemoryStorage(), nil
}

// Storage returns what raft reads: the disk's current contents.
func (d *MemDisk) Storage() *raft.MemoryStorage { return d.current }

// Open returns the storage a starting member reads, or ErrDiskCorrupt if a
// durable record is damaged (a member must not start from it).
func (d *MemDisk) Open() (*raft.MemoryStorage, error) {
	if d.corrupt != "" {
		return nil, fmt.Errorf("%w: %s fails its checksum", ErrDiskCorrupt, d.corrupt)
	}
	return d.current, nil
}

// write records w, or fails as a full or dying disk does.
func (d *MemDisk) write(w diskWrite) error {
	if d.dead {
		return ErrDiskCrashed
	}
	if d.full {
		return ErrDiskFull
	}
	d.writes++
	if d.armed > 0 {
		d.armed--
		if d.armed == 0 {
			// The disk dies in this write: it reaches the pending list (a
			// crash may keep a torn part of it) but the member never hears
			// that it finished.
			d.dead = true
			d.pending = append(d.pending, w)
			return ErrDiskCrashed
		}
	}
	if err := applyWrite(d.current, w); err != nil {
		return err
	}
	d.pending = append(d.pending, w)
	return nil
}

// applyWrite carries w out on s.
func applyWrite(s *raft.MemoryStorage, w diskWrite) error {
	switch w.kind {
	case writeSnapshot:
		if err := s.ApplySnapshot(w.snapshot); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return err
		}
	case writeEntries:
		return s.Append(w.entries)
	case writeHardState:
		return s.SetHardState(w.hardState)
	case writeCreateSnapshot:
		if _, err := s.CreateSnapshot(w.index, &w.confState, w.data); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return err
		}
	case writeCompact:
		if err := s.Compact(w.index); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return err
		}
	}
	return nil
}

// SaveSnapshot writes an incoming snapshot.
func (d *MemDisk) SaveSnapshot(s raft.Snapshot) error {
	return d.write(diskWrite{kind: writeSnapshot, snapshot: s})
}

// SaveEntries writes entries, replacing any from the first one's index on.
func (d *MemDisk) SaveEntries(ents []raft.Entry) error {
	return d.write(diskWrite{kind: writeEntries, entries: ents})
}

// SaveHardState writes the hard state.
func (d *MemDisk) SaveHardState(hs raft.HardState) error {
	return d.write(diskWrite{kind: writeHardState, hardState: hs})
}

// CreateSnapshot writes a snapshot of the state machine as of index.
func (d *MemDisk) CreateSnapshot(index uint64, cs raft.ConfState, data []byte) error {
	return d.write(diskWrite{kind: writeCreateSnapshot, index: index, confState: cs, data: data})
}

// Compact discards the log up to and including index.
func (d *MemDisk) Compact(index uint64) error {
	return d.write(diskWrite{kind: writeCompact, index: index})
}

// Sync makes every write so far durable.
func (d *MemDisk) Sync() error {
	if d.dead {
		return ErrDiskCrashed
	}
	d.syncs++
	for _, w := range d.pending {
		if err := applyWrite(d.durable, w); err != nil {
			panic(fmt.Sprintf("simulator: replaying a synced write on the durable image: %v", err))
		}
	}
	clear(d.pending)
	d.pending = d.pending[:0]
	return nil
}

// Crash implements Disk: a random prefix of the unsynced writes survives,
// the last of them possibly torn (a prefix of its entries).
func (d *MemDisk) Crash(rng *rand.Rand) {
	keep := rng.IntN(len(d.pending) + 1)
	if d.dead && keep == len(d.pending) {
		// The write the disk died in did not finish.
		keep--
	}
	d.tornAtCrash = false
	for i, w := range d.pending[:keep] {
		if i == keep-1 && w.kind == writeEntries && len(w.entries) > 1 && rng.IntN(2) == 0 {
			w.entries = w.entries[:1+rng.IntN(len(w.entries)-1)]
			d.tornAtCrash = true
		}
		if err := applyWrite(d.durable, w); err != nil {
			panic(fmt.Sprintf("simulator: replaying a write at a crash: %v", err))
		}
	}
	d.pending = nil
	d.dead, d.armed, d.full = false, 0, false
	d.current = cloneStorage(d.durable)
}

// ArmCrash implements Disk.
func (d *MemDisk) ArmCrash(n int) { d.armed = max(n, 1) }

// SetFull implements Disk.
func (d *MemDisk) SetFull(full bool) { d.full = full }

// Corrupt implements Disk: it damages the durable hard state or one
// durable entry.
func (d *MemDisk) Corrupt(rng *rand.Rand) bool {
	first, _ := d.durable.FirstIndex()
	last, _ := d.durable.LastIndex()
	hs, _, _ := d.durable.InitialState()
	switch {
	case last >= first:
		d.corrupt = fmt.Sprintf("log entry %d", first+rng.Uint64N(last-first+1))
	case !hs.IsEmpty():
		d.corrupt = "hard state record"
	default:
		return false
	}
	return true
}

// Elapsed implements Disk.
func (d *MemDisk) Elapsed() (writes, syncs int) {
	writes, syncs = d.writes, d.syncs
	d.writes, d.syncs = 0, 0
	return writes, syncs
}

// cloneStorage copies s into a new MemoryStorage (the slices of entries are
// shared: nobody writes into them).
func cloneStorage(s *raft.MemoryStorage) *raft.MemoryStorage {
	out := raft.NewMemoryStorage()
	snap, _ := s.Snapshot()
	hs, cs, _ := s.InitialState()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first > 1 {
		// Start the log where s's starts: at the snapshot if the log was
		// compacted up to it, else at a stand-in snapshot of the entry
		// before the first, replaced by the real one once the entries are
		// in.
		base := snap
		if base.Metadata.Index != first-1 {
			term, err := s.Term(first - 1)
			if err != nil {
				panic(fmt.Sprintf("simulator: clone storage: %v", err))
			}
			base = raft.Snapshot{Metadata: raft.SnapshotMetadata{Index: first - 1, Term: term, ConfState: cs}}
		}
		if err := out.ApplySnapshot(base); err != nil {
			panic(fmt.Sprintf("simulator: clone storage: %v", err))
		}
	}
	if last >= first {
		ents, err := s.Entries(first, last+1, ^uint64(0))
		if err != nil {
			panic(fmt.Sprintf("simulator: clone storage: %v", err))
		}
		if err := out.Append(ents); err != nil {
			panic(fmt.Sprintf("simulator: clone storage: %v", err))
		}
	}
	if !snap.IsEmpty() && snap.Metadata.Index > first-1 {
		if _, err := out.CreateSnapshot(snap.Metadata.Index, &snap.Metadata.ConfState, snap.Data); err != nil {
			panic(fmt.Sprintf("simulator: clone storage: %v", err))
		}
	}
	_ = out.SetHardState(hs)
	return out
}
