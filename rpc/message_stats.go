package rpc

import (
	"bytes"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/server"
)

// MessageStats watches the raft messages a member sends and receives, for
// what etcd reports about its peers: the append requests of /v2/stats/self
// (counts and recent rates), the followers' latency and counts of
// /v2/stats/leader, and etcd_network_peer_round_trip_time_seconds.
//
// The round trip to a peer is measured from a heartbeat the member sends
// as leader to the peer's answer to that very heartbeat (matched by its
// context, and only for the latest heartbeat, so that a late answer to an
// older one is never taken for a quick one). It includes the peer's event
// loop, as etcd's prober includes its HTTP handler. Only a leader sends
// heartbeats, so only the leader measures.
//
// The shell calls Sent on the member's event loop (WrapTransport does) and
// Received for every message delivered; both are safe for concurrent use
// and allocate nothing for the messages they do not look at.
type MessageStats struct {
	clock func() time.Time
	// lateHeartbeat is etcd's bound on the time between two heartbeats to
	// a peer (twice the interval); a later one counts as a send failure.
	lateHeartbeat time.Duration

	mu sync.Mutex
	// sendAppends and recvAppends keep the recent append requests sent
	// and received; guarded by mu.
	sendAppends, recvAppends rateWindow
	// peers holds what is known of each peer; guarded by mu.
	peers map[uint64]*peerRoundTrips
	// rtt receives the round trips and lateHeartbeats counts heartbeats
	// sent late; nil until the etcd metrics register (RegisterEtcd).
	rtt            *prometheus.HistogramVec
	lateHeartbeats prometheus.Counter
}

// peerRoundTrips is the round-trip state of one peer.
type peerRoundTrips struct {
	// heartbeatAt and heartbeatContext are the latest heartbeat sent;
	// waiting says its answer has not come yet.
	heartbeatAt      time.Time
	heartbeatContext []byte
	waiting          bool
	latency          latencyStats
	// success counts the answered heartbeats; fail the messages the
	// transport could not deliver.
	success, fail uint64
	// rtt is the peer's round-trip histogram (nil without metrics).
	rtt prometheus.Observer
}

// latencyStats are etcd's follower latency figures, in milliseconds.
type latencyStats struct {
	Current, Average, StandardDeviation, Minimum, Maximum float64
	// averageSquare is the running mean of the squares, for the deviation.
	averageSquare float64
}

// NewMessageStats returns empty statistics for a member that sends a
// heartbeat every heartbeat as leader.
func NewMessageStats(heartbeat time.Duration) *MessageStats {
	return &MessageStats{clock: time.Now, lateHeartbeat: 2 * heartbeat, peers: map[uint64]*peerRoundTrips{}}
}

func (s *MessageStats) setMetrics(rtt *prometheus.HistogramVec, lateHeartbeats prometheus.Counter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rtt, s.lateHeartbeats = rtt, lateHeartbeats
}

// LeaderChanged forgets the heartbeats sent so far: a new term of
// leadership starts afresh (etcd resets its timeout detector).
func (s *MessageStats) LeaderChanged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.peers {
		p.heartbeatAt, p.heartbeatContext, p.waiting = time.Time{}, nil, false
	}
}

// WrapTransport returns a transport that records what it sends in s, then
// sends it through t.
func (s *MessageStats) WrapTransport(t server.Transport) server.Transport {
	return &recordingTransport{Transport: t, stats: s}
}

type recordingTransport struct {
	server.Transport
	stats *MessageStats
}

func (r *recordingTransport) Send(msgs []raft.Message) {
	r.stats.Sent(msgs)
	r.Transport.Send(msgs)
}

// Sent records the messages the member is sending.
func (s *MessageStats) Sent(msgs []raft.Message) {
	var now time.Time
	for i := range msgs {
		m := &msgs[i]
		if m.Type != raft.MsgApp && m.Type != raft.MsgHeartbeat {
			continue
		}
		if now.IsZero() {
			now = s.clock()
		}
		s.mu.Lock()
		if m.Type == raft.MsgApp {
			s.sendAppends.add(now, entriesSize(m.Entries))
		} else {
			p := s.peer(m.To)
			if !p.heartbeatAt.IsZero() && now.Sub(p.heartbeatAt) > s.lateHeartbeat && s.lateHeartbeats != nil {
				s.lateHeartbeats.Inc()
			}
			p.heartbeatAt, p.heartbeatContext, p.waiting = now, m.Context, true
		}
		s.mu.Unlock()
	}
}

