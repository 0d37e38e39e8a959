package raft_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/raftkv/raftkv/raft"
)

// A one-member cluster: the member elects itself, commits a proposal, and
// the application applies it — the whole Ready loop in a few lines.
func Example() {
	storage := raft.NewMemoryStorage()
	node, err := raft.NewNode(raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: storage,
		Rand: rand.New(rand.NewPCG(1, 1)), MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 64,
	})
	if err != nil {
		panic(err)
	}
	if err := node.Bootstrap([]uint64{1}); err != nil {
		panic(err)
	}

	// handle carries out every Ready as its doc comment says.
	handle := func() {
		for node.HasReady() {
			rd := node.Ready()
			_ = storage.Append(rd.Entries) // persist (a real member fsyncs here)
			if !rd.HardState.IsEmpty() {
				_ = storage.SetHardState(rd.HardState)
			}
			for _, e := range rd.CommittedEntries {
				switch e.Type {
				case raft.EntryConfChange:
					var cc raft.ConfChange
					_ = cc.UnmarshalBinary(e.Data)
					_, _ = node.ApplyConfChange(cc)
				case raft.EntryNormal:
					if len(e.Data) > 0 {
						fmt.Printf("applied %q at index %d\n", e.Data, e.Index)
					}
				}
			}
			node.Advance(rd)
		}
	}

	handle()        // apply the bootstrap configuration
	node.Campaign() // a single voter wins at once
	handle()
	_ = node.Propose([]byte("hello"))
	handle()
	st := node.Status()
	fmt.Println(st.State, "at term", st.Term)
	// Output:
	// applied "hello" at index 3
	// Leader at term 2
}
