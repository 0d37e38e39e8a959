package rpc

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// BenchmarkPeerTransport streams MsgApp messages of 256-byte entries from
// one transport to another on loopback, as a leader streams to a follower:
// Send in batches of 64 messages (one Ready's worth), with at most 4096
// messages in flight so that nothing is dropped. One op is one message;
// MB/s counts frame bytes on the wire.
func BenchmarkPeerTransport(b *testing.B) {
	for _, entries := range []int{0, 1, 16, 64} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) { benchmarkPeerStream(b, entries, false) })
	}
	b.Run("tls/entries=16", func(b *testing.B) { benchmarkPeerStream(b, 16, true) })
}

func benchmarkPeerStream(b *testing.B, entries int, useTLS bool) {
	const (
		entrySize = 256
		batchSize = 64
		window    = 4096
	)
	var delivered atomic.Int64
	progress := make(chan struct{}, 1)
	configure := func(o *PeerTransportOptions) {
		o.QueueSize = 2 * window
		o.Deliver = func(raft.Message) {
			delivered.Add(1)
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}
	listen := ""
	if useTLS {
		dir := b.TempDir()
		ca := newPeerTestCA(b, dir, "bench")
		cert, key := ca.issue(b, dir, "member")
		withTLS := withPeerTLS(b, PeerTLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: ca.file, ClientCertAuth: true})
		plain := configure
		configure = func(o *PeerTransportOptions) { plain(o); withTLS(o) }
		listen = "https://127.0.0.1:0"
	}
	a := newTestPeer(b, 1, listen, configure)
	f := newTestPeer(b, 2, listen, configure)
	connectPeers(b, a, f)

	msg := appMessage(1, 2, 7, entries, entrySize)
	batch := make([]raft.Message, batchSize)
	for i := range batch {
		batch[i] = msg
	}
	// Open the stream before the clock starts.
	a.Send(batch[:1])
	waitUntil(b, 5*time.Second, "the stream", func() bool { return delivered.Load() == 1 })
	delivered.Store(0)

	b.SetBytes(int64(len(frameEncode(b, msg))))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		for int64(sent)-delivered.Load() > window-batchSize {
			<-progress
		}
		n := min(batchSize, b.N-sent)
		a.Send(batch[:n])
		sent += n
	}
	for delivered.Load() < int64(b.N) {
		<-progress
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N*entries)/elapsed.Seconds(), "entries/s")
	s := peerStats(b, a.PeerTransport, 2)
	if s.Dropped != 0 || s.SendFailures != 0 {
		b.Fatalf("the benchmark dropped messages: %+v", s)
	}
	b.ReportMetric(float64(s.Sent)/float64(s.Writes), "msgs/write")
}
