package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/raft"
)

// A snapshot file, named <term>-<index>.snap (each 16 hex digits), holds:
//
//	offset  size  field
//	0       1     format version (1)
//	1       4     length M of the metadata, uint32 little-endian
//	5       M     raft.SnapshotMetadata
//	5+M     D     the state machine's data
//	5+M+D   4     CRC32C (Castagnoli) of everything before it

const snapshotVersion = 1

// snapshotFixedSize is the bytes a snapshot file adds to metadata and data.
const snapshotFixedSize = 1 + 4 + 4

// Snapshotter saves and loads snapshot files in one directory. It is not
// safe for concurrent use.
type Snapshotter struct {
	fs  FS
	dir string
}

// NewSnapshotter returns a Snapshotter for dir, creating dir if needed.
func NewSnapshotter(fsys FS, dir string) (*Snapshotter, error) {
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("snap: create directory %s: %w", dir, err)
	}
	return &Snapshotter{fs: fsys, dir: dir}, nil
}

// snapshotFile is a snapshot file's name, parsed.
type snapshotFile struct {
	name        string
	term, index uint64
}

func snapshotName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x.snap", term, index)
}

func parseSnapshotName(name string) (snapshotFile, bool) {
	s, ok := strings.CutSuffix(name, ".snap")
	if !ok || len(s) != 33 || s[16] != '-' {
		return snapshotFile{}, false
	}
	term, err1 := strconv.ParseUint(s[:16], 16, 64)
	index, err2 := strconv.ParseUint(s[17:], 16, 64)
	if err1 != nil || err2 != nil {
		return snapshotFile{}, false
	}
	return snapshotFile{name: name, term: term, index: index}, true
}

// Save writes snap durably: to a temporary file, fsynced, renamed into
// place, and the directory fsynced. A crash at any point leaves either the
// new file, complete, or no trace of it that Load would read.
func (s *Snapshotter) Save(snap raft.Snapshot) error {
	return s.SaveStream(snap.Metadata, func(w io.Writer) error {
		_, err := w.Write(snap.Data)
		return err
	})
}

// SaveStream is Save of a snapshot whose data write produces, in pieces,
// so that the data of a big state machine never has to be held in memory
// whole. The file is the one Save writes for the same bytes.
func (s *Snapshotter) SaveStream(meta raft.SnapshotMetadata, write func(io.Writer) error) error {
	if meta.Index == 0 {
		return errors.New("snap: refusing to save an empty snapshot")
	}
	name := snapshotName(meta.Term, meta.Index)
	path := filepath.Join(s.dir, name)
	tmp := path + ".tmp"
	head := []byte{snapshotVersion}
	head = binary.LittleEndian.AppendUint32(head, 0)
	head, _ = meta.AppendBinary(head)
	binary.LittleEndian.PutUint32(head[1:5], uint32(len(head)-5))

	f, err := s.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("snap: create %s: %w", tmp, err)
	}
	out := &crcFileWriter{f: f}
	if _, err = out.Write(head); err == nil {
		if err = write(out); err == nil {
			_, err = f.WriteAt(binary.LittleEndian.AppendUint32(nil, out.crc), out.off)
		}
	}
	if err != nil {
		err = fmt.Errorf("snap: write %s: %w", tmp, err)
	} else if err = f.Sync(); err != nil {
		err = fmt.Errorf("snap: fsync %s: %w", tmp, err)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("snap: close %s: %w", tmp, cerr)
	}
	if err == nil {
		if err = s.fs.Rename(tmp, path); err != nil {
			err = fmt.Errorf("snap: rename %s: %w", tmp, err)
		}
	}
	if err != nil {
		s.fs.Remove(tmp) // best effort; Purge removes leftovers too
		return err
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("snap: sync directory %s after saving %s: %w", s.dir, name, err)
	}
	return nil
}

// crcFileWriter writes a file from its start, in order, keeping the
// CRC-32C of what it wrote.
type crcFileWriter struct {
	f   File
	off int64
	crc uint32
}

func (w *crcFileWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.crc = crc32.Update(w.crc, castagnoli, p[:n])
	w.off += int64(n)
	return n, err
}

