package storage

import (
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
