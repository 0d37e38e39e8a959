package rpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raft"
)

func TestPeerTransportTwoMembersExchangeInOrder(t *testing.T) {
	checkPeerGoroutines(t)
	a := newTestPeer(t, 1, "", nil)
	b := newTestPeer(t, 2, "", nil)
	connectPeers(t, a, b)
	const n = 20000
	var sentA, sentB []raft.Message
	for seq := uint64(1); seq <= n; seq++ {
		ma := appMessage(1, 2, seq, int(seq%4), 256)
		mb := raft.Message{Type: raft.MsgAppResp, From: 2, To: 1, Term: 1, Index: seq}
		sentA, sentB = append(sentA, ma), append(sentB, mb)
		a.Send([]raft.Message{ma})
		b.Send([]raft.Message{mb})
		if seq%1000 == 0 {
			// Stay well within the queues: this test is about order.
			waitUntil(t, 10*time.Second, "delivery", func() bool {
				return b.inbox.len() >= int(seq)-1000 && a.inbox.len() >= int(seq)-1000
			})
		}
	}
	waitUntil(t, 10*time.Second, "every message", func() bool { return a.inbox.len() == n && b.inbox.len() == n })
	if got := b.inbox.all(); !reflect.DeepEqual(got, sentA) {
		t.Fatalf("member 2 received %d messages, not those sent by 1 in order", len(got))
	}
	if got := a.inbox.all(); !reflect.DeepEqual(got, sentB) {
		t.Fatalf("member 1 received %d messages, not those sent by 2 in order", len(got))
	}
	s := peerStats(t, a.PeerTransport, 2)
	if s.Sent != n || s.Dropped != 0 || s.SendFailures != 0 || !s.Connected || s.Received != n {
		t.Fatalf("stats of 1 for peer 2: %+v", s)
	}
	if got := a.Stats().InboundStreams; got != 1 {
		t.Fatalf("member 1 has %d inbound streams, want 1", got)
	}
}

func TestPeerTransportThreeMembers(t *testing.T) {
	checkPeerGoroutines(t)
	peers := []*testPeer{newTestPeer(t, 1, "", nil), newTestPeer(t, 2, "", nil), newTestPeer(t, 3, "", nil)}
	connectPeers(t, peers...)
	const n = 5000
	for seq := uint64(1); seq <= n; seq++ {
		for _, from := range peers {
			var batch []raft.Message
			for _, to := range peers {
				if to != from {
					batch = append(batch, appMessage(from.id, to.id, seq, 1, 64))
				}
			}
			from.Send(batch)
		}
		if seq%1000 == 0 {
			waitUntil(t, 10*time.Second, "delivery", func() bool {
				for _, p := range peers {
					if p.inbox.len() < 2*(int(seq)-1000) {
						return false
					}
				}
				return true
			})
		}
	}
	for _, p := range peers {
		waitUntil(t, 10*time.Second, "every message", func() bool { return p.inbox.len() == 2*n })
		next := map[uint64]uint64{}
		for _, m := range p.inbox.all() {
			if m.To != p.id || m.Index != next[m.From]+1 {
				t.Fatalf("member %x: got %s index %d after %d from %x", p.id, m.Type, m.Index, next[m.From], m.From)
			}
			next[m.From] = m.Index
		}
	}
}

