package embed

import (
	"strings"
	"sync"
	"time"

	"github.com/raftkv/raftkv/storage"
)

// diskObserver receives what timedFS measures.
type diskObserver interface {
	// walFsync and snapshotFsync time one fsync of a WAL segment or of a
	// snapshot file; walWrite counts bytes written to a WAL segment.
	walFsync(time.Duration)
	walWrite(bytes int)
	snapshotFsync(time.Duration)
	// snapshotSave times one snapshot save, from the creation of its
	// temporary file to the rename that makes it the latest.
	snapshotSave(time.Duration)
}

// timedFS wraps a file system to time the fsyncs and snapshot saves and
// count the WAL's bytes, for the disk metrics. It tells the files apart by
// the names storage gives them (<seq>-<index>.wal, created as .wal.tmp;
// <term>-<index>.snap, written as .snap.tmp). It is part of the shell: the
// member itself never reads a clock.
func timedFS(fs storage.FS, observe diskObserver) storage.FS {
	return &timingFS{FS: fs, observe: observe, saving: map[string]time.Time{}}
}

type timingFS struct {
	storage.FS
	observe diskObserver

	mu sync.Mutex
	// saving holds when each snapshot file being written was created;
	// guarded by mu.
	saving map[string]time.Time
}

// fileKind is what a file holds, by its name.
type fileKind int

const (
	otherFile fileKind = iota
	walFile
	snapshotFile
)

func kindOf(name string) fileKind {
	switch {
	case strings.HasSuffix(name, ".wal"), strings.HasSuffix(name, ".wal.tmp"):
		return walFile
	case strings.HasSuffix(name, ".snap"), strings.HasSuffix(name, ".snap.tmp"):
		return snapshotFile
	}
	return otherFile
}

func (t *timingFS) Create(name string) (storage.File, error) {
	start := time.Now()
	f, err := t.FS.Create(name)
	if err != nil {
		return nil, err
	}
	kind := kindOf(name)
	if kind == snapshotFile && strings.HasSuffix(name, ".tmp") {
		t.mu.Lock()
		t.saving[name] = start
		t.mu.Unlock()
	}
	return &timingFile{File: f, observe: t.observe, kind: kind}, nil
}

func (t *timingFS) Open(name string) (storage.File, error) {
	f, err := t.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &timingFile{File: f, observe: t.observe, kind: kindOf(name)}, nil
}

func (t *timingFS) Rename(oldname, newname string) error {
	err := t.FS.Rename(oldname, newname)
	t.mu.Lock()
	start, ok := t.saving[oldname]
	delete(t.saving, oldname)
	t.mu.Unlock()
	if ok && err == nil {
		t.observe.snapshotSave(time.Since(start))
	}
	return err
}

func (t *timingFS) Remove(name string) error {
	t.mu.Lock()
	delete(t.saving, name) // a save given up
	t.mu.Unlock()
	return t.FS.Remove(name)
}

type timingFile struct {
	storage.File
	observe diskObserver
	kind    fileKind
}

func (f *timingFile) WriteAt(b []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(b, off)
	if f.kind == walFile {
		f.observe.walWrite(n)
	}
	return n, err
}

func (f *timingFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	switch f.kind {
	case walFile:
		f.observe.walFsync(time.Since(start))
	case snapshotFile:
		f.observe.snapshotFsync(time.Since(start))
	}
	return err
}
