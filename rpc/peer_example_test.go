package rpc_test

import (
	"fmt"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/rpc"
)

// Two members on loopback: each listens for its peers, knows the other's
// URL, and hands what arrives to its member (here, a channel). In the
// server, Deliver is (*server.Runtime).Receive and Send is called by the
// runtime's event loop with each Ready's messages.
func ExamplePeerTransport() {
	inbox := make(chan raft.Message, 1)
	newMember := func(id uint64, deliver func(raft.Message)) (*rpc.PeerTransport, string) {
		t, err := rpc.NewPeerTransport(rpc.PeerTransportOptions{
			ID: id, ClusterID: 0xc1,
			Deliver:           deliver,
			ReportUnreachable: func(peer uint64) { /* node.ReportUnreachable(peer), on the event loop */ },
		})
		if err != nil {
			panic(err)
		}
		addr, err := t.Listen("http://127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		return t, "http://" + addr.String()
	}
	one, oneURL := newMember(1, func(raft.Message) {})
	two, twoURL := newMember(2, func(m raft.Message) { inbox <- m })
	defer one.Stop()
	defer two.Stop()
	if err := one.AddPeer(2, []string{twoURL}); err != nil {
		panic(err)
	}
	if err := two.AddPeer(1, []string{oneURL}); err != nil {
		panic(err)
	}

	one.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 3, Commit: 7}})
	fmt.Println(<-inbox)
	// Output: 1->2 MsgHeartbeat Term:3 Log:0/0 Commit:7 Entries:0 Reject:false
}
