package rpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/raftkv/raftkv/raft"
)

// frameSampleMessages returns one message of every type, with and without
// entries, context and snapshot chunks.
func frameSampleMessages() []raft.Message {
	entries := []raft.Entry{
		{Term: 3, Index: 10, Type: raft.EntryNormal, Data: bytes.Repeat([]byte{'x'}, 256)},
		{Term: 3, Index: 11, Type: raft.EntryConfChange, Data: []byte{1, 2, 3}},
		{Term: 4, Index: 12},
	}
	chunk := &raft.SnapshotChunk{
		Metadata: raft.SnapshotMetadata{Index: 100, Term: 4, ConfState: raft.ConfState{
			Voters: []uint64{1, 2, 3}, Learners: []uint64{4}, VotersOutgoing: []uint64{1, 2}, LearnersNext: []uint64{5}, AutoLeave: true,
		}},
		Offset: 1 << 20, Total: 3 << 20, Data: bytes.Repeat([]byte{0xAB}, 4096),
	}
	msgs := []raft.Message{
		{Type: raft.MsgApp, To: 2, From: 1, Term: 4, LogTerm: 3, Index: 9, Entries: entries, Commit: 8},
		{Type: raft.MsgAppResp, To: 1, From: 2, Term: 4, Index: 12, Reject: true, RejectHint: 7, LogTerm: 2},
		{Type: raft.MsgVote, To: 2, From: 1, Term: 5, LogTerm: 4, Index: 12, Transfer: true},
		{Type: raft.MsgVoteResp, To: 1, From: 2, Term: 5},
		{Type: raft.MsgPreVote, To: 2, From: 1, Term: 6, LogTerm: 4, Index: 12},
		{Type: raft.MsgPreVoteResp, To: 1, From: 2, Term: 6, Reject: true},
		{Type: raft.MsgHeartbeat, To: 2, From: 1, Term: 4, Commit: 12, Context: []byte("read-42")},
		{Type: raft.MsgHeartbeatResp, To: 1, From: 2, Term: 4, Context: []byte("read-42")},
		{Type: raft.MsgSnap, To: 2, From: 1, Term: 4, Snapshot: chunk},
		{Type: raft.MsgSnapResp, To: 1, From: 2, Term: 4, Index: 1 << 20, Snapshot: &raft.SnapshotChunk{Metadata: raft.SnapshotMetadata{Index: 100, Term: 4}}},
		{Type: raft.MsgTimeoutNow, To: 2, From: 1, Term: 4},
		{Type: raft.MsgProp, To: 1, From: 2, Entries: entries[:1]},
		{Type: raft.MsgReadIndex, To: 1, From: 2, Context: []byte{0, 0, 0, 0, 0, 0, 0, 7}},
		{Type: raft.MsgReadIndexResp, To: 2, From: 1, Term: 4, Index: 12, Context: []byte{0, 0, 0, 0, 0, 0, 0, 7}},
		{Type: raft.MsgTransferLeader, To: 1, From: 3},
		{Type: raft.MsgApp, To: ^uint64(0), From: ^uint64(0) - 1, Term: ^uint64(0), Index: ^uint64(0), Commit: ^uint64(0)},
	}
	return msgs
}

