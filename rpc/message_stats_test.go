package rpc

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/raft"
)

// steppedClock returns the times it is set to.
type steppedClock struct{ now time.Time }

func (c *steppedClock) Now() time.Time          { return c.now }
func (c *steppedClock) advance(d time.Duration) { c.now = c.now.Add(d) }
func newMessageStatsAt(c *steppedClock) *MessageStats {
	s := NewMessageStats(100 * time.Millisecond)
	s.clock = c.Now
	return s
}

// TestMessageStatsRoundTrips checks that a heartbeat's round trip is
// measured only from the answer to that very heartbeat, feeds etcd's
// follower latency figures (a running mean and deviation over every sample,
// as FollowerStats.Succ) and the round-trip histogram, and that heartbeats
// sent later than twice the interval count as send failures.
func TestMessageStatsRoundTrips(t *testing.T) {
	clock := &steppedClock{now: fakeEpoch}
	s := newMessageStatsAt(clock)
	reg := prometheus.NewRegistry()
	rtt := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rtt", Buckets: []float64{0.001, 0.01}}, []string{"To"})
	late := prometheus.NewCounter(prometheus.CounterOpts{Name: "late"})
	reg.MustRegister(rtt, late)
	s.setMetrics(rtt, late)

	heartbeat := func(ctx string) {
		s.Sent([]raft.Message{{Type: raft.MsgApp, To: 2}, {Type: raft.MsgHeartbeat, To: 2, Context: []byte(ctx)}})
	}
	answer := func(ctx string) { s.Received(raft.Message{Type: raft.MsgHeartbeatResp, From: 2, Context: []byte(ctx)}) }

	heartbeat("")
	clock.advance(2 * time.Millisecond)
	answer("")
	heartbeat("a")
	clock.advance(time.Millisecond)
	heartbeat("b")
	clock.advance(3 * time.Millisecond)
	answer("a") // an answer to an older heartbeat: not measured
	answer("b") // 3ms after b
	answer("b") // a duplicate: not measured twice

	f := s.follower(2)
	assert.Equal(t, uint64(2), f.Success)
	assert.InDelta(t, 3.0, f.Latency.Current, 1e-9)
	assert.InDelta(t, 2.0, f.Latency.Minimum, 1e-9)
	assert.InDelta(t, 3.0, f.Latency.Maximum, 1e-9)
	assert.InDelta(t, 2.5, f.Latency.Average, 1e-9)
	assert.InDelta(t, math.Sqrt((4.0+9.0)/2-2.5*2.5), f.Latency.StandardDeviation, 1e-9)
	assert.Equal(t, followerStats{}, s.follower(3), "an unknown follower has nothing")

	clock.advance(150 * time.Millisecond) // within twice the interval
	heartbeat("")
	clock.advance(250 * time.Millisecond) // late
	heartbeat("")
	s.LeaderChanged()
	clock.advance(time.Hour) // a new leadership starts afresh
	heartbeat("")
	s.Failed(2, 3)
	assert.Equal(t, uint64(3), s.follower(2).Fail)

	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		switch f.GetName() {
		case "late":
			assert.Equal(t, 1.0, f.Metric[0].GetCounter().GetValue(), "late heartbeats")
		case "rtt":
			assert.Equal(t, uint64(2), f.Metric[0].GetHistogram().GetSampleCount())
			assert.Equal(t, "2", f.Metric[0].Label[0].GetValue())
		}
	}
}

// TestMessageStatsAppendRates checks the counts and etcd's rates of the
// append requests: over the latest requests, and none once the newest is
// more than a second old.
func TestMessageStatsAppendRates(t *testing.T) {
	clock := &steppedClock{now: fakeEpoch}
	s := newMessageStatsAt(clock)
	for i := 0; i < 10; i++ {
		s.Sent([]raft.Message{{Type: raft.MsgApp, To: 2, Entries: []raft.Entry{{Data: make([]byte, 100)}}}})
		s.Received(raft.Message{Type: raft.MsgApp, From: 2})
		clock.advance(100 * time.Millisecond)
	}
	a := s.appends()
	assert.Equal(t, uint64(10), a.SendCount)
	assert.Equal(t, uint64(10), a.RecvCount)
	assert.InDelta(t, 10.0, a.SendPkgRate, 1e-9, "10 requests over the second since the first")
	assert.InDelta(t, 1000.0, a.SendBandwidthRate, 1e-9)
	assert.InDelta(t, 0.0, a.RecvBandwidthRate, 1e-9)
	for i := 0; i < rateWindowSize+5; i++ {
		s.Sent([]raft.Message{{Type: raft.MsgApp, To: 2}})
	}
	assert.Equal(t, uint64(rateWindowSize+15), s.appends().SendCount)
	clock.advance(1001 * time.Millisecond)
	a = s.appends()
	assert.Zero(t, a.SendPkgRate)
	assert.Zero(t, a.SendBandwidthRate)
}

// TestLeaderAndSelfStatsFromMessages checks that /v2/stats/leader and
// /v2/stats/self report what MessageStats measured.
func TestLeaderAndSelfStatsFromMessages(t *testing.T) {
	clock := &steppedClock{now: fakeEpoch}
	msgs := newMessageStatsAt(clock)
	_, backend, srv := newTestAPI(t, APIOptions{Messages: msgs})
	backend.members = append(backend.members, backend.members[0])
	backend.members[1].ID = 0x77
	msgs.Sent([]raft.Message{{Type: raft.MsgHeartbeat, To: 0x77}, {Type: raft.MsgApp, To: 0x77}})
	clock.advance(4 * time.Millisecond)
	msgs.Received(raft.Message{Type: raft.MsgHeartbeatResp, From: 0x77})
	msgs.Failed(0x77, 2)

	code, _, body := send(t, "GET", srv.URL+"/v2/stats/leader", "", nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, `{"leader":"1a2b","followers":{"77":{"latency":{"current":4,"average":4,"standardDeviation":0,`+
		`"minimum":4,"maximum":4},"counts":{"fail":2,"success":1}}}}`, body)
	_, _, body = send(t, "GET", srv.URL+"/v2/stats/self", "", nil)
	assert.True(t, strings.Contains(body, `"recvAppendRequestCnt":0,"sendAppendRequestCnt":1,"sendPkgRate":`), body)
}
