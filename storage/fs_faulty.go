package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// FaultyFS is the simulator's disk: a file system in memory that remembers
// what is durable and what is not, loses the latter when it crashes, and
// injects the faults real disks have.
//
// What survives Crash:
//   - a file's contents as of its last successful File.Sync, followed by a
//     random prefix (in order) of the writes and truncations made since, the
//     first write left out possibly torn (a random prefix of its bytes
//     kept). Losing everything unsynced and tearing the last write are
//     special cases of this. Unwritten bytes read as zeros.
//   - a directory's entries as of its last successful SyncDir, followed by a
//     random prefix (in order) of the creations, renames and removals made
//     in it since. A file whose creation is lost is lost with its contents,
//     synced or not.
//
// Directories themselves (MkdirAll) are durable at once, and a rename must
// stay within one directory: the WAL and the Snapshotter need no more.
//
// Injected faults: SetCapacity (a full disk: writes beyond it fail with
// ErrDiskFull), SetSyncError (every Sync and SyncDir fails and makes
// nothing durable), FlipBit and FlipRandomBit (media corruption, which
// survives crashes).
//
// FaultyFS is deterministic: it starts no goroutine, reads no clock, never
// lets map order show, and draws every random choice from the rng handed to
// Crash or FlipRandomBit. Handles opened before a Crash fail afterwards.
type FaultyFS struct {
	mu sync.Mutex
	// dirs holds every directory, by cleaned path.
	dirs map[string]bool
	// files is the namespace as the running system sees it.
	// Invariant: the directory of every path in files is in dirs.
	files map[string]*faultyFile
	// durable is the namespace that a crash falls back to.
	durable map[string]*faultyFile
	// pendingDir lists, per directory, the changes to files made since its
	// last SyncDir, oldest first. Invariant: applying them in order to
	// durable gives files (for that directory's entries).
	pendingDir map[string][]dirOp
	// capacity is the number of bytes all files may hold together; negative
	// means no limit.
	capacity int64
	// syncErr, when not nil, makes every Sync and SyncDir fail.
	syncErr error
	// generation counts crashes; a handle works only in the generation it
	// was opened in.
	generation uint64
}

var _ FS = (*FaultyFS)(nil)

// faultyFile is one file's contents (an inode: renames move it, handles
// share it).
type faultyFile struct {
	// data is what reads see.
	data []byte
	// durable is what a crash falls back to.
	durable []byte
	// pending lists the changes made since the last successful Sync, oldest
	// first. Invariant: applying them in order to durable gives data.
	pending []fileOp
}

// fileOp is a write (data at offset) or a truncation to size.
type fileOp struct {
	write  bool
	offset int64
	data   []byte
	size   int64
}

func (op fileOp) apply(b []byte) []byte {
	if op.write {
		return writeAt(b, op.data, op.offset)
	}
	return resize(b, op.size)
}

type dirOpKind uint8

const (
	dirCreate dirOpKind = iota
	dirRemove
	dirRename
)

// dirOp is a change to a directory's entries.
type dirOp struct {
	kind dirOpKind
	name string
	// newName is the target of a rename.
	newName string
	// file is the created file.
	file *faultyFile
}

func (op dirOp) apply(names map[string]*faultyFile) {
	switch op.kind {
	case dirCreate:
		names[op.name] = op.file
	case dirRemove:
		delete(names, op.name)
	case dirRename:
		if f := names[op.name]; f != nil {
			delete(names, op.name)
			names[op.newName] = f
		}
	}
}

// NewFaultyFS returns an empty FaultyFS with no capacity limit, holding only
// the root directories "." and "/".
func NewFaultyFS() *FaultyFS {
	return &FaultyFS{
		dirs:       map[string]bool{".": true, "/": true},
		files:      map[string]*faultyFile{},
		durable:    map[string]*faultyFile{},
		pendingDir: map[string][]dirOp{},
		capacity:   -1,
	}
}

// Create implements FS.
func (f *FaultyFS) Create(name string) (File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = filepath.Clean(name)
	dir := filepath.Dir(name)
	if !f.dirs[dir] {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrNotExist}
	}
	if f.dirs[name] {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	file := f.files[name]
	if file == nil {
		file = &faultyFile{}
		f.files[name] = file
		f.pendingDir[dir] = append(f.pendingDir[dir], dirOp{kind: dirCreate, name: name, file: file})
	} else {
		file.change(fileOp{size: 0})
	}
	return &faultyHandle{fs: f, name: name, file: file, generation: f.generation}, nil
}

