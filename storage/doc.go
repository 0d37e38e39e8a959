// Package storage makes a member's raft state durable: a write-ahead log
// (WAL) of hard states, entries and snapshot markers, and snapshot files,
// both written against a small file-system interface (FS) with three
// implementations: the real disk (OSFS), memory (MemFS), and the
// simulator's faulty disk (FaultyFS), which loses unsynced writes when it
// crashes, tears the last one, flips bits and fills up. The simulator thus
// runs the very code that production runs.
//
// # The persistence contract
//
// raft.Ready says what to store and in which order: the snapshot, if any
// (Snapshotter.Save, then WAL.SaveSnapshotMarker), then entries and hard
// state (WAL.Save, fsynced when Ready.MustSync), and only then may
// MessagesAfterPersist leave. On restart, Open replays the WAL,
// Snapshotter.Load(rec.Snapshot.Index) finds the snapshot it needs, and
// NewMemoryStorage puts both together for raft.
//
// # Segments
//
// The WAL is a directory of segment files named <seq>-<first index>.wal
// (16 hex digits each, so they sort). A segment is preallocated to
// Options.SegmentSize and filled with frames, one record each: length, type,
// CRC32C of the payload, CRC32C of the header itself, the payload, and an
// end mark (record.go has the layout). Record types: a segment header
// (format version, the segment's sequence and first index, and the hard
// state and snapshot marker in force when it was made), an entry, a hard
// state, a snapshot marker.
//
// Save encodes a whole batch — entries first, then the hard state, so that a
// torn write may lose the commit index but never claims an entry it lacks —
// and writes it with one write call and, if asked, one fsync: group commit.
// When a batch does not fit, the WAL moves to a new segment: it fsyncs the
// old one, writes the new one under a temporary name (preallocated, header,
// fsync), renames it into place and fsyncs the directory. ReleaseTo removes
// the oldest segments once a snapshot covers every entry in them.
//
// # Recovery
//
// Open reads the segments in order and rebuilds the log:
//   - an entry replaces the entry at its index and every one after it (the
//     log is append-only on disk; a leader's conflicting rewrite of index i
//     voids what was written after i before it);
//   - a snapshot marker either keeps the entries after its index (the log
//     held its last entry: a local compaction) or voids every entry written
//     before it (it replaced the log: a snapshot sent by the leader);
//   - the last hard state wins;
//   - each segment header must agree with what the segments before it left,
//     and sequence numbers must be consecutive: a missing record or segment
//     is an error, not a shorter log.
//
// The WAL only ever writes into zero-filled space, so a write that a crash
// interrupted leaves a frame that stops early followed by nothing but
// zeros. Such a torn frame at the very end of the last segment is cut off
// (and the space zeroed again) and reported in Recovered.TornTail: it was
// never synced, so nothing acknowledged is lost. Any other bad frame — a
// flipped bit, a frame followed by more data — stops Open with a
// *CorruptError naming the segment and the byte offset. A frame that was
// completely written carries its end mark, so even the last one is told
// apart from a torn one when a bit flips in it.
//
// An older segment was fsynced whole before the next one was made, so it
// cannot end in a torn write. If it seems to, the next segment's header —
// which records the log's last index and term, the hard state and the
// snapshot marker as they stood — decides: if they agree with what was
// replayed, nothing was lost (a bit flipped in the zeros after the last
// frame) and recovery goes on; if not, Open fails naming the damaged frame.
//
// # Failures
//
// A full disk surfaces when a segment is created or grown, before anything
// of the batch is written: Save returns an error wrapping ErrDiskFull and
// the WAL stays usable. A failed write or fsync fails the WAL for good
// (ErrFailed; see WAL for why retrying an fsync is unsafe). Either way,
// everything acknowledged before stays durable.
//
// # Snapshot files
//
// A snapshot is saved as <term>-<index>.snap: version, metadata, data and a
// CRC32C, written to a temporary file, fsynced, renamed, and the directory
// fsynced. Load skips (and reports) files that fail their checks.
package storage
