package embed

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/raft"
)

// TestMaxInflightAppendsReachesRaft checks that --max-inflight-appends is
// the window raft keeps to each follower, that 0 means the server's
// default, and that a negative window is refused with the flag's name.
func TestMaxInflightAppendsReachesRaft(t *testing.T) {
	start := func(n int) (int, error) {
		var window int
		m, err := Start(Config{
			Name: "m1", DataDir: t.TempDir(), MaxInflightAppends: n,
			ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{"http://" + freeAddr(t)},
			HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
			TuneRaft: func(c *raft.Config) { window = c.MaxInflightMsgs },
		})
		if err != nil {
			return 0, err
		}
		require.NoError(t, m.Stop())
		return window, nil
	}
	window, err := start(32)
	require.NoError(t, err)
	assert.Equal(t, 32, window)
	window, err = start(0)
	require.NoError(t, err)
	assert.Equal(t, 4, window, "the default")
	_, err = start(-1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--max-inflight-appends")
}