// Open implements FS.
func (f *FaultyFS) Open(name string) (File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = filepath.Clean(name)
	file := f.files[name]
	if file == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &faultyHandle{fs: f, name: name, file: file, generation: f.generation}, nil
}

// Remove implements FS.
func (f *FaultyFS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = filepath.Clean(name)
	if f.files[name] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(f.files, name)
	dir := filepath.Dir(name)
	f.pendingDir[dir] = append(f.pendingDir[dir], dirOp{kind: dirRemove, name: name})
	return nil
}

// Rename implements FS.
func (f *FaultyFS) Rename(oldname, newname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	oldname, newname = filepath.Clean(oldname), filepath.Clean(newname)
	file := f.files[oldname]
	if file == nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrNotExist}
	}
	dir := filepath.Dir(oldname)
	if filepath.Dir(newname) != dir {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: errCrossDirRename}
	}
	delete(f.files, oldname)
	f.files[newname] = file
	f.pendingDir[dir] = append(f.pendingDir[dir], dirOp{kind: dirRename, name: oldname, newName: newname})
	return nil
}

// List implements FS.
func (f *FaultyFS) List(dir string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir = filepath.Clean(dir)
	if !f.dirs[dir] {
		return nil, &fs.PathError{Op: "list", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for name := range f.files {
		if filepath.Dir(name) == dir {
			names = append(names, filepath.Base(name))
		}
	}
	slices.Sort(names)
	return names, nil
}

// MkdirAll implements FS. Directories are durable at once.
func (f *FaultyFS) MkdirAll(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for dir = filepath.Clean(dir); !f.dirs[dir]; dir = filepath.Dir(dir) {
		if f.files[dir] != nil {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: fs.ErrExist}
		}
		f.dirs[dir] = true
	}
	return nil
}

// SyncDir implements FS.
func (f *FaultyFS) SyncDir(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir = filepath.Clean(dir)
	if !f.dirs[dir] {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	if f.syncErr != nil {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: f.syncErr}
	}
	for _, op := range f.pendingDir[dir] {
		op.apply(f.durable)
	}
	delete(f.pendingDir, dir)
	return nil
}

// Crash simulates a power loss: everything not made durable is lost, or
// partly kept, as the type's comment describes, with every choice drawn from
// rng. Handles opened before the crash stop working.
func (f *FaultyFS) Crash(rng *rand.Rand) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, dir := range sortedKeys(f.pendingDir) {
		ops := f.pendingDir[dir]
		for _, op := range ops[:rng.IntN(len(ops)+1)] {
			op.apply(f.durable)
		}
	}
	clear(f.pendingDir)
	f.files = make(map[string]*faultyFile, len(f.durable))
	for _, name := range sortedKeys(f.durable) {
		file := f.durable[name]
		file.crash(rng)
		f.files[name] = file
	}
	f.generation++
}

// crash replaces the file's contents with what survives a crash.
func (file *faultyFile) crash(rng *rand.Rand) {
	kept := rng.IntN(len(file.pending) + 1)
	for _, op := range file.pending[:kept] {
		file.durable = op.apply(file.durable)
	}
	if kept < len(file.pending) {
		if op := file.pending[kept]; op.write && len(op.data) > 0 {
			op.data = op.data[:rng.IntN(len(op.data))]
			file.durable = op.apply(file.durable)
		}
	}
	file.pending = nil
	file.data = slices.Clone(file.durable)
}

// change applies op to the file's contents, pending until the next Sync.
func (file *faultyFile) change(op fileOp) {
	if op.write {
		op.data = slices.Clone(op.data)
	}
	file.data = op.apply(file.data)
	file.pending = append(file.pending, op)
}

// SetCapacity limits the bytes all files may hold together; a negative
// capacity removes the limit. Files already beyond it stay as they are.
func (f *FaultyFS) SetCapacity(bytes int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.capacity = bytes
}

// Used returns the bytes all files hold together.
func (f *FaultyFS) Used() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used()
}

func (f *FaultyFS) used() int64 {
	var n int64
	for _, file := range f.files {
		n += int64(len(file.data))
	}
	return n
}

// room returns how many more bytes the files may hold.
func (f *FaultyFS) room() int64 {
	if f.capacity < 0 {
		return 1<<63 - 1
	}
	return max(0, f.capacity-f.used())
}

// SetSyncError makes every Sync and SyncDir fail with an error wrapping err
// (nil restores them). A failed sync makes nothing durable, as a real disk
// whose flush failed.
func (f *FaultyFS) SetSyncError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncErr = err
}

