package simulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/server"
)

// Member is one cluster member as the simulator drives it. It is shaped on
// server.Member (see DESIGN.md): the same inputs — a tick, a peer message, a
// client request — and one method, Process, that lets the member do its
// pending work and hands back what the simulator needs to move the world
// forward (messages) and to check it (what was written, applied, and the
// member's state).
//
// Swapping in server.Member is an adapter, not a redesign: its Process
// hands disk work out as a PersistJob; the adapter runs the job on the
// member's FaultyFS (the simulator's Disk wraps the FS: Crash drops what
// was not synced), calls PersistDone, and processes again, merging both
// Outputs into one Activity (Output mirrors Activity field for field).
// Tick takes the virtual time as a time.Time; Submit takes a key-space
// request instead of an Op, which widens Op to carry one.
//
// Ownership and concurrency: the simulator calls every method from its one
// goroutine; a Member never starts a goroutine, reads a clock or draws a
// random number except from the source in its MemberConfig. It writes its
// durable state only through the Disk it was made with.
type Member interface {
	// Tick advances the member's logical clock by one tick.
	Tick()
	// Receive hands the member a message from a peer.
	Receive(m raft.Message)
	// Submit starts a client operation. done is called exactly once if the
	// member answers (from within a later Process, or at once when the
	// member refuses the operation); never if the member crashes first.
	Submit(op Op, done func(Reply))
	// HasWork reports whether Process has anything to do.
	HasWork() bool
	// Process does one round of pending work: it takes what raft has ready,
	// writes it to the disk, applies what is committed and answers clients.
	// Messages in Activity.Messages may leave at once; AfterPersist only
	// once the disk time of this round has passed.
	Process() Activity
	// Storage is the member's raft log as raft reads it, for the checks
	// that compare logs after a restart.
	Storage() raft.Storage
	// Applied is the index the member's state machine reflects.
	Applied() uint64
	// HoldsLease reports whether the member leads with a lease it trusts
	// (it would answer a read without a round of heartbeats); Promising
	// whether it is bound by its promise to a leader (it grants no vote).
	HoldsLease() bool
	Promising() bool
	// LastEntry is the index and term of the last entry in the member's
	// raft log, written or not yet: the log it decides votes on.
	LastEntry() (index, term uint64)
	// ConfState is the configuration the member applied last.
	ConfState() raft.ConfState
	// Campaign fires the member's election timeout now; TransferLeadership
	// asks it, if it leads, to hand leadership to member to. The lab and
	// tours use them (Script).
	Campaign()
	TransferLeadership(to uint64)
}

// Activity is what one call of Member.Process did.
type Activity struct {
	// Messages may be delivered at once.
	Messages []raft.Message
	// AfterPersist may leave only after the disk work of this round.
	AfterPersist []raft.Message
	// HardState and SoftState are the member's state after the round.
	// HardState is what a crash would keep (as written); Commit is raft's
	// commit index, which may run ahead of it, and CommitTerm the term of
	// the entry there.
	HardState          raft.HardState
	SoftState          raft.SoftState
	Commit, CommitTerm uint64
	// Snapshot, if not empty, was installed (written and applied).
	Snapshot raft.SnapshotMetadata
	// Entries were written to the log, replacing any from the first one's
	// index on.
	Entries []raft.Entry
	// Applied are the entries applied to the state machine, in order.
	Applied []raft.Entry
	// Synced says the disk was synced at the end of the round: everything
	// written so far is durable.
	Synced bool
	// Stalled says the disk refused the writes (full): the member kept the
	// work and will retry; nothing after the write happened.
	Stalled bool
	// Crashed says the disk died under the member (a crash in the middle of
	// a write): the member must be dropped and restarted from its disk.
	Crashed bool
	// StateHash, when not 0, is a hash of the member's state machine as of
	// index AppliedIndex: members that applied the same index must agree.
	StateHash, AppliedIndex uint64
	// Conf, when set, is the configuration the member applied in this
	// round.
	Conf *raft.ConfState
}