func frameEncode(t testing.TB, msgs ...raft.Message) []byte {
	t.Helper()
	var b []byte
	for i := range msgs {
		var err error
		b, err = appendFrame(b, &msgs[i], DefaultMaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestFrameRoundTrip(t *testing.T) {
	msgs := frameSampleMessages()
	stream := frameEncode(t, msgs...)
	fr := newFrameReader(bytes.NewReader(stream), DefaultMaxFrameSize)
	total := 0
	for i, want := range msgs {
		var got raft.Message
		n, err := fr.readMessage(&got)
		if err != nil {
			t.Fatalf("message %d (%s): %v", i, want.Type, err)
		}
		total += n
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("message %d: got %+v, want %+v", i, got, want)
		}
	}
	if total != len(stream) {
		t.Fatalf("frame sizes add up to %d, the stream has %d bytes", total, len(stream))
	}
	var m raft.Message
	if _, err := fr.readMessage(&m); err != io.EOF {
		t.Fatalf("after the last frame: got %v, want io.EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	good := frameEncode(t, frameSampleMessages()[0])
	header := func(length, sum uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, length), sum)
	}
	garbage := []byte{0xff, 0xff, 0xff}
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty frame", header(0, 0), ErrEmptyFrame},
		{"over the limit", header(frameSizeMin+1, 0), ErrFrameTooLarge},
		{"largest length", header(^uint32(0), 0), ErrFrameTooLarge},
		{"bad checksum", func() []byte { b := bytes.Clone(good); b[len(b)-1] ^= 1; return b }(), ErrFrameChecksum},
		{"truncated header", good[:5], io.ErrUnexpectedEOF},
		{"truncated payload", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"undecodable payload", append(header(3, crc32.Checksum(garbage, castagnoli)), garbage...), raft.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := newFrameReader(bytes.NewReader(tt.input), frameSizeMin)
			var m raft.Message
			_, err := fr.readMessage(&m)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestFrameLyingLengthAllocatesLittle checks that a frame declaring the
// maximum size but carrying a few bytes costs a small buffer, not the
// declared size.
func TestFrameLyingLengthAllocatesLittle(t *testing.T) {
	input := binary.BigEndian.AppendUint32(nil, DefaultMaxFrameSize)
	input = binary.BigEndian.AppendUint32(input, 0)
	input = append(input, make([]byte, 100)...)
	fr := newFrameReader(bytes.NewReader(input), DefaultMaxFrameSize)
	var m raft.Message
	if _, err := fr.readMessage(&m); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
	if cap(fr.buf) > frameReadStep {
		t.Fatalf("buffer grew to %d bytes for 100 bytes received", cap(fr.buf))
	}
}

func TestFrameSenderRefusesOversizedMessage(t *testing.T) {
	m := raft.Message{Type: raft.MsgApp, To: 2, From: 1, Entries: []raft.Entry{{Data: make([]byte, 2*frameSizeMin)}}}
	b, err := appendFrame([]byte("prefix"), &m, frameSizeMin)
	if !errors.Is(err, ErrFrameTooLarge) || string(b) != "prefix" {
		t.Fatalf("got %q, %v; want the buffer unchanged and ErrFrameTooLarge", b, err)
	}
}

func TestHelloRoundTrip(t *testing.T) {
	h := hello{version: PeerProtocolVersion, clusterID: 0xc1, from: 1, to: 2}
	got, err := readHello(bytes.NewReader(appendHello(nil, h)))
	if err != nil || got != h {
		t.Fatalf("got %+v, %v; want %+v", got, err, h)
	}
	r := helloReply{version: PeerProtocolVersion, status: helloClusterMismatch, clusterID: 0xc2, id: 2, reason: "why"}
	gotReply, err := readHelloReply(bytes.NewReader(appendHelloReply(nil, r)))
	if err != nil || gotReply != r {
		t.Fatalf("got %+v, %v; want %+v", gotReply, err, r)
	}
	long := helloReply{reason: strings.Repeat("x", 1000)}
	gotReply, err = readHelloReply(bytes.NewReader(appendHelloReply(nil, long)))
	if err != nil || len(gotReply.reason) != helloReasonMax {
		t.Fatalf("a long reason: got %d bytes, %v; want it cut to %d", len(gotReply.reason), err, helloReasonMax)
	}
}

func TestHelloRefusals(t *testing.T) {
	const id, cluster = 2, 0xc1
	tests := []struct {
		name string
		h    hello
		want error
	}{
		{"accepted", hello{version: PeerProtocolVersion, clusterID: cluster, from: 1, to: id}, nil},
		{"other version", hello{version: PeerProtocolVersion + 1, clusterID: cluster, from: 1, to: id}, ErrVersionMismatch},
		{"other cluster", hello{version: PeerProtocolVersion, clusterID: cluster + 1, from: 1, to: id}, ErrClusterMismatch},
		{"other member", hello{version: PeerProtocolVersion, clusterID: cluster, from: 1, to: id + 1}, ErrWrongMember},
		{"no sender", hello{version: PeerProtocolVersion, clusterID: cluster, from: 0, to: id}, ErrStreamRefused},
		{"sender is us", hello{version: PeerProtocolVersion, clusterID: cluster, from: id, to: id}, ErrStreamRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Through the wire, as the dialer sees it.
			reply, err := readHelloReply(bytes.NewReader(appendHelloReply(nil, checkHello(tt.h, id, cluster))))
			if err != nil {
				t.Fatal(err)
			}
			if err := reply.err(); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHelloOtherVersionReadsNoFurther(t *testing.T) {
	b := appendHello(nil, hello{version: 7, clusterID: 1, from: 1, to: 2})
	r := bytes.NewReader(b)
	h, err := readHello(r)
	if !errors.Is(err, ErrVersionMismatch) || h.version != 7 {
		t.Fatalf("got %+v, %v; want version 7 and ErrVersionMismatch", h, err)
	}
	if r.Len() != len(b)-10 {
		t.Fatalf("read %d bytes of a hello in another version, want 10", len(b)-r.Len())
	}
}

func TestHelloForeignProtocols(t *testing.T) {
	tests := []struct{ input, want string }{
		{"GET /v2/keys HTTP/1.1\r\n", "HTTP request"},
		{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03", "speaks TLS"},
		{"hello world, this is not raftkv", "starts with"},
	}
	for _, tt := range tests {
		_, err := readHello(strings.NewReader(tt.input))
		if !errors.Is(err, ErrNotPeerProtocol) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want ErrNotPeerProtocol saying %q", tt.input, err, tt.want)
		}
	}
	_, err := readHelloReply(strings.NewReader("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
	if !errors.Is(err, ErrNotPeerProtocol) || !strings.Contains(err.Error(), "HTTP server") {
		t.Errorf("an HTTP answer: got %v", err)
	}
}

// messageFootprint is the memory a decoded message holds, to check that
// decoding allocates in proportion to its input.
func messageFootprint(m *raft.Message) int {
	n := cap(m.Context) + cap(m.Entries)*int(unsafe.Sizeof(raft.Entry{}))
	for _, e := range m.Entries {
		n += cap(e.Data)
	}
	if c := m.Snapshot; c != nil {
		cs := &c.Metadata.ConfState
		n += int(unsafe.Sizeof(*c)) + cap(c.Data) +
			8*(cap(cs.Voters)+cap(cs.Learners)+cap(cs.VotersOutgoing)+cap(cs.LearnersNext))
	}
	return n
}

// footprintBound is the most memory a decoded message may hold per input
// byte, plus a constant: an entry takes 48 bytes in memory and at least 4
// on the wire, an ID 8 bytes and at least 1, a byte string rounds up to an
// allocation size class.
func footprintBound(inputSize int) int { return 16*inputSize + 512 }

// frameFuzzMaxFrameSize is the frame limit of FuzzDecodeFrame, small so
// that the fuzzer reaches it.
const frameFuzzMaxFrameSize = 4 * frameSizeMin

func frameFuzzSeeds(f *testing.F) {
	msgs := frameSampleMessages()
	for i := range msgs {
		f.Add(frameEncode(f, msgs[i]))
	}
	f.Add(frameEncode(f, msgs...))
	f.Add([]byte{})
	f.Add(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, frameFuzzMaxFrameSize), 0))
}

// FuzzDecodeFrame feeds arbitrary bytes to a stream's frame reader: it must
// never panic, its buffer must stay in proportion to the bytes it was
// given, every message it returns must fit the same bound, and a message
// it returns must encode to a frame that reads back the same.
func FuzzDecodeFrame(f *testing.F) {
	frameFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), frameFuzzMaxFrameSize)
		for {
			var m raft.Message
			n, err := fr.readMessage(&m)
			if err != nil {
				break
			}
			if n <= frameHeaderSize || n > frameHeaderSize+frameFuzzMaxFrameSize {
				t.Fatalf("frame of %d bytes", n)
			}
			if got := messageFootprint(&m); got > footprintBound(n) {
				t.Fatalf("a frame of %d bytes decoded into %d bytes of message", n, got)
			}
			again, err := appendFrame(nil, &m, frameFuzzMaxFrameSize*2)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", m, err)
			}
			var back raft.Message
			if _, err := newFrameReader(bytes.NewReader(again), frameFuzzMaxFrameSize*2).readMessage(&back); err != nil {
				t.Fatalf("read back %+v: %v", m, err)
			}
			if !reflect.DeepEqual(back, m) {
				t.Fatalf("round trip: got %+v, want %+v", back, m)
			}
		}
		if limit := max(frameReadStep, 2*len(data)); cap(fr.buf) > limit {
			t.Fatalf("frame buffer of %d bytes for %d bytes of input", cap(fr.buf), len(data))
		}
	})
}

// FuzzUnmarshalMessage feeds arbitrary bytes to raft's message decoder, as
// a frame's payload: it must never panic, hold memory in proportion to the
// input, and what it accepts must encode and decode to itself.
func FuzzUnmarshalMessage(f *testing.F) {
	for _, m := range frameSampleMessages() {
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{byte(raft.MsgApp), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m raft.Message
		if err := m.UnmarshalBinary(data); err != nil {
			return
		}
		if got := messageFootprint(&m); got > footprintBound(len(data)) {
			t.Fatalf("%d bytes decoded into %d bytes of message", len(data), got)
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode %+v: %v", m, err)
		}
		var back raft.Message
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatalf("decode the re-encoding of %+v: %v", m, err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip: got %+v, want %+v", back, m)
		}
	})
}

// FuzzHandshake feeds arbitrary bytes to both ends of the handshake: the
// acceptor reading a hello and the dialer reading a reply. Neither may
// panic; what they accept must encode back to the bytes they read.
func FuzzHandshake(f *testing.F) {
	f.Add(appendHello(nil, hello{version: PeerProtocolVersion, clusterID: 0xc1, from: 1, to: 2}))
	f.Add(appendHello(nil, hello{version: 9, clusterID: 0xc1, from: 1, to: 2}))
	f.Add(appendHelloReply(nil, helloReply{version: PeerProtocolVersion, clusterID: 0xc1, id: 2}))
	f.Add(appendHelloReply(nil, checkHello(hello{version: 1, clusterID: 7, from: 1, to: 2}, 2, 0xc1)))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := readHello(bytes.NewReader(data)); err == nil {
			// The reserved field is ignored, so compare what was read.
			back, err := readHello(bytes.NewReader(appendHello(nil, h)))
			if err != nil || back != h {
				t.Fatalf("hello %+v reads back as %+v, %v", h, back, err)
			}
			_ = checkHello(h, 2, 0xc1).err()
		}
		if r, err := readHelloReply(bytes.NewReader(data)); err == nil {
			again := appendHelloReply(nil, r)
			if !bytes.Equal(again, data[:len(again)]) {
				t.Fatalf("reply %+v encodes to %x, read from %x", r, again, data[:len(again)])
			}
			_ = r.err()
		}
	})
}