// FlipBit flips bit (0-7) of the byte at offset in the named file, both in
// what reads see and in what survives a crash: a media error.
func (f *FaultyFS) FlipBit(name string, offset int64, bit uint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = filepath.Clean(name)
	file := f.files[name]
	if file == nil {
		return &fs.PathError{Op: "flipbit", Path: name, Err: fs.ErrNotExist}
	}
	if offset < 0 || offset >= int64(len(file.data)) || bit > 7 {
		return &fs.PathError{Op: "flipbit", Path: name, Err: fmt.Errorf("bit %d of byte %d is outside the file's %d bytes", bit, offset, len(file.data))}
	}
	mask := byte(1) << bit
	file.data[offset] ^= mask
	// Keep "durable + pending = data" true: the flip is on the medium, so it
	// is in whatever a crash or a sync leaves there.
	if offset < int64(len(file.durable)) {
		file.durable[offset] ^= mask
	}
	for _, op := range file.pending {
		if op.write && offset >= op.offset && offset < op.offset+int64(len(op.data)) {
			op.data[offset-op.offset] ^= mask
		}
	}
	return nil
}

// FlipRandomBit flips a bit at an offset drawn from rng and says where.
func (f *FaultyFS) FlipRandomBit(name string, rng *rand.Rand) (offset int64, bit uint, err error) {
	f.mu.Lock()
	file := f.files[filepath.Clean(name)]
	var size int64
	if file != nil {
		size = int64(len(file.data))
	}
	f.mu.Unlock()
	if size == 0 {
		return 0, 0, &fs.PathError{Op: "flipbit", Path: name, Err: errors.New("no such file, or it is empty")}
	}
	offset, bit = rng.Int64N(size), uint(rng.IntN(8))
	return offset, bit, f.FlipBit(name, offset, bit)
}

// faultyHandle is an open FaultyFS file.
type faultyHandle struct {
	fs   *FaultyFS
	name string
	file *faultyFile
	// generation is the FaultyFS generation the handle was opened in.
	generation uint64
	closed     bool
}

// errCrashed is returned by handles opened before a crash.
var errCrashed = errors.New("storage: file handle was opened before a crash")

// check returns the error of a handle that can no longer be used. The
// caller holds fs.mu.
func (h *faultyHandle) check(op string) error {
	switch {
	case h.closed:
		return &fs.PathError{Op: op, Path: h.name, Err: fs.ErrClosed}
	case h.generation != h.fs.generation:
		return &fs.PathError{Op: op, Path: h.name, Err: errCrashed}
	}
	return nil
}

func (h *faultyHandle) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("read"); err != nil {
		return 0, err
	}
	return readAt(h.file.data, p, off)
}

func (h *faultyHandle) WriteAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("write"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: h.name, Err: fs.ErrInvalid}
	}
	// Only growth takes room; a write that does not fit writes what does.
	n := int64(len(p))
	if growth := off + n - int64(len(h.file.data)); growth > 0 {
		if room := h.fs.room(); growth > room {
			n = max(0, n-(growth-room))
		}
	}
	if n > 0 {
		h.file.change(fileOp{write: true, offset: off, data: p[:n]})
	}
	if n < int64(len(p)) {
		return int(n), &fs.PathError{Op: "write", Path: h.name, Err: ErrDiskFull}
	}
	return len(p), nil
}

func (h *faultyHandle) Size() (int64, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("stat"); err != nil {
		return 0, err
	}
	return int64(len(h.file.data)), nil
}

func (h *faultyHandle) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	return h.resize("truncate", size)
}

func (h *faultyHandle) Preallocate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if size <= int64(len(h.file.data)) {
		return h.check("preallocate")
	}
	return h.resize("preallocate", size)
}

// resize sets the file's length, all or nothing. The caller holds fs.mu.
func (h *faultyHandle) resize(op string, size int64) error {
	if err := h.check(op); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: op, Path: h.name, Err: fs.ErrInvalid}
	}
	if size-int64(len(h.file.data)) > h.fs.room() {
		return &fs.PathError{Op: op, Path: h.name, Err: ErrDiskFull}
	}
	h.file.change(fileOp{size: size})
	return nil
}

func (h *faultyHandle) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("sync"); err != nil {
		return err
	}
	if h.fs.syncErr != nil {
		return &fs.PathError{Op: "sync", Path: h.name, Err: h.fs.syncErr}
	}
	for _, op := range h.file.pending {
		h.file.durable = op.apply(h.file.durable)
	}
	h.file.pending = nil
	return nil
}

func (h *faultyHandle) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return &fs.PathError{Op: "close", Path: h.name, Err: fs.ErrClosed}
	}
	h.closed = true
	return nil
}

// sortedKeys returns m's keys in order, so that map order never decides
// anything.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
