package server

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/storage"
)

// A snapshot that finds the disk full is not fatal: the log it would have
// compacted is still in the WAL, so the member goes on (refusing writes
// only where the WAL itself has no room) and takes the snapshot once there
// is room again.
func TestSnapshotOnAFullDiskIsTakenLater(t *testing.T) {
	fs := storage.NewFaultyFS()
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.FS = fs
		cfg.SnapshotEvery, cfg.SnapshotKeep = 20, 5
	})
	lead := c.leader()
	m := c.members[lead]
	fs.SetCapacity(fs.Used())
	// Writes go on into the WAL's preallocated space; the snapshot after the
	// 20th applied entry cannot be written.
	written := 0
	for i := range 40 {
		r := c.do(lead, set(fmt.Sprintf("/k%d", i), "v"))
		if r.Err == nil {
			written++
		} else {
			require.True(t, errors.Is(r.Err, ErrNoSpace), "write %d: %v", i, r.Err)
		}
	}
	require.Positive(t, written, "no write went through: the test saw nothing")
	assert.Zero(t, m.snapshotIndex, "a snapshot was saved on a full disk?")

	fs.SetCapacity(-1)
	for i := 0; m.snapshotIndex == 0; i++ {
		require.Less(t, i, 100, "no snapshot once the disk had room")
		require.NoError(t, c.do(lead, set("/after", fmt.Sprint(i))).Err)
		c.tick(1)
	}
	// Everything acknowledged survives a restart from the snapshot and WAL.
	before := c.hashes()[lead]
	c.restart(lead)
	c.leader()
	after := c.hashes()[lead]
	assert.Equal(t, before[1], after[1], "the key space after the restart")
	assert.GreaterOrEqual(t, after[0], before[0], "the applied index after the restart")
}
