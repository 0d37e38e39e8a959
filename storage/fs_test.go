package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fileSystems returns each FS implementation with a directory to work in.
func fileSystems(t *testing.T) map[string]func() (FS, string) {
	return map[string]func() (FS, string){
		"OSFS":     func() (FS, string) { return OSFS{}, t.TempDir() },
		"MemFS":    func() (FS, string) { return NewMemFS(), "data" },
		"FaultyFS": func() (FS, string) { return NewFaultyFS(), "data" },
	}
}

// TestFSConformance checks that the three implementations behave alike.
func TestFSConformance(t *testing.T) {
	for name, setup := range fileSystems(t) {
		t.Run(name, func(t *testing.T) {
			fsys, root := setup()
			dir := filepath.Join(root, "a", "b")
			_, err := fsys.Create(filepath.Join(dir, "x"))
			require.ErrorIs(t, err, fs.ErrNotExist, "create in a missing directory")
			require.NoError(t, fsys.MkdirAll(dir))
			require.NoError(t, fsys.MkdirAll(dir), "MkdirAll of an existing directory")

			f, err := fsys.Create(filepath.Join(dir, "x"))
			require.NoError(t, err)
			n, err := f.WriteAt([]byte("hello"), 0)
			require.NoError(t, err)
			require.Equal(t, 5, n)
			_, err = f.WriteAt([]byte("world"), 8) // leaves a gap of zeros
			require.NoError(t, err)
			requireContents(t, f, "hello\x00\x00\x00world")

			require.NoError(t, f.Preallocate(20))
			requireContents(t, f, "hello\x00\x00\x00world\x00\x00\x00\x00\x00\x00\x00")
			require.NoError(t, f.Preallocate(4), "Preallocate never shrinks")
			size, err := f.Size()
			require.NoError(t, err)
			require.EqualValues(t, 20, size)
			require.NoError(t, f.Truncate(3))
			requireContents(t, f, "hel")
			require.NoError(t, f.Truncate(5))
			requireContents(t, f, "hel\x00\x00")
			buf := make([]byte, 4)
			n, err = f.ReadAt(buf, 3)
			require.ErrorIs(t, err, io.EOF, "a short read reports io.EOF")
			require.Equal(t, 2, n)
			require.NoError(t, f.Sync())
			require.NoError(t, f.Close())

			g, err := fsys.Create(filepath.Join(dir, "y"))
			require.NoError(t, err)
			require.NoError(t, g.Close())
			require.NoError(t, fsys.MkdirAll(filepath.Join(dir, "sub")))
			names, err := fsys.List(dir)
			require.NoError(t, err)
			require.Equal(t, []string{"x", "y"}, names, "files only, sorted")

			require.NoError(t, fsys.Rename(filepath.Join(dir, "x"), filepath.Join(dir, "y")), "rename replaces")
			names, err = fsys.List(dir)
			require.NoError(t, err)
			require.Equal(t, []string{"y"}, names)
			f, err = fsys.Open(filepath.Join(dir, "y"))
			require.NoError(t, err)
			requireContents(t, f, "hel\x00\x00")
			require.NoError(t, f.Close())

			require.NoError(t, fsys.Remove(filepath.Join(dir, "y")))
			_, err = fsys.Open(filepath.Join(dir, "y"))
			require.ErrorIs(t, err, fs.ErrNotExist)
			require.ErrorIs(t, fsys.Remove(filepath.Join(dir, "y")), fs.ErrNotExist)
			require.NoError(t, fsys.SyncDir(dir))

			f, err = fsys.Create(filepath.Join(dir, "z"))
			require.NoError(t, err)
			require.NoError(t, f.Close())
			_, err = f.WriteAt([]byte("x"), 0)
			require.Error(t, err, "a closed file cannot be written")
		})
	}
}

func requireContents(t *testing.T, f File, want string) {
	t.Helper()
	size, err := f.Size()
	require.NoError(t, err)
	got := make([]byte, size)
	n, _ := f.ReadAt(got, 0)
	require.Equal(t, want, string(got[:n]))
}

func TestOSFSMapsENOSPCToErrDiskFull(t *testing.T) {
	err := osError(&os.PathError{Op: "write", Path: "f", Err: syscall.ENOSPC})
	require.ErrorIs(t, err, ErrDiskFull)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Contains(t, err.Error(), "write f")
	require.NotErrorIs(t, osError(&os.PathError{Op: "write", Path: "f", Err: syscall.EIO}), ErrDiskFull)
}

