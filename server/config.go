package server

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/storage"
)

// Config configures a Member. Times are in ticks of the shell's clock.
type Config struct {
	// ID is this member's raft ID (non-zero).
	ID uint64
	// Name is this member's human name (etcd's --name).
	Name string
	// InitialCluster lists the founding members of a new cluster. A member
	// whose disk is empty and that is not Joining bootstraps with it.
	InitialCluster []MemberInfo
	// Joining says a member with an empty disk joins an existing cluster
	// (it was added with a membership change) instead of founding one.
	Joining bool
	// ClusterID identifies the cluster (X-Etcd-Cluster-Id); 0 means one
	// derived from ClusterToken and the IDs of InitialCluster, the same on
	// every founding member.
	ClusterID    uint64
	ClusterToken string
	// PeerURLs and ClientURLs are this member's advertised addresses.
	PeerURLs   []string
	ClientURLs []string

	// FS and Dir locate the member's data: the WAL and snapshot files.
	FS  storage.FS
	Dir string
	// WAL configures the write-ahead log.
	WAL storage.Options

	// Rand seeds raft's election timeouts and the member's incarnation.
	Rand *rand.Rand

	// ElectionTicks and HeartbeatTicks are raft's timeouts.
	ElectionTicks  int
	HeartbeatTicks int
	// LeaseReads serves linearizable reads on a leader lease when it holds
	// one (raft.ReadOnlyLeaseBased), saving a round of heartbeats.
	LeaseReads bool
	// MaxSizePerMsg, MaxInflightMsgs and MaxUncommittedBytes bound raft's
	// batching and flow control; 0 means a default.
	MaxSizePerMsg       uint64
	MaxInflightMsgs     int
	MaxUncommittedBytes uint64
	// MaxSnapshotChunkSize is the size of snapshot chunks; 0 means 1 MiB.
	MaxSnapshotChunkSize uint64

	// RequestTimeoutTicks is how long a request may wait for an answer; 0
	// means 5 seconds' worth plus two election timeouts, as etcd.
	RequestTimeoutTicks int
	// ReadRetryTicks is how long a ReadIndex round may take before it is
	// asked again (the request or its answer may have been lost).
	ReadRetryTicks int
	// ExpiryTicks is how often a leader looks for expired keys (etcd: 500ms).
	ExpiryTicks int
	// SnapshotEvery takes a snapshot every that many applied entries.
	SnapshotEvery uint64
	// SnapshotKeep is how many entries stay in the log behind a snapshot,
	// so that a slightly slow follower can catch up without one.
	SnapshotKeep uint64
	// MaxProposalBatch bounds the proposals handed to raft at once.
	MaxProposalBatch int

	// Store is the key space's limits (the same on every member).
	Store kvstore.Config
	// TickMillis is the length of a tick in milliseconds, to turn the
	// defaults above from time into ticks.
	TickMillis int
	// TickLength, if set, is the length of a tick by this member's clock,
	// for counting ticks (see Member.Tick) in place of TickMillis: the
	// simulator's model of a member whose clock runs fast or slow.
	TickLength time.Duration

	// OnApplied, if set, is called for every command the key space
	// applies (duplicates skipped), with the entry's index and the
	// result, from within Process. Tests and the simulator use it to
	// learn what a write whose client gave up on it did.
	OnApplied func(index uint64, cmd *kvstore.Command, res kvstore.Result)
	// TuneRaft, if set, adjusts raft's configuration before the member
	// starts. Tests only: the simulator runs members with raft options
	// the server does not expose (no CheckQuorum, no PreVote) and with
	// planted bugs (raft.PlantedBug).
	TuneRaft func(*raft.Config)
}

// MemberInfo is what the cluster knows about a member (/v2/members).
type MemberInfo struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	// IsLearner says the member receives the log but does not vote yet.
	IsLearner bool
}

// ErrConfig wraps every Config validation error.
var ErrConfig = errors.New("server: invalid config")

// withDefaults checks c and returns it with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	if c.TickMillis <= 0 {
		c.TickMillis = 100
	}
	ticks := func(ms int) int { return max(1, ms/c.TickMillis) }
	if c.ElectionTicks == 0 {
		c.ElectionTicks = ticks(1000)
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 1
	}
	if c.RequestTimeoutTicks == 0 {
		c.RequestTimeoutTicks = ticks(5000) + 2*c.ElectionTicks
	}
	if c.ReadRetryTicks == 0 {
		c.ReadRetryTicks = max(2, c.ElectionTicks/2)
	}
	if c.ExpiryTicks == 0 {
		c.ExpiryTicks = ticks(500)
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 10000
	}
	if c.SnapshotKeep == 0 {
		c.SnapshotKeep = 5000
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.MaxInflightMsgs == 0 {
		// A few appends in flight keep a follower's disk busy on a LAN
		// (one being written, the next waiting); under load more only
		// split the same entries into more messages, each a system call,
		// a decode, a step and an acknowledgement on both sides. Links
		// whose round trip exceeds a few fsyncs want more.
		c.MaxInflightMsgs = 4
	}
	if c.MaxProposalBatch == 0 {
		c.MaxProposalBatch = 1024
	}
	switch {
	case c.ID == 0:
		return c, bad("ID must not be 0")
	case c.FS == nil:
		return c, bad("FS must not be nil")
	case c.Rand == nil:
		return c, bad("Rand must not be nil")
	case c.ElectionTicks <= c.HeartbeatTicks:
		return c, bad("ElectionTicks (%d) must be greater than HeartbeatTicks (%d)", c.ElectionTicks, c.HeartbeatTicks)
	case c.RequestTimeoutTicks <= 0 || c.ReadRetryTicks <= 0 || c.ExpiryTicks <= 0:
		return c, bad("timeouts must be positive")
	}
	if !c.Joining && len(c.InitialCluster) > 0 {
		found := false
		seen := map[uint64]bool{}
		for _, m := range c.InitialCluster {
			if m.ID == 0 {
				return c, bad("initial cluster member %q has ID 0", m.Name)
			}
			if seen[m.ID] {
				return c, bad("initial cluster names member %d twice", m.ID)
			}
			seen[m.ID] = true
			found = found || m.ID == c.ID
		}
		if !found {
			return c, bad("initial cluster does not include this member (ID %x)", c.ID)
		}
	}
	return c, nil
}
