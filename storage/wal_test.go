package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/raftkv/raftkv/raft"
	"github.com/stretchr/testify/require"
)

func TestWALRoundTrip(t *testing.T) {
	fsys := NewMemFS()
	w, rec := openWAL(t, fsys, "wal", Options{SegmentSize: 4096})
	require.Empty(t, rec.Entries)
	require.True(t, rec.HardState.IsEmpty())

	var want []raft.Entry
	for i := uint64(1); i <= 100; i += 10 {
		batch := makeEntries(1, i, i+9, 100)
		want = append(want, batch...)
		require.NoError(t, w.Save(raft.HardState{Term: 1, Vote: 2, Commit: i}, batch, true))
	}
	require.NoError(t, w.Close())
	require.Greater(t, len(segmentFiles(t, fsys, "wal")), 1, "4 KiB segments must have rotated")

	w, rec = openWAL(t, fsys, "wal", Options{SegmentSize: 4096})
	defer w.Close()
	require.Nil(t, rec.TornTail)
	require.Equal(t, raft.HardState{Term: 1, Vote: 2, Commit: 91}, rec.HardState)
	require.Equal(t, want, rec.Entries)
}

func TestWALConflictingRewriteDuringRecovery(t *testing.T) {
	for _, segmentSize := range []int64{1 << 20, minSegmentSize} {
		t.Run(fmt.Sprint(segmentSize), func(t *testing.T) {
			fsys := NewMemFS()
			w, _ := openWAL(t, fsys, "wal", Options{SegmentSize: segmentSize})
			require.NoError(t, w.Save(raft.HardState{Term: 1}, makeEntries(1, 1, 10, 60), false))
			// A new leader overwrites 6..8: 9 and 10 are void.
			require.NoError(t, w.Save(raft.HardState{Term: 2}, makeEntries(2, 6, 8, 60), false))
			// And another one overwrites 8 again, then appends.
			require.NoError(t, w.Save(raft.HardState{Term: 3}, makeEntries(3, 8, 9, 60), true))
			require.NoError(t, w.Close())

			_, rec := openWAL(t, fsys, "wal", Options{SegmentSize: segmentSize})
			want := append(append(makeEntries(1, 1, 5, 60), makeEntries(2, 6, 7, 60)...), makeEntries(3, 8, 9, 60)...)
			require.Equal(t, want, rec.Entries)
			require.Equal(t, raft.HardState{Term: 3}, rec.HardState)
		})
	}
}

func TestWALSaveChecksEntries(t *testing.T) {
	w, _ := openWAL(t, NewMemFS(), "wal", Options{})
	defer w.Close()
	require.ErrorContains(t, w.Save(raft.HardState{}, makeEntries(1, 2, 3, 1), true), "gap")
	require.NoError(t, w.Save(raft.HardState{}, makeEntries(1, 1, 3, 1), true))
	require.ErrorContains(t, w.Save(raft.HardState{}, makeEntries(1, 5, 6, 1), true), "gap")
	bad := append(makeEntries(1, 4, 4, 1), makeEntries(1, 6, 6, 1)...)
	require.ErrorContains(t, w.Save(raft.HardState{}, bad, true), "not consecutive")
	require.NoError(t, w.Save(raft.HardState{}, makeEntries(1, 4, 4, 1), true), "a rejected batch leaves the WAL usable")
}

func TestWALSnapshotMarkers(t *testing.T) {
	cs := raft.ConfState{Voters: []uint64{1, 2, 3}}
	t.Run("a local snapshot keeps the entries after it", func(t *testing.T) {
		fsys := NewMemFS()
		w, _ := openWAL(t, fsys, "wal", Options{})
		require.NoError(t, w.Save(raft.HardState{Term: 2, Commit: 8}, append(makeEntries(1, 1, 5, 8), makeEntries(2, 6, 10, 8)...), true))
		require.NoError(t, w.SaveSnapshotMarker(raft.SnapshotMetadata{Index: 7, Term: 2, ConfState: cs}))
		require.NoError(t, w.SaveSnapshotMarker(raft.SnapshotMetadata{Index: 7, Term: 2, ConfState: cs}), "the same marker again is a no-op")
		require.ErrorContains(t, w.SaveSnapshotMarker(raft.SnapshotMetadata{Index: 6, Term: 2}), "not newer")
		require.NoError(t, w.Save(raft.HardState{}, makeEntries(2, 5, 11, 8), true), "entries up to 7 are skipped")
		require.NoError(t, w.Close())
		_, rec := openWAL(t, fsys, "wal", Options{})
		require.Equal(t, raft.SnapshotMetadata{Index: 7, Term: 2, ConfState: cs}, rec.Snapshot)
		require.Equal(t, makeEntries(2, 8, 11, 8), rec.Entries)
		require.Equal(t, raft.HardState{Term: 2, Commit: 8}, rec.HardState)
	})
	t.Run("a leader's snapshot replaces the log", func(t *testing.T) {
		for _, index := range []uint64{4, 10, 20} { // inside the log (other term), at its end, past it
			fsys := NewMemFS()
			w, _ := openWAL(t, fsys, "wal", Options{})
			require.NoError(t, w.Save(raft.HardState{Term: 1, Commit: 2}, makeEntries(1, 1, 10, 8), true))
			require.NoError(t, w.SaveSnapshotMarker(raft.SnapshotMetadata{Index: index, Term: 5, ConfState: cs}))
			require.NoError(t, w.Close())
			w, rec := openWAL(t, fsys, "wal", Options{})
			require.Equal(t, index, rec.Snapshot.Index)
			require.Empty(t, rec.Entries, "index %d: entries before the marker are void", index)
			require.ErrorContains(t, w.Save(raft.HardState{}, makeEntries(5, index+2, index+2, 8), true), "gap")
			require.NoError(t, w.Save(raft.HardState{Term: 5, Commit: index + 1}, makeEntries(5, index+1, index+3, 8), true))
			require.NoError(t, w.Close())
			_, rec = openWAL(t, fsys, "wal", Options{})
			require.Equal(t, makeEntries(5, index+1, index+3, 8), rec.Entries)
		}
	})
}

