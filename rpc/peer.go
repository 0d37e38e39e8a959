// Package rpc carries raftkv's traffic: raft messages between members (the
// peer transport) and the etcd v2 HTTP+JSON API for clients.
//
// # The peer transport
//
// PeerTransport is the production network of a member. Each member dials
// one long-lived TCP (or TLS) stream to every peer and writes its messages
// for that peer on it; it accepts the streams its peers dial to it and
// reads their messages from them. So each pair of members is joined by two
// streams, one per direction, each written by one goroutine and read by
// one goroutine, which keeps every stream's messages in order without any
// locking on the wire.
//
// A stream opens with a handshake (frame_hello.go) that carries a magic
// number, the protocol version, the cluster ID and both member IDs, so that
// a member refuses, with a reason the dialer logs, a peer of another
// cluster, of another protocol version, or one that meant to reach someone
// else. Then come frames (frame.go): a length, a CRC32C and one raft
// message in raft's own binary encoding. A frame over the maximum frame
// size, a bad checksum or a message that does not decode closes the stream.
//
// Send never blocks the member's event loop. Every peer has a bounded
// queue and a writer goroutine that drains it whole, encodes every message
// into one buffer and writes it with one system call; a full queue drops
// the message (raft retries whatever matters). Snapshot chunks (MsgSnap)
// wait in a second, smaller lane and go out one chunk per batch, after the
// batch of other messages, so that a snapshot transfer delays a heartbeat
// by one chunk at most. When a write fails or a peer cannot be reached, the
// queued messages are dropped, the peer is reported unreachable (raft then
// probes it instead of streaming to it), and the writer redials with an
// exponential backoff with jitter.
package rpc

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// PeerTransportOptions configures a PeerTransport. Zero values mean the
// defaults given.
type PeerTransportOptions struct {
	// ID is this member's ID and ClusterID its cluster's; both travel in
	// the handshake, and a stream between different clusters is refused.
	ID, ClusterID uint64

	// Deliver receives every message that arrives from a peer. It is called
	// on the goroutine that reads that peer's stream, in the stream's
	// order, and must not block for long (server.Runtime.Receive never
	// blocks): while it runs, that peer's stream is not read.
	Deliver func(raft.Message)
	// ReportUnreachable, if set, is told that messages to peer id were lost
	// (a failed write, a failed dial, a full queue), so that raft stops
	// streaming to the peer and probes it. It is called on a goroutine of
	// the transport, one call at a time, with reports made while a call
	// runs coalesced; it must not block for long, and Stop waits for it.
	ReportUnreachable func(id uint64)

	// ServerTLS secures the listeners given https URLs; ClientTLS secures
	// the dials to https peer URLs. See PeerTLSInfo.
	ServerTLS, ClientTLS *tls.Config

	// QueueSize bounds the messages that wait to be written to one peer;
	// beyond it Send drops. 0 means 4096.
	QueueSize int
	// SnapshotQueueSize bounds the MsgSnap chunks waiting for one peer, in
	// a lane of their own. 0 means 16.
	SnapshotQueueSize int
	// MaxFrameSize bounds one encoded message, both ways: a longer one is
	// dropped by the sender and closes the stream at the receiver. 0 means
	// DefaultMaxFrameSize.
	MaxFrameSize int

	// DialTimeout bounds a TCP connect; 0 means 1s. HandshakeTimeout
	// bounds the TLS and peer handshakes; 0 means 5s.
	DialTimeout, HandshakeTimeout time.Duration
	// WriteTimeout bounds the write of one batch: a peer that takes longer
	// is treated as failed. 0 means 5s.
	WriteTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between dials to a peer that
	// cannot be reached: it doubles from BackoffMin up to BackoffMax, and
	// each wait is drawn between half and all of it. 0 means 50ms and 1s.
	BackoffMin, BackoffMax time.Duration
	// Seed seeds the backoff jitter; 0 means a seed from crypto/rand.
	Seed uint64

	// Logger receives connection events: streams up and down at Info,
	// refusals and failed dials at Debug. nil means no logging.
	Logger *slog.Logger

	// HTTPHandler, if set, answers HTTP requests that reach the peer
	// listeners (as etcd serves GET /members on its peer URLs, for a new
	// member to learn the cluster's IDs): one request per connection,
	// read and answered within HandshakeTimeout. nil answers every HTTP
	// request with 400. It may be called from many goroutines at once.
	HTTPHandler http.Handler
}

