package server

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/storage"
)

// enospcFS wraps an FS: once armed, the next Sync of a WAL segment fails
// with ENOSPC (as fsync(2) reports on NFS, thin provisioning, or a sparse
// segment on a file system without fallocate). armOnSnapRename arms it
// when a snapshot file is renamed into place: the very next WAL sync is
// then the snapshot marker's.
type enospcFS struct {
	storage.FS
	armOnSnapRename bool
	armed           bool
	fired           int
}

var errENOSPC = fmt.Errorf("%w: fdatasync: no space left on device", storage.ErrDiskFull)

type enospcFile struct {
	storage.File
	fs   *enospcFS
	name string
}

func (f *enospcFile) Sync() error {
	if f.fs.armed && strings.Contains(filepath.ToSlash(f.name), "/wal/") {
		f.fs.armed = false
		f.fs.fired++
		return errENOSPC
	}
	return f.File.Sync()
}

func (e *enospcFS) Create(name string) (storage.File, error) {
	f, err := e.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &enospcFile{File: f, fs: e, name: name}, nil
}

func (e *enospcFS) Open(name string) (storage.File, error) {
	f, err := e.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &enospcFile{File: f, fs: e, name: name}, nil
}

func (e *enospcFS) Rename(oldname, newname string) error {
	err := e.FS.Rename(oldname, newname)
	if err == nil && e.armOnSnapRename && strings.HasSuffix(newname, ".snap") {
		e.armOnSnapRename, e.armed = false, true
	}
	return err
}

// Found by a review, failing before its fix: a failed WAL fsync whose cause is ENOSPC makes the WAL fail for
// good (ErrFailed, fsyncgate), but the error also wraps ErrDiskFull, and
// maybeSnapshot / PersistDone take it for a passing full disk: the member
// retries forever on a WAL that refuses every write, never reports a fatal
// error, and never restarts (a stuck member; a stuck leader if it leads).
func TestFailedWALIsFatalThoughTheDiskWasFull(t *testing.T) {
	efs := &enospcFS{FS: storage.NewFaultyFS()}
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.FS = efs
		cfg.SnapshotEvery, cfg.SnapshotKeep = 20, 5
	})
	lead := c.leader()
	m := c.members[lead]
	efs.armOnSnapRename = true // the first snapshot marker's fsync fails

	// Drive the member by hand: a fatal error is the right outcome here,
	// which the harness's process() would reject.
	var fatal error
	run := func() {
		for m.HasWork() && fatal == nil {
			out := m.Process()
			if out.Err != nil {
				fatal = out.Err
				return
			}
			if out.Persist != nil {
				m.PersistDone(out.Persist, out.Persist.Run())
			}
		}
	}
	failed := 0
	for i := 0; i < 200 && fatal == nil; i++ {
		var resp *Response
		req := set(fmt.Sprintf("/k%d", i), "v")
		req.Now = c.now
		m.Submit(req, func(r Response) { resp = &r })
		for j := 0; resp == nil && fatal == nil && j < 100; j++ {
			run()
			if resp == nil && fatal == nil {
				c.now = c.now.Add(c.members[lead].tickLength())
				m.Tick(c.now)
				run()
			}
		}
		if resp != nil && resp.Err != nil {
			failed++
		}
	}
	require.Equal(t, 1, efs.fired, "the marker's fsync was never failed: the test saw nothing")
	t.Logf("after the failed fsync: %d of 200 writes failed, DiskFull=%v, fatal=%v", failed, m.DiskFull(), fatal)
	require.Error(t, fatal, "the WAL failed for good (fsyncgate), yet the member never reported a fatal error: "+
		"it keeps retrying a WAL that refuses every write (DiskFull=%v, %d writes refused)", m.DiskFull(), failed)
	require.True(t, errors.Is(fatal, storage.ErrFailed))
}

