package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/raftkv/raftkv/raft"
)

// A WAL segment is a sequence of frames, each holding one record:
//
//	offset  size  field
//	0       4     length of the payload, uint32 little-endian
//	4       1     record type
//	5       4     CRC32C (Castagnoli) of the payload
//	9       4     CRC32C of bytes 0-8: the header checks itself
//	13      L     payload
//	13+L    1     0xA5, the end mark
//
// The header's own checksum makes the length trustworthy, so a damaged
// payload never sends the reader to a wrong place. The end mark is never
// zero, so a frame whose last byte is zero was not completely written. Since
// the WAL writes only into zero-filled (preallocated) space, a torn write
// leaves a frame followed by nothing but zeros: that is how decodeFrame tells
// a torn tail from a flipped bit (see frameError.torn).

const (
	frameHeaderSize = 13
	frameEndMark    = 0xA5
	// frameOverhead is the bytes a frame adds to its payload.
	frameOverhead = frameHeaderSize + 1
	// maxPayloadSize bounds one record (and so one entry's data).
	maxPayloadSize = 1 << 30
)

// recordType says what a frame's payload holds.
type recordType uint8

const (
	// recordSegmentHeader starts every segment: format version, the
	// segment's sequence number, first index and the term before it, and the hard state and
	// snapshot marker in force when the segment was created, so that a
	// segment never needs the ones before it for those.
	recordSegmentHeader recordType = 1
	// recordEntry holds one raft.Entry.
	recordEntry recordType = 2
	// recordHardState holds a raft.HardState.
	recordHardState recordType = 3
	// recordSnapshot holds a snapshot marker: a flags byte and the
	// snapshot's raft.SnapshotMetadata.
	recordSnapshot recordType = 4
)

func (t recordType) String() string {
	switch t {
	case recordSegmentHeader:
		return "segment header"
	case recordEntry:
		return "entry"
	case recordHardState:
		return "hard state"
	case recordSnapshot:
		return "snapshot marker"
	}
	return fmt.Sprintf("record type %d", uint8(t))
}

// formatVersion is written in every segment header. A reader refuses
// versions it does not know.
const formatVersion = 1

// snapshotKeepsLog is the flag of a snapshot marker whose index and term the
// log already held (a local compaction): entries after it stay. Without it
// the snapshot replaced the log (one sent by the leader), and entries written
// before the marker are void.
const snapshotKeepsLog = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// beginFrame reserves a frame header at the end of b; the payload is
// appended next, then finishFrame completes the frame.
func beginFrame(b []byte) (buf []byte, start int) {
	return append(b, make([]byte, frameHeaderSize)...), len(b)
}

// finishFrame fills in the header of the frame begun at start, whose payload
// is everything after it, and appends the end mark.
func finishFrame(b []byte, start int, t recordType) []byte {
	h, payload := b[start:start+frameHeaderSize], b[start+frameHeaderSize:]
	if len(payload) > maxPayloadSize {
		panic(fmt.Sprintf("wal: %s payload of %d bytes exceeds %d", t, len(payload), maxPayloadSize))
	}
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	h[4] = byte(t)
	binary.LittleEndian.PutUint32(h[5:9], crc32.Checksum(payload, castagnoli))
	binary.LittleEndian.PutUint32(h[9:13], crc32.Checksum(h[:9], castagnoli))
	return append(b, frameEndMark)
}

func appendEntryFrame(b []byte, e *raft.Entry) []byte {
	b, start := beginFrame(b)
	b, _ = e.AppendBinary(b) // never fails
	return finishFrame(b, start, recordEntry)
}

func appendHardStateFrame(b []byte, hs raft.HardState) []byte {
	b, start := beginFrame(b)
	b, _ = hs.AppendBinary(b)
	return finishFrame(b, start, recordHardState)
}

func appendSnapshotFrame(b []byte, meta raft.SnapshotMetadata, keepsLog bool) []byte {
	b, start := beginFrame(b)
	var flags byte
	if keepsLog {
		flags |= snapshotKeepsLog
	}
	b = append(b, flags)
	b, _ = meta.AppendBinary(b)
	return finishFrame(b, start, recordSnapshot)
}

// segmentHeader is the payload of a recordSegmentHeader.
type segmentHeader struct {
	version uint8
	// seq and firstIndex repeat the segment's file name.
	seq        uint64
	firstIndex uint64
	// lastTerm is the term of entry firstIndex-1, the log's last when the
	// segment was made (the snapshot's term if that entry is the
	// snapshot's last, 0 if there is none). With firstIndex it identifies
	// the log so far (Raft's log matching), so a recovery that lost a
	// record at the end of an older segment notices.
	lastTerm uint64
	// hardState and snapshot are those in force when the segment was made.
	hardState raft.HardState
	snapshot  raft.SnapshotMetadata
}