func (o PeerTransportOptions) withDefaults() (PeerTransportOptions, error) {
	defaults := []struct {
		value *time.Duration
		def   time.Duration
	}{
		{&o.DialTimeout, time.Second}, {&o.HandshakeTimeout, 5 * time.Second},
		{&o.WriteTimeout, 5 * time.Second}, {&o.BackoffMin, 50 * time.Millisecond},
		{&o.BackoffMax, time.Second},
	}
	for _, d := range defaults {
		if *d.value < 0 {
			return o, errors.New("rpc: peer transport timeouts and backoffs must not be negative")
		}
		if *d.value == 0 {
			*d.value = d.def
		}
	}
	if o.QueueSize == 0 {
		o.QueueSize = 4096
	}
	if o.SnapshotQueueSize == 0 {
		o.SnapshotQueueSize = 16
	}
	if o.MaxFrameSize == 0 {
		o.MaxFrameSize = DefaultMaxFrameSize
	}
	if o.Seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:]) // never fails (crypto/rand panics rather)
		o.Seed = binary.LittleEndian.Uint64(b[:])
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.ID == 0:
		return o, errors.New("rpc: peer transport needs the member's ID")
	case o.Deliver == nil:
		return o, errors.New("rpc: peer transport needs a Deliver function")
	case o.QueueSize < 0 || o.SnapshotQueueSize < 0:
		return o, fmt.Errorf("rpc: peer queue sizes must be positive, not %d and %d", o.QueueSize, o.SnapshotQueueSize)
	case o.MaxFrameSize < frameSizeMin || o.MaxFrameSize > frameSizeMax:
		return o, fmt.Errorf("rpc: max frame size %d is outside [%d, %d]", o.MaxFrameSize, frameSizeMin, frameSizeMax)
	case o.BackoffMin > o.BackoffMax:
		return o, fmt.Errorf("rpc: backoff minimum %v exceeds the maximum %v", o.BackoffMin, o.BackoffMax)
	}
	return o, nil
}

// ErrTransportStopped is returned by a PeerTransport that has been stopped.
var ErrTransportStopped = errors.New("rpc: peer transport stopped")

// PeerTransport carries raft messages between this member and its peers
// over TCP or TLS streams (see the package comment). Every method may be
// called from any goroutine; Send never blocks.
type PeerTransport struct {
	opts PeerTransportOptions
	log  *slog.Logger

	// peers is the peer table. It is replaced whole, under mu, and read
	// without a lock by Send.
	peers atomic.Pointer[map[uint64]*peer]

	mu sync.Mutex
	// stopped is set once, by Stop. Invariant: once it is set, nothing is
	// added to the maps below and no goroutine is started.
	stopped   bool
	listeners map[net.Listener]struct{}
	// inbound holds every accepted connection until its reader ends, with
	// or without a completed handshake.
	inbound map[*inboundStream]struct{}
	// inboundFrom is the established stream of each sender.
	// Invariant: every value is also in inbound.
	inboundFrom map[uint64]*inboundStream
	// rng seeds the peers' jitter sources.
	rng *rand.Rand

	reporter unreachableReporter
	// stop is closed by Stop.
	stop chan struct{}
	// wg counts every goroutine the transport starts.
	wg sync.WaitGroup

	refusedStreams     atomic.Uint64
	protocolErrors     atomic.Uint64
	droppedUnknownPeer atomic.Uint64
	received           atomic.Uint64
	receivedBytes      atomic.Uint64
}

// NewPeerTransport returns a transport with no peers and no listeners.
func NewPeerTransport(opts PeerTransportOptions) (*PeerTransport, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &PeerTransport{
		opts: opts, log: opts.Logger.With("member", fmt.Sprintf("%x", opts.ID)),
		listeners: map[net.Listener]struct{}{}, inbound: map[*inboundStream]struct{}{},
		inboundFrom: map[uint64]*inboundStream{},
		rng:         rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		stop:        make(chan struct{}),
	}
	t.peers.Store(&map[uint64]*peer{})
	t.reporter = unreachableReporter{report: opts.ReportUnreachable, pending: map[uint64]struct{}{}, wake: make(chan struct{}, 1)}
	if opts.ReportUnreachable != nil {
		t.wg.Go(func() { t.reporter.run(t.stop) })
	}
	return t, nil
}

// ID returns this member's ID.
func (t *PeerTransport) ID() uint64 { return t.opts.ID }

// Send queues msgs for their peers and returns at once. A message for an
// unknown peer, or one that finds its peer's queue full, is dropped and
// counted. The transport keeps the messages until they are written:
// neither they nor the entries and bytes they point to may change after
// Send (raft never changes them).
func (t *PeerTransport) Send(msgs []raft.Message) {
	peers := *t.peers.Load()
	for i := range msgs {
		p := peers[msgs[i].To]
		if p == nil {
			t.droppedUnknownPeer.Add(1)
			continue
		}
		if !p.enqueue(&msgs[i]) {
			t.reporter.add(p.id)
		}
	}
}