func TestPeerTransportSendNeverBlocks(t *testing.T) {
	checkPeerGoroutines(t)
	const queue = 64
	a := newTestPeer(t, 1, "", func(o *PeerTransportOptions) { o.QueueSize = queue })
	b := newTestPeer(t, 2, "", nil)
	connectPeers(t, a, b)
	// Member 2 stops reading: its socket buffers fill, then 1's writer
	// blocks in a write, then 1's queue fills.
	block := make(chan struct{})
	b.inbox.mu.Lock()
	b.inbox.block = block
	b.inbox.mu.Unlock()
	released := false
	defer func() {
		if !released {
			close(block)
		}
	}()
	big := appMessage(1, 2, 0, 64, 1024)
	var slowest time.Duration
	for i := 0; i < 5000; i++ {
		start := time.Now()
		a.Send([]raft.Message{big})
		slowest = max(slowest, time.Since(start))
	}
	s := peerStats(t, a.PeerTransport, 2)
	if s.Dropped == 0 || s.Queued > queue {
		t.Fatalf("5000 messages of 64 KiB to a peer that does not read: %+v", s)
	}
	if slowest > 250*time.Millisecond { // generous: a shared 2-core machine
		t.Fatalf("the slowest Send took %v", slowest)
	}
	if a.reports.count(2) == 0 {
		waitUntil(t, time.Second, "an unreachable report for the drops", func() bool { return a.reports.count(2) > 0 })
	}
	// Once 2 reads again, messages flow.
	close(block)
	released = true
	// (The first heartbeats may find the queue still full.)
	waitUntil(t, 10*time.Second, "a heartbeat after the jam", func() bool {
		a.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1, Commit: 99}})
		time.Sleep(time.Millisecond)
		msgs := b.inbox.all()
		return len(msgs) > 0 && msgs[len(msgs)-1].Type == raft.MsgHeartbeat
	})
}

func TestPeerTransportReconnectsAfterPeerRestart(t *testing.T) {
	checkPeerGoroutines(t)
	a := newTestPeer(t, 1, "", nil)
	b := newTestPeer(t, 2, "", nil)
	connectPeers(t, a, b)
	hb := raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1}
	a.Send([]raft.Message{hb})
	waitUntil(t, 5*time.Second, "the first heartbeat", func() bool { return b.inbox.len() == 1 })

	b.Stop()
	waitUntil(t, 5*time.Second, "an unreachable report", func() bool { return a.reports.count(2) > 0 })
	waitUntil(t, 5*time.Second, "the stream to be down", func() bool { return !peerStats(t, a.PeerTransport, 2).Connected })

	// Member 2 comes back at the same address.
	b2 := newTestPeer(t, 2, b.url, nil)
	waitUntil(t, 5*time.Second, "a heartbeat after the restart", func() bool {
		a.Send([]raft.Message{hb})
		time.Sleep(5 * time.Millisecond)
		return b2.inbox.len() > 0
	})
	s := peerStats(t, a.PeerTransport, 2)
	if !s.Connected || s.Reconnects < 1 || s.SendFailures < 1 || s.LastError == "" {
		t.Fatalf("stats after the restart: %+v", s)
	}
}

func TestPeerTransportReportsUnreachablePeer(t *testing.T) {
	checkPeerGoroutines(t)
	// A port nobody listens at.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	a := newTestPeer(t, 1, "", nil)
	if err := a.AddPeer(2, []string{"http://" + dead}); err != nil {
		t.Fatal(err)
	}
	a.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1}})
	waitUntil(t, 5*time.Second, "an unreachable report", func() bool { return a.reports.count(2) > 0 })
	waitUntil(t, 5*time.Second, "the heartbeat to be dropped", func() bool {
		s := peerStats(t, a.PeerTransport, 2)
		return s.Dropped == 1 && s.Queued == 0
	})
	s := peerStats(t, a.PeerTransport, 2)
	if s.Connected || s.SendFailures == 0 || !strings.Contains(s.LastError, "connection refused") {
		t.Fatalf("stats: %+v", s)
	}
}

func TestPeerTransportRefusesAnotherCluster(t *testing.T) {
	checkPeerGoroutines(t)
	a := newTestPeer(t, 1, "", func(o *PeerTransportOptions) { o.ClusterID = 0xdead })
	b := newTestPeer(t, 2, "", nil)
	connectPeers(t, a, b)
	a.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1}})
	waitUntil(t, 5*time.Second, "the refusal", func() bool {
		return strings.Contains(peerStats(t, a.PeerTransport, 2).LastError, "cluster")
	})
	s := peerStats(t, a.PeerTransport, 2)
	if !strings.Contains(s.LastError, "dead") || !strings.Contains(s.LastError, "initial-cluster-token") || s.Connected {
		t.Fatalf("the dialer's stats do not say why: %+v", s)
	}
	waitUntil(t, 5*time.Second, "the acceptor to count refusals", func() bool { return b.Stats().RefusedStreams > 0 })
	waitUntil(t, 5*time.Second, "an unreachable report", func() bool { return a.reports.count(2) > 0 })
	if b.inbox.len() != 0 || a.inbox.len() != 0 {
		t.Fatalf("messages crossed between clusters")
	}
}

