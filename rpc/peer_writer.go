package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/internal/lifetrace"
	"github.com/raftkv/raftkv/raft"
)

// The sending side of the transport: one peer value and one writer
// goroutine per peer.

// writeChunkSize is how many encoded bytes a writer gathers before it
// writes them, when a batch holds more: small messages go out many to a
// write, large ones about one to a write.
const writeChunkSize = 512 << 10

// writeBufferRetainMax bounds the encode buffer a writer keeps between
// batches.
const writeBufferRetainMax = 4 << 20

// streamShortLived is how long a stream must last for its loss to be
// followed by an immediate redial; a peer that accepts and then drops
// streams at once is redialed with backoff instead.
const streamShortLived = time.Second

// errPeerRemoved ends a peer's writer.
var errPeerRemoved = errors.New("rpc: peer removed")

// peer is the sending side of the transport for one member.
type peer struct {
	t   *PeerTransport
	id  uint64
	ctx context.Context
	// cancel ends the peer: dials in progress stop, the writer returns.
	cancel context.CancelFunc
	// done is closed when the writer has returned.
	done chan struct{}
	// wake holds a token when the queues may have grown since the writer
	// last looked.
	wake chan struct{}

	mu   sync.Mutex
	urls []peerURL
	// nextURL is the index in urls of the URL to dial next.
	// Invariant: nextURL < len(urls).
	nextURL int
	// normal is the queue of every message but MsgSnap; snaps is the lane
	// of MsgSnap chunks. Invariant: len(normal) <= QueueSize and
	// len(snaps) <= SnapshotQueueSize.
	normal, snaps []raft.Message
	// conn is the stream being dialed or in use, so that it can be closed
	// from outside the writer; nil if none.
	conn      net.Conn
	lastError string
	// everConnected says a stream has been established before.
	everConnected bool

	connected                                           atomic.Bool
	sent, sentBytes, writes, dropped, failures, redials atomic.Uint64
	received, receivedBytes                             atomic.Uint64

	// The rest belongs to the writer goroutine.
	// spare is the emptied slice of the last batch, reused for the next.
	spare []raft.Message
	// buf is the encode buffer.
	buf []byte
	rng *rand.Rand
	// unreachable is set while the peer cannot be dialed, to log the start
	// of an outage once.
	unreachable bool
}

func newPeer(t *PeerTransport, id uint64, urls []peerURL, seed uint64) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	return &peer{
		t: t, id: id, ctx: ctx, cancel: cancel, urls: urls,
		done: make(chan struct{}), wake: make(chan struct{}, 1),
		rng: rand.New(rand.NewPCG(seed, id)),
	}
}

// enqueue queues m for the writer. It reports false if m was dropped
// because its queue is full.
func (p *peer) enqueue(m *raft.Message) bool {
	p.mu.Lock()
	if m.Type == raft.MsgSnap {
		if len(p.snaps) >= p.t.opts.SnapshotQueueSize {
			p.mu.Unlock()
			p.dropped.Add(1)
			return false
		}
		p.snaps = append(p.snaps, *m)
	} else {
		if len(p.normal) >= p.t.opts.QueueSize {
			p.mu.Unlock()
			p.dropped.Add(1)
			return false
		}
		p.normal = append(p.normal, *m)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

// takeBatch takes every queued message but MsgSnap, and at most one
// MsgSnap chunk.
func (p *peer) takeBatch() (batch []raft.Message, snap raft.Message, hasSnap bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	batch, p.normal, p.spare = p.normal, p.spare[:0], nil
	if len(p.snaps) > 0 {
		snap, hasSnap = p.snaps[0], true
		copy(p.snaps, p.snaps[1:])
		p.snaps[len(p.snaps)-1] = raft.Message{}
		p.snaps = p.snaps[:len(p.snaps)-1]
	}
	return batch, snap, hasSnap
}

// discardQueued drops every queued message and returns how many there were.
func (p *peer) discardQueued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.normal) + len(p.snaps)
	clear(p.normal)
	clear(p.snaps)
	p.normal, p.snaps = p.normal[:0], p.snaps[:0]
	p.dropped.Add(uint64(n))
	return n
}

func (p *peer) setURLs(urls []peerURL) {
	p.mu.Lock()
	defer p.mu.Unlock()
	same := slices.EqualFunc(p.urls, urls, func(a, b peerURL) bool { return a.raw == b.raw })
	if same {
		return
	}
	p.urls, p.nextURL = urls, 0
	if p.conn != nil {
		// The writer sees the stream fail and dials the new URLs.
		p.conn.Close()
	}
}

// shutdown ends the peer; the writer returns soon after.
func (p *peer) shutdown() {
	p.cancel()
	p.mu.Lock()
	if p.conn != nil {
		p.conn.Close()
	}
	p.mu.Unlock()
}

