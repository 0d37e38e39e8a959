package server

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestDedupAppliesEachProposalOnce(t *testing.T) {
	d := newDedup()
	assert.True(t, d.firstTime(1, 7, 1, 10))
	assert.False(t, d.firstTime(1, 7, 1, 11), "a duplicate")
	assert.True(t, d.firstTime(1, 8, 1, 12), "another incarnation of the proposer")
	assert.True(t, d.firstTime(2, 7, 1, 13), "another proposer")
	assert.True(t, d.firstTime(1, 7, 0, 14), "ID 0 is never deduplicated")
	assert.True(t, d.firstTime(1, 7, 0, 15))
	assert.True(t, d.firstTime(1, 7, 3, 16), "out of order")
	assert.True(t, d.firstTime(1, 7, 2, 17))
	assert.False(t, d.firstTime(1, 7, 3, 18))

	// A proposer that restarted more often than the table keeps
	// incarnations: its newest one is still deduplicated (the one its
	// pending writes come from).
	index := uint64(100)
	for inc := uint64(100); inc < 110; inc++ {
		index++
		assert.True(t, d.firstTime(1, inc, 1, index))
		index++
		assert.False(t, d.firstTime(1, inc, 1, index), "incarnation %d", inc)
	}
}

// TestPropertyDedup compares the window with a set that remembers
// everything: they agree on every proposal until the window has had to
// forget (then the window errs on the side of "seen": at most once).
func TestPropertyDedup(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := newDedup()
		seen := map[[3]uint64]bool{}
		maxID := map[[2]uint64]uint64{}
		for i := range rapid.IntRange(1, 3000).Draw(t, "n") {
			proposer := rapid.Uint64Range(1, 3).Draw(t, "proposer")
			inc := rapid.Uint64Range(1, 2).Draw(t, "incarnation")
			src := [2]uint64{proposer, inc}
			// Mostly increasing IDs with duplicates and stragglers.
			id := maxID[src] + 1
			if rapid.IntRange(0, 4).Draw(t, "kind") == 0 && maxID[src] > 0 {
				id = rapid.Uint64Range(1, maxID[src]).Draw(t, "old")
			}
			maxID[src] = max(maxID[src], id)
			key := [3]uint64{proposer, inc, id}
			got := d.firstTime(proposer, inc, id, uint64(i+1))
			require.Equal(t, !seen[key], got, "proposal %v", key)
			seen[key] = true
		}
		// The table survives a snapshot round trip.
		b := d.appendBinary(nil)
		d2, rest, err := decodeDedup(b)
		require.NoError(t, err)
		require.Empty(t, rest)
		require.Equal(t, b, d2.appendBinary(nil))
	})
}
