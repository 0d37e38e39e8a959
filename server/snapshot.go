package server

import (
	"errors"
	"fmt"
	"io"
)

// A member's snapshot is everything its state machine holds: the
// deduplication table, the member table and the key space.
//
//	byte 0     snapshotVersion
//	...        dedup table (dedup.appendBinary)
//	...        member table (cluster.appendBinary)
//	rest       the key space (kvstore.Store.Save, which has its own
//	           version byte and checksum)
//
// The snapshot file that holds it (storage.Snapshotter) adds a checksum of
// the whole.

const snapshotVersion = 1

var errBadSnapshot = errors.New("server: malformed snapshot")

func (m *Member) snapshotData() ([]byte, error) {
	b := []byte{snapshotVersion}
	b = m.dedup.appendBinary(b)
	b = m.cluster.appendBinary(b)
	// The key space, the bulk of it, is written after the header in one
	// buffer sized once, not saved apart and copied.
	b, err := m.store.AppendSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("save key space: %w", err)
	}
	return b, nil
}

// writeSnapshot writes what snapshotData returns to w, in pieces.
func (m *Member) writeSnapshot(w io.Writer) error {
	b := []byte{snapshotVersion}
	b = m.dedup.appendBinary(b)
	b = m.cluster.appendBinary(b)
	if _, err := w.Write(b); err != nil {
		return err
	}
	if err := m.store.WriteSnapshot(w); err != nil {
		return fmt.Errorf("save key space: %w", err)
	}
	return nil
}

// restoreSnapshot replaces the member's state machine with data.
func (m *Member) restoreSnapshot(data []byte) error {
	if len(data) == 0 || data[0] != snapshotVersion {
		return fmt.Errorf("%w: unknown version", errBadSnapshot)
	}
	d, rest, err := decodeDedup(data[1:])
	if err != nil {
		return err
	}
	c, rest, err := decodeCluster(rest)
	if err != nil {
		return err
	}
	if err := m.store.Restore(rest); err != nil {
		return fmt.Errorf("restore key space: %w", err)
	}
	m.dedup, m.cluster = d, c
	return nil
}