// faultyFile creates name in fsys (directory "d"), writes synced and then
// unsynced (in writes of 4 bytes), and returns the final contents.
func faultyScenario(t *testing.T, fsys *FaultyFS, synced, unsynced string, syncDir bool) {
	t.Helper()
	require.NoError(t, fsys.MkdirAll("d"))
	f, err := fsys.Create("d/f")
	require.NoError(t, err)
	_, err = f.WriteAt([]byte(synced), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	if syncDir {
		require.NoError(t, fsys.SyncDir("d"))
	}
	for off := 0; off < len(unsynced); off += 4 {
		end := min(off+4, len(unsynced))
		_, err = f.WriteAt([]byte(unsynced[off:end]), int64(len(synced)+off))
		require.NoError(t, err)
	}
}

func readFaulty(t *testing.T, fsys *FaultyFS, name string) (string, bool) {
	t.Helper()
	data, err := readAll(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	require.NoError(t, err)
	return string(data), true
}

func TestFaultyFSCrashKeepsSyncedAndAPrefixOfTheRest(t *testing.T) {
	const synced, unsynced = "durable|", "0123456789abcdef"
	outcomes := map[string]int{}
	for seed := range uint64(300) {
		fsys := NewFaultyFS()
		faultyScenario(t, fsys, synced, unsynced, true)
		fsys.Crash(rand.New(rand.NewPCG(seed, 0)))
		got, ok := readFaulty(t, fsys, "d/f")
		require.True(t, ok, "a synced file in a synced directory survives")
		require.GreaterOrEqual(t, len(got), len(synced))
		require.Equal(t, synced+unsynced[:len(got)-len(synced)], got, "seed %d: synced data, then a prefix of what followed", seed)
		switch kept := len(got) - len(synced); {
		case kept == 0:
			outcomes["none"]++
		case kept == len(unsynced):
			outcomes["all"]++
		case kept%4 != 0:
			outcomes["torn"]++
		default:
			outcomes["whole writes"]++
		}
	}
	for _, o := range []string{"none", "all", "torn", "whole writes"} {
		assert.Positive(t, outcomes[o], "no crash kept %s of the unsynced writes: %v", o, outcomes)
	}
}

func TestFaultyFSCrashUndoesUnsyncedDirectoryChanges(t *testing.T) {
	t.Run("create", func(t *testing.T) {
		seen := map[bool]int{}
		for seed := range uint64(50) {
			fsys := NewFaultyFS()
			faultyScenario(t, fsys, "synced data", "", false)
			fsys.Crash(rand.New(rand.NewPCG(seed, 1)))
			got, ok := readFaulty(t, fsys, "d/f")
			if ok {
				require.Equal(t, "synced data", got)
			}
			seen[ok]++
		}
		require.Positive(t, seen[false], "the unsynced creation is sometimes lost, data and all")
		require.Positive(t, seen[true], "and sometimes kept")
	})
	for _, op := range []string{"rename", "remove"} {
		t.Run(op, func(t *testing.T) {
			seen := map[string]int{}
			for seed := range uint64(50) {
				fsys := NewFaultyFS()
				faultyScenario(t, fsys, "v1", "", true)
				if op == "rename" {
					require.NoError(t, fsys.Rename("d/f", "d/g"))
				} else {
					require.NoError(t, fsys.Remove("d/f"))
				}
				fsys.Crash(rand.New(rand.NewPCG(seed, 2)))
				names, err := fsys.List("d")
				require.NoError(t, err)
				require.LessOrEqual(t, len(names), 1)
				seen[fmt.Sprint(names)]++
			}
			want := map[string][]string{"rename": {"[f]", "[g]"}, "remove": {"[f]", "[]"}}[op]
			for _, w := range want {
				require.Positive(t, seen[w], "outcome %s never happened: %v", w, seen)
			}
		})
	}
	t.Run("SyncDir makes them durable", func(t *testing.T) {
		for seed := range uint64(20) {
			fsys := NewFaultyFS()
			faultyScenario(t, fsys, "v1", "", true)
			require.NoError(t, fsys.Rename("d/f", "d/g"))
			require.NoError(t, fsys.SyncDir("d"))
			fsys.Crash(rand.New(rand.NewPCG(seed, 3)))
			got, ok := readFaulty(t, fsys, "d/g")
			require.True(t, ok)
			require.Equal(t, "v1", got)
		}
	})
}

func TestFaultyFSIsDeterministic(t *testing.T) {
	run := func(seed uint64) string {
		fsys := NewFaultyFS()
		require.NoError(t, fsys.MkdirAll("d"))
		for i := range 10 {
			f, err := fsys.Create(fmt.Sprintf("d/f%d", i))
			require.NoError(t, err)
			_, err = f.WriteAt([]byte(fmt.Sprintf("file %d, some bytes", i)), 0)
			require.NoError(t, err)
			if i%3 == 0 {
				require.NoError(t, f.Sync())
			}
			if i%4 == 0 {
				require.NoError(t, fsys.SyncDir("d"))
			}
		}
		rng := rand.New(rand.NewPCG(seed, 4))
		fsys.Crash(rng)
		var state string
		names, err := fsys.List("d")
		require.NoError(t, err)
		for _, name := range names {
			got, _ := readFaulty(t, fsys, "d/"+name)
			state += name + "=" + got + ";"
		}
		return state
	}
	differ := false
	for seed := range uint64(20) {
		require.Equal(t, run(seed), run(seed), "seed %d", seed)
		differ = differ || run(seed) != run(seed+100)
	}
	require.True(t, differ, "different seeds should crash differently")
}

func TestFaultyFSDiskFull(t *testing.T) {
	fsys := NewFaultyFS()
	require.NoError(t, fsys.MkdirAll("d"))
	f, err := fsys.Create("d/f")
	require.NoError(t, err)
	fsys.SetCapacity(10)
	n, err := f.WriteAt([]byte("0123456789abc"), 0)
	require.ErrorIs(t, err, ErrDiskFull)
	require.Contains(t, err.Error(), "d/f")
	require.Equal(t, 10, n, "a write that does not fit writes what does")
	require.EqualValues(t, 10, fsys.Used())
	_, err = f.WriteAt([]byte("ABCD"), 2)
	require.NoError(t, err, "overwriting takes no room")
	require.ErrorIs(t, f.Preallocate(11), ErrDiskFull)
	require.ErrorIs(t, f.Truncate(11), ErrDiskFull)
	requireContents(t, f, "01ABCD6789")
	fsys.SetCapacity(-1)
	require.NoError(t, f.Preallocate(100))
}

func TestFaultyFSSyncError(t *testing.T) {
	injected := errors.New("injected EIO")
	lost := 0
	for seed := range uint64(30) {
		fsys := NewFaultyFS()
		faultyScenario(t, fsys, "synced", "", true)
		f, err := fsys.Open("d/f")
		require.NoError(t, err)
		_, err = f.WriteAt([]byte("+more"), 6)
		require.NoError(t, err)
		fsys.SetSyncError(injected)
		err = f.Sync()
		require.ErrorIs(t, err, injected)
		require.Contains(t, err.Error(), "d/f")
		require.ErrorIs(t, fsys.SyncDir("d"), injected)
		fsys.Crash(rand.New(rand.NewPCG(seed, 5)))
		got, _ := readFaulty(t, fsys, "d/f")
		if got == "synced" {
			lost++
		}
	}
	require.Positive(t, lost, "a failed sync makes nothing durable")
}

func TestFaultyFSFlipBitSurvivesCrash(t *testing.T) {
	fsys := NewFaultyFS()
	faultyScenario(t, fsys, "AAAA", "BBBB", true)
	require.NoError(t, fsys.FlipBit("d/f", 1, 0)) // in synced data
	require.NoError(t, fsys.FlipBit("d/f", 5, 1)) // in a pending write
	got, _ := readFaulty(t, fsys, "d/f")
	require.Equal(t, "A@AAB@BB", got)
	require.Error(t, fsys.FlipBit("d/f", 8, 0), "beyond the end")

	f, err := fsys.Open("d/f")
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	fsys.Crash(rand.New(rand.NewPCG(1, 1)))
	got, _ = readFaulty(t, fsys, "d/f")
	require.Equal(t, "A@AAB@BB", got)
	_, err = f.Size()
	require.ErrorIs(t, err, errCrashed, "handles from before the crash are dead")

	off, bit, err := fsys.FlipRandomBit("d/f", rand.New(rand.NewPCG(2, 2)))
	require.NoError(t, err)
	got2, _ := readFaulty(t, fsys, "d/f")
	require.NotEqual(t, got, got2)
	require.Equal(t, got[off]^(1<<bit), got2[off])
}