// rawPeerDial opens a stream to p without a transport and sends h.
func rawPeerDial(t *testing.T, p *testPeer, h hello) (net.Conn, helloReply, error) {
	t.Helper()
	conn, err := net.Dial("tcp", p.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(appendHello(nil, h)); err != nil {
		t.Fatal(err)
	}
	reply, err := readHelloReply(conn)
	return conn, reply, err
}

func TestPeerTransportRefusesBadHellos(t *testing.T) {
	checkPeerGoroutines(t)
	b := newTestPeer(t, 2, "", nil)
	tests := []struct {
		name string
		h    hello
		want error
	}{
		{"another version", hello{version: PeerProtocolVersion + 1, clusterID: peerTestCluster, from: 1, to: 2}, ErrVersionMismatch},
		{"another member", hello{version: PeerProtocolVersion, clusterID: peerTestCluster, from: 1, to: 3}, ErrWrongMember},
		{"itself", hello{version: PeerProtocolVersion, clusterID: peerTestCluster, from: 2, to: 2}, ErrStreamRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, reply, err := rawPeerDial(t, b, tt.h)
			if err != nil {
				t.Fatal(err)
			}
			if err := reply.err(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if reply.version != PeerProtocolVersion || reply.id != 2 || reply.clusterID != peerTestCluster {
				t.Fatalf("reply %+v", reply)
			}
			if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("the refused stream stays open: %v", err)
			}
		})
	}
	waitUntil(t, 5*time.Second, "the refusals to be counted", func() bool { return b.Stats().RefusedStreams == uint64(len(tests)) })
}

func TestPeerTransportClosesStreamOnProtocolError(t *testing.T) {
	checkPeerGoroutines(t)
	b := newTestPeer(t, 2, "", nil)
	ok := hello{version: PeerProtocolVersion, clusterID: peerTestCluster, from: 1, to: 2}
	good := frameEncode(t, raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1})
	tests := []struct {
		name  string
		input []byte
	}{
		{"frame over the limit", binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, DefaultMaxFrameSize+1), 0)},
		{"bad checksum", func() []byte { g := append([]byte(nil), good...); g[5] ^= 0xff; return g }()},
		{"forged sender", frameEncode(t, raft.Message{Type: raft.MsgHeartbeat, From: 3, To: 2, Term: 1})},
		{"for another member", frameEncode(t, raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 3, Term: 1})},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, reply, err := rawPeerDial(t, b, ok)
			if err != nil || reply.err() != nil {
				t.Fatalf("handshake: %v %v", err, reply.err())
			}
			if _, err := conn.Write(append(append([]byte(nil), good...), tt.input...)); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("the stream stays open: %v", err)
			}
			if got := b.Stats().ProtocolErrors; got != uint64(i+1) {
				t.Fatalf("%d protocol errors counted, want %d", got, i+1)
			}
		})
	}
	if got := b.inbox.len(); got != len(tests) {
		t.Fatalf("delivered %d messages, want the %d good ones", got, len(tests))
	}
}

func TestPeerTransportAnswersHTTPOnPeerPort(t *testing.T) {
	checkPeerGoroutines(t)
	b := newTestPeer(t, 2, "", nil)
	conn, err := net.Dial("tcp", b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /v2/keys/message HTTP/1.1\r\nHost: x\r\n\r\n")
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 400") {
		t.Fatalf("got %q, %v", status, err)
	}
}

