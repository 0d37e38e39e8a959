package raft

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// ReadOnlyOption chooses how ReadIndex confirms leadership.
type ReadOnlyOption uint8

const (
	// ReadOnlySafe confirms leadership with a round of heartbeats answered by
	// a quorum before answering (§6.4 of the thesis). Always linearizable.
	ReadOnlySafe ReadOnlyOption = iota
	// ReadOnlyLeaseBased answers at once while the leader holds a lease: a
	// quorum acknowledged a heartbeat sent less than an election timeout ago
	// (less a margin for clock drift), so no other leader can have been
	// elected since (§6.4.1 of the thesis). It relies on clock drift within
	// Config.MaxClockDrift and requires CheckQuorum; without a lease it
	// falls back to ReadOnlySafe.
	ReadOnlyLeaseBased
)

// Config configures one member's raft state machine. Times are in ticks:
// the application calls Tick at a fixed interval (100ms is typical).
type Config struct {
	// ID identifies this member; it must not be 0.
	ID uint64
	// ElectionTick is the minimum election timeout. A follower that hears
	// nothing from a leader for a random number of ticks in
	// [ElectionTick, 2*ElectionTick) starts an election (§5.2).
	ElectionTick int
	// HeartbeatTick is the interval between a leader's heartbeats. It must
	// be smaller than ElectionTick (the paper suggests an order of magnitude).
	HeartbeatTick int
	// Storage holds the durable log. Raft reads it; the application writes it.
	Storage Storage
	// Applied is the last index the application applied before a restart;
	// entries up to it are not handed out again.
	Applied uint64
	// Rand is the only source of randomness raft uses (the election
	// timeout). Pass a seeded source so that runs can be replayed.
	Rand *rand.Rand

	// MaxSizePerMsg bounds the entry bytes of one append message; 0 means
	// one entry per message. Larger values batch more (§10.2.1 of the thesis).
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds the appends in flight to one follower.
	MaxInflightMsgs int
	// MaxInflightBytes bounds the entry bytes in flight to one follower;
	// 0 means no bound beyond MaxInflightMsgs.
	MaxInflightBytes uint64
	// MaxUncommittedEntriesSize bounds the bytes of proposals a leader holds
	// uncommitted; beyond it proposals are refused. 0 means no bound.
	MaxUncommittedEntriesSize uint64
	// MaxCommittedSizePerReady bounds the bytes of committed entries handed
	// out in one Ready; 0 means MaxSizePerMsg (or no bound if that is 0).
	MaxCommittedSizePerReady uint64
	// MaxSnapshotChunkSize is the size of the chunks a snapshot is sent in;
	// 0 means 1 MiB.
	MaxSnapshotChunkSize uint64

	// PreVote makes a member poll before it campaigns, so that one cut off
	// from the cluster does not disrupt it with higher terms on return
	// (§9.6 of the thesis).
	PreVote bool
	// CheckQuorum makes a leader step down when it has not heard from a
	// quorum for an election timeout, and followers ignore vote requests
	// while they hear from a leader (§6.2 of the thesis).
	CheckQuorum bool
	// ReadOnlyOption chooses how ReadIndex is served.
	ReadOnlyOption ReadOnlyOption
	// MaxClockDrift bounds, as a fraction, how far the interval between two
	// calls of Tick may stray from the nominal one on any member: 0.05 means
	// every member ticks at between 0.95 and 1.05 times the nominal rate.
	// Lease reads are safe only within it (see leaseTicks); 0 means
	// DefaultMaxClockDrift.
	MaxClockDrift float64
	// DisableProposalForwarding makes followers refuse proposals instead of
	// forwarding them to the leader.
	DisableProposalForwarding bool
	// StepDownOnRemoval makes a leader step down once it applies its own
	// removal (or demotion to learner).
	StepDownOnRemoval bool

	// PlantedBug plants a known deviation from the paper in this member,
	// for mutation testing (see planted.go); Buggify turns on fault points
	// within the rules (see buggify.go). Tests only.
	PlantedBug PlantedBug
	Buggify    Buggify
}

// DefaultMaxClockDrift is the drift Config.MaxClockDrift stands for when
// unset: 5%, far beyond a quartz clock's, to cover ticks that a loaded
// machine delivers late.
const DefaultMaxClockDrift = 0.05