// Op is a client operation: on the log-appender state machine (ID and
// Read), or on the key space (Request, for a full member).
type Op struct {
	// ID names the operation uniquely in the run: client<<32 | sequence.
	ID uint64
	// Read asks for the state (length and last element) instead of
	// appending ID.
	Read bool
	// Request is the key-space request, for a full member.
	Request *server.Request
	// ConfChange is a membership change, for a raft member (a full member
	// takes one as a Request).
	ConfChange *raft.ConfChange
}

// Reply is a member's answer to an Op.
type Reply struct {
	// Err is set if the operation failed. ErrRefused means it certainly
	// did not take effect.
	Err error
	// Length is the length of the log after the append (its position), or
	// at the read.
	Length uint64
	// Last is the last element at a read.
	Last uint64
	// ServedAt is, for a read, the applied index of the state it was
	// served from; LeaderTerm the term in which the member that served it
	// led then (0 if it did not lead).
	ServedAt, LeaderTerm uint64
	// Response is a full member's answer.
	Response *server.Response
}

// ErrRefused is a member's answer to an operation it did not take (no
// leader known, a transfer under way, a full queue): it certainly had no
// effect.
var ErrRefused = errors.New("simulator: operation refused")

// MemberConfig is what a Factory needs to make or restart a member.
type MemberConfig struct {
	ID uint64
	// Peers are the IDs of the founding voters, sorted; a new member whose
	// disk is empty bootstraps with them, unless it is Joining.
	Peers []uint64
	// Joining is a member added by a membership change: with an empty
	// disk, it waits for the leader to send it the log.
	Joining bool
	// Raft is the raft configuration; ID, Storage, Rand and Applied are
	// filled in by the factory.
	Raft raft.Config
	// Rand is the member's random source (for raft's election timeouts).
	Rand *rand.Rand
	// SnapshotEvery makes the member snapshot its state machine and compact
	// its log every that many applied entries; 0 never.
	SnapshotEvery uint64
	// SnapshotKeep is how many entries stay in the log behind a snapshot,
	// for followers that are only slightly behind.
	SnapshotKeep uint64
	// SnapshotTail is how many of the state machine's last elements its
	// snapshots carry, which sets their size (8 bytes each).
	SnapshotTail int
	// Bug plants a bug, for tests that check the simulator finds it.
	Bug PlantedBug
	// Now is the virtual clock, for members that read the time of day
	// (TTLs): it is the simulation's clock as a time.Time.
	Now func() time.Time
	// Tick is the length of a tick; ClockTick its length by this member's
	// clock, which may run fast or slow (drift): the member is ticked
	// every ClockTick of virtual time and counts its ticks by it.
	Tick, ClockTick time.Duration
	// SlowDisk makes a full member's disk slower than its CPU: a write
	// waits up to two ticks while the member goes on working (Buggify).
	SlowDisk bool
	// OnApplied, for full members, is told of every command applied to
	// the key space, with its result.
	OnApplied func(index uint64, cmd *kvstore.Command, res kvstore.Result)
}

// PlantedBug names a deliberate bug a test can plant in a member: the
// simulator's own (in the member adapters) and raft's catalogue of one-line
// deviations from the paper (raft.PlantedBug), so that a campaign's power
// to find bugs can be measured (the mutation score, see TestPlantedBugs).
type PlantedBug uint8

const (
	// NoBug is a correct member.
	NoBug PlantedBug = iota
	// BugForgetVote makes a restarted member forget the vote it persisted,
	// so that it can grant a second vote in the same term (raft members).
	BugForgetVote
	// BugStaleRead makes a full member that is not the leader answer a
	// linearizable read from its own copy, which may be stale.
	BugStaleRead
	// BugLockNoTTL makes the lock recipe's holder forget its TTL: it goes
	// on believing it holds the lock after its session may have expired.
	BugLockNoTTL
	// BugLockAliveFromAnswer makes the holder count its session from a
	// refresh's answer instead of its send: the key expires earlier than
	// the holder thinks when the answer was slow.
	BugLockAliveFromAnswer
	// BugQueueNoCompare makes the queue recipe's consumer take the head it
	// read without a compare-and-delete: two consumers can get one item.
	BugQueueNoCompare

	// bugRaft + b plants raft.PlantedBug b in every member's raft.
	bugRaft PlantedBug = 32
)