func (p *peer) stats() PeerStats {
	p.mu.Lock()
	urls := make([]string, len(p.urls))
	for i, u := range p.urls {
		urls[i] = u.raw
	}
	s := PeerStats{ID: p.id, URLs: urls, Queued: len(p.normal) + len(p.snaps), LastError: p.lastError}
	p.mu.Unlock()
	s.Connected = p.connected.Load()
	s.Sent, s.SentBytes, s.Writes, s.Dropped = p.sent.Load(), p.sentBytes.Load(), p.writes.Load(), p.dropped.Load()
	s.SendFailures, s.Reconnects = p.failures.Load(), p.redials.Load()
	s.Received, s.ReceivedBytes = p.received.Load(), p.receivedBytes.Load()
	return s
}

// run is the writer: it keeps a stream to the peer open and writes the
// queues to it, until the peer is removed or the transport stops.
func (p *peer) run() {
	defer close(p.done)
	log := p.t.log.With("peer", fmt.Sprintf("%x", p.id))
	attempt := 0
	for p.ctx.Err() == nil {
		c, u, err := p.connect()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.failed(err, !p.unreachable)
			if !p.unreachable {
				log.Info("peer unreachable", "url", u.raw, "err", err)
				p.unreachable = true
			} else {
				log.Debug("peer dial failed", "url", u.raw, "err", err)
			}
			if !sleepOrStop(p.ctx, p.backoff(attempt)) {
				return
			}
			attempt++
			continue
		}
		p.unreachable = false
		log.Info("peer stream up", "url", u.raw)
		start := time.Now()
		err = p.stream(c)
		p.closeStream(c)
		if p.ctx.Err() != nil {
			return
		}
		log.Info("peer stream down", "url", u.raw, "err", err)
		p.failed(err, true)
		if time.Since(start) >= streamShortLived {
			attempt = 0
			continue
		}
		if !sleepOrStop(p.ctx, p.backoff(attempt)) {
			return
		}
		attempt++
	}
}

// failed records a failed dial or stream: the queued messages are dropped
// and, if any were (or report is set), the peer is reported unreachable.
func (p *peer) failed(err error, report bool) {
	p.failures.Add(1)
	p.mu.Lock()
	p.lastError = err.Error()
	p.mu.Unlock()
	if p.discardQueued() > 0 || report {
		p.t.reporter.add(p.id)
	}
}

// backoff returns the wait before dial attempt+1: BackoffMin doubled
// attempt times, at most BackoffMax, drawn between half and all of that.
func (p *peer) backoff(attempt int) time.Duration {
	opts := &p.t.opts
	d := opts.BackoffMax
	if attempt < 30 && opts.BackoffMin<<attempt < opts.BackoffMax {
		d = opts.BackoffMin << attempt
	}
	return d/2 + time.Duration(p.rng.Int64N(int64(d/2)+1))
}

// peerConn is an established outgoing stream.
type peerConn struct {
	conn net.Conn
	// dead is closed when the watcher has seen the stream end; err then
	// says why.
	dead chan struct{}
	err  error
}

// connect dials the next URL and performs the handshake.
func (p *peer) connect() (*peerConn, peerURL, error) {
	p.mu.Lock()
	u := p.urls[p.nextURL]
	p.nextURL = (p.nextURL + 1) % len(p.urls)
	p.mu.Unlock()
	opts := &p.t.opts
	dialer := net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 15 * time.Second}
	conn, err := dialer.DialContext(p.ctx, "tcp", u.addr)
	if err != nil {
		return nil, u, fmt.Errorf("dial %s: %w", u.raw, err)
	}
	if u.tls {
		cfg := opts.ClientTLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.host
		}
		conn = tls.Client(conn, cfg)
	}
	if !p.adopt(conn) {
		return nil, u, errPeerRemoved
	}
	if err := p.handshake(conn); err != nil {
		p.drop(conn)
		return nil, u, fmt.Errorf("handshake with %s: %w", u.raw, err)
	}
	c := &peerConn{conn: conn, dead: make(chan struct{})}
	p.t.wg.Go(func() { watchPeerConn(c) })
	if p.everConnected {
		p.redials.Add(1)
	}
	p.everConnected = true
	p.connected.Store(true)
	return c, u, nil
}

// adopt makes conn the peer's stream, so that shutdown and setURLs can
// close it; it reports false (and closes conn) if the peer has ended.
func (p *peer) adopt(conn net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		conn.Close()
		return false
	}
	p.conn = conn
	return true
}