// Received records a message delivered to the member.
func (s *MessageStats) Received(m raft.Message) {
	if m.Type != raft.MsgApp && m.Type != raft.MsgHeartbeatResp {
		return
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Type == raft.MsgApp {
		s.recvAppends.add(now, entriesSize(m.Entries))
		return
	}
	p := s.peers[m.From]
	if p == nil || !p.waiting || !bytes.Equal(p.heartbeatContext, m.Context) {
		return
	}
	p.waiting = false
	d := now.Sub(p.heartbeatAt)
	p.success++
	p.latency.observe(float64(d)/float64(time.Millisecond), p.success)
	if p.rtt == nil && s.rtt != nil {
		p.rtt = s.rtt.WithLabelValues(formatID(m.From))
	}
	if p.rtt != nil {
		p.rtt.Observe(d.Seconds())
	}
}

// Failed counts n messages to peer id that the transport could not
// deliver.
func (s *MessageStats) Failed(id uint64, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peer(id).fail += n
}

// peer returns id's state, creating it. s.mu must be held.
func (s *MessageStats) peer(id uint64) *peerRoundTrips {
	p := s.peers[id]
	if p == nil {
		p = &peerRoundTrips{}
		s.peers[id] = p
	}
	return p
}

// observe adds the n-th sample, ms, as etcd's FollowerStats.Succ does:
// averages over every sample so far.
func (l *latencyStats) observe(ms float64, n uint64) {
	// The first sample sets the minimum (etcd's minimum starts at 2^63).
	if n == 1 || ms < l.Minimum {
		l.Minimum = ms
	}
	l.Maximum = max(l.Maximum, ms)
	l.Current = ms
	l.Average += (ms - l.Average) / float64(n)
	l.averageSquare += (ms*ms - l.averageSquare) / float64(n)
	l.StandardDeviation = math.Sqrt(max(0, l.averageSquare-l.Average*l.Average))
}

// followerStats is one follower's part of /v2/stats/leader.
type followerStats struct {
	Latency latencyStats
	Success uint64
	Fail    uint64
}

// follower returns what is known of peer id.
func (s *MessageStats) follower(id uint64) followerStats {
	if s == nil {
		return followerStats{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers[id]
	if p == nil {
		return followerStats{}
	}
	return followerStats{Latency: p.latency, Success: p.success, Fail: p.fail}
}

// appendStats are the append-request figures of /v2/stats/self.
type appendStats struct {
	RecvCount, SendCount           uint64
	RecvPkgRate, RecvBandwidthRate float64
	SendPkgRate, SendBandwidthRate float64
}

func (s *MessageStats) appends() appendStats {
	if s == nil {
		return appendStats{}
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var a appendStats
	a.RecvCount, a.SendCount = s.recvAppends.total, s.sendAppends.total
	a.RecvPkgRate, a.RecvBandwidthRate = s.recvAppends.rate(now)
	a.SendPkgRate, a.SendBandwidthRate = s.sendAppends.rate(now)
	return a
}

func entriesSize(ents []raft.Entry) int {
	n := 0
	for i := range ents {
		n += len(ents[i].Data)
	}
	return n
}

// rateWindowSize is how many recent requests a rate is computed over
// (etcd's queueCapacity).
const rateWindowSize = 200

// rateWindow keeps the latest requests to compute recent rates much as
// etcd's statsQueue does: requests and bytes per second from the oldest
// kept request to now (etcd divides by the span between the oldest and the
// newest, which is infinite for a single request), 0 once the newest is
// more than a second old.
type rateWindow struct {
	at    [rateWindowSize]time.Time
	size  [rateWindowSize]int
	next  int
	count int
	// bytes is the sum of size over the kept requests.
	bytes int
	// total counts every request ever added.
	total uint64
}

func (w *rateWindow) add(now time.Time, size int) {
	if w.count == rateWindowSize {
		w.bytes -= w.size[w.next]
	} else {
		w.count++
	}
	w.at[w.next], w.size[w.next] = now, size
	w.bytes += size
	w.next = (w.next + 1) % rateWindowSize
	w.total++
}

func (w *rateWindow) rate(now time.Time) (perSecond, bytesPerSecond float64) {
	if w.count == 0 {
		return 0, 0
	}
	newest := w.at[(w.next+rateWindowSize-1)%rateWindowSize]
	oldest := w.at[(w.next+rateWindowSize-w.count)%rateWindowSize]
	if now.Sub(newest) > time.Second {
		return 0, 0
	}
	span := now.Sub(oldest).Seconds()
	if span <= 0 {
		return 0, 0
	}
	return float64(w.count) / span, float64(w.bytes) / span
}
