package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/raftkv/raftkv/raft"
)

// The peer stream's frames. After the handshake (frame_hello.go) a stream
// is a sequence of frames, each one raft message:
//
//	length  uint32, big-endian: the payload's size in bytes (at least 1)
//	crc     uint32, big-endian: CRC32C (Castagnoli) of the payload
//	payload raft.Message in its binary encoding (raft/encoding.go)
//
// A frame whose length exceeds the receiver's maximum frame size, whose
// checksum does not match, or whose payload does not decode is a protocol
// error: the receiver closes the stream. The receiver never allocates a
// frame's declared length up front; its buffer grows with the bytes that
// actually arrive, so a lying length costs nothing.

// frameHeaderSize is the size of a frame's length and checksum.
const frameHeaderSize = 8

// DefaultMaxFrameSize is the default bound on one frame's payload. It must
// exceed raft's largest message: MaxSizePerMsg of entries (1 MiB by
// default, or one larger entry) or one snapshot chunk (MaxSnapshotChunkSize,
// 1 MiB by default) plus their headers.
const DefaultMaxFrameSize = 16 << 20

// frameSizeMin and frameSizeMax bound the MaxFrameSize option: below 1 KiB a
// heartbeat with a ReadIndex context may not fit; the length field is 32
// bits wide.
const (
	frameSizeMin = 1 << 10
	frameSizeMax = 1 << 30
)

// frameReadStep is the first size a frame buffer grows to when a frame
// does not fit the buffer; after that it doubles with the bytes received.
const frameReadStep = 64 << 10

// frameBufferRetainMax bounds the frame buffer a stream keeps between
// frames; a buffer grown beyond it for one large frame is released.
const frameBufferRetainMax = 4 << 20

var (
	// ErrFrameTooLarge is returned for a frame longer than the maximum
	// frame size, on either side of a stream.
	ErrFrameTooLarge = errors.New("rpc: frame exceeds the maximum frame size")
	// ErrFrameChecksum is returned for a frame whose payload does not match
	// its checksum.
	ErrFrameChecksum = errors.New("rpc: frame checksum mismatch")
	// ErrEmptyFrame is returned for a frame of length zero.
	ErrEmptyFrame = errors.New("rpc: empty frame")
)

// castagnoli is the CRC32C table, as the WAL uses (hardware-accelerated on
// amd64 and arm64).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends m as one frame to b. If m's encoding exceeds
// maxFrameSize it returns b unchanged and ErrFrameTooLarge.
func appendFrame(b []byte, m *raft.Message, maxFrameSize int) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, frameHeaderSize)...)
	b, err := m.AppendBinary(b)
	if err != nil {
		return b[:start], fmt.Errorf("rpc: encode %s: %w", m.Type, err)
	}
	payload := b[start+frameHeaderSize:]
	if len(payload) > maxFrameSize {
		return b[:start], fmt.Errorf("%w: %s to %x is %d bytes, the limit is %d", ErrFrameTooLarge, m.Type, m.To, len(payload), maxFrameSize)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b, nil
}

// frameReader reads frames from a stream. It is not safe for concurrent
// use.
type frameReader struct {
	r io.Reader
	// maxFrameSize is the largest payload accepted.
	// Invariant: frameSizeMin <= maxFrameSize <= frameSizeMax.
	maxFrameSize int
	header       [frameHeaderSize]byte
	// buf holds the last frame's payload; it is reused for the next frame.
	// Invariant: cap(buf) <= max(frameReadStep, 2*(bytes of the largest
	// frame read so far)), so memory follows the bytes received, never a
	// declared length.
	buf []byte
}

func newFrameReader(r io.Reader, maxFrameSize int) *frameReader {
	if maxFrameSize < frameSizeMin || maxFrameSize > frameSizeMax {
		panic(fmt.Sprintf("rpc: frame reader with max frame size %d outside [%d, %d]", maxFrameSize, frameSizeMin, frameSizeMax))
	}
	return &frameReader{r: r, maxFrameSize: maxFrameSize}
}

// readFrame reads the next frame and returns its payload, valid until the
// next call. It returns io.EOF at a clean end of the stream (between
// frames) and io.ErrUnexpectedEOF within a frame.
func (fr *frameReader) readFrame() ([]byte, error) {
	if _, err := io.ReadFull(fr.r, fr.header[:]); err != nil {
		return nil, err
	}
	length := binary.BigEndian.Uint32(fr.header[:4])
	sum := binary.BigEndian.Uint32(fr.header[4:])
	switch {
	case length == 0:
		return nil, ErrEmptyFrame
	case uint64(length) > uint64(fr.maxFrameSize):
		return nil, fmt.Errorf("%w: a frame of %d bytes, the limit is %d", ErrFrameTooLarge, length, fr.maxFrameSize)
	}
	if cap(fr.buf) > frameBufferRetainMax {
		fr.buf = nil
	}
	payload, err := fr.readPayload(int(length))
	if err != nil {
		return nil, err
	}
	if crc32.Checksum(payload, castagnoli) != sum {
		return nil, fmt.Errorf("%w: a frame of %d bytes", ErrFrameChecksum, length)
	}
	return payload, nil
}

// readPayload reads n bytes into fr.buf. When they do not fit, the buffer
// grows in steps that at most double what has been received so far.
func (fr *frameReader) readPayload(n int) ([]byte, error) {
	if n <= cap(fr.buf) {
		fr.buf = fr.buf[:n]
		if _, err := io.ReadFull(fr.r, fr.buf); err != nil {
			return nil, unexpectedEOF(err)
		}
		return fr.buf, nil
	}
	got := 0
	for got < n {
		size := min(n, max(frameReadStep, 2*got))
		grown := make([]byte, size)
		copy(grown, fr.buf[:got])
		fr.buf = grown
		if _, err := io.ReadFull(fr.r, fr.buf[got:size]); err != nil {
			return nil, unexpectedEOF(err)
		}
		got = size
	}
	return fr.buf, nil
}

// readMessage reads the next frame into m and returns the frame's size on
// the wire. m's byte slices are its own (copied out of the frame).
func (fr *frameReader) readMessage(m *raft.Message) (int, error) {
	payload, err := fr.readFrame()
	if err != nil {
		return 0, err
	}
	if err := m.UnmarshalBinary(payload); err != nil {
		return 0, fmt.Errorf("rpc: bad frame of %d bytes: %w", len(payload), err)
	}
	return frameHeaderSize + len(payload), nil
}

// unexpectedEOF turns an io.EOF in the middle of something into
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