// drop closes conn and forgets it.
func (p *peer) drop(conn net.Conn) {
	conn.Close()
	p.mu.Lock()
	if p.conn == conn {
		p.conn = nil
	}
	p.mu.Unlock()
}

func (p *peer) handshake(conn net.Conn) error {
	opts := &p.t.opts
	if err := conn.SetDeadline(time.Now().Add(opts.HandshakeTimeout)); err != nil {
		return err
	}
	if tc, ok := conn.(*tls.Conn); ok {
		if err := tc.HandshakeContext(p.ctx); err != nil {
			return err
		}
	}
	h := hello{version: PeerProtocolVersion, clusterID: opts.ClusterID, from: opts.ID, to: p.id}
	if _, err := conn.Write(appendHello(nil, h)); err != nil {
		return err
	}
	reply, err := readHelloReply(conn)
	if err != nil {
		return err
	}
	if err := reply.err(); err != nil {
		return err
	}
	return conn.SetDeadline(time.Time{})
}

// watchPeerConn reads the outgoing stream, on which the peer never writes
// after its reply: a read that returns means the stream is over (the peer
// closed it or vanished), and the writer learns so at once rather than at
// its next write.
func watchPeerConn(c *peerConn) {
	var b [1]byte
	_, err := c.conn.Read(b[:])
	if err == nil {
		err = fmt.Errorf("%w: the peer wrote on its incoming stream", ErrNotPeerProtocol)
	}
	c.err = err
	c.conn.Close()
	close(c.dead)
}

func (p *peer) closeStream(c *peerConn) {
	p.connected.Store(false)
	p.drop(c.conn)
	<-c.dead
}

// stream writes the queues to c until c fails or the peer ends.
func (p *peer) stream(c *peerConn) error {
	for {
		if err := p.writeQueued(c); err != nil {
			return err
		}
		select {
		case <-p.ctx.Done():
			return errPeerRemoved
		case <-c.dead:
			return c.err
		case <-p.wake:
		}
	}
}

// writeQueued writes batches until the queues are empty: each batch is
// every queued message but MsgSnap and then at most one MsgSnap chunk,
// encoded into one buffer and written with as few writes as its size
// allows.
func (p *peer) writeQueued(c *peerConn) error {
	for {
		batch, snap, hasSnap := p.takeBatch()
		if len(batch) == 0 && !hasSnap {
			p.spare = batch
			return nil
		}
		if hasSnap {
			batch = append(batch, snap)
		}
		p.traceBatch(batch, lifetrace.AppendWriting, lifetrace.AckWriting)
		err := p.writeBatch(c, batch)
		p.traceBatch(batch, lifetrace.AppendWritten, lifetrace.AckWritten)
		clear(batch)
		p.spare = batch[:0]
		if cap(p.buf) > writeBufferRetainMax {
			p.buf = nil
		}
		if err != nil {
			return err
		}
	}
}

// traceBatch records a batch's appends and acknowledgements for lifetrace
// builds.
func (p *peer) traceBatch(batch []raft.Message, app, ack lifetrace.Stage) {
	if !lifetrace.Enabled {
		return
	}
	for i := range batch {
		lifetrace.Message(p.t.opts.ID, p.id, &batch[i], app, ack)
	}
}

func (p *peer) writeBatch(c *peerConn, batch []raft.Message) error {
	opts := &p.t.opts
	buf, frames := p.buf[:0], 0
	for i := range batch {
		var err error
		buf, err = appendFrame(buf, &batch[i], opts.MaxFrameSize)
		if err != nil {
			// Too large to send, ever: raft must make it smaller.
			p.dropped.Add(1)
			p.t.log.Warn("peer message dropped", "peer", fmt.Sprintf("%x", p.id), "err", err)
			continue
		}
		frames++
		if len(buf) < writeChunkSize && i < len(batch)-1 {
			continue
		}
		if err := p.write(c, buf, frames); err != nil {
			p.dropped.Add(uint64(len(batch) - 1 - i))
			p.buf = buf
			return err
		}
		buf, frames = buf[:0], 0
	}
	if frames > 0 {
		// The batch ended with a message too large to send.
		if err := p.write(c, buf, frames); err != nil {
			p.buf = buf
			return err
		}
	}
	p.buf = buf
	return nil
}

// write writes frames encoded frames to c.
func (p *peer) write(c *peerConn, buf []byte, frames int) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(p.t.opts.WriteTimeout)); err != nil {
		p.dropped.Add(uint64(frames))
		return err
	}
	if _, err := c.conn.Write(buf); err != nil {
		p.dropped.Add(uint64(frames))
		return fmt.Errorf("write to peer: %w", err)
	}
	p.sent.Add(uint64(frames))
	p.writes.Add(1)
	p.sentBytes.Add(uint64(len(buf)))
	return nil
}
