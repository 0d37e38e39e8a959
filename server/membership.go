package server

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/raft"
)

// Membership changes (/v2/members, `raftkv member`). A change is a raft
// configuration change whose Context carries who asked (to answer them) and
// the member's information (so every member's table agrees). An added
// member starts as a learner — it receives the log without voting, so the
// quorum does not grow before it has caught up — and the leader promotes it
// to voter once it has; Voter in the request skips that.

// MembershipOp is a kind of membership change.
type MembershipOp uint8

const (
	// MemberAdd adds Member (its ID is derived from its peer URLs if 0).
	MemberAdd MembershipOp = iota + 1
	// MemberRemove removes Member.ID.
	MemberRemove
	// MemberUpdate changes Member.ID's peer URLs.
	MemberUpdate
	// MemberPromote makes learner Member.ID a voter now.
	MemberPromote
)

// MembershipChange is the payload of a RequestMembership.
type MembershipChange struct {
	Op     MembershipOp
	Member MemberInfo
	// Voter, for MemberAdd, adds a voter at once instead of a learner.
	Voter bool
	// NoPromote, for MemberAdd, leaves the learner a learner.
	NoPromote bool
}

// Membership errors, as etcd names them. The HTTP layer maps them to
// statuses with errors.Is.
var (
	ErrMemberNotFound   = errors.New("membership: member not found")
	ErrMemberRemoved    = errors.New("membership: member removed")
	ErrIDExists         = errors.New("membership: ID exists")
	ErrPeerURLExists    = errors.New("membership: peerURL exists")
	ErrNotLearner       = errors.New("membership: can only promote a learner member")
	ErrChangeInProgress = errors.New("etcdserver: another membership change is in progress")
	ErrNoLeader         = errors.New("etcdserver: no leader")
	ErrTooFewVoters     = errors.New("etcdserver: re-configuration failed due to not enough started members")
)

// Contexts of configuration change entries.
const (
	// ccBootstrap: the cluster ID and a founding member's information.
	ccBootstrap = 1
	// ccRequest: proposer, incarnation, request ID, flags, member info.
	ccRequest = 2
)

const ccFlagPromote = 1

// promoteLagEntries is how far behind the leader's log a learner may be and
// still be promoted.
const promoteLagEntries = 64

func bootstrapContext(clusterID uint64, info MemberInfo) []byte {
	b := []byte{ccBootstrap}
	b = binary.AppendUvarint(b, clusterID)
	return appendMemberInfo(b, info)
}

// confChangeContext is a decoded Context.
type confChangeContext struct {
	kind      byte
	clusterID uint64
	proposal  proposal
	promote   bool
	info      MemberInfo
}

func decodeConfChangeContext(b []byte) (confChangeContext, error) {
	if len(b) == 0 {
		return confChangeContext{}, nil
	}
	c := confChangeContext{kind: b[0]}
	r := reader{buf: b[1:]}
	switch c.kind {
	case ccBootstrap:
		c.clusterID = r.uvarint()
	case ccRequest:
		c.proposal = proposal{proposer: r.uvarint(), incarnation: r.uvarint(), requestID: r.uvarint()}
		c.promote = r.uvarint()&ccFlagPromote != 0
	default:
		return c, fmt.Errorf("%w: unknown configuration change context %d", errBadEntry, c.kind)
	}
	c.info = r.memberInfo()
	if r.err != nil {
		return c, fmt.Errorf("decode configuration change context: %w", r.err)
	}
	return c, nil
}

// DeriveMemberID computes a member's ID from its peer URLs and the
// cluster token (never 0). The member being added and the member that adds
// it compute the same ID on their own, so a new member knows who it is
// without asking. A removed member's ID cannot be used again: give a
// replacement new peer URLs.
func DeriveMemberID(peerURLs []string, token string) uint64 {
	urls := slices.Clone(peerURLs)
	slices.Sort(urls)
	h := sha256.New()
	h.Write([]byte(strings.Join(urls, ",")))
	h.Write([]byte{0})
	h.Write([]byte(token))
	id := binary.BigEndian.Uint64(h.Sum(nil)[:8])
	return max(id, 1)
}

// newMemberID picks the ID of a member added at peerURLs: the one derived
// from them and the token, or, if a removed member had it (a member that
// lost its data is removed and added back at the same URLs), the first free
// one derived with a counter. A joining member learns its ID from the
// cluster, so it need not derive it.
func (m *Member) newMemberID(peerURLs []string) uint64 {
	id := DeriveMemberID(peerURLs, m.cfg.ClusterToken)
	for n := 1; m.cluster.removed[id] && n <= len(m.cluster.removed); n++ {
		id = DeriveMemberID(peerURLs, m.cfg.ClusterToken+"\x00"+strconv.Itoa(n))
	}
	return id
}