func appendSegmentHeaderFrame(b []byte, h segmentHeader) []byte {
	b, start := beginFrame(b)
	b = append(b, h.version)
	b = binary.AppendUvarint(b, h.seq)
	b = binary.AppendUvarint(b, h.firstIndex)
	b = binary.AppendUvarint(b, h.lastTerm)
	hs, _ := h.hardState.MarshalBinary()
	b = binary.AppendUvarint(b, uint64(len(hs)))
	b = append(b, hs...)
	b, _ = h.snapshot.AppendBinary(b)
	return finishFrame(b, start, recordSegmentHeader)
}

func decodeSegmentHeader(p []byte) (segmentHeader, error) {
	var h segmentHeader
	if len(p) == 0 {
		return h, raft.ErrTruncated
	}
	h.version, p = p[0], p[1:]
	if h.version != formatVersion {
		return h, fmt.Errorf("unsupported wal format version %d (this build reads version %d)", h.version, formatVersion)
	}
	var ok bool
	if h.seq, p, ok = uvarint(p); !ok {
		return h, raft.ErrTruncated
	}
	if h.firstIndex, p, ok = uvarint(p); !ok {
		return h, raft.ErrTruncated
	}
	if h.lastTerm, p, ok = uvarint(p); !ok {
		return h, raft.ErrTruncated
	}
	n, p, ok := uvarint(p)
	if !ok || n > uint64(len(p)) {
		return h, raft.ErrTruncated
	}
	if err := h.hardState.UnmarshalBinary(p[:n]); err != nil {
		return h, err
	}
	return h, h.snapshot.UnmarshalBinary(p[n:])
}

func decodeSnapshotMarker(p []byte) (meta raft.SnapshotMetadata, keepsLog bool, err error) {
	if len(p) == 0 {
		return meta, false, raft.ErrTruncated
	}
	if p[0]&^snapshotKeepsLog != 0 {
		return meta, false, fmt.Errorf("unknown snapshot marker flags %#x", p[0])
	}
	err = meta.UnmarshalBinary(p[1:])
	return meta, p[0]&snapshotKeepsLog != 0, err
}

func uvarint(p []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, p, false
	}
	return v, p[n:], true
}

// frame is one decoded frame.
type frame struct {
	typ recordType
	// payload aliases the segment's bytes.
	payload []byte
	// end is the offset just past the frame.
	end int
}

// errEndOfData says the frame header at the offset is all zeros: nothing
// was written there.
var errEndOfData = errors.New("end of data")

// frameError describes a frame that cannot be read.
type frameError struct {
	offset int
	reason string
	// torn says the damage is what an interrupted write leaves: the frame
	// stops early and nothing but zeros follows (or the file ends). A frame
	// that was completely written and then damaged (a flipped bit) is
	// never torn: its end mark, or its payload and end mark, are there.
	torn bool
}

func (e *frameError) Error() string { return e.reason }

// decodeFrame decodes the frame at data[off:]. It returns errEndOfData or a
// *frameError when there is no good frame there.
func decodeFrame(data []byte, off int) (frame, error) {
	rest := data[off:]
	if len(rest) < frameHeaderSize {
		if allZero(rest) {
			return frame{}, errEndOfData
		}
		return frame{}, &frameError{offset: off, reason: "header cut short by the end of the file", torn: true}
	}
	h := rest[:frameHeaderSize]
	if allZero(h) {
		return frame{}, errEndOfData
	}
	if crc32.Checksum(h[:9], castagnoli) != binary.LittleEndian.Uint32(h[9:13]) {
		return frame{}, &frameError{offset: off, reason: "header checksum mismatch",
			torn: allZero(rest[frameHeaderSize:])}
	}
	length, typ := int64(binary.LittleEndian.Uint32(h[0:4])), recordType(h[4])
	if typ < recordSegmentHeader || typ > recordSnapshot || length > maxPayloadSize {
		return frame{}, &frameError{offset: off, reason: fmt.Sprintf("%s with a %d-byte payload cannot be read by this build", typ, length)}
	}
	end := int64(off) + frameOverhead + length
	if end > int64(len(data)) {
		// The header is intact, so the length is as written: the file
		// was cut short while the frame was being written.
		return frame{}, &frameError{offset: off, torn: true,
			reason: fmt.Sprintf("%s of %d bytes runs %d bytes past the end of the file", typ, length, end-int64(len(data)))}
	}
	payload := data[off+frameHeaderSize : end-1]
	last := data[end-1]
	switch {
	case last != frameEndMark:
		return frame{}, &frameError{offset: off, reason: fmt.Sprintf("%s has no end mark", typ),
			torn: last == 0 && allZero(data[end:])}
	case crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(h[5:9]):
		// The end mark is there: the frame was written whole.
		return frame{}, &frameError{offset: off, reason: fmt.Sprintf("%s crc mismatch", typ)}
	}
	return frame{typ: typ, payload: payload, end: int(end)}, nil
}

// zeros is compared against, a block at a time, by allZero.
var zeros [4096]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
