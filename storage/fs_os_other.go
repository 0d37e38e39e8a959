//go:build !linux

package storage

import "os"

// fallocate is not available here: the caller extends the file instead.
func fallocate(*os.File, int64) (ok bool, err error) { return false, nil }

// fdatasync falls back to a full fsync.
func fdatasync(f *os.File) error { return f.Sync() }
