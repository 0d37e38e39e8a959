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
	members map[uint64]*MemberInfo
}

func newCluster() *cluster { return &cluster{members: map[uint64]*MemberInfo{}} }

// set records (or replaces) a member's information.
func (c *cluster) set(info MemberInfo) {
	cp := info
	cp.PeerURLs = slices.Clone(info.PeerURLs)
	cp.ClientURLs = slices.Clone(info.ClientURLs)
	c.members[info.ID] = &cp
}

func (c *cluster) remove(id uint64) { delete(c.members, id) }

// list returns the members in increasing order of ID.
func (c *cluster) list() []MemberInfo {
	ids := make([]uint64, 0, len(c.members))
	for id := range c.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]MemberInfo, len(ids))
	for i, id := range ids {
		out[i] = *c.members[id]
		out[i].PeerURLs = slices.Clone(out[i].PeerURLs)
		out[i].ClientURLs = slices.Clone(out[i].ClientURLs)
	}
	return out
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
	return b
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

func (c *cluster) appendBinary(b []byte) []byte {
	list := c.list()
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, m := range list {
		b = appendMemberInfo(b, m)
	}
	return b
}

func decodeCluster(b []byte) (*cluster, []byte, error) {
	c := newCluster()
	r := reader{buf: b}
	for range r.count() {
		c.set(r.memberInfo())
	}
	if r.err != nil {
		return nil, nil, fmt.Errorf("decode member table: %w", r.err)
	}
	return c, r.buf, nil
}