func TestWALRotationAndReleaseTo(t *testing.T) {
	fsys := NewMemFS()
	opts := Options{SegmentSize: minSegmentSize}
	w, _ := openWAL(t, fsys, "wal", opts)
	// The hard state is written once, early: after its segment is removed,
	// the later segments' headers still carry it.
	hs := raft.HardState{Term: 1, Vote: 3, Commit: 1}
	require.NoError(t, w.Save(hs, makeEntries(1, 1, 1, 100), true))
	for i := uint64(2); i <= 60; i++ {
		require.NoError(t, w.Save(raft.HardState{}, makeEntries(1, i, i, 100), i%5 == 0))
	}
	before := segmentFiles(t, fsys, "wal")
	require.Greater(t, len(before), 5)

	require.ErrorContains(t, w.ReleaseTo(30), "snapshot marker")
	require.NoError(t, w.SaveSnapshotMarker(raft.SnapshotMetadata{Index: 30, Term: 1}))
	require.NoError(t, w.ReleaseTo(30))
	after := segmentFiles(t, fsys, "wal")
	require.Less(t, len(after), len(before))
	require.Equal(t, before[len(before)-len(after):], after, "the oldest segments go")
	require.NoError(t, w.Close())

	_, rec := openWAL(t, fsys, "wal", opts)
	require.Equal(t, hs, rec.HardState)
	require.EqualValues(t, 30, rec.Snapshot.Index)
	require.Equal(t, makeEntries(1, 31, 60, 100), rec.Entries)

	// Every removed segment held only entries the snapshot covers: the first
	// one left starts at or before entry 31.
	first, _ := parseSegmentName(after[0][len("wal/"):])
	require.LessOrEqual(t, first.firstIndex, uint64(31))
}

func TestWALBatchLargerThanASegment(t *testing.T) {
	fsys := NewMemFS()
	w, _ := openWAL(t, fsys, "wal", Options{SegmentSize: minSegmentSize})
	require.NoError(t, w.Save(raft.HardState{Term: 1}, makeEntries(1, 1, 2, 10), true))
	big := makeEntries(1, 3, 40, 200) // ~8 KiB in one batch
	require.NoError(t, w.Save(raft.HardState{Term: 1, Commit: 3}, big, true))
	require.NoError(t, w.Save(raft.HardState{}, makeEntries(1, 41, 41, 10), true))
	require.NoError(t, w.Close())
	require.Len(t, segmentFiles(t, fsys, "wal"), 3, "the big batch gets a segment of its own")
	_, rec := openWAL(t, fsys, "wal", Options{SegmentSize: minSegmentSize})
	require.Equal(t, makeEntries(1, 1, 2, 10), rec.Entries[:2])
	require.Equal(t, big, rec.Entries[2:40])
	require.Len(t, rec.Entries, 41)
}

