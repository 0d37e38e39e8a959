package simulator

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// envelope is a message on its way.
type envelope struct {
	msg raft.Message
	// from and to are member indexes.
	from, to int
	// incarnation is the sender's when it sent the message; departs is
	// when the message leaves the sender. A sender that crashes before
	// then never sent it.
	incarnation uint64
	departs     time.Duration
	// dropped marks a message lost on the way (a strand).
	dropped bool
	// id names the message in the trace.
	id uint64
}

// network decides what happens to each message: its delay, whether it is
// dropped or duplicated, and which links are cut or clogged.
type network struct {
	rng *rand.Rand
	n   int
	// cut[from*n+to] drops every message on the link.
	cut []bool
	// clogged[from*n+to] holds every message on the link in held.
	clogged []bool
	held    []int32
	// dropNext[from*n+to] loses the next message on the link (a lab
	// action).
	dropNext []bool
	// lastID is the last message id given out.
	lastID uint64
	// envs is the slab of messages in flight; free its unused slots.
	envs []envelope
	free []int32
}

func newNetwork(n int, rng *rand.Rand) *network {
	return &network{rng: rng, n: n, cut: make([]bool, n*n), clogged: make([]bool, n*n), dropNext: make([]bool, n*n)}
}

func (nw *network) alloc(e envelope) int32 {
	if k := len(nw.free); k > 0 {
		slot := nw.free[k-1]
		nw.free = nw.free[:k-1]
		nw.envs[slot] = e
		return slot
	}
	nw.envs = append(nw.envs, e)
	return int32(len(nw.envs) - 1)
}

func (nw *network) release(slot int32) {
	nw.envs[slot] = envelope{}
	nw.free = append(nw.free, slot)
}

// healLinks reconnects every link; heldMessages returns and forgets what
// clogged links held.
func (nw *network) healLinks() { clear(nw.cut) }

func (nw *network) heldMessages() []int32 {
	clear(nw.clogged)
	out := nw.held
	nw.held = nil
	return out
}

// cutBetween cuts every link between a member in side and one not in it,
// in both directions.
func (nw *network) cutBetween(side []bool) {
	for a := range nw.n {
		for b := range nw.n {
			if side[a] != side[b] {
				nw.cut[a*nw.n+b] = true
			}
		}
	}
}

// ringLinks connects the members placed in order around a ring to their
// neighbours within reach, and cuts the other links: every member sees a
// majority (itself and reach members on each side), and no two members see
// the same one.
func (nw *network) ringLinks(order []int) {
	n := nw.n
	majority := n/2 + 1
	reach := majority / 2 // 2*reach+1 >= majority
	pos := make([]int, n)
	for i, m := range order {
		pos[m] = i
	}
	for a := range n {
		for b := range n {
			d := pos[a] - pos[b]
			if d < 0 {
				d = -d
			}
			d = min(d, n-d)
			nw.cut[a*n+b] = d > reach
		}
	}
}

// permutation returns a random order of the members.
func permutation(rng *rand.Rand, n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	rng.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// shuffled returns slots in a random order.
func shuffled(rng *rand.Rand, slots []int32) []int32 {
	out := slices.Clone(slots)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
