package server

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/storage"
)

// Reading a data dir outside a running member: to check a backup
// (ReadDataDir) and to start a new one-member cluster from one
// (ForceNewCluster, etcd's --force-new-cluster). Both replay the data dir
// as a restarting member would — the latest snapshot, then every committed
// entry after it — through the same decoding and apply code, but without
// raft: configuration changes only update the member table, which a new
// cluster drops anyway.

// DataState is what a data dir holds, as of its last committed entry.
type DataState struct {
	// Index and Term are those of the last committed entry the data dir
	// holds (the state below is as of it).
	Index, Term uint64
	// StoreIndex is the key space's etcd index (X-Etcd-Index).
	StoreIndex uint64
	// ClusterID and Members are the cluster as the data dir knows it.
	ClusterID uint64
	Members   []MemberInfo
	// Uncommitted counts entries after Index that are not known to be
	// committed (a restored cluster drops them, as etcd does).
	Uncommitted uint64
	// Notes describe what recovery did (a torn tail cut, a damaged older
	// snapshot file skipped).
	Notes []string
}

// replayed is a data dir replayed into a bare member (no raft node, no
// disk): its store, dedup and member tables as of state.Index.
type replayed struct {
	member *Member
	state  DataState
	hard   raft.HardState
}

// replayDataDir replays dir (holding wal/ and snap/) on fsys. Opening the
// WAL cuts a torn tail, as a restarting member's would.
func replayDataDir(fsys storage.FS, dir string, storeCfg kvstore.Config) (replayed, error) {
	walDir, snapDir := filepath.Join(dir, "wal"), filepath.Join(dir, "snap")
	if _, err := fsys.List(walDir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return replayed{}, fmt.Errorf("%s holds no raftkv data: no WAL directory %s", dir, walDir)
		}
		return replayed{}, fmt.Errorf("read %s: %w", walDir, err)
	}
	snaps, err := storage.NewSnapshotter(fsys, snapDir)
	if err != nil {
		return replayed{}, fmt.Errorf("open snapshots in %s: %w", snapDir, err)
	}
	wal, rec, err := storage.Open(fsys, walDir, storage.Options{})
	if err != nil {
		return replayed{}, fmt.Errorf("open WAL in %s: %w", walDir, err)
	}
	defer wal.Close()
	var r replayed
	if rec.TornTail != nil {
		r.state.Notes = append(r.state.Notes, "truncated an incomplete write at the end of the WAL: "+rec.TornTail.String())
	}
	if rec.HardState.IsEmpty() && len(rec.Entries) == 0 && rec.Snapshot.Index == 0 {
		return replayed{}, fmt.Errorf("%s holds no raftkv data: the WAL in %s is empty", dir, walDir)
	}
	snap, skipped, err := snaps.Load(rec.Snapshot.Index)
	for _, s := range skipped {
		r.state.Notes = append(r.state.Notes, "skipped a damaged snapshot file: "+s.Error())
	}
	if err != nil {
		return replayed{}, fmt.Errorf("load snapshot from %s: %w", snapDir, err)
	}
	if snap.Metadata.Index != rec.Snapshot.Index {
		err := fmt.Errorf("the WAL in %s needs snapshot %016x-%016x.snap in %s, which is missing or damaged",
			walDir, rec.Snapshot.Term, rec.Snapshot.Index, snapDir)
		if len(skipped) > 0 {
			err = fmt.Errorf("%w (%w)", err, errors.Join(skipped...))
		}
		return replayed{}, err
	}
	log, err := storage.NewMemoryStorage(rec, snap)
	if err != nil {
		return replayed{}, fmt.Errorf("recover %s: %w", dir, err)
	}
	store, err := kvstore.New(storeCfg)
	if err != nil {
		return replayed{}, err
	}
	m := &Member{store: store, dedup: newDedup(), cluster: newCluster(), writes: map[uint64]*pendingWrite{}}
	if !snap.IsEmpty() {
		if err := m.restoreSnapshot(snap.Data); err != nil {
			return replayed{}, fmt.Errorf("restore snapshot %016x-%016x.snap in %s: %w", snap.Metadata.Term, snap.Metadata.Index, snapDir, err)
		}
		m.applied = snap.Metadata.Index
	}
	hs, _, _ := log.InitialState()
	last, _ := log.LastIndex()
	commit := min(hs.Commit, last)
	if commit > m.applied {
		ents, err := log.Entries(m.applied+1, commit+1, math.MaxUint64)
		if err != nil {
			return replayed{}, fmt.Errorf("read the log of %s: %w", dir, err)
		}
		for _, e := range ents {
			if err := m.replayEntry(e); err != nil {
				return replayed{}, fmt.Errorf("replay %s: %w", dir, err)
			}
		}
	}
	term, err := log.Term(m.applied)
	if err != nil {
		return replayed{}, fmt.Errorf("term of entry %d in %s: %w", m.applied, dir, err)
	}
	r.member, r.hard = m, hs
	r.state.Index, r.state.Term = m.applied, term
	r.state.StoreIndex = store.CurrentIndex()
	r.state.ClusterID, r.state.Members = m.cluster.id, m.cluster.list()
	r.state.Uncommitted = last - m.applied
	return r, nil
}

