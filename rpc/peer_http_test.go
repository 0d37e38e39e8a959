package rpc

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// TestPeerPortHTTP: with an HTTPHandler, an HTTP request on the peer port
// gets the handler's answer (one per connection) while peer streams on the
// same listener go on; without one, it gets 400.
func TestPeerPortHTTP(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/members" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Etcd-Cluster-Id", "c1")
		_, _ = io.WriteString(w, `[{"id":"1"}]`)
	})
	a := newTestPeer(t, 1, "", func(o *PeerTransportOptions) { o.HTTPHandler = handler })
	b := newTestPeer(t, 2, "", nil)
	connectPeers(t, a, b)

	get := func(url string) (int, string, http.Header) {
		t.Helper()
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	code, body, h := get("http://" + a.url + "/members")
	if code != http.StatusOK || body != `[{"id":"1"}]` || h.Get("X-Etcd-Cluster-Id") != "c1" {
		t.Fatalf("GET /members on the peer port: %d %q %v", code, body, h)
	}
	if code, _, _ := get("http://" + a.url + "/other"); code != http.StatusNotFound {
		t.Fatalf("GET /other on the peer port: %d, want 404", code)
	}
	if code, body, _ := get("http://" + b.url + "/members"); code != http.StatusBadRequest || !strings.Contains(body, "peer port") {
		t.Fatalf("GET /members on a peer port without a handler: %d %q, want 400", code, body)
	}
	// Peer streams still flow both ways.
	a.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2}})
	b.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 2, To: 1}})
	waitUntil(t, 5*time.Second, "messages both ways", func() bool { return a.inbox.len() > 0 && b.inbox.len() > 0 })
	if n := a.Stats().RefusedStreams; n != 0 {
		t.Fatalf("HTTP requests counted as %d refused streams", n)
	}
}
