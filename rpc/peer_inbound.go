package rpc

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/raftkv/raftkv/internal/lifetrace"
	"github.com/raftkv/raftkv/raft"
)

// The receiving side of the transport: an accept loop per listener and a
// reader goroutine per accepted stream.

// inboundBufferSize is the read buffer of an accepted stream.
const inboundBufferSize = 64 << 10

// acceptRetryMax bounds the wait after a failed Accept (out of file
// descriptors, say) before the next.
const acceptRetryMax = time.Second

// inboundStream is an accepted connection.
type inboundStream struct {
	conn net.Conn
	// from is the sender's ID once the handshake has accepted it, else 0.
	// Written once by the stream's reader, under the transport's mu.
	from uint64
}

func (t *PeerTransport) acceptLoop(ln net.Listener) {
	retry := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {
			case <-t.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("peer listener accept failed", "addr", ln.Addr().String(), "err", err)
			select {
			case <-t.stop:
				return
			case <-time.After(retry):
			}
			retry = min(2*retry, acceptRetryMax)
			continue
		}
		retry = 5 * time.Millisecond
		s := &inboundStream{conn: conn}
		t.mu.Lock()
		if t.stopped {
			t.mu.Unlock()
			conn.Close()
			return
		}
		t.inbound[s] = struct{}{}
		t.wg.Go(func() { t.serveStream(s) })
		t.mu.Unlock()
	}
}

// serveStream performs the acceptor's side of the handshake on s and then
// delivers its messages until it ends.
func (t *PeerTransport) serveStream(s *inboundStream) {
	defer t.forgetStream(s)
	remote := s.conn.RemoteAddr().String()
	br := bufio.NewReaderSize(s.conn, inboundBufferSize)
	from, err := t.acceptHandshake(s.conn, br)
	if errors.Is(err, errServedHTTP) {
		return
	}
	if err != nil {
		t.refusedStreams.Add(1)
		t.log.Debug("peer stream refused", "remote", remote, "err", err)
		return
	}
	p := t.adoptStream(s, from)
	t.log.Debug("peer stream accepted", "peer", fmt.Sprintf("%x", from), "remote", remote)
	fr := newFrameReader(br, t.opts.MaxFrameSize)
	for {
		var m raft.Message
		n, err := fr.readMessage(&m)
		if err == nil && (m.From != from || m.To != t.opts.ID) {
			err = fmt.Errorf("%w: a message from %x to %x on the stream from %x to %x",
				ErrNotPeerProtocol, m.From, m.To, from, t.opts.ID)
		}
		if err != nil {
			if !t.streamClosed(err) {
				t.protocolErrors.Add(1)
				t.log.Info("peer stream closed on a protocol error", "peer", fmt.Sprintf("%x", from), "remote", remote, "err", err)
			}
			return
		}
		t.received.Add(1)
		t.receivedBytes.Add(uint64(n))
		if p != nil {
			p.received.Add(1)
			p.receivedBytes.Add(uint64(n))
		}
		lifetrace.Message(t.opts.ID, m.From, &m, lifetrace.AppendReceived, lifetrace.AckReceived)
		t.opts.Deliver(m)
	}
}

// streamClosed reports whether err only says that a stream ended: the
// peer closed it, or we did.
func (t *PeerTransport) streamClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}

// acceptHandshake reads the hello, answers it, and returns the sender's ID
// if the stream is accepted.
func (t *PeerTransport) acceptHandshake(conn net.Conn, br *bufio.Reader) (uint64, error) {
	if err := conn.SetDeadline(time.Now().Add(t.opts.HandshakeTimeout)); err != nil {
		return 0, err
	}
	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return 0, fmt.Errorf("TLS handshake: %w", err)
		}
	}
	if t.opts.HTTPHandler != nil {
		if first, _ := br.Peek(4); looksLikeHTTP(first) {
			return 0, servePeerHTTP(conn, br, t.opts.HTTPHandler)
		}
	}
	h, err := readHello(br)
	if errors.Is(err, errHTTPOnPeerPort) {
		_, _ = io.WriteString(conn, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"+
			"This is a raftkv peer port; the client API listens at the client URLs.\n")
	}
	if err != nil && !errors.Is(err, ErrVersionMismatch) {
		return 0, err
	}
	reply := checkHello(h, t.opts.ID, t.opts.ClusterID)
	if _, err := conn.Write(appendHelloReply(nil, reply)); err != nil {
		return 0, fmt.Errorf("write hello reply: %w", err)
	}
	if err := reply.err(); err != nil {
		return 0, err
	}
	return h.from, conn.SetDeadline(time.Time{})
}

// adoptStream records s as the stream from member from, closing the one it
// replaces (the peer redialed), and returns the peer's counters if the
// peer is known.
func (t *PeerTransport) adoptStream(s *inboundStream, from uint64) *peer {
	t.mu.Lock()
	old := t.inboundFrom[from]
	s.from = from
	t.inboundFrom[from] = s
	t.mu.Unlock()
	if old != nil {
		old.conn.Close()
	}
	return (*t.peers.Load())[from]
}

// forgetStream closes s and removes it from the transport's tables.
func (t *PeerTransport) forgetStream(s *inboundStream) {
	s.conn.Close()
	t.mu.Lock()
	delete(t.inbound, s)
	if s.from != 0 && t.inboundFrom[s.from] == s {
		delete(t.inboundFrom, s.from)
	}
	t.mu.Unlock()
}
