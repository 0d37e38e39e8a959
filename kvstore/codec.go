package kvstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// commandVersion is the first byte of an encoded command. A change to the
// encoding gets a new version; decoders refuse versions they do not know.
const commandVersion = 1

// Command flag bits.
const (
	flagDir = 1 << iota
	flagRecursive
	flagRefresh
	flagHasTTL
	flagHasNow
	flagsKnown = flagDir | flagRecursive | flagRefresh | flagHasTTL | flagHasNow
)

// ErrBadCommand is wrapped by every error UnmarshalBinary returns.
var ErrBadCommand = errors.New("kvstore: bad command encoding")

// MarshalBinary encodes c compactly and deterministically: equal commands
// give equal bytes. Now is kept as an instant (Unix seconds and
// nanoseconds); its location and monotonic reading are not.
//
// Layout (version 1): version byte, op byte, flags byte, prevExist byte,
// then path, value and prevValue as uvarint length + bytes, prevIndex and
// ttl as uvarints, and, if flagHasNow, Now as a zigzag varint of seconds
// and a uvarint of nanoseconds.
func (c Command) MarshalBinary() ([]byte, error) {
	size := 4 + 3*binary.MaxVarintLen64 + len(c.Path) + len(c.Value) + len(c.PrevValue) +
		4*binary.MaxVarintLen64
	buf := make([]byte, 0, size)
	var flags byte
	if c.Dir {
		flags |= flagDir
	}
	if c.Recursive {
		flags |= flagRecursive
	}
	if c.Refresh {
		flags |= flagRefresh
	}
	if c.HasTTL {
		flags |= flagHasTTL
	}
	if !c.Now.IsZero() {
		flags |= flagHasNow
	}
	buf = append(buf, commandVersion, byte(c.Op), flags, byte(c.PrevExist))
	buf = appendString(buf, c.Path)
	buf = appendString(buf, c.Value)
	buf = appendString(buf, c.PrevValue)
	buf = binary.AppendUvarint(buf, c.PrevIndex)
	buf = binary.AppendUvarint(buf, c.TTL)
	if !c.Now.IsZero() {
		buf = binary.AppendVarint(buf, c.Now.Unix())
		buf = binary.AppendUvarint(buf, uint64(c.Now.Nanosecond()))
	}
	return buf, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded. Truncated, trailing
// or otherwise malformed input is an error wrapping ErrBadCommand, and c is
// left unchanged; it never panics.
func (c *Command) UnmarshalBinary(data []byte) error {
	d := decoder{data: data}
	version, op, flags, prevExist := d.byte("version"), Op(d.byte("op")), d.byte("flags"), PrevExist(d.byte("prevExist"))
	decoded := Command{
		Op:        op,
		Path:      d.string("path"),
		Value:     d.string("value"),
		PrevValue: d.string("prevValue"),
		PrevIndex: d.uvarint("prevIndex"),
		PrevExist: prevExist,
		TTL:       d.uvarint("ttl"),
		Dir:       flags&flagDir != 0,
		Recursive: flags&flagRecursive != 0,
		Refresh:   flags&flagRefresh != 0,
		HasTTL:    flags&flagHasTTL != 0,
	}
	if flags&flagHasNow != 0 {
		seconds, nanos := d.varint("now seconds"), d.uvarint("now nanoseconds")
		if d.err == nil && nanos >= uint64(time.Second) {
			d.fail("now nanoseconds %d out of range", nanos)
		}
		decoded.Now = time.Unix(seconds, int64(nanos)).UTC()
		if d.err == nil && decoded.Now.IsZero() {
			d.fail("now is the zero time but flagged present")
		}
	}
	switch {
	case d.err != nil:
	case version != commandVersion:
		d.fail("unknown version %d", version)
	case !op.valid():
		d.fail("unknown op %d", byte(op))
	case flags&^flagsKnown != 0:
		d.fail("unknown flags %#x", flags)
	case prevExist > PrevExistFalse:
		d.fail("unknown prevExist %d", byte(prevExist))
	case d.offset != len(d.data):
		d.fail("%d trailing bytes", len(d.data)-d.offset)
	}
	if d.err != nil {
		return d.err
	}
	*c = decoded
	return nil
}

// uvarintSize is the length of the minimal uvarint encoding of v: one byte
// per started group of 7 bits, at least one.
func uvarintSize(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// appendString appends s as a uvarint length and its bytes.
func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// decoder reads the fields of an encoding in order. After the first
// failure every read returns a zero value and err keeps the first error.
type decoder struct {
	data   []byte
	offset int
	err    error
	// kind is the sentinel every error wraps; ErrBadCommand if nil.
	kind error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		kind := d.kind
		if kind == nil {
			kind = ErrBadCommand
		}
		d.err = fmt.Errorf("%w: at byte %d: %s", kind, d.offset, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.offset >= len(d.data) {
		d.fail("truncated before %s", field)
		return 0
	}
	b := d.data[d.offset]
	d.offset++
	return b
}

// uvarint reads a minimally encoded uvarint, so that every command has
// exactly one encoding.
func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data[d.offset:])
	if n <= 0 {
		d.fail("bad or truncated %s", field)
		return 0
	}
	if n != uvarintSize(v) {
		d.fail("non-minimal encoding of %s", field)
		return 0
	}
	d.offset += n
	return v
}

// varint reads a minimally encoded zigzag varint.
func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.data[d.offset:])
	if n <= 0 {
		d.fail("bad or truncated %s", field)
		return 0
	}
	if n != uvarintSize(uint64(v<<1)^uint64(v>>63)) {
		d.fail("non-minimal encoding of %s", field)
		return 0
	}
	d.offset += n
	return v
}

// string reads a uvarint length and that many bytes.
func (d *decoder) string(field string) string {
	length := d.uvarint(field + " length")
	if d.err != nil {
		return ""
	}
	if length > uint64(len(d.data)-d.offset) {
		d.fail("%s of %d bytes runs past the end", field, length)
		return ""
	}
	s := string(d.data[d.offset : d.offset+int(length)])
	d.offset += int(length)
	return s
}
