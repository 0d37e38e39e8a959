package storage

import (
	"errors"
	"fmt"
	"testing"

	"github.com/raftkv/raftkv/raft"
	"github.com/stretchr/testify/require"
)

// walWithLastRecord writes a WAL holding entries 1..n (synced) in one
// segment, then one more batch, and returns the file system, the segment's
// path and the byte range [start, end) of that last batch's frames.
func walWithLastRecord(t *testing.T, n uint64, last func(w *WAL) error) (*MemFS, string, int64, int64) {
	t.Helper()
	fsys := NewMemFS()
	w, _ := openWAL(t, fsys, "wal", Options{SegmentSize: 64 << 10})
	require.NoError(t, w.Save(raft.HardState{Term: 1, Commit: 1}, makeEntries(1, 1, n, 40), true))
	start := w.offset
	require.NoError(t, last(w))
	end := w.offset
	require.NoError(t, w.Close())
	segs := segmentFiles(t, fsys, "wal")
	require.Len(t, segs, 1)
	return fsys, segs[0], start, end
}

// lastRecords are the kinds of record the torn-tail test tears.
var lastRecords = map[string]func(w *WAL) error{
	"entry": func(w *WAL) error { return w.Save(raft.HardState{}, makeEntries(1, 6, 6, 40), true) },
	"empty entry": func(w *WAL) error {
		return w.Save(raft.HardState{}, []raft.Entry{{Term: 1, Index: 6}}, true)
	},
	"hard state": func(w *WAL) error { return w.Save(raft.HardState{Term: 2, Vote: 1, Commit: 5}, nil, true) },
	"snapshot marker": func(w *WAL) error {
		return w.SaveSnapshotMarker(raft.SnapshotMetadata{Index: 3, Term: 1, ConfState: raft.ConfState{Voters: []uint64{1, 2, 3}}})
	},
}

// TestWALTornTailAtEveryOffset tears the last record at every byte offset,
// both as a torn write into preallocated space leaves it (zeros after the
// tear) and as a file cut short, and checks recovery returns exactly what
// preceded it, reports the tear, and can carry on writing.
func TestWALTornTailAtEveryOffset(t *testing.T) {
	for kind, last := range lastRecords {
		for _, cutShort := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/cutShort=%v", kind, cutShort), func(t *testing.T) {
				base, seg, start, end := walWithLastRecord(t, 5, last)
				for tear := start; tear < end; tear++ {
					fsys := cloneMemFS(t, base)
					data := fileBytes(t, fsys, seg)
					if cutShort {
						fsys.files[seg].data = data[:tear]
					} else {
						clear(data[tear:end])
					}

					w, rec := openWAL(t, fsys, "wal", Options{SegmentSize: 64 << 10})
					require.Equal(t, makeEntries(1, 1, 5, 40), rec.Entries, "tear at %d", tear)
					require.Equal(t, raft.HardState{Term: 1, Commit: 1}, rec.HardState, "tear at %d", tear)
					require.Zero(t, rec.Snapshot.Index, "tear at %d", tear)
					if tear == start {
						require.Nil(t, rec.TornTail, "nothing of the write reached the disk")
					} else {
						require.NotNil(t, rec.TornTail, "tear at %d", tear)
						require.Equal(t, start, rec.TornTail.Offset)
						require.Contains(t, rec.TornTail.String(), seg[len("wal/"):])
					}

					// The WAL carries on where the good data ended.
					require.NoError(t, w.Save(raft.HardState{Term: 3, Commit: 4}, makeEntries(3, 6, 7, 40), true))
					require.NoError(t, w.Close())
					_, rec = openWAL(t, fsys, "wal", Options{SegmentSize: 64 << 10})
					require.Nil(t, rec.TornTail)
					require.Equal(t, append(makeEntries(1, 1, 5, 40), makeEntries(3, 6, 7, 40)...), rec.Entries)
					require.Equal(t, raft.HardState{Term: 3, Commit: 4}, rec.HardState)
				}
			})
		}
	}
}

// frameRange returns the offsets of the frames of a segment.
func frameOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	var offs []int
	for off := 0; ; {
		f, err := decodeFrame(data, off)
		if errors.Is(err, errEndOfData) {
			return offs
		}
		require.NoError(t, err)
		offs = append(offs, off)
		off = f.end
	}
}