// Found by a review, failing before its fix: a configuration change proposal forwarded by a follower (MsgProp)
// and delivered twice — the network may duplicate a message, and the
// simulator's FaultDup does — is appended and applied twice if the second
// copy reaches the leader after the first applied: conf changes, unlike
// commands, are not deduplicated (proposer, incarnation and request ID are
// in their context but never checked). A member removed in between comes
// back: the operator removed it, the cluster counts it again.
func TestDuplicatedConfChangeProposalAppliesOnce(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	f := c.follower(lead)
	var saved []raft.Message
	c.drop = func(m raft.Message) bool {
		if m.Type == raft.MsgProp && m.From == f && len(m.Entries) == 1 && m.Entries[0].Type == raft.EntryConfChange {
			cp := m
			cp.Entries = slices.Clone(m.Entries)
			saved = append(saved, cp)
		}
		return false
	}
	add := c.do(f, Request{Kind: RequestMembership, Membership: &MembershipChange{
		Op: MemberAdd, Voter: true, Member: MemberInfo{PeerURLs: []string{"http://127.0.0.1:9999"}}}})
	require.NoError(t, add.Err)
	x := add.Member.ID
	require.Len(t, saved, 1, "the add was not forwarded: the test saw nothing")
	c.drop = nil
	rm := c.do(lead, Request{Kind: RequestMembership, Membership: &MembershipChange{Op: MemberRemove, Member: MemberInfo{ID: x}}})
	require.NoError(t, rm.Err)
	require.False(t, c.members[lead].confState.Contains(x), "x was not removed")

	// The network delivers the forwarded proposal a second time.
	c.members[lead].Receive(saved[0], c.now)
	c.tick(5)
	for _, id := range c.ids {
		m := c.members[id]
		_, inTable := m.cluster.members[x]
		assert.False(t, m.confState.Contains(x) || inTable,
			"member %d: removed member %x is back in the configuration (voters %v) / member table (%v) after a duplicated proposal",
			id, x, m.confState.Voters, inTable)
	}
}

