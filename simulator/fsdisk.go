package simulator

import (
	"errors"
	"math/rand/v2"
	"path"
	"sync"

	"github.com/raftkv/raftkv/storage"
)

// FSDisk is the disk of a full member (server.Member): the storage
// package's FaultyFS, which loses what was not synced when it crashes,
// wrapped to count the disk's work (for the time it costs), to tear a
// write and die in the middle of it, and to refuse writes when full. The
// member's WAL and snapshot files live in it, so crashes and faults hit the
// real recovery code.
type FSDisk struct {
	fs *storage.FaultyFS
	// writes and syncs count the work since the last Elapsed.
	writes, syncs int
	// armed counts down the writes left before a torn write kills the
	// disk; 0 means not armed. dead says it happened: every later
	// operation fails until Crash.
	armed int
	dead  bool
	rng   *rand.Rand
	mu    sync.Mutex
}

// dataDir is where members keep their data on their disk.
const dataDir = "data"

// NewFSDisk returns an empty disk.
func NewFSDisk() *FSDisk {
	return &FSDisk{fs: storage.NewFaultyFS(), rng: rand.New(rand.NewPCG(1, 1))}
}

// FS returns the file system the member writes through.
func (d *FSDisk) FS() storage.FS { return (*countingFS)(d) }

// Crash implements Disk.
func (d *FSDisk) Crash(rng *rand.Rand) {
	d.fs.Crash(rng)
	d.armed, d.dead = 0, false
	d.rng = rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
}

// ArmCrash implements Disk.
func (d *FSDisk) ArmCrash(n int) { d.armed = max(n, 1) }

// SetFull implements Disk.
func (d *FSDisk) SetFull(full bool) {
	if full {
		d.fs.SetCapacity(d.fs.Used())
	} else {
		d.fs.SetCapacity(-1)
	}
}

// Corrupt implements Disk: it flips a bit of a WAL segment, which the
// member must refuse to start from (if the bit is in synced data) or find
// torn and truncate (if it is past it).
func (d *FSDisk) Corrupt(rng *rand.Rand) bool {
	names, err := d.fs.List(path.Join(dataDir, "wal"))
	if err != nil || len(names) == 0 {
		return false
	}
	name := path.Join(dataDir, "wal", names[rng.IntN(len(names))])
	_, _, err = d.fs.FlipRandomBit(name, rng)
	return err == nil
}

// Elapsed implements Disk.
func (d *FSDisk) Elapsed() (writes, syncs int) {
	writes, syncs, d.writes, d.syncs = d.writes, d.syncs, 0, 0
	return writes, syncs
}

// countingFS is the FS view of an FSDisk.
type countingFS FSDisk

func (c *countingFS) d() *FSDisk { return (*FSDisk)(c) }

func (c *countingFS) Create(name string) (storage.File, error) {
	if c.dead {
		return nil, ErrDiskCrashed
	}
	f, err := c.fs.Create(name)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, d: c.d()}, nil
}

func (c *countingFS) Open(name string) (storage.File, error) {
	if c.dead {
		return nil, ErrDiskCrashed
	}
	f, err := c.fs.Open(name)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, d: c.d()}, nil
}

func (c *countingFS) Remove(name string) error {
	return c.op(func() error { return c.fs.Remove(name) })
}
func (c *countingFS) Rename(oldname, newname string) error {
	return c.op(func() error { return c.fs.Rename(oldname, newname) })
}
func (c *countingFS) List(dir string) ([]string, error) { return c.fs.List(dir) }
func (c *countingFS) MkdirAll(dir string) error {
	return c.op(func() error { return c.fs.MkdirAll(dir) })
}
func (c *countingFS) SyncDir(dir string) error {
	return c.op(func() error { c.syncs++; return c.fs.SyncDir(dir) })
}

func (c *countingFS) op(f func() error) error {
	if c.dead {
		return ErrDiskCrashed
	}
	return f()
}

// countingFile counts writes and syncs, and tears the armed write.
type countingFile struct {
	storage.File
	d *FSDisk
}

func (f *countingFile) WriteAt(p []byte, off int64) (int, error) {
	d := f.d
	if d.dead {
		return 0, ErrDiskCrashed
	}
	d.writes++
	if d.armed > 0 {
		d.armed--
		if d.armed == 0 {
			// The write is torn: a prefix reaches the disk (unsynced), and
			// the disk dies with the member.
			n := d.rng.IntN(len(p) + 1)
			_, _ = f.File.WriteAt(p[:n], off)
			d.dead = true
			return n, ErrDiskCrashed
		}
	}
	return f.File.WriteAt(p, off)
}

func (f *countingFile) Sync() error {
	if f.d.dead {
		return ErrDiskCrashed
	}
	f.d.syncs++
	return f.File.Sync()
}

func (f *countingFile) Truncate(size int64) error {
	if f.d.dead {
		return ErrDiskCrashed
	}
	return f.File.Truncate(size)
}

func (f *countingFile) Preallocate(size int64) error {
	if f.d.dead {
		return ErrDiskCrashed
	}
	return f.File.Preallocate(size)
}

// isDiskDeath reports whether err is the armed crash of a disk.
func isDiskDeath(err error) bool { return errors.Is(err, ErrDiskCrashed) }