// AddPeer starts streaming to member id at urls ("http://host:port",
// "https://host:port" or "host:port"; with several, each is tried in turn
// while the peer cannot be reached). An https URL needs ClientTLS.
func (t *PeerTransport) AddPeer(id uint64, urls []string) error {
	parsed, err := t.parsePeerURLs(id, urls)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	peers := *t.peers.Load()
	switch {
	case t.stopped:
		return ErrTransportStopped
	case id == 0 || id == t.opts.ID:
		return fmt.Errorf("rpc: cannot add peer %x: it is not another member's ID", id)
	case peers[id] != nil:
		return fmt.Errorf("rpc: peer %x is already known (UpdatePeer changes its URLs)", id)
	}
	p := newPeer(t, id, parsed, t.rng.Uint64())
	next := make(map[uint64]*peer, len(peers)+1)
	for k, v := range peers {
		next[k] = v
	}
	next[id] = p
	t.peers.Store(&next)
	t.wg.Go(p.run)
	return nil
}

// UpdatePeer replaces the URLs of member id. A stream open to a URL no
// longer listed is closed, and the peer is dialed again at a new one.
func (t *PeerTransport) UpdatePeer(id uint64, urls []string) error {
	parsed, err := t.parsePeerURLs(id, urls)
	if err != nil {
		return err
	}
	p := (*t.peers.Load())[id]
	if p == nil {
		return fmt.Errorf("rpc: cannot update unknown peer %x", id)
	}
	p.setURLs(parsed)
	return nil
}

// RemovePeer stops streaming to member id: its queued messages are
// dropped, its streams in both directions are closed, and its writer has
// ended when RemovePeer returns. Removing an unknown peer does nothing.
func (t *PeerTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	peers := *t.peers.Load()
	p := peers[id]
	if p != nil {
		next := make(map[uint64]*peer, len(peers))
		for k, v := range peers {
			if k != id {
				next[k] = v
			}
		}
		t.peers.Store(&next)
	}
	in := t.inboundFrom[id]
	t.mu.Unlock()
	if in != nil {
		in.conn.Close()
	}
	if p != nil {
		p.shutdown()
		<-p.done
	}
}

// Stop closes the listeners and every stream, drops every queued message,
// and returns when every goroutine of the transport has ended. Later calls
// of Send drop their messages; later calls of AddPeer and Serve fail.
func (t *PeerTransport) Stop() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		t.wg.Wait()
		return
	}
	t.stopped = true
	listeners := make([]net.Listener, 0, len(t.listeners))
	for ln := range t.listeners {
		listeners = append(listeners, ln)
	}
	inbound := make([]*inboundStream, 0, len(t.inbound))
	for s := range t.inbound {
		inbound = append(inbound, s)
	}
	peers := *t.peers.Load()
	t.peers.Store(&map[uint64]*peer{})
	t.mu.Unlock()

	close(t.stop)
	for _, ln := range listeners {
		ln.Close()
	}
	for _, s := range inbound {
		s.conn.Close()
	}
	for _, p := range peers {
		p.shutdown()
	}
	t.wg.Wait()
}

// PeerStats counts the traffic with one peer since it was added.
type PeerStats struct {
	ID   uint64
	URLs []string
	// Connected says the outgoing stream is up.
	Connected bool
	// Queued is the number of messages waiting to be written.
	Queued int
	// Sent and SentBytes count the messages written to the stream and
	// their frames' bytes.
	Sent, SentBytes uint64
	// Writes counts the writes the messages took: Sent/Writes is how many
	// messages a batch carried on average.
	Writes uint64
	// Dropped counts messages never written: queue full, lost with a
	// failed stream, discarded while the peer was unreachable, or larger
	// than the maximum frame size.
	Dropped uint64
	// SendFailures counts failed dials, refused handshakes and failed
	// writes.
	SendFailures uint64
	// Reconnects counts streams established after the first.
	Reconnects uint64
	// Received and ReceivedBytes count the messages and frame bytes read
	// from the peer's stream to us.
	Received, ReceivedBytes uint64
	// LastError is the last dial, handshake or write error; empty if there
	// was none.
	LastError string
}

// PeerTransportStats is a snapshot of a transport's counters, for metrics.
type PeerTransportStats struct {
	// Peers holds one entry per peer, in increasing order of ID.
	Peers []PeerStats
	// InboundStreams is the number of accepted streams now open.
	InboundStreams int
	// RefusedStreams counts accepted connections refused at the TLS or
	// peer handshake; ProtocolErrors counts streams closed for a bad frame
	// or message.
	RefusedStreams, ProtocolErrors uint64
	// DroppedUnknownPeer counts messages sent to no known peer.
	DroppedUnknownPeer uint64
	// Received and ReceivedBytes count every message read, from all peers.
	Received, ReceivedBytes uint64
}

