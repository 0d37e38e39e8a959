package storage

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// OSFS is the real file system.
//
// File.Sync is fdatasync where the platform has it (the WAL preallocates its
// segments, so a write inside one changes no metadata that fdatasync would
// skip), and Preallocate uses fallocate where the platform and the file
// system support it, falling back to extending the file with Truncate (a
// sparse file: the space is not reserved, so a later write can still find
// the disk full).
//
// Errors for a full disk (ENOSPC) wrap ErrDiskFull.
type OSFS struct{}

var _ FS = OSFS{}

// Create implements FS.
func (OSFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, osError(err)
	}
	return &osFile{f: f}, nil
}

// Open implements FS.
func (OSFS) Open(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, osError(err)
	}
	return &osFile{f: f}, nil
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return osError(os.Remove(name)) }

// Rename implements FS.
func (OSFS) Rename(oldname, newname string) error { return osError(os.Rename(oldname, newname)) }

// List implements FS. Subdirectories are left out.
func (OSFS) List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, osError(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// MkdirAll implements FS.
func (OSFS) MkdirAll(dir string) error { return osError(os.MkdirAll(dir, 0o755)) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return osError(err)
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return osError(fmt.Errorf("sync directory %s: %w", dir, err))
	}
	return osError(d.Close())
}

// osFile is an *os.File behind the File interface.
type osFile struct {
	f *os.File
}

func (f *osFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

func (f *osFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	return n, osError(err)
}

func (f *osFile) Size() (int64, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (f *osFile) Truncate(size int64) error { return osError(f.f.Truncate(size)) }

func (f *osFile) Preallocate(size int64) error {
	cur, err := f.Size()
	if err != nil || cur >= size {
		return err
	}
	if ok, err := fallocate(f.f, size); ok || err != nil {
		return osError(err)
	}
	return osError(f.f.Truncate(size))
}

func (f *osFile) Sync() error  { return osError(fdatasync(f.f)) }
func (f *osFile) Close() error { return f.f.Close() }

// osError makes a full disk recognisable as ErrDiskFull, keeping the
// original error (and its path) in the chain.
func osError(err error) error {
	if err != nil && errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}
