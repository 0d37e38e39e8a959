package embed

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/storage"
)

// TestIdentityFile: identity.json round-trips, is absent from a new data
// dir, and a damaged one stops start-up with an error naming the file.
func TestIdentityFile(t *testing.T) {
	fs := storage.NewMemFS()
	dir := "/data/m1"
	_, ok, err := readIdentity(fs, dir)
	require.NoError(t, err)
	assert.False(t, ok)

	want := identity{Name: "m1", MemberID: 0x8e9e05c52164694d, ClusterID: 0xcdf818194e3a8c32, PeerClusterID: 7}
	require.NoError(t, writeIdentity(fs, dir, want))
	got, ok, err := readIdentity(fs, dir)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, want, got)

	for _, bad := range []string{`{"memberID":"zz"}`, `{"memberID":"0","peerClusterID":"1"}`, `not json`} {
		f, err := fs.Create(filepath.Join(dir, identityFile))
		require.NoError(t, err)
		_, err = f.WriteAt([]byte(bad), 0)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		_, _, err = readIdentity(fs, dir)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), filepath.Join(dir, identityFile)+" is damaged")
	}
}
