package embed

import (
	"time"

	"github.com/raftkv/raftkv/storage"
)

// timedFS wraps a file system to time every fsync (for the WAL fsync
// latency metric). It is part of the shell: the member itself never reads
// a clock.
func timedFS(fs storage.FS, observe func(time.Duration)) storage.FS {
	return &timingFS{FS: fs, observe: observe}
}

type timingFS struct {
	storage.FS
	observe func(time.Duration)
}

func (t *timingFS) Create(name string) (storage.File, error) {
	f, err := t.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &timingFile{File: f, observe: t.observe}, nil
}

func (t *timingFS) Open(name string) (storage.File, error) {
	f, err := t.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &timingFile{File: f, observe: t.observe}, nil
}

type timingFile struct {
	storage.File
	observe func(time.Duration)
}

func (f *timingFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.observe(time.Since(start))
	return err
}
