package rpc

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// peerTestCluster is the cluster ID of the transports under test.
const peerTestCluster = 0xc1

// peerInbox records what a transport delivers.
type peerInbox struct {
	mu   sync.Mutex
	msgs []raft.Message
	// block, while non-nil, makes Deliver wait until it is closed.
	block chan struct{}
}

func (in *peerInbox) deliver(m raft.Message) {
	in.mu.Lock()
	block := in.block
	in.mu.Unlock()
	if block != nil {
		<-block
	}
	in.mu.Lock()
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
}

func (in *peerInbox) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.msgs)
}

func (in *peerInbox) all() []raft.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]raft.Message(nil), in.msgs...)
}

// peerReports records unreachable reports.
type peerReports struct {
	mu  sync.Mutex
	ids map[uint64]int
}

func (r *peerReports) report(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[uint64]int{}
	}
	r.ids[id]++
}

func (r *peerReports) count(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id]
}

// testPeer is a transport under test with what it received.
type testPeer struct {
	*PeerTransport
	id      uint64
	url     string
	inbox   *peerInbox
	reports *peerReports
}

// newTestPeer starts a transport for member id listening on a free
// loopback port (or at listen, if given), stopped when the test ends.
func newTestPeer(t testing.TB, id uint64, listen string, configure func(*PeerTransportOptions)) *testPeer {
	t.Helper()
	p := &testPeer{id: id, inbox: &peerInbox{}, reports: &peerReports{}}
	opts := PeerTransportOptions{
		ID: id, ClusterID: peerTestCluster,
		Deliver: p.inbox.deliver, ReportUnreachable: p.reports.report,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
	}
	if configure != nil {
		configure(&opts)
	}
	tr, err := NewPeerTransport(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Stop)
	p.PeerTransport = tr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	addr, err := tr.Listen(listen)
	if err != nil {
		t.Fatal(err)
	}
	p.url = addr.String()
	if strings.HasPrefix(listen, "https://") {
		p.url = "https://" + p.url
	}
	return p
}

// connectPeers makes every transport a peer of every other.
func connectPeers(t testing.TB, peers ...*testPeer) {
	t.Helper()
	for _, a := range peers {
		for _, b := range peers {
			if a != b {
				if err := a.AddPeer(b.id, []string{b.url}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// peerStats returns a's counters for peer id.
func peerStats(t testing.TB, a *PeerTransport, id uint64) PeerStats {
	t.Helper()
	for _, s := range a.Stats().Peers {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("member %x has no peer %x", a.ID(), id)
	return PeerStats{}
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// peerGoroutineMarkers are stack frames found only in goroutines the peer
// transport starts.
var peerGoroutineMarkers = []string{
	"rpc.(*PeerTransport).", "rpc.(*peer).", "rpc.watchPeerConn", "rpc.(*unreachableReporter).",
}

// peerGoroutines returns the stacks of the running goroutines of the peer
// transport, except the caller's.
func peerGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue // the caller
		}
		for _, marker := range peerGoroutineMarkers {
			if strings.Contains(g, marker) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

// checkPeerGoroutines fails the test if goroutines of the peer transport
// outlive it (every transport it started is stopped by then). Call it
// first, so that its check runs after every other cleanup.
func checkPeerGoroutines(t testing.TB) {
	t.Helper()
	if leaked := peerGoroutines(); len(leaked) > 0 {
		t.Fatalf("goroutines of the peer transport are running before the test:\n%s", strings.Join(leaked, "\n\n"))
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			leaked := peerGoroutines()
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines of the peer transport still run after the test:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// appMessage is a MsgApp from one member to another carrying n entries of
// size bytes, numbered by seq in Index.
func appMessage(from, to, seq uint64, n, size int) raft.Message {
	m := raft.Message{Type: raft.MsgApp, From: from, To: to, Term: 1, Index: seq, Commit: seq}
	if n > 0 {
		data := make([]byte, size)
		m.Entries = make([]raft.Entry, n)
		for i := range m.Entries {
			m.Entries[i] = raft.Entry{Term: 1, Index: seq*uint64(n) + uint64(i), Data: data}
		}
	}
	return m
}

func describePeerStats(s PeerTransportStats) string {
	var b strings.Builder
	for _, p := range s.Peers {
		fmt.Fprintf(&b, "%+v\n", p)
	}
	fmt.Fprintf(&b, "inbound %d refused %d protocol errors %d unknown %d received %d",
		s.InboundStreams, s.RefusedStreams, s.ProtocolErrors, s.DroppedUnknownPeer, s.Received)
	return b.String()
}