// TestWALBitFlipFailsStartup flips every bit of a record in the middle of
// the last segment, and of its very last record, and checks that Open
// refuses to start with an error naming the segment and the record's
// offset: a complete record that was damaged is never taken for a torn one.
func TestWALBitFlipFailsStartup(t *testing.T) {
	base, seg, _, _ := walWithLastRecord(t, 5, lastRecords["entry"])
	offs := frameOffsets(t, fileBytes(t, base, seg))
	require.Len(t, offs, 1+5+1+1, "header, 5 entries, hard state, the last entry")
	for _, which := range []struct {
		name  string
		frame int
	}{{"middle", 3}, {"last", len(offs) - 1}} {
		t.Run(which.name, func(t *testing.T) {
			start := offs[which.frame]
			end := len(fileBytes(t, base, seg))
			if which.frame+1 < len(offs) {
				end = offs[which.frame+1]
			} else {
				f, err := decodeFrame(fileBytes(t, base, seg), start)
				require.NoError(t, err)
				end = f.end
			}
			for off := start; off < end; off++ {
				for bit := range 8 {
					fsys := cloneMemFS(t, base)
					fileBytes(t, fsys, seg)[off] ^= 1 << bit
					_, _, err := Open(fsys, "wal", Options{SegmentSize: 64 << 10})
					require.Error(t, err, "bit %d of byte %d", bit, off)
					require.ErrorIs(t, err, ErrCorrupt)
					var ce *CorruptError
					require.ErrorAs(t, err, &ce)
					require.Equal(t, seg[len("wal/"):], ce.Segment)
					require.EqualValues(t, start, ce.Offset, "bit %d of byte %d: %v", bit, off, err)
					require.Contains(t, err.Error(), fmt.Sprintf("wal: segment %s: corrupt record at offset %d: ", ce.Segment, start))
				}
			}
		})
	}
}

// multiSegmentWAL writes entries 1..n in batches of 4 into small segments
// and returns the file system and the segment paths.
func multiSegmentWAL(t *testing.T, n uint64) (*MemFS, []string) {
	t.Helper()
	fsys := NewMemFS()
	w, _ := openWAL(t, fsys, "wal", Options{SegmentSize: minSegmentSize})
	for i := uint64(1); i <= n; i += 4 {
		require.NoError(t, w.Save(raft.HardState{Term: 1, Commit: i}, makeEntries(1, i, i+3, 50), true))
	}
	require.NoError(t, w.Close())
	segs := segmentFiles(t, fsys, "wal")
	require.Greater(t, len(segs), 2)
	return fsys, segs
}