// list returns the snapshot files, newest (highest index) first.
func (s *Snapshotter) list() (snaps []snapshotFile, tmps []string, err error) {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("snap: list %s: %w", s.dir, err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, ".snap.tmp") {
			tmps = append(tmps, name)
		} else if f, ok := parseSnapshotName(name); ok {
			snaps = append(snaps, f)
		}
	}
	slices.SortFunc(snaps, func(a, b snapshotFile) int {
		if c := cmpUint64(b.index, a.index); c != 0 {
			return c
		}
		return cmpUint64(b.term, a.term)
	})
	return snaps, tmps, nil
}

// Load returns the newest valid snapshot whose index is at most maxIndex:
// at restart, pass the WAL's Recovered.Snapshot.Index, since a newer file
// is left over from a crash before its marker reached the WAL. Files that
// fail their checks are skipped, and each is described in skipped (the
// errors wrap ErrCorrupt and name the file) for the caller to log. With no
// valid snapshot, Load returns an empty one, or an error naming the corrupt
// files if there were any: the WAL needs one of them.
func (s *Snapshotter) Load(maxIndex uint64) (snap raft.Snapshot, skipped []error, err error) {
	files, _, err := s.list()
	if err != nil {
		return raft.Snapshot{}, nil, err
	}
	for _, f := range files {
		if f.index > maxIndex {
			continue
		}
		data, err := readAll(s.fs, filepath.Join(s.dir, f.name))
		if err != nil {
			return raft.Snapshot{}, skipped, fmt.Errorf("snap: %w", err)
		}
		snap, err := decodeSnapshot(data, f)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("snap: %s: %w: %w", f.name, ErrCorrupt, err))
			continue
		}
		return snap, skipped, nil
	}
	if len(skipped) > 0 {
		return raft.Snapshot{}, skipped, fmt.Errorf("snap: no valid snapshot at or before index %d in %s: %w",
			maxIndex, s.dir, errors.Join(skipped...))
	}
	return raft.Snapshot{}, nil, nil
}

func decodeSnapshot(data []byte, f snapshotFile) (raft.Snapshot, error) {
	if len(data) < snapshotFixedSize {
		return raft.Snapshot{}, fmt.Errorf("file of %d bytes is too short", len(data))
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[len(body):]) {
		return raft.Snapshot{}, errors.New("crc mismatch")
	}
	if body[0] != snapshotVersion {
		return raft.Snapshot{}, fmt.Errorf("unsupported snapshot format version %d", body[0])
	}
	m := uint64(binary.LittleEndian.Uint32(body[1:5]))
	if m > uint64(len(body)-5) {
		return raft.Snapshot{}, fmt.Errorf("metadata length %d runs past the end", m)
	}
	var snap raft.Snapshot
	if err := snap.Metadata.UnmarshalBinary(body[5 : 5+m]); err != nil {
		return raft.Snapshot{}, err
	}
	if snap.Metadata.Index != f.index || snap.Metadata.Term != f.term {
		return raft.Snapshot{}, fmt.Errorf("holds snapshot %d (term %d), not what its name says",
			snap.Metadata.Index, snap.Metadata.Term)
	}
	if len(body) > int(5+m) {
		snap.Data = body[5+m : len(body) : len(body)] // data was read for this snapshot alone
	}
	return snap, nil
}

// Purge removes the snapshot files above marker, the index of the
// snapshot the WAL's last marker names (saved, but their marker was never
// written: a full disk refused it), all but the newest keep (keep >= 1) of
// the rest, and any temporary files left by a crash during Save. So the
// file the marker names is always kept, whatever files a refused marker
// left above it: call Purge after WAL.SaveSnapshotMarker, with its index.
func (s *Snapshotter) Purge(keep int, marker uint64) error {
	if keep < 1 {
		return fmt.Errorf("snap: Purge must keep at least one snapshot, not %d", keep)
	}
	files, tmps, err := s.list()
	if err != nil {
		return err
	}
	var doomed []string
	for len(files) > 0 && files[0].index > marker { // newest first
		doomed = append(doomed, files[0].name)
		files = files[1:]
	}
	if len(files) > keep {
		for _, f := range files[keep:] {
			doomed = append(doomed, f.name)
		}
	}
	doomed = append(doomed, tmps...)
	if len(doomed) == 0 {
		return nil
	}
	for _, name := range doomed {
		if err := s.fs.Remove(filepath.Join(s.dir, name)); err != nil {
			return fmt.Errorf("snap: remove %s: %w", name, err)
		}
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("snap: sync directory %s: %w", s.dir, err)
	}
	return nil
}