func TestWALRemovesUnfinishedSegmentsOnOpen(t *testing.T) {
	fsys := NewMemFS()
	w, _ := openWAL(t, fsys, "wal", Options{})
	require.NoError(t, w.Save(raft.HardState{Term: 1}, makeEntries(1, 1, 3, 10), true))
	require.NoError(t, w.Close())
	f, err := fsys.Create("wal/" + segmentName(2, 4) + ".tmp")
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("half a segment"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, rec := openWAL(t, fsys, "wal", Options{})
	require.Len(t, rec.Entries, 3)
	names, err := fsys.List("wal")
	require.NoError(t, err)
	require.Equal(t, []string{segmentName(1, 1)}, names)
}

func TestWALFullDisk(t *testing.T) {
	fsys := NewFaultyFS()
	opts := Options{SegmentSize: 4 << 10}
	w, _ := openWAL(t, fsys, "wal", opts)
	fsys.SetCapacity(3 * opts.SegmentSize) // room for three segments
	var acked []raft.Entry
	var hs raft.HardState
	var err error
	for i := uint64(1); ; i++ {
		batch := makeEntries(1, i, i, 300)
		next := raft.HardState{Term: 1, Commit: i}
		if err = w.Save(next, batch, true); err != nil {
			break
		}
		acked, hs = append(acked, batch...), next
		require.Less(t, i, uint64(1000), "the disk never filled up")
	}
	require.ErrorIs(t, err, ErrDiskFull)
	require.NotErrorIs(t, err, ErrFailed, "a full disk does not fail the WAL")
	require.Contains(t, err.Error(), ".wal", "the error names the segment")
	require.GreaterOrEqual(t, len(acked), 20)

	// Still full: still an error, nothing half-written.
	next := uint64(len(acked)) + 1
	require.ErrorIs(t, w.Save(raft.HardState{}, makeEntries(1, next, next, 300), true), ErrDiskFull)

	// Whatever happens now, a crash loses nothing acknowledged.
	for seed := range uint64(10) {
		fsys.Crash(rand.New(rand.NewPCG(seed, 7)))
		w2, rec, err := Open(fsys, "wal", opts)
		require.NoError(t, err)
		require.Equal(t, acked, rec.Entries)
		require.Equal(t, hs, rec.HardState)
		require.NoError(t, w2.Close())
	}

	// Once there is room again, writing goes on.
	fsys.SetCapacity(-1)
	w, _ = openWAL(t, fsys, "wal", opts)
	require.NoError(t, w.Save(raft.HardState{Term: 1, Commit: next}, makeEntries(1, next, next, 300), true))
	require.NoError(t, w.Close())
	_, rec := openWAL(t, fsys, "wal", opts)
	require.Len(t, rec.Entries, int(next))
}

func TestWALFullDiskThenRoomAgainWithoutRestart(t *testing.T) {
	fsys := NewFaultyFS()
	opts := Options{SegmentSize: 4 << 10}
	w, _ := openWAL(t, fsys, "wal", opts)
	fsys.SetCapacity(opts.SegmentSize + 100)
	i := uint64(1)
	for ; w.Save(raft.HardState{}, makeEntries(1, i, i, 300), true) == nil; i++ {
	}
	fsys.SetCapacity(-1)
	require.NoError(t, w.Save(raft.HardState{}, makeEntries(1, i, i, 300), true), "the WAL stays usable after a full disk")
	require.NoError(t, w.Close())
	_, rec := openWAL(t, fsys, "wal", opts)
	require.Len(t, rec.Entries, int(i))
}

func TestWALFailedFsyncFailsTheWAL(t *testing.T) {
	injected := errors.New("injected EIO")
	for seed := range uint64(20) {
		fsys := NewFaultyFS()
		w, _ := openWAL(t, fsys, "wal", Options{SegmentSize: 4 << 10})
		acked := makeEntries(1, 1, 10, 100)
		require.NoError(t, w.Save(raft.HardState{Term: 1, Commit: 10}, acked, true))

		fsys.SetSyncError(injected)
		err := w.Save(raft.HardState{Term: 1, Commit: 11}, makeEntries(1, 11, 11, 100), true)
		require.ErrorIs(t, err, injected)
		require.ErrorIs(t, err, ErrFailed)
		require.Contains(t, err.Error(), "fsync segment")
		fsys.SetSyncError(nil)
		// The fsync would succeed now, but what it would flush may be gone.
		err = w.Save(raft.HardState{}, makeEntries(1, 12, 12, 100), true)
		require.ErrorIs(t, err, ErrFailed, "a failed WAL refuses writes")
		require.ErrorIs(t, err, injected, "and says why")
		require.ErrorIs(t, w.SaveSnapshotMarker(raft.SnapshotMetadata{Index: 5, Term: 1}), ErrFailed)
		require.ErrorIs(t, w.ReleaseTo(0), ErrFailed)
		require.NoError(t, w.Close(), "closing a failed WAL does not sync")

		fsys.Crash(rand.New(rand.NewPCG(seed, 8)))
		_, rec := openWAL(t, fsys, "wal", Options{SegmentSize: 4 << 10})
		require.GreaterOrEqual(t, len(rec.Entries), len(acked))
		require.Equal(t, acked, rec.Entries[:len(acked)], "nothing acknowledged is lost")
	}
}

func TestWALClosed(t *testing.T) {
	w, _ := openWAL(t, NewMemFS(), "wal", Options{})
	require.NoError(t, w.Close())
	require.Error(t, w.Close())
	require.Error(t, w.Save(raft.HardState{}, makeEntries(1, 1, 1, 1), false))
}

func TestOptionsValidate(t *testing.T) {
	_, _, err := Open(NewMemFS(), "wal", Options{SegmentSize: 100})
	require.ErrorContains(t, err, "SegmentSize")
	o, err := Options{}.validate()
	require.NoError(t, err)
	require.EqualValues(t, DefaultSegmentSize, o.SegmentSize)
}