func TestPeerTransportSnapshotChunksDoNotStarveHeartbeats(t *testing.T) {
	checkPeerGoroutines(t)
	a := newTestPeer(t, 1, "", nil)
	b := newTestPeer(t, 2, "", nil)
	connectPeers(t, a, b)
	a.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1}})
	waitUntil(t, 5*time.Second, "the stream", func() bool { return b.inbox.len() == 1 })

	const chunks = 8
	batch := make([]raft.Message, 0, chunks+1)
	for i := range chunks {
		batch = append(batch, raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 1, Snapshot: &raft.SnapshotChunk{
			Metadata: raft.SnapshotMetadata{Index: 10, Term: 1}, Offset: uint64(i) << 20, Total: chunks << 20, Data: make([]byte, 1<<20),
		}})
	}
	batch = append(batch, raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1, Commit: 7})
	a.Send(batch)
	waitUntil(t, 10*time.Second, "every chunk", func() bool { return b.inbox.len() == 1+chunks+1 })
	msgs := b.inbox.all()[1:]
	heartbeat := -1
	offset := uint64(0)
	for i, m := range msgs {
		switch m.Type {
		case raft.MsgHeartbeat:
			heartbeat = i
		case raft.MsgSnap:
			if m.Snapshot.Offset != offset {
				t.Fatalf("chunk at offset %d arrived when %d was due", m.Snapshot.Offset, offset)
			}
			offset += uint64(len(m.Snapshot.Data))
		}
	}
	// The writer may have taken the first chunk before the heartbeat was
	// queued; the heartbeat then follows it.
	if heartbeat < 0 || heartbeat > 1 {
		t.Fatalf("the heartbeat arrived in position %d of %d, behind the snapshot", heartbeat, len(msgs))
	}
}

func TestPeerTransportMembershipChanges(t *testing.T) {
	checkPeerGoroutines(t)
	a := newTestPeer(t, 1, "", nil)
	b := newTestPeer(t, 2, "", nil)
	c := newTestPeer(t, 3, "", nil)
	hb := func(to uint64) raft.Message { return raft.Message{Type: raft.MsgHeartbeat, From: 1, To: to, Term: 1} }

	if err := a.AddPeer(2, []string{b.url}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddPeer(2, []string{b.url}); err == nil {
		t.Fatal("a peer was added twice")
	}
	for _, id := range []uint64{0, 1} {
		if err := a.AddPeer(id, []string{b.url}); err == nil {
			t.Fatalf("peer %d was added", id)
		}
	}
	a.Send([]raft.Message{hb(2), hb(3)})
	waitUntil(t, 5*time.Second, "delivery to 2", func() bool { return b.inbox.len() == 1 })
	if got := a.Stats().DroppedUnknownPeer; got != 1 {
		t.Fatalf("%d messages to unknown peers dropped, want 1", got)
	}

	// Member 2's URL now reaches member 3: the handshake says so.
	if err := a.UpdatePeer(2, []string{c.url}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the wrong-member refusal", func() bool {
		a.Send([]raft.Message{hb(2)})
		return strings.Contains(peerStats(t, a.PeerTransport, 2).LastError, "wants member 2, this is member 3")
	})
	if err := a.UpdatePeer(2, []string{"http://" + b.url}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "delivery after the update", func() bool {
		a.Send([]raft.Message{hb(2)})
		time.Sleep(2 * time.Millisecond)
		return b.inbox.len() > 1
	})

	if err := a.AddPeer(3, []string{c.url}); err != nil {
		t.Fatal(err)
	}
	a.Send([]raft.Message{hb(3)})
	waitUntil(t, 5*time.Second, "delivery to 3", func() bool { return c.inbox.len() == 1 })

	a.RemovePeer(2)
	a.RemovePeer(2)
	a.RemovePeer(42)
	if err := a.UpdatePeer(2, []string{b.url}); err == nil {
		t.Fatal("a removed peer was updated")
	}
	if got := len(a.Stats().Peers); got != 1 {
		t.Fatalf("%d peers after the removal, want 1", got)
	}
	got := b.inbox.len()
	a.Send([]raft.Message{hb(2)})
	time.Sleep(20 * time.Millisecond)
	if b.inbox.len() != got {
		t.Fatal("a removed peer received a message")
	}
}