// submitMembership validates a change against the member table and
// proposes it, or holds it while another change is in flight or held
// before it (they go in the order they came).
func (m *Member) submitMembership(req Request, done func(Response)) {
	if req.Membership == nil {
		done(m.errorResponse(internalError(errors.New("membership request without a change"))))
		return
	}
	if m.ticks < m.confChangeUntil || len(m.heldChanges) > 0 {
		// One change at a time: this one waits for the last to apply.
		m.heldChanges = append(m.heldChanges, heldChange{req: req, done: done, deadline: m.ticks + uint64(m.cfg.RequestTimeoutTicks)})
		return
	}
	m.proposeMembership(req, done)
}

// proposeMembership validates a change against the member table and
// proposes it.
func (m *Member) proposeMembership(req Request, done func(Response)) {
	ch := req.Membership
	if _, ss, _ := m.node.BasicStatus(); ss.Lead == raft.None {
		done(m.errorResponse(ErrNoLeader))
		return
	}
	cc, info, err := m.planChange(req)
	if err != nil {
		done(m.errorResponse(err))
		return
	}
	m.nextRequestID++
	id := m.nextRequestID
	ctx := []byte{ccRequest}
	for _, v := range []uint64{m.cfg.ID, m.incarnation, id} {
		ctx = binary.AppendUvarint(ctx, v)
	}
	var flags uint64
	if ch.Op == MemberAdd && !ch.Voter && !ch.NoPromote {
		flags |= ccFlagPromote
	}
	ctx = binary.AppendUvarint(ctx, flags)
	cc.Context = appendMemberInfo(ctx, info)
	if err := m.node.ProposeConfChange(cc); err != nil {
		done(m.errorResponse(ErrNoLeader))
		return
	}
	m.confChangeUntil = m.ticks + uint64(m.cfg.RequestTimeoutTicks)
	m.writes[id] = &pendingWrite{done: done, deadline: m.ticks + uint64(m.cfg.RequestTimeoutTicks), member: &info}
	m.writeOrder = append(m.writeOrder, id)
}

// planChange turns a membership request into a configuration change,
// checking it against the member table.
func (m *Member) planChange(req Request) (raft.ConfChange, MemberInfo, error) {
	ch := req.Membership
	info := ch.Member
	cur := m.cluster.members[info.ID]
	switch ch.Op {
	case MemberAdd:
		if len(info.PeerURLs) == 0 {
			return raft.ConfChange{}, info, errors.New("membership: a member needs at least one peer URL")
		}
		if info.ID == 0 {
			info.ID = m.newMemberID(info.PeerURLs)
		}
		if cur != nil || m.cluster.removed[info.ID] {
			return raft.ConfChange{}, info, ErrIDExists
		}
		for _, u := range info.PeerURLs {
			if m.cluster.peerURLOwner(u) != 0 {
				return raft.ConfChange{}, info, ErrPeerURLExists
			}
		}
		info.Name, info.ClientURLs, info.IsLearner = "", nil, !ch.Voter
		t := raft.ConfChangeAddLearnerNode
		if ch.Voter {
			t = raft.ConfChangeAddNode
		}
		return raft.ConfChange{Changes: []raft.ConfChangeSingle{{Type: t, NodeID: info.ID}}}, info, nil
	case MemberRemove, MemberUpdate, MemberPromote:
		if cur == nil {
			if m.cluster.removed[info.ID] {
				return raft.ConfChange{}, info, ErrMemberRemoved
			}
			return raft.ConfChange{}, info, ErrMemberNotFound
		}
	}
	switch ch.Op {
	case MemberRemove:
		if !cur.IsLearner && !m.quorumSurvivesRemoval(info.ID) {
			return raft.ConfChange{}, info, ErrTooFewVoters
		}
		return raft.ConfChange{Changes: []raft.ConfChangeSingle{{Type: raft.ConfChangeRemoveNode, NodeID: info.ID}}}, *cur, nil
	case MemberPromote:
		if !cur.IsLearner {
			return raft.ConfChange{}, info, ErrNotLearner
		}
		promoted := *cur
		promoted.IsLearner = false
		return raft.ConfChange{Changes: []raft.ConfChangeSingle{{Type: raft.ConfChangeAddNode, NodeID: info.ID}}}, promoted, nil
	case MemberUpdate:
		for _, u := range info.PeerURLs {
			if owner := m.cluster.peerURLOwner(u); owner != 0 && owner != info.ID {
				return raft.ConfChange{}, info, ErrPeerURLExists
			}
		}
		updated := *cur
		updated.PeerURLs = slices.Clone(info.PeerURLs)
		// Re-adding a member as what it is changes no vote; the context
		// carries the new addresses to every member's table.
		t := raft.ConfChangeAddNode
		if cur.IsLearner {
			t = raft.ConfChangeAddLearnerNode
		}
		return raft.ConfChange{Changes: []raft.ConfChangeSingle{{Type: t, NodeID: info.ID}}}, updated, nil
	}
	return raft.ConfChange{}, info, fmt.Errorf("membership: unknown operation %d", ch.Op)
}