// leaseTicks is how long, in the leader's ticks, a lease lasts from the
// sending of a heartbeat a quorum acknowledged (§6.4.1 of the thesis).
//
// The bound. Let P be the nominal tick interval and d = MaxClockDrift. A
// follower that takes the heartbeat resets its election clock; it grants
// no vote (CheckQuorum) until it has ticked ElectionTick times, the first of
// which may come at once: it promises nothing beyond (ElectionTick-1)
// ticks of its own, at least (ElectionTick-1)·P·(1-d) of real time. The
// leader counts from its tick count when it sent the heartbeat, which
// began at most one of its ticks earlier, and stops trusting the lease
// when its count reaches start+leaseTicks, at most leaseTicks·P·(1+d)
// after that tick. So the lease is safe when
//
//	leaseTicks·(1+d) <= (ElectionTick-1)·(1-d),
//
// and leaseTicks is the largest whole number of ticks that satisfies it:
// with d = 0 it is ElectionTick-1 (the tick granularity alone costs one
// tick); with ElectionTick 10 and d = 5%, 8. The message delays only help
// (the follower's promise starts later).
func (c *Config) leaseTicks() uint64 {
	d := c.MaxClockDrift
	return uint64(math.Floor(float64(c.ElectionTick-1) * (1 - d) / (1 + d)))
}

// ErrConfig wraps every validation error of Config.
var ErrConfig = errors.New("raft: invalid config")

const defaultSnapshotChunkSize = 1 << 20

// validate checks c and fills in defaults.
func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case c.ID == None:
		return bad("ID must not be 0")
	case c.HeartbeatTick <= 0:
		return bad("HeartbeatTick must be positive, got %d", c.HeartbeatTick)
	case c.ElectionTick <= c.HeartbeatTick:
		return bad("ElectionTick (%d) must be greater than HeartbeatTick (%d)", c.ElectionTick, c.HeartbeatTick)
	case c.Storage == nil:
		return bad("Storage must not be nil")
	case c.Rand == nil:
		return bad("Rand must not be nil: pass a seeded source, e.g. rand.New(rand.NewPCG(seed, id))")
	case c.MaxInflightMsgs <= 0:
		return bad("MaxInflightMsgs must be positive, got %d", c.MaxInflightMsgs)
	case c.MaxInflightBytes != 0 && c.MaxInflightBytes < c.MaxSizePerMsg:
		return bad("MaxInflightBytes (%d) must be at least MaxSizePerMsg (%d)", c.MaxInflightBytes, c.MaxSizePerMsg)
	case c.ReadOnlyOption > ReadOnlyLeaseBased:
		return bad("unknown ReadOnlyOption %d", c.ReadOnlyOption)
	case c.ReadOnlyOption == ReadOnlyLeaseBased && !c.CheckQuorum:
		return bad("ReadOnlyLeaseBased requires CheckQuorum")
	case c.MaxClockDrift < 0 || c.MaxClockDrift >= 0.5:
		return bad("MaxClockDrift must be in [0, 0.5), got %v", c.MaxClockDrift)
	case c.PlantedBug >= numPlantedBugs:
		return bad("unknown PlantedBug %d", c.PlantedBug)
	}
	if c.MaxClockDrift == 0 {
		c.MaxClockDrift = DefaultMaxClockDrift
	}
	if c.ReadOnlyOption == ReadOnlyLeaseBased && c.leaseTicks() == 0 {
		return bad("ReadOnlyLeaseBased with ElectionTick %d and MaxClockDrift %v leaves no lease: raise ElectionTick", c.ElectionTick, c.MaxClockDrift)
	}
	if c.MaxCommittedSizePerReady == 0 {
		c.MaxCommittedSizePerReady = c.MaxSizePerMsg
	}
	if c.MaxCommittedSizePerReady == 0 {
		c.MaxCommittedSizePerReady = ^uint64(0)
	}
	if c.MaxSnapshotChunkSize == 0 {
		c.MaxSnapshotChunkSize = defaultSnapshotChunkSize
	}
	if c.MaxUncommittedEntriesSize == 0 {
		c.MaxUncommittedEntriesSize = ^uint64(0)
	}
	return nil
}
