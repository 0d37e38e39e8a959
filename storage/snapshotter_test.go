package storage

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/raftkv/raftkv/raft"
	"github.com/stretchr/testify/require"
)

func testSnapshot(index, term uint64) raft.Snapshot {
	return raft.Snapshot{
		Metadata: raft.SnapshotMetadata{Index: index, Term: term, ConfState: raft.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}},
		Data:     []byte(fmt.Sprintf("state as of %d", index)),
	}
}

func TestSnapshotterSaveLoadPurge(t *testing.T) {
	fsys := NewMemFS()
	s, err := NewSnapshotter(fsys, "snap")
	require.NoError(t, err)

	got, skipped, err := s.Load(1 << 62)
	require.NoError(t, err)
	require.Empty(t, skipped)
	require.True(t, got.IsEmpty(), "no snapshot yet")
	require.Error(t, s.Save(raft.Snapshot{}), "an empty snapshot is refused")

	for _, i := range []uint64{10, 30, 20} {
		require.NoError(t, s.Save(testSnapshot(i, i/10)))
	}
	got, skipped, err = s.Load(1 << 62)
	require.NoError(t, err)
	require.Empty(t, skipped)
	require.Equal(t, testSnapshot(30, 3), got, "the newest by index")

	got, _, err = s.Load(29)
	require.NoError(t, err)
	require.Equal(t, testSnapshot(20, 2), got, "newer than maxIndex is left alone")
	got, _, err = s.Load(5)
	require.NoError(t, err)
	require.True(t, got.IsEmpty())

	require.Error(t, s.Purge(0, ^uint64(0)))
	require.NoError(t, s.Purge(2, ^uint64(0)))
	names, err := fsys.List("snap")
	require.NoError(t, err)
	require.Equal(t, []string{snapshotName(2, 20), snapshotName(3, 30)}, names)
}

// TestSnapshotterPurgeKeepsTheMarkedFile: files above the WAL's marker
// (saved, their marker refused) go, and the marked one stays even when
// two newer files would otherwise have pushed it out.
func TestSnapshotterPurgeKeepsTheMarkedFile(t *testing.T) {
	fsys := NewMemFS()
	s, err := NewSnapshotter(fsys, "snap")
	require.NoError(t, err)
	for _, i := range []uint64{10, 20, 30, 40} {
		require.NoError(t, s.Save(testSnapshot(i, 1)))
	}
	require.NoError(t, s.Purge(2, 20))
	names, err := fsys.List("snap")
	require.NoError(t, err)
	require.Equal(t, []string{snapshotName(1, 10), snapshotName(1, 20)}, names)
}

func TestSnapshotterEmptyData(t *testing.T) {
	s, err := NewSnapshotter(NewMemFS(), "snap")
	require.NoError(t, err)
	snap := raft.Snapshot{Metadata: raft.SnapshotMetadata{Index: 3, Term: 1}}
	require.NoError(t, s.Save(snap))
	got, _, err := s.Load(3)
	require.NoError(t, err)
	require.Equal(t, snap, got)
}

