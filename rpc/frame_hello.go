package rpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"syscall"
)

// The peer stream's handshake. The dialer opens a stream with a hello; the
// acceptor answers with a reply and, if it accepted, reads frames (frame.go)
// until the stream ends. Nothing else is ever written by the acceptor.
//
// hello, 40 bytes, integers big-endian:
//
//	magic     8 bytes "RAFTKVP>"
//	version   uint16  the dialer's peer protocol version
//	reserved  uint16  zero
//	cluster   uint64  the dialer's cluster ID
//	from      uint64  the dialer's member ID
//	to        uint64  the member ID the dialer means to reach
//	crc       uint32  CRC32C of the 36 bytes before it
//
// reply, 32 bytes + the reason, the same layout in every version:
//
//	magic     8 bytes "RAFTKVP<"
//	version   uint16  the acceptor's peer protocol version
//	status    uint8   helloAccepted, or why the stream is refused
//	length    uint8   the length of the reason
//	cluster   uint64  the acceptor's cluster ID
//	id        uint64  the acceptor's member ID
//	reason    bytes   why the stream is refused, for the dialer's error
//	crc       uint32  CRC32C of everything before it
//
// Magic and version open every version of the hello, so that an acceptor
// can refuse a version it does not speak with a clear reason before it
// reads what that version puts after them.

// PeerProtocolVersion is the version of the peer protocol this code
// speaks: the handshake above and the frames of frame.go.
const PeerProtocolVersion = 1

const (
	helloSize      = 40
	helloReplySize = 32 // without the reason
)

var (
	helloMagic      = [8]byte{'R', 'A', 'F', 'T', 'K', 'V', 'P', '>'}
	helloReplyMagic = [8]byte{'R', 'A', 'F', 'T', 'K', 'V', 'P', '<'}
)

// The status of a reply.
const (
	helloAccepted uint8 = iota
	helloVersionMismatch
	helloClusterMismatch
	helloWrongMember
	helloBadSender
)

var (
	// ErrNotPeerProtocol is returned when the other end does not speak the
	// raftkv peer protocol at all.
	ErrNotPeerProtocol = errors.New("rpc: not the raftkv peer protocol")
	// ErrVersionMismatch is returned when the two ends speak different
	// versions of the peer protocol.
	ErrVersionMismatch = errors.New("rpc: peer protocol version mismatch")
	// ErrClusterMismatch is returned when the two ends belong to different
	// clusters (different cluster IDs, as from different
	// --initial-cluster-token values).
	ErrClusterMismatch = errors.New("rpc: peer belongs to another cluster")
	// ErrWrongMember is returned when the member at a peer URL is not the
	// member the dialer meant to reach.
	ErrWrongMember = errors.New("rpc: peer URL reaches another member")
	// ErrStreamRefused is returned when a peer refuses a stream for any
	// other reason.
	ErrStreamRefused = errors.New("rpc: peer refused the stream")
)

// hello opens a stream.
type hello struct {
	version   uint16
	clusterID uint64
	from, to  uint64
}

func appendHello(b []byte, h hello) []byte {
	start := len(b)
	b = append(b, helloMagic[:]...)
	b = binary.BigEndian.AppendUint16(b, h.version)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, h.clusterID)
	b = binary.BigEndian.AppendUint64(b, h.from)
	b = binary.BigEndian.AppendUint64(b, h.to)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// readHello reads a hello. For a version other than ours it returns the
// hello with only its version set and ErrVersionMismatch, having read just
// magic and version.
func readHello(r io.Reader) (hello, error) {
	var b [helloSize]byte
	if _, err := io.ReadFull(r, b[:10]); err != nil {
		return hello{}, fmt.Errorf("read hello: %w", unexpectedEOF(err))
	}
	if [8]byte(b[:8]) != helloMagic {
		return hello{}, foreignHelloError(b[:10])
	}
	h := hello{version: binary.BigEndian.Uint16(b[8:])}
	if h.version != PeerProtocolVersion {
		return h, fmt.Errorf("%w: the dialer speaks version %d, we speak %d", ErrVersionMismatch, h.version, PeerProtocolVersion)
	}
	if _, err := io.ReadFull(r, b[10:]); err != nil {
		return hello{}, fmt.Errorf("read hello: %w", unexpectedEOF(err))
	}
	if crc32.Checksum(b[:helloSize-4], castagnoli) != binary.BigEndian.Uint32(b[helloSize-4:]) {
		return hello{}, fmt.Errorf("%w: hello checksum mismatch", ErrNotPeerProtocol)
	}
	h.clusterID = binary.BigEndian.Uint64(b[12:])
	h.from = binary.BigEndian.Uint64(b[20:])
	h.to = binary.BigEndian.Uint64(b[28:])
	return h, nil
}

// errHTTPOnPeerPort is wrapped in the error for a stream that opens with
// an HTTP request, which the acceptor answers in HTTP.
var errHTTPOnPeerPort = errors.New("an HTTP request reached the peer listener (a client URL pointing at a peer port?)")

