package simulator

import (
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// Config says what to run. Zero values take defaults; fields that swarm
// testing draws from the seed (cluster size, clients) are drawn when zero.
type Config struct {
	// Seed determines everything else.
	Seed uint64
	// Duration is the virtual time of the fault phase (default 10s).
	Duration time.Duration
	// Members is the cluster size; 0 draws 1, 3, 5 or 7.
	Members int
	// Clients is the number of clients; 0 draws it.
	Clients int
	// OpInterval is the time between a client's operations; 0 draws it.
	OpInterval time.Duration
	// Faults are the fault classes allowed (AllFaults by default: set
	// NoFaults to run without any).
	Faults   FaultSet
	NoFaults bool
	// NoSwarm turns on every allowed fault class in every run, instead of
	// a subset drawn per seed.
	NoSwarm bool
	// NoLiveness skips the liveness phase after the fault phase.
	NoLiveness bool
	// LivenessTimeout bounds the liveness phase (default 30s virtual).
	LivenessTimeout time.Duration
	// NoLinearizability skips the porcupine check of the history.
	NoLinearizability bool
	// NoRuleChecks turns off the checks of the rules Raft's safety rests
	// on (commit-own-term, vote-up-to-date, ... lease-exclusive; see
	// checker.go), leaving the outcomes: Figure 3's properties, durability,
	// state agreement and linearizability. For measuring what each layer
	// catches.
	NoRuleChecks bool
	// Trace, if set, receives every event as a JSON line.
	Trace io.Writer
	// Log, if set, receives a readable account: leader changes, commits,
	// faults.
	Log io.Writer
	// RecordHashes keeps the trace hash after every event, so that two
	// runs can be compared event by event.
	RecordHashes bool
	// Factory makes members (NewRaftMember by default); NewDisk makes
	// their disks (NewMemDisk by default).
	Factory Factory
	NewDisk func() Disk
	// Bug plants a bug in every member (tests only). BugForgetVote lives
	// in raft members and implies KindLog; BugStaleRead in full members.
	Bug PlantedBug
	// Kind chooses the members: full members (server.Member, key space,
	// WAL on a faulty file system; the default) or raft members with a
	// log-appending state machine and memory storage (raft alone, faster).
	Kind MemberKind
	// LockRecipe adds lock clients (recipes.go) to a key-space run.
	LockRecipe bool
	// NoClients runs no background clients (a Script's actions bring
	// their own operations).
	NoClients bool
	// PreVote, CheckQuorum and Lease override what the seed draws; so do
	// MaxSizePerMsg and MaxInflightMsgs when not 0.
	PreVote, CheckQuorum, Lease Switch
	MaxSizePerMsg               uint64
	MaxInflightMsgs             int
	// Actions are carried out at their times (a lab run or a tour; see
	// Script).
	Actions []Action
	// HistoryVisualization, if set, is where the key-space history's
	// porcupine visualisation is written, whatever the check's verdict
	// (the viewer links to it).
	HistoryVisualization string
	// afterEvent, in tests, looks at the run after every event.
	afterEvent func(s *Simulation)
	// VisualizationDir, if set, is where a failed linearizability check
	// writes its HTML visualisation (default: the system's temp dir).
	VisualizationDir string
}

// Switch overrides a setting the seed draws: Drawn leaves it to the seed.
type Switch uint8

const (
	Drawn Switch = iota
	On
	Off
)

func (sw Switch) apply(b *bool) {
	if sw != Drawn {
		*b = sw == On
	}
}

// MemberKind names the kind of member a run simulates.
type MemberKind uint8

const (
	// KindKV is a full member: server.Member over an FSDisk.
	KindKV MemberKind = iota
	// KindLog is a raft.Node with a log-appending state machine over a
	// MemDisk.
	KindLog
)

func (k MemberKind) String() string {
	if k == KindLog {
		return "log"
	}
	return "kv"
}

// ParseKind reads a member kind's name.
func ParseKind(name string) (MemberKind, error) {
	switch name {
	case "kv", "":
		return KindKV, nil
	case "log":
		return KindLog, nil
	}
	return 0, fmt.Errorf("unknown member kind %q (known: kv, log)", name)
}

func (c Config) withDefaults() Config {
	if c.Bug == BugForgetVote {
		c.Kind = KindLog
	}
	if slices.Contains(RecipeBugs(), c.Bug) {
		c.Kind, c.LockRecipe = KindKV, true
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Faults == 0 && !c.NoFaults {
		c.Faults = AllFaults
	}
	if c.NoFaults {
		c.Faults = 0
	}
	if c.LivenessTimeout == 0 {
		c.LivenessTimeout = 30 * time.Second
	}
	if c.Factory == nil {
		c.Factory = map[MemberKind]Factory{KindKV: NewKVMember, KindLog: NewRaftMember}[c.Kind]
	}
	if c.NewDisk == nil {
		if c.Kind == KindLog {
			c.NewDisk = func() Disk { return NewMemDisk() }
		} else {
			c.NewDisk = func() Disk { return NewFSDisk() }
		}
	}
	return c
}

// Params are a run's parameters, drawn from the seed (swarm testing) and
// overridden by Config.
type Params struct {
	Members, Clients int
	OpInterval       time.Duration
	// ReadPercent is the share of client operations that are reads.
	ReadPercent   int
	ClientTimeout time.Duration

	Tick                        time.Duration
	ElectionTick, HeartbeatTick int
	PreVote, CheckQuorum        bool
	LeaseReads                  bool
	MaxSizePerMsg               uint64
	MaxInflightMsgs             int
	MaxSnapshotChunkSize        uint64
	SnapshotEvery, SnapshotKeep uint64
	SnapshotTail                int

	// Network: a message's delay is uniform in [DelayMin, DelayMax]; the
	// rates apply when their fault class is on.
	DelayMin, DelayMax                    time.Duration
	DropRate, DupRate, SpikeRate, Reorder float64
	// ProcessDelay is the CPU time of one round of a member's work;
	// WriteCost and SyncCost the disk's.
	ProcessDelay, WriteCost, SyncCost time.Duration

	// Faults are the classes on in this run; FaultEvery is the mean time
	// between two injections of a class, FaultFor the mean length of one.
	Faults     FaultSet
	FaultEvery [numFaultClasses]time.Duration
	FaultFor   [numFaultClasses]time.Duration
	// MaxDrift is the largest relative difference of a member's tick rate
	// from the nominal one.
	MaxDrift float64

	// Fault points within the rules (FoundationDB's "buggify"), each on in
	// half the runs with faults: raft's (raft.Buggify); a disk slower than
	// the CPU (a full member goes on working, as the production runtime
	// does, while its writes are under way); the last message a round of
	// work sends lost now and then (a connection reset mid-batch).
	Buggify            raft.Buggify
	SlowDisk, DropLast bool
	// LearnerHeavy makes membership changes add learners that stay
	// learners, mostly (read replicas): configurations where learners
	// outnumber the voters a leader can reach.
	LearnerHeavy bool
}

// drawParams draws the run's parameters from its seed.
func drawParams(cfg Config) Params {
	rng := rand.New(rand.NewPCG(cfg.Seed, streamParams))
	pick := func(choices ...uint64) uint64 { return choices[rng.IntN(len(choices))] }
	between := func(lo, hi time.Duration) time.Duration { return durationIn(rng, lo, hi) }
	var p Params
	p.Members = int(pick(1, 3, 3, 3, 5, 5, 5, 7))
	p.Clients = 1 + rng.IntN(8)
	p.OpInterval = between(2*time.Millisecond, 40*time.Millisecond)
	p.ReadPercent = int(pick(0, 10, 30, 50))
	p.ClientTimeout = between(300*time.Millisecond, 2*time.Second)

	p.Tick = 10 * time.Millisecond
	p.ElectionTick = int(pick(5, 10, 10, 20))
	p.HeartbeatTick = int(pick(1, 1, 1, 2))
	p.PreVote = rng.IntN(5) != 0
	p.CheckQuorum = rng.IntN(5) != 0
	p.LeaseReads = p.CheckQuorum && rng.IntN(4) == 0
	p.MaxSizePerMsg = pick(0, 256, 4096, 1<<20)
	p.MaxInflightMsgs = int(pick(1, 4, 64, 256))
	p.MaxSnapshotChunkSize = pick(64, 512, 4096, 1<<20)
	p.SnapshotEvery = pick(0, 10, 50, 200)
	p.SnapshotKeep = pick(0, 5, 50)
	p.SnapshotTail = int(pick(1, 64, 1024))

	p.DelayMin = between(50*time.Microsecond, time.Millisecond)
	p.DelayMax = p.DelayMin + between(0, 10*time.Millisecond)
	p.DropRate = float64(pick(1, 5, 10, 25)) / 100
	p.DupRate = float64(pick(1, 5, 10)) / 100
	p.SpikeRate = float64(pick(1, 2, 5)) / 100
	p.Reorder = float64(pick(5, 20, 50)) / 100
	p.ProcessDelay = between(20*time.Microsecond, 300*time.Microsecond)
	p.WriteCost = between(5*time.Microsecond, 50*time.Microsecond)
	p.SyncCost = between(50*time.Microsecond, 2*time.Millisecond)

	drawClass := func(rng *rand.Rand, c FaultClass) {
		// Draw for every class, on or not, so that the draws that follow do
		// not depend on which classes are allowed.
		drawn := rng.IntN(10) < 7
		if cfg.Faults.Has(c) && (cfg.NoSwarm || drawn) {
			p.Faults = p.Faults.With(c)
		}
		p.FaultEvery[c] = durationIn(rng, 300*time.Millisecond, 3*time.Second)
		p.FaultFor[c] = durationIn(rng, 50*time.Millisecond, 1500*time.Millisecond)
	}
	for c := range FaultStrand {
		drawClass(rng, c)
	}
	p.MaxDrift = float64(pick(1, 5, 20)) / 100
	// The classes added later draw from a stream of their own, so that a
	// seed run without them replays the run it did before they existed.
	later := rand.New(rand.NewPCG(cfg.Seed, streamParamsLater))
	for c := FaultStrand; c < numFaultClasses; c++ {
		drawClass(later, c)
	}
	// Lease reads in half the runs with CheckQuorum (a quarter before).
	p.LeaseReads = p.LeaseReads || p.CheckQuorum && later.IntN(3) == 0
	if later.IntN(2) == 0 && p.Faults != 0 {
		p.Buggify |= raft.BuggifySnapshot
	}
	p.SlowDisk = later.IntN(2) == 0 && p.Faults != 0
	p.DropLast = later.IntN(2) == 0 && p.Faults != 0
	p.LearnerHeavy = later.IntN(2) == 0
	if p.LeaseReads {
		// Lease reads are safe only while clocks drift within the bound
		// raft's lease is computed for: run right up to it.
		p.MaxDrift = raft.DefaultMaxClockDrift
	}

	if cfg.Members > 0 {
		p.Members = cfg.Members
	}
	if cfg.Clients > 0 {
		p.Clients = cfg.Clients
	}
	if cfg.OpInterval > 0 {
		p.OpInterval = cfg.OpInterval
	}
	if cfg.NoClients {
		p.Clients = 0
	}
	cfg.PreVote.apply(&p.PreVote)
	cfg.CheckQuorum.apply(&p.CheckQuorum)
	cfg.Lease.apply(&p.LeaseReads)
	if cfg.MaxSizePerMsg > 0 {
		p.MaxSizePerMsg = cfg.MaxSizePerMsg
	}
	if cfg.MaxInflightMsgs > 0 {
		p.MaxInflightMsgs = cfg.MaxInflightMsgs
	}
	if p.LeaseReads && !p.CheckQuorum {
		p.LeaseReads = false // a lease rests on CheckQuorum
	}
	return p
}

// durationIn draws a duration uniformly in [lo, hi].
func durationIn(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// String is a one-line summary of the parameters.
func (p Params) String() string {
	var buggify []string
	if p.Buggify&raft.BuggifySnapshot != 0 {
		buggify = append(buggify, "snapshot")
	}
	if p.SlowDisk {
		buggify = append(buggify, "slow-disk")
	}
	if p.DropLast {
		buggify = append(buggify, "drop-last")
	}
	if len(buggify) == 0 {
		buggify = []string{"none"}
	}
	return fmt.Sprintf("members=%d clients=%d op-interval=%v reads=%d%% election=%d heartbeat=%d prevote=%v checkquorum=%v lease=%v "+
		"msg-size=%d inflight=%d chunk=%d snapshot-every=%d snapshot-bytes~%d delay=[%v,%v] faults=%s buggify=%s",
		p.Members, p.Clients, p.OpInterval, p.ReadPercent, p.ElectionTick, p.HeartbeatTick, p.PreVote, p.CheckQuorum, p.LeaseReads,
		p.MaxSizePerMsg, p.MaxInflightMsgs, p.MaxSnapshotChunkSize, p.SnapshotEvery, 8*p.SnapshotTail, p.DelayMin, p.DelayMax, p.Faults,
		strings.Join(buggify, ","))
}

// The PRNG streams of a run: each concern draws from its own stream of the
// run's seed, so that changing one (switching a fault class off) leaves the
// others' draws alone.
const (
	streamParams uint64 = iota + 1
	streamNetwork
	streamClients
	streamDisk
	streamMembers // + member index
	streamParamsLater
	streamFaults  = 1000 // + fault class
	streamRecipes = 2000 // and 2001
)