func TestSnapshotterSkipsCorruptFiles(t *testing.T) {
	fsys := NewMemFS()
	s, err := NewSnapshotter(fsys, "snap")
	require.NoError(t, err)
	require.NoError(t, s.Save(testSnapshot(10, 1)))
	require.NoError(t, s.Save(testSnapshot(20, 2)))
	newest := filepath.Join("snap", snapshotName(2, 20))
	size := len(fileBytes(t, fsys, newest))

	// Every flipped bit, anywhere in the newest file, is caught.
	for off := range size {
		for bit := range 8 {
			fileBytes(t, fsys, newest)[off] ^= 1 << bit
			got, skipped, err := s.Load(1 << 62)
			require.NoError(t, err)
			require.Equal(t, testSnapshot(10, 1), got, "byte %d bit %d", off, bit)
			require.Len(t, skipped, 1)
			require.ErrorIs(t, skipped[0], ErrCorrupt)
			require.Contains(t, skipped[0].Error(), snapshotName(2, 20))
			fileBytes(t, fsys, newest)[off] ^= 1 << bit
		}
	}

	t.Run("truncated", func(t *testing.T) {
		fs2 := cloneMemFS(t, fsys)
		fs2.files[newest].data = fs2.files[newest].data[:size-1]
		got, skipped, err := (&Snapshotter{fs: fs2, dir: "snap"}).Load(1 << 62)
		require.NoError(t, err)
		require.Equal(t, uint64(10), got.Metadata.Index)
		require.Len(t, skipped, 1)
	})
	t.Run("misnamed", func(t *testing.T) {
		fs2 := cloneMemFS(t, fsys)
		require.NoError(t, fs2.Rename(newest, filepath.Join("snap", snapshotName(2, 25))))
		_, skipped, err := (&Snapshotter{fs: fs2, dir: "snap"}).Load(1 << 62)
		require.NoError(t, err)
		require.Len(t, skipped, 1)
		require.ErrorContains(t, skipped[0], "not what its name says")
	})
	t.Run("only corrupt ones", func(t *testing.T) {
		fs2 := cloneMemFS(t, fsys)
		fileBytes(t, fs2, newest)[7] ^= 1
		fileBytes(t, fs2, filepath.Join("snap", snapshotName(1, 10)))[3] ^= 1
		_, skipped, err := (&Snapshotter{fs: fs2, dir: "snap"}).Load(1 << 62)
		require.ErrorIs(t, err, ErrCorrupt)
		require.Len(t, skipped, 2)
		require.ErrorContains(t, err, snapshotName(2, 20))
		require.ErrorContains(t, err, snapshotName(1, 10))
		// A WAL that needs no snapshot (maxIndex 0) never looks at them.
		got, _, err := (&Snapshotter{fs: fs2, dir: "snap"}).Load(0)
		require.NoError(t, err)
		require.True(t, got.IsEmpty())
	})
}

// TestSnapshotterCrashBeforeRename writes a new snapshot up to, but not
// including, the rename: after a crash the old snapshot is what Load
// returns, and Purge removes the leftover.
func TestSnapshotterCrashBeforeRename(t *testing.T) {
	for seed := range uint64(20) {
		fsys := NewFaultyFS()
		s, err := NewSnapshotter(fsys, "snap")
		require.NoError(t, err)
		require.NoError(t, s.Save(testSnapshot(10, 1)))
		budget := 3 // create, write, sync: the rename never happens
		err = (&Snapshotter{fs: stopFS{fsys, &budget}, dir: "snap"}).Save(testSnapshot(20, 2))
		require.ErrorIs(t, err, errStopped)
		fsys.Crash(rand.New(rand.NewPCG(seed, 9)))
		got, skipped, err := s.Load(1 << 62)
		require.NoError(t, err)
		require.Empty(t, skipped)
		require.Equal(t, testSnapshot(10, 1), got)
		require.NoError(t, s.Purge(1, ^uint64(0)))
		names, err := fsys.List("snap")
		require.NoError(t, err)
		require.Equal(t, []string{snapshotName(1, 10)}, names)
	}
}

func TestSnapshotterSaveErrorsNameTheFile(t *testing.T) {
	fsys := NewFaultyFS()
	s, err := NewSnapshotter(fsys, "snap")
	require.NoError(t, err)
	fsys.SetCapacity(10)
	err = s.Save(testSnapshot(10, 1))
	require.ErrorIs(t, err, ErrDiskFull)
	require.ErrorContains(t, err, snapshotName(1, 10))
	fsys.SetCapacity(-1)
	names, err := fsys.List("snap")
	require.NoError(t, err)
	require.Empty(t, names, "the temporary file is removed")
}

