package storage

import (
	"errors"
	"os"
	"syscall"
)

// fallocate reserves the file's blocks up to size and extends it. ok is false
// when the file system does not support it, and the caller falls back.
func fallocate(f *os.File, size int64) (ok bool, err error) {
	for {
		err = syscall.Fallocate(int(f.Fd()), 0, 0, size)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.EINVAL):
		return false, nil
	}
	return false, &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
}

// fdatasync flushes the file's data and the metadata needed to read it back.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
