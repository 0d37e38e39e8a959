package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/embed"
)

// TestBackupBadInput: backup and restore refuse what they cannot use with
// an error that names the file (and, for a damaged WAL, the offset), and
// leave the data as it was. (TestOperationsDoc backs up a running member
// and restores it.)
func TestBackupBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := raftkvBinary(t)
	dataDir := filepath.Join(t.TempDir(), "m1.data")
	m, err := embed.Start(embed.Config{Name: "m1", DataDir: dataDir, SnapshotCount: 10,
		ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{"http://127.0.0.1:0"},
		HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	for i := range 30 {
		require.Eventually(t, func() bool {
			code, _ := putValue(m.ClientURLs()[0]+fmt.Sprintf("/v2/keys/k%02d", i), "v")
			return code == http.StatusCreated
		}, 10*time.Second, 20*time.Millisecond)
	}
	require.NoError(t, m.Stop())

	root := t.TempDir()
	good := filepath.Join(root, "good")
	out, err := exec.Command(bin, "backup", "--data-dir", dataDir, "--backup-dir", good).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "backed up "+dataDir+" to "+good)

	t.Run("missing data dir", func(t *testing.T) {
		out, err := exec.Command(bin, "backup", "--data-dir", filepath.Join(root, "nope"), "--backup-dir", filepath.Join(root, "b")).CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), filepath.Join(root, "nope")+" is not a raftkv data dir")
	})
	t.Run("backup dir not empty", func(t *testing.T) {
		out, err := exec.Command(bin, "backup", "--data-dir", dataDir, "--backup-dir", good).CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), good+" is not empty")
	})

	// restore copies the good backup, damages the copy with damage, starts
	// a new cluster from it and expects an error saying want; the copy
	// must be left as it was.
	restore := func(t *testing.T, damage func(dir string), want ...string) {
		dir := filepath.Join(t.TempDir(), "r1.data")
		require.NoError(t, os.CopyFS(dir, os.DirFS(good)))
		damage(dir)
		before := hashTree(t, dir)
		cmd := exec.Command(bin, "serve", "--name", "r1", "--data-dir", dir, "--force-new-cluster",
			"--listen-client-urls", "http://127.0.0.1:0", "--listen-peer-urls", "http://127.0.0.1:0")
		timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
		out, err := cmd.CombinedOutput()
		timer.Stop()
		require.Error(t, err, "a damaged backup was restored:\n%s", out)
		for _, w := range want {
			assert.Contains(t, string(out), w)
		}
		assert.Equal(t, before, hashTree(t, dir), "the failed restore changed the data dir")
	}
	walFile := func(dir string) string {
		names, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
		require.NoError(t, err)
		require.Len(t, names, 1)
		return names[0]
	}
	t.Run("damaged WAL record", func(t *testing.T) {
		var seg string
		var offset int
		restore(t, func(dir string) {
			seg = walFile(dir)
			data, err := os.ReadFile(seg)
			require.NoError(t, err)
			used := len(strings.TrimRight(string(data), "\x00"))
			offset = used / 2
			data[offset] ^= 0x40
			require.NoError(t, os.WriteFile(seg, data, 0o600))
		}, "--force-new-cluster", "segment "+filepath.Base(walFileName(t, good)), "corrupt record at offset")
	})
	t.Run("missing snapshot", func(t *testing.T) {
		restore(t, func(dir string) {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "snap")))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "snap"), 0o700))
		}, "--force-new-cluster", "needs snapshot", "missing or damaged")
	})
	t.Run("damaged snapshot", func(t *testing.T) {
		var name string
		restore(t, func(dir string) {
			names, err := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
			require.NoError(t, err)
			require.NotEmpty(t, names)
			name = names[len(names)-1]
			data, err := os.ReadFile(name)
			require.NoError(t, err)
			data[len(data)/2] ^= 1
			require.NoError(t, os.WriteFile(name, data, 0o600))
		}, "needs snapshot", filepath.Base(lastSnap(t, good)))
	})
	t.Run("no backup at all", func(t *testing.T) {
		restore(t, func(dir string) {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "wal")))
		}, "--force-new-cluster", "holds no WAL")
	})
	t.Run("a backup restores", func(t *testing.T) {
		// The same steps with the backup intact: the check above is not
		// failing for some other reason.
		dir := filepath.Join(t.TempDir(), "r1.data")
		require.NoError(t, os.CopyFS(dir, os.DirFS(good)))
		client := "http://" + loopbackAddr(t)
		cmd := exec.Command(bin, "serve", "--name", "r1", "--data-dir", dir, "--force-new-cluster",
			"--listen-client-urls", client, "--listen-peer-urls", "http://"+loopbackAddr(t))
		logs := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		require.NoError(t, cmd.Start())
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		require.Eventually(t, func() bool {
			r, err := getKey(client, "/k29")
			return err == nil && r.Status == http.StatusOK
		}, 20*time.Second, 50*time.Millisecond, "%s", logs)
	})
}

func walFileName(t *testing.T, dir string) string {
	names, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	require.NoError(t, err)
	require.Len(t, names, 1)
	return names[0]
}

func lastSnap(t *testing.T, dir string) string {
	names, err := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
	require.NoError(t, err)
	require.NotEmpty(t, names)
	return names[len(names)-1]
}

// hashTree hashes every file under dir, by path.
func hashTree(t *testing.T, dir string) map[string][32]byte {
	out := map[string][32]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[path] = sha256.Sum256(data)
		return nil
	}))
	return out
}