// Stats returns the transport's counters.
func (t *PeerTransport) Stats() PeerTransportStats {
	s := PeerTransportStats{
		RefusedStreams: t.refusedStreams.Load(), ProtocolErrors: t.protocolErrors.Load(),
		DroppedUnknownPeer: t.droppedUnknownPeer.Load(),
		Received:           t.received.Load(), ReceivedBytes: t.receivedBytes.Load(),
	}
	for _, p := range *t.peers.Load() {
		s.Peers = append(s.Peers, p.stats())
	}
	slices.SortFunc(s.Peers, func(a, b PeerStats) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	t.mu.Lock()
	s.InboundStreams = len(t.inboundFrom)
	t.mu.Unlock()
	return s
}

// peerURL is a parsed peer URL.
type peerURL struct {
	raw string
	// addr is host:port; host is the name TLS verifies.
	addr, host string
	tls        bool
}

// parsePeerURL accepts "http://host:port", "https://host:port",
// "tcp://host:port" and "host:port".
func parsePeerURL(raw string) (peerURL, error) {
	pu := peerURL{raw: raw, addr: raw}
	bad := func(why string) (peerURL, error) {
		return pu, fmt.Errorf("rpc: peer URL %q: %s", raw, why)
	}
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			return bad(err.Error())
		case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tcp":
			return bad("scheme must be http, https or tcp")
		case u.Path != "" && u.Path != "/", u.RawQuery != "", u.User != nil, u.Fragment != "":
			return bad("only a scheme, a host and a port are allowed")
		}
		pu.addr, pu.tls = u.Host, u.Scheme == "https"
	}
	host, port, err := net.SplitHostPort(pu.addr)
	if err != nil {
		return bad("want scheme://host:port or host:port")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return bad("the port must be a number")
	}
	pu.host = host
	return pu, nil
}

func (t *PeerTransport) parsePeerURLs(id uint64, urls []string) ([]peerURL, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("rpc: peer %x has no URL", id)
	}
	parsed := make([]peerURL, len(urls))
	for i, raw := range urls {
		pu, err := parsePeerURL(raw)
		if err != nil {
			return nil, err
		}
		if pu.tls && t.opts.ClientTLS == nil {
			return nil, fmt.Errorf("rpc: peer %x URL %s needs TLS, but no peer client TLS is configured", id, raw)
		}
		parsed[i] = pu
	}
	return parsed, nil
}

// Listen listens at rawURL ("http://host:port", "https://host:port" or
// "host:port"; port 0 picks a free port) and serves peers there until
// Stop. An https URL needs ServerTLS. It returns the address listened at.
func (t *PeerTransport) Listen(rawURL string) (net.Addr, error) {
	pu, err := parsePeerURL(rawURL)
	if err != nil {
		return nil, err
	}
	if pu.tls && t.opts.ServerTLS == nil {
		return nil, fmt.Errorf("rpc: listen peer URL %s needs TLS, but no peer server TLS is configured", rawURL)
	}
	ln, err := net.Listen("tcp", pu.addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: listen for peers at %s: %w", rawURL, err)
	}
	if pu.tls {
		ln = tls.NewListener(ln, t.opts.ServerTLS)
	}
	if err := t.Serve(ln); err != nil {
		ln.Close()
		return nil, err
	}
	return ln.Addr(), nil
}

// Serve accepts peer streams from ln, on a goroutine of its own, until
// Stop, which closes ln. A TLS listener (tls.NewListener) gives TLS
// streams.
func (t *PeerTransport) Serve(ln net.Listener) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return ErrTransportStopped
	}
	t.listeners[ln] = struct{}{}
	t.wg.Go(func() { t.acceptLoop(ln) })
	return nil
}

// unreachableReporter hands unreachable reports to the callback on a
// goroutine of its own, so that neither Send nor a writer ever waits for
// the callback, and repeated reports of one peer collapse into one.
type unreachableReporter struct {
	report func(id uint64)

	mu sync.Mutex
	// pending holds the peers reported since the callback last ran.
	pending map[uint64]struct{}
	// wake holds a token while pending may be non-empty.
	wake chan struct{}
}

func (r *unreachableReporter) add(id uint64) {
	if r.report == nil {
		return
	}
	r.mu.Lock()
	r.pending[id] = struct{}{}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *unreachableReporter) run(stop <-chan struct{}) {
	var ids []uint64
	for {
		select {
		case <-stop:
			return
		case <-r.wake:
		}
		r.mu.Lock()
		ids = ids[:0]
		for id := range r.pending {
			ids = append(ids, id)
		}
		clear(r.pending)
		r.mu.Unlock()
		slices.Sort(ids)
		for _, id := range ids {
			r.report(id)
		}
	}
}

// sleepOrStop waits d and reports true, or reports false as soon as ctx
// ends.
func sleepOrStop(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