// Found by a review, failing before its fix: held changes are released only on a tick. A change submitted
// after the one in flight applied but before the next tick is proposed at
// once, ahead of the changes held before it (which the doc of heldChanges
// says go "oldest first", "each submitted when the one before applied").
func TestHeldChangesKeepTheirOrder(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	m := c.members[lead]
	add := func(port int) Request {
		return Request{Kind: RequestMembership, Now: c.now, Membership: &MembershipChange{
			Op: MemberAdd, NoPromote: true, Member: MemberInfo{PeerURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", port)}}}}
	}
	var order []int
	answer := func(n int) func(Response) {
		return func(r Response) {
			require.NoError(t, r.Err, "change %d", n)
			order = append(order, n)
		}
	}
	m.Submit(add(9001), answer(1))
	m.Submit(add(9002), answer(2)) // held: 1 is in flight
	require.Len(t, m.heldChanges, 1)
	c.settle() // 1 applies; no tick yet
	require.Equal(t, []int{1}, order)
	m.Submit(add(9003), answer(3)) // sent after 2
	for i := 0; len(order) < 3 && i < 200; i++ {
		c.tick(1)
	}
	assert.Equal(t, []int{1, 2, 3}, order, "held change 2 was overtaken by change 3, sent after it")
}

// Found by a review, failing before its fix: a leader whose latest snapshot file turns out unreadable when a
// lagging follower needs it asks for a new snapshot (snapshotNow) and
// withholds the old one meanwhile — but the new one is taken only "once
// another entry applies". In a quiet cluster (no writes, no TTLs) none
// does: the follower never catches up, although the leader could retake the
// snapshot at its applied index at once.
func TestUnreadableSnapshotInAQuietClusterIsReplaced(t *testing.T) {
	disks := map[uint64]*storage.FaultyFS{}
	c := newTestCluster(t, 3, func(cfg *Config) {
		if disks[cfg.ID] == nil {
			disks[cfg.ID] = storage.NewFaultyFS()
		}
		cfg.FS = disks[cfg.ID]
		cfg.SnapshotEvery, cfg.SnapshotKeep = 10, 2
	})
	lead := c.leader()
	f := c.follower(lead)
	m := c.members[lead]
	c.drop = func(msg raft.Message) bool { return msg.To == f || msg.From == f }
	// Write until the leader's latest snapshot is at its applied index.
	for i := 0; i < 30 || m.snapshotIndex != m.applied; i++ {
		require.Less(t, i, 300, "the leader's snapshot never landed on its applied index")
		require.NoError(t, c.do(lead, set(fmt.Sprintf("/k%d", i%5), fmt.Sprint(i))).Err)
	}
	c.tick(3)
	require.Equal(t, m.snapshotIndex, m.applied)
	// Damage the leader's latest snapshot file on the medium, and let the
	// copy in memory go.
	names, err := disks[lead].List("data/snap")
	require.NoError(t, err)
	latest := ""
	for _, n := range names {
		if strings.HasSuffix(n, ".snap") {
			latest = n
		}
	}
	require.NoError(t, disks[lead].FlipBit("data/snap/"+latest, 40, 3))
	c.tick(snapshotDataIdleTicks + 5)

	c.drop = nil // the follower is back; nobody writes
	c.tick(300)
	assert.Equal(t, m.applied, c.members[f].applied,
		"the follower never caught up in a quiet cluster: leader snapshotNow=%v snapshotIndex=%d applied=%d",
		m.snapshotNow, m.snapshotIndex, m.applied)
}

// markerFullDisk stands for a WAL whose segment is full with no room for
// a new one (WAL.makeRoom → cut → openNewSegment fails with ErrDiskFull,
// the WAL staying usable) while the snapshot directory still has room for
// a snapshot file: SaveSnapshotStream saves the file, durably, and then the
// marker is refused. mode 1 refuses the file too (no room at all).
type markerFullDisk struct {
	*walDisk
	mode int
}

func (d *markerFullDisk) SaveSnapshotStream(meta raft.SnapshotMetadata, write func(io.Writer) error) error {
	switch d.mode {
	case 1:
		return fmt.Errorf("snap: write: %w", storage.ErrDiskFull)
	case 2:
		if err := d.snaps.SaveStream(meta, write); err != nil {
			return err
		}
		return fmt.Errorf("wal: create segment: %w", storage.ErrDiskFull)
	}
	return d.walDisk.SaveSnapshotStream(meta, write)
}

// Found by a review, failing before its fix: snapshot files saved while their WAL marker could not be written
// stay on disk, newer than the marker. Snapshotter.Purge keeps the two
// files of highest index, whatever the marker says: after a restart the
// member replays and marks a snapshot at a lower index than two such
// files, and Purge deletes the very file its new marker names (and the one
// before it). The log is released behind it; the next restart fails.
func TestPurgeKeepsTheMarkedSnapshot(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.SnapshotEvery, cfg.SnapshotKeep = 10, 2
		cfg.MaxSizePerMsg = 256 // a restart replays a few entries per round
	})
	lead := c.leader()
	m := c.members[lead]
	for i := 0; m.snapshotIndex == 0; i++ {
		require.Less(t, i, 100)
		require.NoError(t, c.do(lead, set(fmt.Sprintf("/a%d", i), "v")).Err)
	}
	marked := m.snapshotIndex
	d := &markerFullDisk{walDisk: m.disk.(*walDisk), mode: 1}
	m.disk = d
	for i := range 60 { // the disk is full: snapshots are tried and put off
		require.NoError(t, c.do(lead, set(fmt.Sprintf("/b%d", i), "v")).Err)
	}
	d.mode = 2 // room for a snapshot file, none for a WAL segment
	var unmarked []uint64
	for i := 0; len(unmarked) < 2; i++ {
		require.Less(t, i, 100)
		c.tick(1)
		require.NoError(t, c.do(lead, set(fmt.Sprintf("/c%d", i), "v")).Err)
		unmarked = unmarked[:0]
		for _, idx := range snapIndexes(t, c.fs[lead]) {
			if idx > marked {
				unmarked = append(unmarked, idx)
			}
		}
	}
	require.Equal(t, marked, m.snapshotIndex)
	t.Logf("marker at %d; snapshot files without a marker at %v", marked, unmarked)

	c.restart(lead) // room again: a new disk, not wrapped
	m = c.members[lead]
	// Replay, stopping at the first snapshot the restarted member marks.
	for i := 0; m.snapshotIndex == marked; i++ {
		require.Less(t, i, 1000, "no snapshot after the restart")
		if !m.HasWork() {
			c.now = c.now.Add(m.tickLength())
			m.Tick(c.now)
			continue
		}
		out := m.Process()
		require.NoError(t, out.Err)
		if out.Persist != nil {
			m.PersistDone(out.Persist, out.Persist.Run())
		}
	}
	have := snapIndexes(t, c.fs[lead])
	t.Logf("after the restart: marker at %d, snapshot files %v", m.snapshotIndex, have)
	assert.Contains(t, have, m.snapshotIndex, "the snapshot the WAL's marker names was purged")
	_, err := m.disk.LoadSnapshot(m.snapshotIndex)
	assert.NoError(t, err, "the member cannot read back its own latest snapshot")
	require.NoError(t, m.Close()) // a crash here
	_, err = New(c.config(lead))
	assert.NoError(t, err, "the member cannot start again from its disk")
}

// snapIndexes lists the indexes of the snapshot files in data/snap.
func snapIndexes(t *testing.T, fsys storage.FS) []uint64 {
	names, err := fsys.List("data/snap")
	require.NoError(t, err)
	var out []uint64
	for _, n := range names {
		var term, index uint64
		if _, err := fmt.Sscanf(n, "%016x-%016x.snap", &term, &index); err == nil && strings.HasSuffix(n, ".snap") {
			out = append(out, index)
		}
	}
	return out
}