var bugNames = []string{"none", "forget-vote", "stale-read", "lock-no-ttl", "lock-alive-from-answer", "queue-no-compare"}

// RaftBug returns the planted bug that is raft's bug b.
func RaftBug(b raft.PlantedBug) PlantedBug { return bugRaft + PlantedBug(b) }

// Raft returns the raft bug b plants (raft.NoBug if it plants none there).
func (b PlantedBug) Raft() raft.PlantedBug {
	if b > bugRaft {
		return raft.PlantedBug(b - bugRaft)
	}
	return raft.NoBug
}

func (b PlantedBug) String() string {
	if b > bugRaft {
		return b.Raft().String()
	}
	if int(b) < len(bugNames) {
		return bugNames[b]
	}
	return fmt.Sprintf("PlantedBug(%d)", uint8(b))
}

// PlantedBugs returns the catalogue: every bug a test can plant.
func PlantedBugs() []PlantedBug {
	bugs := []PlantedBug{BugForgetVote, BugStaleRead}
	for _, b := range raft.PlantedBugs() {
		bugs = append(bugs, RaftBug(b))
	}
	return bugs
}

// RecipeBugs returns the planted bugs of the lock and queue recipes the
// simulator runs (recipes.go, recipes_queue.go), which TestRecipeBugsCaught
// requires their checks to find.
func RecipeBugs() []PlantedBug {
	return []PlantedBug{BugLockNoTTL, BugLockAliveFromAnswer, BugQueueNoCompare}
}

// ParseBug reads a planted bug's name.
func ParseBug(name string) (PlantedBug, error) {
	for i, n := range bugNames {
		if n == name {
			return PlantedBug(i), nil
		}
	}
	if b, ok := raft.ParsePlantedBug(name); ok {
		return RaftBug(b), nil
	}
	var names []string
	for _, b := range append(append([]PlantedBug{NoBug}, PlantedBugs()...), RecipeBugs()...) {
		names = append(names, b.String())
	}
	return 0, fmt.Errorf("unknown planted bug %q (known: %s)", name, strings.Join(names, ", "))
}

// Factory makes a member from its disk: a new one if the disk is empty, a
// restarted one otherwise. An error means the member cannot start (say, its
// disk is corrupt); the simulator keeps it down.
type Factory func(cfg MemberConfig, disk Disk) (Member, error)

// Disk is a member's stable storage as the simulator sees it: the member
// writes through its own interface to it (MemDisk for the raft adapter, the
// storage package's FS for server.Member), while the simulator injects
// faults and charges the time writes take.
type Disk interface {
	// Crash discards what was not synced, keeping a random prefix of the
	// unsynced writes, the last of which may be torn.
	Crash(rng *rand.Rand)
	// ArmCrash makes the disk die after n more writes: the n-th is torn and
	// the member sees ErrDiskCrashed. It models a crash in the middle of a
	// write.
	ArmCrash(n int)
	// SetFull makes every write fail with ErrDiskFull while full is true.
	SetFull(full bool)
	// Corrupt damages one durable record; a member must refuse to start
	// from it. It reports whether there was anything to damage.
	Corrupt(rng *rand.Rand) bool
	// Elapsed returns the disk time spent since the last call (writes and
	// syncs), and resets it.
	Elapsed() (writes, syncs int)
}

// ErrDiskFull is the error a full disk returns for a write.
var ErrDiskFull = errors.New("simulator: disk full")

// ErrDiskCrashed is the error of a disk that died in the middle of a write.
var ErrDiskCrashed = errors.New("simulator: disk crashed")

// ErrDiskCorrupt is the error of a disk with a damaged durable record.
var ErrDiskCorrupt = errors.New("simulator: disk record corrupt")
