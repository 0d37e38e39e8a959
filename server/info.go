package server

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"github.com/raftkv/raftkv/raft"
)

// DeriveClusterID computes a cluster's ID from its token and founding
// members, as every founding member does on its own: sha256 of the token
// and the sorted member IDs, first 8 bytes.
func DeriveClusterID(token string, members []MemberInfo) uint64 {
	ids := make([]uint64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	slices.Sort(ids)
	h := sha256.New()
	h.Write([]byte(token))
	for _, id := range ids {
		h.Write(binary.BigEndian.AppendUint64(nil, id))
	}
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// ClusterID identifies the member's cluster.
func (m *Member) ClusterID() uint64 {
	if m.cluster.id != 0 {
		return m.cluster.id
	}
	return m.cfg.ClusterID
}

// Members returns the member table, in increasing order of ID.
func (m *Member) Members() []MemberInfo { return m.cluster.list() }

// Leader returns the ID of the leader this member knows of, or 0.
func (m *Member) Leader() uint64 {
	_, ss, _ := m.node.BasicStatus()
	return ss.Lead
}

// RaftStatus returns the raft node's status.
func (m *Member) RaftStatus() raft.Status { return m.node.Status() }

// CommitTerm returns the term of the entry at raft's commit index.
func (m *Member) CommitTerm() uint64 { return m.node.CommitTerm() }

// HoldsLease reports whether this member leads with a lease it trusts (it
// would answer a read without a round of heartbeats).
func (m *Member) HoldsLease() bool { return m.node.HoldsLease() }

// Promising reports whether this member is bound by its promise to a
// leader (see raft.Node.Promising).
func (m *Member) Promising() bool { return m.node.Promising() }

// LastEntry returns the index and term of the last entry in raft's log,
// written or not yet (see raft.Node.LastEntry).
func (m *Member) LastEntry() (index, term uint64) { return m.node.LastEntry() }

// Applied returns the index the key space reflects.
func (m *Member) Applied() uint64 { return m.applied }

// StoreIndex returns the key space's current etcd index.
func (m *Member) StoreIndex() uint64 { return m.store.CurrentIndex() }

// StoreHash returns a hash of the key space, for checking that members
// that applied the same entries hold the same data.
func (m *Member) StoreHash() uint64 { return m.store.Hash() }

// ConfState returns the raft configuration as of the applied index.
func (m *Member) ConfState() raft.ConfState { return m.confState }

// Storage returns the raft log as raft reads it (for checks and tests).
func (m *Member) Storage() raft.Storage { return m.snapLog }
