package storage

import (
	"errors"
	"fmt"
	"io"
)

// ErrDiskFull is wrapped by every error that a file system returns because it
// has no room left: OSFS maps ENOSPC to it, FaultyFS returns it past its
// capacity. Callers test for it with errors.Is.
var ErrDiskFull = errors.New("storage: disk full")

// FS is the little of a file system that the WAL and the Snapshotter use.
// Names are slash- or OS-separated paths as filepath understands them.
//
// Three implementations: OSFS (the real disk), MemFS (memory, for tests and
// tools) and FaultyFS (the simulator's disk, which loses what was not synced
// when it crashes and injects faults).
//
// Durability is explicit: data written to a File survives a crash only once
// File.Sync has returned; a file's name (its creation, a rename, a removal)
// survives a crash only once SyncDir of its directory has returned.
//
// Concurrency: the implementations here may be called from several
// goroutines, but a File must not be used by two goroutines at once.
type FS interface {
	// Create creates the named file, or truncates it if it exists, and opens
	// it for reading and writing. The directory must exist.
	Create(name string) (File, error)
	// Open opens an existing file for reading and writing.
	Open(name string) (File, error)
	// Remove removes the named file.
	Remove(name string) error
	// Rename renames a file within its directory, replacing newname if it
	// exists.
	Rename(oldname, newname string) error
	// List returns the names (not paths) of the files in dir, sorted.
	List(dir string) ([]string, error)
	// MkdirAll creates dir and any missing parents.
	MkdirAll(dir string) error
	// SyncDir makes the directory's entries (creations, renames and removals
	// of the files in it) durable.
	SyncDir(dir string) error
}

// File is an open file. Reads and writes take explicit offsets: the WAL
// knows where every frame goes, and no hidden cursor can disagree with it.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Size returns the file's length in bytes.
	Size() (int64, error)
	// Truncate changes the file's length; new bytes read as zeros.
	Truncate(size int64) error
	// Preallocate makes the file at least size bytes long, the new bytes
	// reading as zeros, and reserves the disk space where the platform can,
	// so that later writes inside it neither fail for want of space nor
	// change the file's length (which makes their fsync cheaper). It never
	// shrinks the file.
	Preallocate(size int64) error
	// Sync makes everything written so far durable.
	Sync() error
	// Close releases the file. It does not sync.
	Close() error
}

// readAll returns the whole contents of the named file.
func readAll(fs FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("size of %s: %w", name, err)
	}
	data := make([]byte, size)
	// io.ReaderAt may report io.EOF along with a full read: only n counts.
	n, err := f.ReadAt(data, 0)
	if n != len(data) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %s: %d of %d bytes: %w", name, n, len(data), err)
	}
	return data, nil
}
