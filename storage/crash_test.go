package storage

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/raftkv/raftkv/raft"
	"github.com/stretchr/testify/require"
)

// stopFS passes calls to a FaultyFS until a budget of operations that
// change the disk is spent, then fails every call: the process has died at
// that point. Crashing the FaultyFS afterwards shows what the disk kept.
type stopFS struct {
	*FaultyFS
	budget *int
}

var errStopped = errors.New("process stopped")

func (s stopFS) spend() error {
	if *s.budget <= 0 {
		return errStopped
	}
	*s.budget--
	return nil
}

func (s stopFS) Create(name string) (File, error) {
	if err := s.spend(); err != nil {
		return nil, err
	}
	f, err := s.FaultyFS.Create(name)
	return stopFile{f, s}, err
}

func (s stopFS) Open(name string) (File, error) {
	f, err := s.FaultyFS.Open(name)
	return stopFile{f, s}, err
}

func (s stopFS) Remove(name string) error {
	if err := s.spend(); err != nil {
		return err
	}
	return s.FaultyFS.Remove(name)
}

func (s stopFS) Rename(oldname, newname string) error {
	if err := s.spend(); err != nil {
		return err
	}
	return s.FaultyFS.Rename(oldname, newname)
}

func (s stopFS) SyncDir(dir string) error {
	if err := s.spend(); err != nil {
		return err
	}
	return s.FaultyFS.SyncDir(dir)
}

type stopFile struct {
	File
	s stopFS
}

func (f stopFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.s.spend(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f stopFile) Truncate(size int64) error {
	if err := f.s.spend(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f stopFile) Preallocate(size int64) error {
	if err := f.s.spend(); err != nil {
		return err
	}
	return f.File.Preallocate(size)
}

func (f stopFile) Sync() error {
	if err := f.s.spend(); err != nil {
		return err
	}
	return f.File.Sync()
}

// TestWALCrashAtEveryOperation stops a WAL's process before each of the
// disk operations a busy run makes (rotations, markers, releases
// included), crashes the disk in several ways, and checks that recovery
// never loses what was acknowledged and never returns what was not written.
func TestWALCrashAtEveryOperation(t *testing.T) {
	opts := Options{SegmentSize: minSegmentSize}
	// run drives the WAL until an operation fails, recording in m.
	run := func(fsys FS, m *walModel) {
		w, _, err := Open(fsys, "wal", opts)
		if err != nil {
			return
		}
		term := uint64(1)
		for i := uint64(1); i <= 40; i += 3 {
			if i%9 == 1 {
				term++
			}
			hs := raft.HardState{Term: term, Commit: i - 1}
			ents := makeEntries(term, i, i+3, 90) // overlaps the previous batch's last entry
			m.save(hs, ents)
			sync := i%2 == 1
			if w.Save(hs, ents, sync) != nil {
				return
			}
			if sync {
				m.durable()
			}
			if i%12 == 1 && i > 1 {
				meta := raft.SnapshotMetadata{Index: i - 2, Term: term}
				m.marker(meta)
				if w.SaveSnapshotMarker(meta) != nil {
					return
				}
				m.durable()
				if w.ReleaseTo(meta.Index) != nil {
					return
				}
			}
		}
		if w.Close() == nil {
			m.durable()
		}
	}

	var total int
	{
		budget := 1 << 30
		run(stopFS{NewFaultyFS(), &budget}, &walModel{})
		total = 1<<30 - budget
	}
	require.Greater(t, total, 50)
	t.Logf("%d disk operations", total)
	for stop := 0; stop <= total; stop++ {
		for seed := range uint64(4) {
			fsys := NewFaultyFS()
			budget := stop
			m := &walModel{}
			run(stopFS{fsys, &budget}, m)
			fsys.Crash(rand.New(rand.NewPCG(uint64(stop), seed)))
			w, rec, err := Open(fsys, "wal", opts)
			require.NoError(t, err, "stopped before operation %d, crash seed %d", stop, seed)
			m.recovered(t, rec)
			require.NoError(t, w.Close())
		}
	}
}

// TestSnapshotterCrashAtEveryOperation stops the process before each disk
// operation of a Save and crashes the disk: Load then finds the old
// snapshot or the new one, whole, and nothing corrupt.
func TestSnapshotterCrashAtEveryOperation(t *testing.T) {
	old := raft.Snapshot{Metadata: raft.SnapshotMetadata{Index: 10, Term: 1}, Data: []byte("old state")}
	next := raft.Snapshot{Metadata: raft.SnapshotMetadata{Index: 20, Term: 2}, Data: []byte("new state, longer")}
	outcomes := map[uint64]int{}
	for stop := 0; stop <= 8; stop++ {
		for seed := range uint64(8) {
			fsys := NewFaultyFS()
			s, err := NewSnapshotter(fsys, "snap")
			require.NoError(t, err)
			require.NoError(t, s.Save(old))
			budget := stop
			s2 := &Snapshotter{fs: stopFS{fsys, &budget}, dir: "snap"}
			saveErr := s2.Save(next)
			fsys.Crash(rand.New(rand.NewPCG(uint64(stop), seed)))

			got, skipped, err := s.Load(1 << 62)
			require.NoError(t, err)
			require.Empty(t, skipped, "a crash never leaves a corrupt snapshot file")
			if saveErr == nil {
				require.Equal(t, next, got, "a snapshot Save acknowledged is durable")
			} else {
				require.Contains(t, []uint64{10, 20}, got.Metadata.Index)
			}
			if got.Metadata.Index == 10 {
				require.Equal(t, old, got)
			} else {
				require.Equal(t, next, got)
			}
			outcomes[got.Metadata.Index]++
			require.NoError(t, s.Purge(1, ^uint64(0)), "Purge clears any temporary file left")
		}
	}
	require.Positive(t, outcomes[10])
	require.Positive(t, outcomes[20])
}
