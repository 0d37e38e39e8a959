package embed

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/raftkv/raftkv/server"
	"github.com/raftkv/raftkv/storage"
)

// --force-new-cluster: the data dir (a member's, or a backup copied into
// place) becomes the data of a new one-member cluster with new IDs — the
// key space and its indexes kept, the old membership dropped — as etcd's
// --force-new-cluster does after `etcdctl backup`. The new data is built
// beside the old (force-new-cluster.tmp), then the old wal/, snap/ and
// identity.json are moved into pre-force-new-cluster-<time>/ (kept, for
// the operator to delete) and the new ones put in their place.

// forceNewCluster rewrites cfg.DataDir and returns the new identity.
func forceNewCluster(cfg Config, peerURLs, clientURLs []string) (identity, server.DataState, error) {
	if _, ok := cfg.FS.(storage.OSFS); !ok {
		return identity{}, server.DataState{}, errors.New("--force-new-cluster needs a data dir on the real disk")
	}
	dir := cfg.DataDir
	if ok, err := hasData(cfg.FS, dir); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("data dir %s holds no WAL (wal/*.wal) to start a new cluster from", dir)
		}
		return identity{}, server.DataState{}, fmt.Errorf("--force-new-cluster: %w", err)
	}
	id := identity{Name: cfg.Name, MemberID: hexID(randomID()), ClusterID: hexID(randomID())}
	id.PeerClusterID = hexID(peerClusterIDOf(cfg.InitialClusterToken, uint64(id.ClusterID)))
	tmp := filepath.Join(dir, "force-new-cluster.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return identity{}, server.DataState{}, err
	}
	self := server.MemberInfo{ID: uint64(id.MemberID), Name: cfg.Name, PeerURLs: peerURLs, ClientURLs: clientURLs}
	st, err := server.ForceNewCluster(cfg.FS, dir, tmp, self, uint64(id.ClusterID))
	if err != nil {
		os.RemoveAll(tmp)
		return identity{}, server.DataState{}, fmt.Errorf("--force-new-cluster: %w", err)
	}
	if err := writeIdentity(cfg.FS, tmp, id); err != nil {
		return identity{}, server.DataState{}, err
	}
	old := filepath.Join(dir, "pre-force-new-cluster-"+time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Mkdir(old, 0o700); err != nil {
		return identity{}, server.DataState{}, fmt.Errorf("--force-new-cluster: %w", err)
	}
	for _, name := range []string{"wal", "snap", identityFile} {
		err := os.Rename(filepath.Join(dir, name), filepath.Join(old, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return identity{}, server.DataState{}, fmt.Errorf("--force-new-cluster: move the old data aside: %w", err)
		}
	}
	if err := cfg.FS.SyncDir(dir); err != nil {
		return identity{}, server.DataState{}, err
	}
	for _, name := range []string{"wal", "snap", identityFile} {
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name)); err != nil {
			return identity{}, server.DataState{}, fmt.Errorf("--force-new-cluster: put the new data in place "+
				"(the old data is in %s): %w", old, err)
		}
	}
	if err := cfg.FS.SyncDir(dir); err != nil {
		return identity{}, server.DataState{}, err
	}
	_ = os.Remove(tmp)
	cfg.Logger.Warn("forced a new cluster from the data dir: the old membership is dropped",
		"data-dir", dir, "old-data", old, "member-id", fmt.Sprintf("%x", uint64(id.MemberID)),
		"cluster-id", fmt.Sprintf("%x", uint64(id.ClusterID)), "index", st.Index, "etcd-index", st.StoreIndex,
		"dropped-uncommitted-entries", st.Uncommitted)
	return id, st, nil
}

// peerClusterIDOf is the peer handshake ID of a cluster made by
// --force-new-cluster: new, so that members of the old cluster, which may
// still run somewhere, are refused.
func peerClusterIDOf(token string, clusterID uint64) uint64 {
	sum := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("raftkv peer cluster\x00"+token+"\x00"), clusterID))
	return max(binary.BigEndian.Uint64(sum[:8]), 1)
}

// randomID draws a non-zero ID.
func randomID() uint64 {
	return max(randomSeed(), 1)
}