// replayEntry applies one committed entry to a bare member: commands to
// the key space, configuration changes to the member table only.
func (m *Member) replayEntry(e raft.Entry) error {
	switch {
	case e.Type == raft.EntryConfChange:
		cc, cctx, err := decodeConfChangeEntry(e)
		if err != nil {
			return err
		}
		if m.firstTimeChange(cctx, e.Index) {
			m.applyMembershipContext(cc, cctx, nil)
		}
	case len(e.Data) > 0:
		if err := m.applyProposal(e); err != nil {
			return err
		}
	}
	m.applied = e.Index
	return nil
}

// ReadDataDir replays the data dir dir on fsys and says what it holds. It
// is how a backup is checked: what it reads, a restore can start from.
func ReadDataDir(fsys storage.FS, dir string) (DataState, error) {
	r, err := replayDataDir(fsys, dir, kvstore.Config{})
	return r.state, err
}

// ForceNewCluster writes into newDir (which must not hold a WAL) the data
// of a one-member cluster made from the data dir dir: the key space as of
// dir's last committed entry, with its indexes, under a new membership —
// self alone, in cluster clusterID. Entries not known to be committed are
// dropped. The new member starts at the same log index, so every key keeps
// its createdIndex and modifiedIndex and X-Etcd-Index goes on from where
// it was. dir is only read (but for a torn WAL tail, which is cut).
func ForceNewCluster(fsys storage.FS, dir, newDir string, self MemberInfo, clusterID uint64) (DataState, error) {
	if self.ID == 0 || clusterID == 0 {
		return DataState{}, fmt.Errorf("%w: a new cluster needs non-zero member and cluster IDs", ErrConfig)
	}
	r, err := replayDataDir(fsys, dir, kvstore.Config{})
	if err != nil {
		return DataState{}, err
	}
	if r.state.Index == 0 {
		return DataState{}, fmt.Errorf("%s holds no committed entry to start a cluster from", dir)
	}
	m := r.member
	m.cluster = newCluster()
	m.cluster.id = clusterID
	self.IsLearner = false
	m.cluster.set(self)
	data, err := m.snapshotData()
	if err != nil {
		return DataState{}, fmt.Errorf("snapshot of %s: %w", dir, err)
	}
	snap := raft.Snapshot{Data: data, Metadata: raft.SnapshotMetadata{
		Index: r.state.Index, Term: r.state.Term, ConfState: raft.ConfState{Voters: []uint64{self.ID}},
	}}
	wal, rec, err := storage.Open(fsys, filepath.Join(newDir, "wal"), storage.Options{})
	if err != nil {
		return DataState{}, err
	}
	if !rec.HardState.IsEmpty() || len(rec.Entries) > 0 || rec.Snapshot.Index > 0 {
		wal.Close()
		return DataState{}, fmt.Errorf("%s already holds a WAL", newDir)
	}
	snaps, err := storage.NewSnapshotter(fsys, filepath.Join(newDir, "snap"))
	if err == nil {
		err = snaps.Save(snap)
	}
	if err != nil {
		wal.Close()
		return DataState{}, fmt.Errorf("save the new cluster's snapshot in %s: %w", newDir, err)
	}
	if err := wal.SaveSnapshotMarker(snap.Metadata); err != nil {
		wal.Close()
		return DataState{}, err
	}
	// The term stays (no term goes backwards); no vote is cast in it.
	hs := raft.HardState{Term: max(r.hard.Term, r.state.Term), Commit: r.state.Index}
	if err := wal.Save(hs, nil, true); err != nil {
		wal.Close()
		return DataState{}, err
	}
	if err := wal.Close(); err != nil {
		return DataState{}, err
	}
	st := r.state
	st.ClusterID, st.Members = clusterID, m.cluster.list()
	return st, nil
}