var writePeerFuzzSeeds = flag.Bool("write-peer-fuzz-seeds", false, "rewrite the seed corpora of the peer protocol's fuzz targets in testdata/fuzz")

// TestWritePeerFuzzSeeds writes the committed seed corpora of
// FuzzDecodeFrame, FuzzUnmarshalMessage and FuzzHandshake: one valid input
// of each kind and the edge cases, under names that say what they are.
// Run it with -write-peer-fuzz-seeds after a change of the wire format.
func TestWritePeerFuzzSeeds(t *testing.T) {
	if !*writePeerFuzzSeeds {
		t.Skip("run with -write-peer-fuzz-seeds to rewrite testdata/fuzz")
	}
	write := func(target, name string, data []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	header := func(length, sum uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, length), sum)
	}
	msgs := frameSampleMessages()
	stream := frameEncode(t, msgs...)
	for i := range msgs {
		frame := frameEncode(t, msgs[i])
		payload := frame[frameHeaderSize:]
		write("FuzzDecodeFrame", fmt.Sprintf("%02d-%s", i, msgs[i].Type), frame)
		write("FuzzUnmarshalMessage", fmt.Sprintf("%02d-%s", i, msgs[i].Type), payload)
	}
	write("FuzzDecodeFrame", "stream-of-every-type", stream)
	write("FuzzDecodeFrame", "stream-cut-short", stream[:len(stream)/2])
	write("FuzzDecodeFrame", "length-at-limit-no-payload", header(frameFuzzMaxFrameSize, 0))
	write("FuzzDecodeFrame", "length-over-limit", header(frameFuzzMaxFrameSize+1, 0))
	write("FuzzDecodeFrame", "length-max-uint32", header(^uint32(0), 0))
	write("FuzzDecodeFrame", "empty-frame", header(0, 0))
	bad := bytes.Clone(frameEncode(t, msgs[0]))
	bad[len(bad)-1] ^= 1
	write("FuzzDecodeFrame", "bad-checksum", bad)
	entries := []byte{byte(raft.MsgApp), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	write("FuzzUnmarshalMessage", "entry-count-beyond-input", entries)
	write("FuzzUnmarshalMessage", "unknown-type", []byte{99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	write("FuzzUnmarshalMessage", "unknown-flags", []byte{byte(raft.MsgApp), 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0})

	write("FuzzHandshake", "hello", appendHello(nil, hello{version: PeerProtocolVersion, clusterID: 0xc1, from: 1, to: 2}))
	write("FuzzHandshake", "hello-other-version", appendHello(nil, hello{version: 9, clusterID: 0xc1, from: 1, to: 2}))
	write("FuzzHandshake", "reply-accepted", appendHelloReply(nil, checkHello(hello{version: 1, clusterID: 0xc1, from: 1, to: 2}, 2, 0xc1)))
	write("FuzzHandshake", "reply-other-cluster", appendHelloReply(nil, checkHello(hello{version: 1, clusterID: 7, from: 1, to: 2}, 2, 0xc1)))
	write("FuzzHandshake", "http-request", []byte("GET /v2/keys HTTP/1.1\r\nHost: x\r\n\r\n"))
	write("FuzzHandshake", "http-response", []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
	write("FuzzHandshake", "tls-client-hello", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"))
}
