package server

import (
	"fmt"

	"github.com/raftkv/raftkv/raft"
)

// snapshotLog is what raft reads as its storage (raft.Config.Storage): the
// member's durable log mirrored in memory, except for a snapshot's data.
// That is the whole state machine — some 80 MB at a million keys — and
// once the snapshot is durable its file holds it, so the in-memory mirror
// keeps only the snapshot's metadata. Raft reads the data only to send it
// to a follower that lags behind the compacted log; it is then read back
// from the file and kept while the transfer goes on, until
// snapshotDataIdleTicks ticks pass without a read.
type snapshotLog struct {
	*raft.MemoryStorage
	// load reads the data of the snapshot at an index back from disk.
	load func(index uint64) ([]byte, error)
	// unreadable is told when the snapshot file cannot be read back (the
	// member then takes a new snapshot).
	unreadable func(error)
	// outdated reports that a newer snapshot is wanted and not taken yet
	// (one that names a member added since, which refuses any other; or
	// one replacing an unreadable file, when the disk was full): the
	// current one is not sent meanwhile.
	outdated func() bool
	// data is the cached data of the snapshot at dataIndex; nil when none.
	data      []byte
	dataIndex uint64
	// lastRead is the tick of the last read of data.
	lastRead uint64
	// ticks is the member's tick count as of its last Tick.
	ticks uint64
}

// snapshotDataIdleTicks is how long snapshot data read back from disk stays
// in memory after its last read: chunks of a transfer are read as their
// acknowledgements come, several per heartbeat interval.
const snapshotDataIdleTicks = 50

// Snapshot implements raft.Storage: the mirror's snapshot, with its data
// read back from disk if the mirror dropped it. A file that cannot be read
// makes the snapshot temporarily unavailable (raft retries later) and asks
// for a new one.
func (l *snapshotLog) Snapshot() (raft.Snapshot, error) {
	snap, err := l.MemoryStorage.Snapshot()
	if err != nil || snap.IsEmpty() {
		return snap, err
	}
	if l.outdated != nil && l.outdated() {
		return raft.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
	}
	if snap.Data != nil {
		return snap, nil
	}
	if l.data == nil || l.dataIndex != snap.Metadata.Index {
		l.data = nil
		data, err := l.load(snap.Metadata.Index)
		if err != nil {
			l.unreadable(fmt.Errorf("read snapshot %d back: %w", snap.Metadata.Index, err))
			return raft.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
		}
		l.data, l.dataIndex = data, snap.Metadata.Index
	}
	l.lastRead = l.ticks
	snap.Data = l.data
	return snap, nil
}

// tick advances the log's clock to the member's and drops cached data that
// has not been read for snapshotDataIdleTicks.
func (l *snapshotLog) tick(ticks uint64) {
	l.ticks = ticks
	if l.data != nil && l.ticks-l.lastRead > snapshotDataIdleTicks {
		l.data = nil
	}
}

// withoutData is snap's metadata alone: what the in-memory mirror keeps of
// a durable snapshot.
func withoutData(snap raft.Snapshot) raft.Snapshot {
	return raft.Snapshot{Metadata: snap.Metadata}
}

// snapshotUnreadable is told that the latest snapshot's file cannot be read
// back (damaged on disk since it was written): a new snapshot, taken once
// another entry applies, replaces it, and raft sends that one.
func (m *Member) snapshotUnreadable(error) {
	m.snapshotNow = true
}
