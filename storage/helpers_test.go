package storage

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/raftkv/raftkv/raft"
	"github.com/stretchr/testify/require"
)

// makeEntries returns entries from..to (inclusive) of term, each holding
// size bytes that name it.
func makeEntries(term, from, to uint64, size int) []raft.Entry {
	var ents []raft.Entry
	for i := from; i <= to; i++ {
		data := []byte(fmt.Sprintf("%d/%d:", term, i))
		for len(data) < size {
			data = append(data, byte('a'+i%26))
		}
		ents = append(ents, raft.Entry{Term: term, Index: i, Data: data[:max(size, 0):max(size, 0)]})
	}
	return ents
}

// openWAL opens the WAL in dir and fails the test on error.
func openWAL(t testing.TB, fsys FS, dir string, opts Options) (*WAL, Recovered) {
	t.Helper()
	w, rec, err := Open(fsys, dir, opts)
	require.NoError(t, err)
	return w, rec
}

// segmentFiles returns the paths of the WAL segments in dir.
func segmentFiles(t testing.TB, fsys FS, dir string) []string {
	t.Helper()
	names, err := fsys.List(dir)
	require.NoError(t, err)
	var paths []string
	for _, name := range names {
		if _, ok := parseSegmentName(name); ok {
			paths = append(paths, filepath.Join(dir, name))
		}
	}
	return paths
}

// cloneMemFS copies every file of src into a new MemFS.
func cloneMemFS(t testing.TB, src *MemFS) *MemFS {
	t.Helper()
	dst := NewMemFS()
	src.mu.Lock()
	defer src.mu.Unlock()
	for dir := range src.dirs {
		dst.dirs[dir] = true
	}
	for name, d := range src.files {
		dst.files[name] = &memData{data: append([]byte(nil), d.data...)}
	}
	return dst
}

// fileBytes returns the contents of a MemFS file, which the test may change.
func fileBytes(t testing.TB, m *MemFS, name string) []byte {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.files[filepath.Clean(name)]
	require.NotNil(t, d, "no file %s", name)
	return d.data
}
