package server

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// cluster is the replicated table of members: who they are and where to
// reach them. Raft's configuration says who votes; this says the rest. It
// changes only by applying entries, so every member holds the same one.
type cluster struct {
	// id is the cluster's ID, learned from the bootstrap entries (or from
	// the configuration of a founding member); 0 until known.
	id      uint64
	members map[uint64]*MemberInfo
	// removed lists members removed from the cluster: their IDs may not
	// come back (etcd answers 410 Gone for them).
	removed map[uint64]bool
	// promote lists learners to promote to voters once caught up.
	promote map[uint64]bool
}

func newCluster() *cluster {
	return &cluster{members: map[uint64]*MemberInfo{}, removed: map[uint64]bool{}, promote: map[uint64]bool{}}
}

// set records (or replaces) a member's information.
func (c *cluster) set(info MemberInfo) {
	cp := info
	cp.PeerURLs = slices.Clone(info.PeerURLs)
	cp.ClientURLs = slices.Clone(info.ClientURLs)
	c.members[info.ID] = &cp
}

// remove forgets a member for good.
func (c *cluster) remove(id uint64) {
	delete(c.members, id)
	delete(c.promote, id)
	c.removed[id] = true
}

// list returns the members in increasing order of ID.
func (c *cluster) list() []MemberInfo {
	out := make([]MemberInfo, 0, len(c.members))
	for _, id := range sortedKeys(c.members) {
		info := *c.members[id]
		info.PeerURLs = slices.Clone(info.PeerURLs)
		info.ClientURLs = slices.Clone(info.ClientURLs)
		out = append(out, info)
	}
	return out
}

// peerURLOwner returns the member that advertises url, or 0.
func (c *cluster) peerURLOwner(url string) uint64 {
	for _, id := range sortedKeys(c.members) {
		if slices.Contains(c.members[id].PeerURLs, url) {
			return id
		}
	}
	return 0
}

func sortedKeys[V any](m map[uint64]V) []uint64 {
	ids := make([]uint64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func appendMemberInfo(b []byte, m MemberInfo) []byte {
	b = binary.AppendUvarint(b, m.ID)
	b = appendString(b, m.Name)
	b = binary.AppendUvarint(b, uint64(len(m.PeerURLs)))
	for _, u := range m.PeerURLs {
		b = appendString(b, u)
	}
	b = binary.AppendUvarint(b, uint64(len(m.ClientURLs)))
	for _, u := range m.ClientURLs {
		b = appendString(b, u)
	}
	if m.IsLearner {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (r *reader) memberInfo() MemberInfo {
	m := MemberInfo{ID: r.uvarint(), Name: string(r.bytes())}
	for range r.count() {
		m.PeerURLs = append(m.PeerURLs, string(r.bytes()))
	}
	for range r.count() {
		m.ClientURLs = append(m.ClientURLs, string(r.bytes()))
	}
	m.IsLearner = r.uvarint() == 1
	return m
}

// encodeMemberInfo is the payload of a kindMemberInfo entry.
func encodeMemberInfo(m MemberInfo) []byte { return appendMemberInfo(nil, m) }

func decodeMemberInfo(b []byte) (MemberInfo, error) {
	r := reader{buf: b}
	m := r.memberInfo()
	if r.err == nil && len(r.buf) != 0 {
		r.err = errBadEntry
	}
	if r.err != nil {
		return MemberInfo{}, fmt.Errorf("decode member info: %w", r.err)
	}
	return m, nil
}

func appendIDs(b []byte, set map[uint64]bool) []byte {
	ids := sortedKeys(set)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
	}
	return b
}

func (r *reader) ids() map[uint64]bool {
	set := map[uint64]bool{}
	for range r.count() {
		set[r.uvarint()] = true
	}
	return set
}

func (c *cluster) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, c.id)
	list := c.list()
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, m := range list {
		b = appendMemberInfo(b, m)
	}
	b = appendIDs(b, c.removed)
	return appendIDs(b, c.promote)
}

func decodeCluster(b []byte) (*cluster, []byte, error) {
	c := newCluster()
	r := reader{buf: b}
	c.id = r.uvarint()
	for range r.count() {
		c.set(r.memberInfo())
	}
	c.removed = r.ids()
	c.promote = r.ids()
	if r.err != nil {
		return nil, nil, fmt.Errorf("decode member table: %w", r.err)
	}
	return c, r.buf, nil
}