// foreignHelloError names what the first bytes of a stream that is not
// ours look like, to make a misconfiguration obvious in the log.
func foreignHelloError(first []byte) error {
	switch {
	case len(first) >= 2 && first[0] == 0x16 && first[1] == 0x03:
		return fmt.Errorf("%w: the dialer speaks TLS to a plain listener (an https peer URL for an http listener?)", ErrNotPeerProtocol)
	case bytes.HasPrefix(first, []byte("GET ")), bytes.HasPrefix(first, []byte("POST ")),
		bytes.HasPrefix(first, []byte("PUT ")), bytes.HasPrefix(first, []byte("HEAD ")),
		bytes.HasPrefix(first, []byte("DELETE ")), bytes.HasPrefix(first, []byte("OPTIONS ")):
		return fmt.Errorf("%w: %w", ErrNotPeerProtocol, errHTTPOnPeerPort)
	}
	return fmt.Errorf("%w: the stream starts with %q", ErrNotPeerProtocol, first)
}

// helloReply answers a hello.
type helloReply struct {
	version   uint16
	status    uint8
	clusterID uint64
	id        uint64
	// reason says why a stream was refused; at most 255 bytes.
	reason string
}

// helloReasonMax is the longest reason a reply carries.
const helloReasonMax = 255

func appendHelloReply(b []byte, r helloReply) []byte {
	reason := r.reason
	if len(reason) > helloReasonMax {
		reason = reason[:helloReasonMax]
	}
	start := len(b)
	b = append(b, helloReplyMagic[:]...)
	b = binary.BigEndian.AppendUint16(b, r.version)
	b = append(b, r.status, uint8(len(reason)))
	b = binary.BigEndian.AppendUint64(b, r.clusterID)
	b = binary.BigEndian.AppendUint64(b, r.id)
	b = append(b, reason...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// readHelloReply reads a reply.
func readHelloReply(r io.Reader) (helloReply, error) {
	var b [helloReplySize + helloReasonMax]byte
	fixed := helloReplySize - 4
	if n, err := io.ReadFull(r, b[:fixed]); err != nil {
		if n == 0 && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
			return helloReply{}, fmt.Errorf("read hello reply: %w: the peer closed the stream without an answer (an https listener given an http peer URL, or not a raftkv peer?)", err)
		}
		return helloReply{}, fmt.Errorf("read hello reply: %w", unexpectedEOF(err))
	}
	if [8]byte(b[:8]) != helloReplyMagic {
		what := fmt.Sprintf("the answer starts with %q", b[:10])
		switch {
		case bytes.HasPrefix(b[:], []byte("HTTP/")):
			what = "an HTTP server answered (a client URL given as a peer URL?)"
		case b[0] == 0x15 && b[1] == 0x03:
			what = "the peer answered with a TLS alert (an http peer URL for an https listener?)"
		}
		return helloReply{}, fmt.Errorf("%w: %s", ErrNotPeerProtocol, what)
	}
	reasonLen := int(b[11])
	all := b[:fixed+reasonLen+4]
	if _, err := io.ReadFull(r, all[fixed:]); err != nil {
		return helloReply{}, fmt.Errorf("read hello reply: %w", unexpectedEOF(err))
	}
	if crc32.Checksum(all[:len(all)-4], castagnoli) != binary.BigEndian.Uint32(all[len(all)-4:]) {
		return helloReply{}, fmt.Errorf("%w: hello reply checksum mismatch", ErrNotPeerProtocol)
	}
	return helloReply{
		version:   binary.BigEndian.Uint16(b[8:]),
		status:    b[10],
		clusterID: binary.BigEndian.Uint64(b[12:]),
		id:        binary.BigEndian.Uint64(b[20:]),
		reason:    string(all[fixed : fixed+reasonLen]),
	}, nil
}

// err turns a refusal into the dialer's error; nil if the stream was
// accepted.
func (r helloReply) err() error {
	var kind error
	switch r.status {
	case helloAccepted:
		return nil
	case helloVersionMismatch:
		kind = ErrVersionMismatch
	case helloClusterMismatch:
		kind = ErrClusterMismatch
	case helloWrongMember:
		kind = ErrWrongMember
	default:
		kind = ErrStreamRefused
	}
	return fmt.Errorf("%w: member %x refused the stream: %s", kind, r.id, r.reason)
}

// checkHello decides whether the member (id, clusterID) accepts a stream
// opened by h, and builds the reply.
func checkHello(h hello, id, clusterID uint64) helloReply {
	reply := helloReply{version: PeerProtocolVersion, status: helloAccepted, clusterID: clusterID, id: id}
	switch {
	case h.version != PeerProtocolVersion:
		reply.status = helloVersionMismatch
		reply.reason = fmt.Sprintf("dialer speaks peer protocol version %d, member %x speaks %d", h.version, id, PeerProtocolVersion)
	case h.clusterID != clusterID:
		reply.status = helloClusterMismatch
		reply.reason = fmt.Sprintf("dialer is in cluster %x, member %x is in cluster %x (different --initial-cluster-token?)", h.clusterID, id, clusterID)
	case h.to != id:
		reply.status = helloWrongMember
		reply.reason = fmt.Sprintf("dialer wants member %x, this is member %x", h.to, id)
	case h.from == 0 || h.from == id:
		reply.status = helloBadSender
		reply.reason = fmt.Sprintf("dialer claims member ID %x", h.from)
	}
	return reply
}
