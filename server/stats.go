package server

import (
	"slices"

	"github.com/raftkv/raftkv/kvstore"
)

// StoreStats counts the key-space operations a member has seen, as etcd's
// v2 store counts them for /v2/stats/store: writes as they apply (so every
// member counts every write, in log order), expirations one per expired
// node, and reads on the member that served them. A failed operation is
// one the key space refused (a missing key, a failed compare); a request
// that never reached the key space (a timeout) is not counted.
type StoreStats struct {
	GetsSuccess, GetsFail                         uint64
	SetsSuccess, SetsFail                         uint64
	DeleteSuccess, DeleteFail                     uint64
	UpdateSuccess, UpdateFail                     uint64
	CreateSuccess, CreateFail                     uint64
	CompareAndSwapSuccess, CompareAndSwapFail     uint64
	CompareAndDeleteSuccess, CompareAndDeleteFail uint64
	ExpireCount                                   uint64
}

// CountApplied counts one applied command by the operation etcd would
// count it as (kvstore.Command.EffectiveOp).
func (s *StoreStats) CountApplied(cmd *kvstore.Command, res kvstore.Result) {
	ok := res.Err == nil
	switch cmd.EffectiveOp() {
	case kvstore.OpSet:
		count(&s.SetsSuccess, &s.SetsFail, ok)
	case kvstore.OpCreate, kvstore.OpCreateInOrder:
		count(&s.CreateSuccess, &s.CreateFail, ok)
	case kvstore.OpUpdate:
		count(&s.UpdateSuccess, &s.UpdateFail, ok)
	case kvstore.OpCompareAndSwap:
		count(&s.CompareAndSwapSuccess, &s.CompareAndSwapFail, ok)
	case kvstore.OpDelete:
		count(&s.DeleteSuccess, &s.DeleteFail, ok)
	case kvstore.OpCompareAndDelete:
		count(&s.CompareAndDeleteSuccess, &s.CompareAndDeleteFail, ok)
	case kvstore.OpExpire:
		s.ExpireCount += uint64(len(res.Expired))
	}
}

// CountGet counts one read served from the key space.
func (s *StoreStats) CountGet(ok bool) { count(&s.GetsSuccess, &s.GetsFail, ok) }

func count(success, fail *uint64, ok bool) {
	if ok {
		*success++
	} else {
		*fail++
	}
}

// StoreStats returns the member's key-space operation counts.
func (m *Member) StoreStats() StoreStats { return m.storeStats }

// PendingProposals is the number of proposals (writes and membership
// changes) this member has made that have not applied yet.
func (m *Member) PendingProposals() int { return len(m.writes) }

// NodeCount is the number of keys and directories in the key space.
func (m *Member) NodeCount() int { return m.store.NodeCount() }

// IsLearner reports whether this member is a learner in the configuration
// as of the applied index.
func (m *Member) IsLearner() bool {
	return slices.Contains(m.confState.Learners, m.cfg.ID) || slices.Contains(m.confState.LearnersNext, m.cfg.ID)
}
