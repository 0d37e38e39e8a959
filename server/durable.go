package server

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/storage"
)

// disk is a member's stable storage: the write-ahead log and the snapshot
// files, both on Config.FS under Config.Dir ("wal" and "snap").
type disk interface {
	// Save writes entries, then the hard state; with sync, durably.
	Save(hs raft.HardState, ents []raft.Entry, sync bool) error
	// SaveSnapshot makes a snapshot durable: its file, then its WAL marker.
	SaveSnapshot(snap raft.Snapshot) error
	// SaveSnapshotStream is SaveSnapshot of a snapshot whose data write
	// produces in pieces, never whole in memory.
	SaveSnapshotStream(meta raft.SnapshotMetadata, write func(io.Writer) error) error
	// Release lets the WAL drop segments holding only entries up to index
	// (covered by a durable snapshot).
	Release(index uint64) error
	// LoadSnapshot reads back the data of the durable snapshot at index.
	LoadSnapshot(index uint64) ([]byte, error)
	Close() error
}

// recovered is what a member finds on its disk at start-up.
type recovered struct {
	// empty says the disk held nothing: a new member.
	empty bool
	// snapshot is the latest snapshot (empty if none).
	snapshot raft.Snapshot
	// raftLog is the log as raft will read it: snapshot, entries, state.
	raftLog *raft.MemoryStorage
	// notes describe what recovery did (a torn tail cut, a corrupt
	// snapshot file skipped), for the shell to log.
	notes []string
}

// keptSnapshots is how many snapshot files stay on disk.
const keptSnapshots = 2

type walDisk struct {
	wal   *storage.WAL
	snaps *storage.Snapshotter
}

func openDisk(cfg Config) (disk, recovered, error) {
	walDir, snapDir := filepath.Join(cfg.Dir, "wal"), filepath.Join(cfg.Dir, "snap")
	snaps, err := storage.NewSnapshotter(cfg.FS, snapDir)
	if err != nil {
		return nil, recovered{}, fmt.Errorf("server: open snapshots in %s: %w", snapDir, err)
	}
	wal, rec, err := storage.Open(cfg.FS, walDir, cfg.WAL)
	if err != nil {
		return nil, recovered{}, fmt.Errorf("server: open WAL in %s: %w", walDir, err)
	}
	var r recovered
	if rec.TornTail != nil {
		r.notes = append(r.notes, "truncated an incomplete write at the end of the WAL: "+rec.TornTail.String())
	}
	snap, skipped, err := snaps.Load(rec.Snapshot.Index)
	for _, s := range skipped {
		r.notes = append(r.notes, "skipped a damaged snapshot file: "+s.Error())
	}
	if err != nil {
		wal.Close()
		return nil, recovered{}, fmt.Errorf("server: load snapshot from %s: %w", snapDir, err)
	}
	// The in-memory log keeps the snapshot's metadata only: its data
	// restores the key space, then stays on disk (see snapshotLog).
	r.raftLog, err = storage.NewMemoryStorage(rec, withoutData(snap))
	if err != nil {
		wal.Close()
		return nil, recovered{}, fmt.Errorf("server: recover %s: %w", cfg.Dir, err)
	}
	r.snapshot = snap
	r.empty = rec.HardState.IsEmpty() && len(rec.Entries) == 0 && rec.Snapshot.Index == 0
	return &walDisk{wal: wal, snaps: snaps}, r, nil
}

func (d *walDisk) Save(hs raft.HardState, ents []raft.Entry, sync bool) error {
	return d.wal.Save(hs, ents, sync)
}

func (d *walDisk) SaveSnapshot(snap raft.Snapshot) error {
	return d.SaveSnapshotStream(snap.Metadata, func(w io.Writer) error {
		_, err := w.Write(snap.Data)
		return err
	})
}

func (d *walDisk) SaveSnapshotStream(meta raft.SnapshotMetadata, write func(io.Writer) error) error {
	if err := d.snaps.SaveStream(meta, write); err != nil {
		return err
	}
	if err := d.wal.SaveSnapshotMarker(meta); err != nil {
		return err
	}
	return d.snaps.Purge(keptSnapshots, meta.Index)
}

func (d *walDisk) Release(index uint64) error { return d.wal.ReleaseTo(index) }

func (d *walDisk) LoadSnapshot(index uint64) ([]byte, error) {
	snap, _, err := d.snaps.Load(index)
	if err != nil {
		return nil, err
	}
	if snap.Metadata.Index != index {
		return nil, fmt.Errorf("no valid snapshot file at index %d (the newest valid one is at %d)", index, snap.Metadata.Index)
	}
	return snap.Data, nil
}

func (d *walDisk) Close() error { return d.wal.Close() }
