package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/raftkv/raftkv/raft"
)

// BenchmarkWALSave measures group commit on the real disk: one Save of a
// batch of 256-byte entries plus a hard state, with one fsync, per
// iteration. Compare fsyncs/s with BenchmarkFsync on the same disk: with
// batches, the WAL's throughput is the disk's fsync rate times the batch.
func BenchmarkWALSave(b *testing.B) {
	for _, batch := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			benchmarkWALSave(b, OSFS{}, b.TempDir(), batch, true)
		})
	}
}

// BenchmarkWALSaveNoSync measures what the WAL costs without the disk:
// encoding, checksums and the write into memory.
func BenchmarkWALSaveNoSync(b *testing.B) {
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			benchmarkWALSave(b, NewMemFS(), "wal", batch, false)
		})
	}
}

func benchmarkWALSave(b *testing.B, fsys FS, dir string, batch int, sync bool) {
	w, _, err := Open(fsys, dir, Options{SegmentSize: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	ents := makeEntries(1, 1, uint64(batch), 256)
	b.SetBytes(int64(batch * 256))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range ents {
			ents[j].Index = uint64(i*batch + j + 1)
		}
		hs := raft.HardState{Term: 1, Vote: 1, Commit: uint64(i * batch)}
		if err := w.Save(hs, ents, sync); err != nil {
			b.Fatal(err)
		}
		if len(w.segments) > 2 {
			// As a member does after a snapshot: keeps memory and disk bounded.
			if err := w.SaveSnapshotMarker(raft.SnapshotMetadata{Index: w.lastIndex, Term: 1}); err != nil {
				b.Fatal(err)
			}
			if err := w.ReleaseTo(w.lastIndex); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	seconds := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*batch)/seconds, "entries/s")
	if sync {
		b.ReportMetric(float64(b.N)/seconds, "fsyncs/s")
		b.ReportMetric(seconds*1e6/float64(b.N), "µs/fsync")
	}
}

// BenchmarkFsync measures the disk itself: write 256 bytes and fsync, as
// an append that grows the file (fsync, which must also write the new size)
// and as a write into preallocated space (fdatasync, what the WAL does).
func BenchmarkFsync(b *testing.B) {
	record := make([]byte, 256)
	b.Run("append+fsync", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := f.Write(record); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		reportFsyncs(b)
	})
	b.Run("preallocated+fdatasync", func(b *testing.B) {
		f, err := OSFS{}.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := f.Preallocate(int64(b.N+1) * int64(len(record))); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := f.WriteAt(record, int64(i*len(record))); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		reportFsyncs(b)
	})
}

func reportFsyncs(b *testing.B) {
	b.StopTimer()
	seconds := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/seconds, "fsyncs/s")
	b.ReportMetric(seconds*1e6/float64(b.N), "µs/fsync")
}
