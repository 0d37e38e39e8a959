package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The binary encoding of the types that leave a member: entries, hard state
// and snapshot metadata go to the write-ahead log, messages to the network.
// Integers are unsigned varints; byte strings and lists are prefixed with
// their length. The encoding carries no version of its own: the containers
// (WAL records, transport frames) carry one.
//
// Decoding never panics and never allocates more than the input's size: every
// length is checked against the bytes that remain before anything is made.

// ErrTruncated is returned when an encoded value ends early.
var ErrTruncated = errors.New("raft: encoded value is truncated")

// AppendBinary appends e's encoding to b.
func (e *Entry) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, e.Term)
	b = binary.AppendUvarint(b, e.Index)
	b = append(b, byte(e.Type))
	b = appendBytes(b, e.Data)
	return b, nil
}

// MarshalBinary encodes e.
func (e *Entry) MarshalBinary() ([]byte, error) { return e.AppendBinary(nil) }

// UnmarshalBinary decodes e from all of b. Data is copied out of b.
func (e *Entry) UnmarshalBinary(b []byte) error {
	d := decoder{buf: b}
	*e = d.entry(true)
	return d.finish("entry")
}

// AppendBinary appends h's encoding to b.
func (h *HardState) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, h.Term)
	b = binary.AppendUvarint(b, h.Vote)
	b = binary.AppendUvarint(b, h.Commit)
	return b, nil
}

// MarshalBinary encodes h.
func (h *HardState) MarshalBinary() ([]byte, error) { return h.AppendBinary(nil) }

// UnmarshalBinary decodes h from all of b.
func (h *HardState) UnmarshalBinary(b []byte) error {
	d := decoder{buf: b}
	h.Term, h.Vote, h.Commit = d.uvarint(), d.uvarint(), d.uvarint()
	return d.finish("hard state")
}

// AppendBinary appends c's encoding to b.
func (c *ConfState) AppendBinary(b []byte) ([]byte, error) {
	b = appendIDs(b, c.Voters)
	b = appendIDs(b, c.Learners)
	b = appendIDs(b, c.VotersOutgoing)
	b = appendIDs(b, c.LearnersNext)
	b = appendBool(b, c.AutoLeave)
	return b, nil
}

// AppendBinary appends m's encoding to b.
func (m *SnapshotMetadata) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, m.Index)
	b = binary.AppendUvarint(b, m.Term)
	return m.ConfState.AppendBinary(b)
}

// MarshalBinary encodes m.
func (m *SnapshotMetadata) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

// UnmarshalBinary decodes m from all of b.
func (m *SnapshotMetadata) UnmarshalBinary(b []byte) error {
	d := decoder{buf: b}
	*m = d.snapshotMetadata()
	return d.finish("snapshot metadata")
}

// AppendBinary appends m's encoding to b.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(m.Type))
	for _, v := range [...]uint64{m.To, m.From, m.Term, m.LogTerm, m.Index, m.Commit, m.RejectHint} {
		b = binary.AppendUvarint(b, v)
	}
	var flags byte
	if m.Reject {
		flags |= 1
	}
	if m.Transfer {
		flags |= 2
	}
	if m.Snapshot != nil {
		flags |= 4
	}
	b = append(b, flags)
	b = appendBytes(b, m.Context)
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	for i := range m.Entries {
		b, _ = m.Entries[i].AppendBinary(b)
	}
	if m.Snapshot != nil {
		b, _ = m.Snapshot.Metadata.AppendBinary(b)
		b = binary.AppendUvarint(b, m.Snapshot.Offset)
		b = binary.AppendUvarint(b, m.Snapshot.Total)
		b = appendBytes(b, m.Snapshot.Data)
	}
	return b, nil
}

// MarshalBinary encodes m.
func (m *Message) MarshalBinary() ([]byte, error) { return m.AppendBinary(nil) }

// UnmarshalBinary decodes m from all of b. Byte slices in m are copied out
// of b, so b may be reused afterwards.
func (m *Message) UnmarshalBinary(b []byte) error {
	d := decoder{buf: b}
	*m = Message{Type: MessageType(d.byte())}
	for _, p := range [...]*uint64{&m.To, &m.From, &m.Term, &m.LogTerm, &m.Index, &m.Commit, &m.RejectHint} {
		*p = d.uvarint()
	}
	flags := d.byte()
	m.Reject, m.Transfer = flags&1 != 0, flags&2 != 0
	m.Context = d.bytes(true)
	// Each encoded entry takes at least 4 bytes, which bounds the count
	// before the slice is made.
	if n := d.count(4); n > 0 {
		m.Entries = make([]Entry, n)
		for i := range m.Entries {
			m.Entries[i] = d.entry(true)
		}
	}
	if flags&4 != 0 {
		c := &SnapshotChunk{Metadata: d.snapshotMetadata()}
		c.Offset, c.Total = d.uvarint(), d.uvarint()
		c.Data = d.bytes(true)
		m.Snapshot = c
	}
	if flags&^7 != 0 && d.err == nil {
		d.err = fmt.Errorf("raft: message has unknown flags %#x", flags)
	}
	if (m.Type < MsgApp || m.Type > MsgTransferLeader) && d.err == nil {
		d.err = fmt.Errorf("raft: unknown message type %d", m.Type)
	}
	return d.finish("message")
}

func appendBytes(b, data []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

func appendIDs(b []byte, ids []uint64) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// decoder reads the encoding above. After the first error every read
// returns a zero value and the error sticks.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.buf = nil
}

func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("raft: %d trailing bytes after %s", len(d.buf), what)
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", what, d.err)
	}
	return nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(ErrTruncated)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.buf) == 0 {
		d.fail(ErrTruncated)
		return 0
	}
	v := d.buf[0]
	d.buf = d.buf[1:]
	return v
}

// count reads a list length and checks that the list, at minSize bytes an
// element, fits in what remains.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64(len(d.buf)/minSize) {
		d.fail(ErrTruncated)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(copyOut bool) []byte {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	v := d.buf[:n:n]
	d.buf = d.buf[n:]
	if copyOut {
		v = append([]byte(nil), v...)
	}
	return v
}

func (d *decoder) entry(copyOut bool) Entry {
	e := Entry{Term: d.uvarint(), Index: d.uvarint(), Type: EntryType(d.byte())}
	e.Data = d.bytes(copyOut)
	if e.Type > EntryConfChange && d.err == nil {
		d.fail(fmt.Errorf("raft: unknown entry type %d", e.Type))
	}
	return e
}

func (d *decoder) ids() []uint64 {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = d.uvarint()
	}
	return ids
}

func (d *decoder) snapshotMetadata() SnapshotMetadata {
	m := SnapshotMetadata{Index: d.uvarint(), Term: d.uvarint()}
	m.ConfState.Voters = d.ids()
	m.ConfState.Learners = d.ids()
	m.ConfState.VotersOutgoing = d.ids()
	m.ConfState.LearnersNext = d.ids()
	m.ConfState.AutoLeave = d.byte() != 0
	return m
}
