package embed

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"

	"github.com/raftkv/raftkv/storage"
)

// A member's identity — its ID, its cluster's ID and the ID its peer
// streams carry — is fixed when its data dir is first written and kept in
// identity.json beside the WAL, as etcd keeps them in its WAL's metadata.
// A member that joined an existing cluster learned them from its peers
// and a restored one (--force-new-cluster) drew new ones: neither could
// derive them again from its flags. A data dir written before the file
// existed derives them from the flags, as it always did.

// identityFile is the name of the identity file in the data dir.
const identityFile = "identity.json"

// identity is what identity.json holds (IDs in hex, as etcd prints them).
type identity struct {
	Name string `json:"name"`
	// MemberID is the member's raft ID.
	MemberID hexID `json:"memberID"`
	// ClusterID is the cluster's ID (X-Etcd-Cluster-Id); 0 if the member
	// learns it from its log.
	ClusterID hexID `json:"clusterID"`
	// PeerClusterID is what the peer handshake compares: every member of
	// the cluster carries the same.
	PeerClusterID hexID `json:"peerClusterID"`
}

// hexID is a uint64 written as a hex string in JSON.
type hexID uint64

func (h hexID) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatUint(uint64(h), 16))
}

func (h *hexID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return fmt.Errorf("bad ID %q: %w", s, err)
	}
	*h = hexID(v)
	return nil
}

// readIdentity reads dir's identity file; ok is false if there is none.
func readIdentity(fsys storage.FS, dir string) (id identity, ok bool, err error) {
	name := filepath.Join(dir, identityFile)
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return identity{}, false, nil
	}
	if err != nil {
		return identity{}, false, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return identity{}, false, fmt.Errorf("read %s: %w", name, err)
	}
	if size > 1<<16 {
		return identity{}, false, fmt.Errorf("read %s: %d bytes is too long for an identity file", name, size)
	}
	data := make([]byte, size)
	if n, err := f.ReadAt(data, 0); n != len(data) {
		return identity{}, false, fmt.Errorf("read %s: %w", name, err)
	}
	if err := json.Unmarshal(data, &id); err != nil {
		return identity{}, false, fmt.Errorf("%s is damaged (%w): restore the data dir from a backup", name, err)
	}
	if id.MemberID == 0 || id.PeerClusterID == 0 {
		return identity{}, false, fmt.Errorf("%s is damaged (a zero ID): restore the data dir from a backup", name)
	}
	return id, true, nil
}

// writeIdentity writes dir's identity file durably: a temporary file,
// fsynced, renamed into place, the directory fsynced.
func writeIdentity(fsys storage.FS, dir string, id identity) error {
	data, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := fsys.MkdirAll(dir); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	name := filepath.Join(dir, identityFile)
	tmp := name + ".tmp"
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return fsys.SyncDir(dir)
}

// hasData reports whether dir holds a WAL with at least one segment.
func hasData(fsys storage.FS, dir string) (bool, error) {
	names, err := fsys.List(filepath.Join(dir, "wal"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read data dir %s: %w", dir, err)
	}
	for _, n := range names {
		if filepath.Ext(n) == ".wal" {
			return true, nil
		}
	}
	return false, nil
}