func TestNewMemoryStorage(t *testing.T) {
	fsys := NewMemFS()
	w, _ := openWAL(t, fsys, "wal", Options{})
	s, err := NewSnapshotter(fsys, "snap")
	require.NoError(t, err)
	require.NoError(t, w.Save(raft.HardState{Term: 1, Vote: 1, Commit: 5}, makeEntries(1, 1, 12, 10), true))
	snap := raft.Snapshot{Metadata: raft.SnapshotMetadata{Index: 8, Term: 1, ConfState: raft.ConfState{Voters: []uint64{1}}}, Data: []byte("x")}
	require.NoError(t, s.Save(snap))
	require.NoError(t, w.SaveSnapshotMarker(snap.Metadata))
	// A newer snapshot file whose marker never made it into the WAL.
	require.NoError(t, s.Save(raft.Snapshot{Metadata: raft.SnapshotMetadata{Index: 11, Term: 1}, Data: []byte("y")}))
	require.NoError(t, w.Close())

	_, rec := openWAL(t, fsys, "wal", Options{})
	loaded, skipped, err := s.Load(rec.Snapshot.Index)
	require.NoError(t, err)
	require.Empty(t, skipped)
	require.Equal(t, snap, loaded)
	ms, err := NewMemoryStorage(rec, loaded)
	require.NoError(t, err)

	hs, cs, err := ms.InitialState()
	require.NoError(t, err)
	require.Equal(t, raft.HardState{Term: 1, Vote: 1, Commit: 8}, hs, "commit raised to the snapshot's index")
	require.Equal(t, snap.Metadata.ConfState, cs)
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	require.Equal(t, []uint64{9, 12}, []uint64{first, last})
	ents, err := ms.Entries(9, 13, 1<<30)
	require.NoError(t, err)
	require.Equal(t, makeEntries(1, 9, 12, 10), ents)

	_, err = NewMemoryStorage(rec, raft.Snapshot{})
	require.ErrorContains(t, err, "needs snapshot 8")
}

// TestNewMemoryStorageTermOfLastEntry: a crash kept a batch's entries but
// tore the hard state written after them; the member comes back in the
// entries' term, with no vote.
func TestNewMemoryStorageTermOfLastEntry(t *testing.T) {
	rec := Recovered{HardState: raft.HardState{Term: 4, Vote: 2, Commit: 3}, Entries: makeEntries(4, 1, 3, 10)}
	rec.Entries = append(rec.Entries, makeEntries(6, 4, 5, 10)...)
	ms, err := NewMemoryStorage(rec, raft.Snapshot{})
	require.NoError(t, err)
	hs, _, err := ms.InitialState()
	require.NoError(t, err)
	require.Equal(t, raft.HardState{Term: 6, Commit: 3}, hs)

	rec.Entries = rec.Entries[:3]
	ms, err = NewMemoryStorage(rec, raft.Snapshot{})
	require.NoError(t, err)
	hs, _, _ = ms.InitialState()
	require.Equal(t, rec.HardState, hs, "a hard state at least as new as the log stays")
}

// SaveStream writes, from data handed over in pieces, the very file Save
// writes; a write that fails leaves no snapshot behind.
func TestSnapshotterSaveStream(t *testing.T) {
	whole, pieces := NewMemFS(), NewMemFS()
	a, err := NewSnapshotter(whole, "snap")
	require.NoError(t, err)
	b, err := NewSnapshotter(pieces, "snap")
	require.NoError(t, err)
	snap := testSnapshot(40, 4)
	snap.Data = make([]byte, 100_000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range snap.Data {
		snap.Data[i] = byte(rng.Uint32())
	}
	require.NoError(t, a.Save(snap))
	require.NoError(t, b.SaveStream(snap.Metadata, func(w io.Writer) error {
		for rest := snap.Data; len(rest) > 0; {
			n := min(len(rest), 777)
			if _, err := w.Write(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	}))
	name := filepath.Join("snap", snapshotName(4, 40))
	require.Equal(t, readFile(t, whole, name), readFile(t, pieces, name))
	got, _, err := b.Load(40)
	require.NoError(t, err)
	require.Equal(t, snap, got)

	failed := errors.New("the state machine could not be written")
	require.ErrorIs(t, b.SaveStream(testSnapshot(50, 5).Metadata, func(w io.Writer) error {
		w.Write([]byte("half"))
		return failed
	}), failed)
	got, _, err = b.Load(1 << 62)
	require.NoError(t, err)
	require.Equal(t, uint64(40), got.Metadata.Index, "a failed save left a snapshot")
	names, err := pieces.List("snap")
	require.NoError(t, err)
	require.Len(t, names, 1, "a failed save left a file")
}

func readFile(t *testing.T, fsys FS, name string) []byte {
	t.Helper()
	data, err := readAll(fsys, name)
	require.NoError(t, err)
	return data
}