// quorumSurvivesRemoval reports whether, without member id, the voters this
// leader has heard from recently still make a quorum. Only a leader knows;
// elsewhere the change is let through.
func (m *Member) quorumSurvivesRemoval(id uint64) bool {
	st := m.node.Status()
	if st.State != raft.StateLeader {
		return true
	}
	active, voters := 0, 0
	for _, v := range st.Config.Voters {
		if v == id {
			continue
		}
		voters++
		pr, ok := st.Progress[v]
		if v == m.cfg.ID || ok && st.Ticks-pr.LastHeard < uint64(m.cfg.ElectionTicks) {
			active++
		}
	}
	return active >= voters/2+1
}

// applyMembershipContext updates the member table after a configuration
// change with context cctx applied (err: raft refused it).
func (m *Member) applyMembershipContext(cc raft.ConfChange, cctx confChangeContext, err error) {
	if err == nil {
		switch cctx.kind {
		case ccBootstrap:
			if m.cluster.id == 0 {
				m.cluster.id = cctx.clusterID
			}
			m.cluster.set(cctx.info)
		case ccRequest:
			for _, c := range cc.Changes {
				switch c.Type {
				case raft.ConfChangeRemoveNode:
					m.cluster.remove(c.NodeID)
				case raft.ConfChangeAddNode, raft.ConfChangeAddLearnerNode:
					info := cctx.info
					info.IsLearner = c.Type == raft.ConfChangeAddLearnerNode
					if prev, ok := m.cluster.members[c.NodeID]; ok && info.Name == "" {
						// Keep what the member published about itself.
						info.Name, info.ClientURLs = prev.Name, prev.ClientURLs
					}
					m.cluster.set(info)
					if cctx.promote && info.IsLearner {
						m.cluster.promote[c.NodeID] = true
					} else if !info.IsLearner {
						delete(m.cluster.promote, c.NodeID)
					}
				}
			}
		}
		m.membersChanged = true
	}
	if cctx.kind != ccRequest {
		return
	}
	p := cctx.proposal
	if p.proposer != m.cfg.ID || p.incarnation != m.incarnation {
		return
	}
	m.confChangeUntil = 0
	w := m.writes[p.requestID]
	if w == nil {
		return
	}
	delete(m.writes, p.requestID)
	resp := Response{RaftIndex: m.commitIndex(), RaftTerm: m.term(), Members: m.cluster.list()}
	if err != nil {
		resp.Err = fmt.Errorf("membership: %w", err)
	} else if w.member != nil {
		info := *w.member
		if cur, ok := m.cluster.members[info.ID]; ok {
			info = *cur
		}
		resp.Member = &info
	}
	w.done(resp)
}

// heldChange is a membership request waiting for the change before it.
type heldChange struct {
	req      Request
	done     func(Response)
	deadline uint64 // the tick its caller stops waiting
}

// releaseHeldChanges submits the next held membership request once no
// change of this member is in flight, and answers the ones whose time ran
// out with ErrChangeInProgress (nothing was proposed for them).
func (m *Member) releaseHeldChanges() {
	for len(m.heldChanges) > 0 {
		h := m.heldChanges[0]
		if h.deadline <= m.ticks {
			m.heldChanges = m.heldChanges[1:]
			h.done(m.errorResponse(ErrChangeInProgress))
			continue
		}
		if m.ticks < m.confChangeUntil {
			return
		}
		m.heldChanges = m.heldChanges[1:]
		m.proposeMembership(h.req, h.done)
	}
}

// maybePromoteLearners makes a leader promote the learners added to be
// promoted, once they have been heard from recently and hold a log within
// promoteLagEntries of its own. (A learner that never answered must never
// be promoted: a voter that does not exist can cost the quorum.)
func (m *Member) maybePromoteLearners() {
	if len(m.cluster.promote) == 0 || m.ticks < m.confChangeUntil {
		return
	}
	st := m.node.Status()
	if st.State != raft.StateLeader {
		return
	}
	for _, id := range sortedKeys(m.cluster.promote) {
		pr, ok := st.Progress[id]
		info := m.cluster.members[id]
		heard := st.Ticks-pr.LastHeard < uint64(m.cfg.ElectionTicks)
		if !ok || !pr.IsLearner || info == nil || pr.Match == 0 || !heard || pr.Match+promoteLagEntries < st.LastIndex {
			continue
		}
		promoted := *info
		promoted.IsLearner = false
		ctx := []byte{ccRequest}
		ctx = binary.AppendUvarint(ctx, m.cfg.ID)
		ctx = binary.AppendUvarint(ctx, m.incarnation)
		ctx = binary.AppendUvarint(ctx, 0)
		ctx = binary.AppendUvarint(ctx, 0)
		cc := raft.ConfChange{
			Changes: []raft.ConfChangeSingle{{Type: raft.ConfChangeAddNode, NodeID: id}},
			Context: appendMemberInfo(ctx, promoted),
		}
		if m.node.ProposeConfChange(cc) == nil {
			m.confChangeUntil = m.ticks + uint64(m.cfg.RequestTimeoutTicks)
		}
		return // one change at a time
	}
}