func TestWALDamageBeforeTheLastSegmentFailsStartup(t *testing.T) {
	t.Run("torn-looking last record of an older segment", func(t *testing.T) {
		fsys, segs := multiSegmentWAL(t, 40)
		data := fileBytes(t, fsys, segs[0])
		offs := frameOffsets(t, data)
		lastFrame, _ := decodeFrame(data, offs[len(offs)-1])
		data[lastFrame.end-1] = 0 // as if the write had been torn
		_, _, err := Open(fsys, "wal", Options{SegmentSize: minSegmentSize})
		var ce *CorruptError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, segs[0][len("wal/"):], ce.Segment, "the next segment's header shows the damage lost a record")
		require.EqualValues(t, offs[len(offs)-1], ce.Offset)
		require.ErrorContains(t, err, "missing")
	})
	t.Run("lost rewrite at the end of an older segment", func(t *testing.T) {
		// The lost record rewrote the last entry: the log's last index is
		// the same either way, only the term tells.
		fsys := NewMemFS()
		w, _ := openWAL(t, fsys, "wal", Options{SegmentSize: minSegmentSize})
		require.NoError(t, w.Save(raft.HardState{}, makeEntries(1, 1, 3, 200), true))
		require.NoError(t, w.Save(raft.HardState{}, makeEntries(2, 3, 3, 200), true))
		require.NoError(t, w.Save(raft.HardState{}, makeEntries(2, 4, 4, 200), true))
		require.NoError(t, w.Close())
		segs := segmentFiles(t, fsys, "wal")
		require.Len(t, segs, 2)
		data := fileBytes(t, fsys, segs[0])
		offs := frameOffsets(t, data)
		lastFrame, _ := decodeFrame(data, offs[len(offs)-1])
		var e raft.Entry
		require.NoError(t, e.UnmarshalBinary(lastFrame.payload))
		require.Equal(t, raft.Entry{Term: 2, Index: 3}, raft.Entry{Term: e.Term, Index: e.Index}, "the rewrite ends the first segment")
		data[lastFrame.end-1] = 0
		_, _, err := Open(fsys, "wal", Options{SegmentSize: minSegmentSize})
		require.ErrorIs(t, err, ErrCorrupt)
		require.ErrorContains(t, err, "log up to 3/2")
	})
	t.Run("older segment lost its tail", func(t *testing.T) {
		fsys, segs := multiSegmentWAL(t, 40)
		data := fileBytes(t, fsys, segs[0])
		offs := frameOffsets(t, data)
		clear(data[offs[len(offs)-1]:]) // zeros: reads as the end of its data
		_, _, err := Open(fsys, "wal", Options{SegmentSize: minSegmentSize})
		var ce *CorruptError
		require.ErrorAs(t, err, &ce, "%v", err)
		require.Equal(t, segs[1][len("wal/"):], ce.Segment, "the next segment's header disagrees")
		require.Zero(t, ce.Offset)
	})
	t.Run("missing segment", func(t *testing.T) {
		fsys, segs := multiSegmentWAL(t, 40)
		require.NoError(t, fsys.Remove(segs[1]))
		_, _, err := Open(fsys, "wal", Options{SegmentSize: minSegmentSize})
		require.ErrorIs(t, err, ErrCorrupt)
		require.Contains(t, err.Error(), "missing")
	})
	t.Run("segment without a header", func(t *testing.T) {
		fsys, segs := multiSegmentWAL(t, 40)
		clear(fileBytes(t, fsys, segs[len(segs)-1]))
		_, _, err := Open(fsys, "wal", Options{SegmentSize: minSegmentSize})
		require.ErrorIs(t, err, ErrCorrupt)
		require.Contains(t, err.Error(), "no header")
	})
	t.Run("unknown format version", func(t *testing.T) {
		fsys := NewMemFS()
		w, _ := openWAL(t, fsys, "wal", Options{})
		require.NoError(t, w.Close())
		seg := segmentFiles(t, fsys, "wal")[0]
		data := fileBytes(t, fsys, seg)
		f, err := decodeFrame(data, 0)
		require.NoError(t, err)
		payload := append([]byte(nil), f.payload...)
		payload[0] = 99
		b, start := beginFrame(nil)
		copy(data, finishFrame(append(b, payload...), start, recordSegmentHeader))
		_, _, err = Open(fsys, "wal", Options{})
		require.ErrorIs(t, err, ErrCorrupt)
		require.Contains(t, err.Error(), "unsupported wal format version 99")
	})
}

// TestWALFlipInTheSlackOfAnOlderSegmentIsHarmless flips bits in the zeros
// after an older segment's last frame: nothing is lost, so nothing fails.
func TestWALFlipInTheSlackOfAnOlderSegmentIsHarmless(t *testing.T) {
	base, segs := multiSegmentWAL(t, 40)
	data := fileBytes(t, base, segs[0])
	offs := frameOffsets(t, data)
	lastFrame, _ := decodeFrame(data, offs[len(offs)-1])
	for _, off := range []int{lastFrame.end, lastFrame.end + 5, lastFrame.end + 12, lastFrame.end + 13, len(data) - 1} {
		fsys := cloneMemFS(t, base)
		fileBytes(t, fsys, segs[0])[off] ^= 0x10
		_, rec, err := Open(fsys, "wal", Options{SegmentSize: minSegmentSize})
		require.NoError(t, err, "flip at %d", off)
		require.Len(t, rec.Entries, 40)
	}
}

func TestWALDataAfterAGapInTheLastSegmentIsDiscarded(t *testing.T) {
	base, seg, start, end := walWithLastRecord(t, 5, lastRecords["entry"])
	data := fileBytes(t, base, seg)
	// A later write survived and the one before it did not.
	copy(data[end+100:], data[start:end])
	clear(data[start:end])
	w, rec := openWAL(t, base, "wal", Options{SegmentSize: 64 << 10})
	require.Equal(t, makeEntries(1, 1, 5, 40), rec.Entries)
	require.NotNil(t, rec.TornTail)
	require.Equal(t, start, rec.TornTail.Offset)
	require.True(t, allZero(fileBytes(t, base, seg)[start:]), "the stray data is zeroed before anything is written after it")
	require.NoError(t, w.Close())
}