func TestPeerTransportStop(t *testing.T) {
	checkPeerGoroutines(t)
	a := newTestPeer(t, 1, "", nil)
	b := newTestPeer(t, 2, "", nil)
	connectPeers(t, a, b)
	a.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1}})
	waitUntil(t, 5*time.Second, "the stream", func() bool { return b.inbox.len() == 1 })
	a.Stop()
	a.Stop()
	a.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1}})
	if err := a.AddPeer(3, []string{"127.0.0.1:1"}); !errors.Is(err, ErrTransportStopped) {
		t.Fatalf("AddPeer after Stop: %v", err)
	}
	if _, err := a.Listen("127.0.0.1:0"); !errors.Is(err, ErrTransportStopped) {
		t.Fatalf("Listen after Stop: %v", err)
	}
	if _, err := net.Dial("tcp", a.url); err == nil {
		t.Fatal("the listener is still open")
	}
	waitUntil(t, 5*time.Second, "2 to see the stream from 1 end", func() bool { return b.Stats().InboundStreams == 0 })
}

func TestPeerTransportOptions(t *testing.T) {
	deliver := func(raft.Message) {}
	bad := []PeerTransportOptions{
		{ClusterID: 1, Deliver: deliver},
		{ID: 1},
		{ID: 1, Deliver: deliver, QueueSize: -1},
		{ID: 1, Deliver: deliver, MaxFrameSize: 10},
		{ID: 1, Deliver: deliver, BackoffMin: time.Second, BackoffMax: time.Millisecond},
		{ID: 1, Deliver: deliver, WriteTimeout: -time.Second},
	}
	for _, opts := range bad {
		if _, err := NewPeerTransport(opts); err == nil {
			t.Errorf("options %+v accepted", opts)
		}
	}
	tr, err := NewPeerTransport(PeerTransportOptions{ID: 1, Deliver: deliver})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Stop()
	if err := tr.AddPeer(2, []string{"https://127.0.0.1:2380"}); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("an https peer without client TLS: %v", err)
	}
	if _, err := tr.Listen("https://127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("an https listener without server TLS: %v", err)
	}
	if err := tr.AddPeer(2, nil); err == nil {
		t.Fatal("a peer without URLs was added")
	}
}

func TestParsePeerURL(t *testing.T) {
	tests := []struct {
		raw, addr string
		tls       bool
		bad       bool
	}{
		{raw: "http://127.0.0.1:2380", addr: "127.0.0.1:2380"},
		{raw: "https://node1.example:2380", addr: "node1.example:2380", tls: true},
		{raw: "tcp://[::1]:2380", addr: "[::1]:2380"},
		{raw: "http://10.0.0.1:2380/", addr: "10.0.0.1:2380"},
		{raw: "127.0.0.1:2380", addr: "127.0.0.1:2380"},
		{raw: "localhost:0", addr: "localhost:0"},
		{raw: "http://127.0.0.1", bad: true},
		{raw: "unix:///tmp/sock", bad: true},
		{raw: "ftp://127.0.0.1:21", bad: true},
		{raw: "http://127.0.0.1:2380/raft", bad: true},
		{raw: "http://user@127.0.0.1:2380", bad: true},
		{raw: "127.0.0.1", bad: true},
		{raw: "", bad: true},
	}
	for _, tt := range tests {
		pu, err := parsePeerURL(tt.raw)
		if tt.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v", tt.raw, pu)
			}
			continue
		}
		if err != nil || pu.addr != tt.addr || pu.tls != tt.tls {
			t.Errorf("%q: got %+v, %v; want addr %s tls %v", tt.raw, pu, err, tt.addr, tt.tls)
		}
	}
}
