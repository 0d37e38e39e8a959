package simulator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/server"
	"github.com/raftkv/raftkv/storage"
)

// kvMember drives a full member — server.Member, with the real key space
// and the real WAL and snapshot files over the disk's FaultyFS — through
// the simulator's Member interface.
//
// server.Member hands out its disk work (a PersistJob) and goes on; here
// the job runs at the start of the next Process, so that the disk time the
// simulator charges for that round covers it, and the messages that
// waited for the write (Activity.AfterPersist) leave after it.
type kvMember struct {
	cfg  MemberConfig
	m    *server.Member
	disk *FSDisk
	// job is disk work handed out and not yet run; with SlowDisk it runs
	// no earlier than jobAt.
	job   *server.PersistJob
	jobAt time.Time
	// durable is the hard state as last written: what Activity reports
	// (the checks must see only what a crash would keep).
	durable raft.HardState
	// conf is the configuration last reported.
	conf raft.ConfState
}

// NewKVMember is the Factory of full members. The disk must be an *FSDisk.
func NewKVMember(cfg MemberConfig, d Disk) (Member, error) {
	disk, ok := d.(*FSDisk)
	if !ok {
		return nil, fmt.Errorf("simulator: a full member needs an *FSDisk, got %T", d)
	}
	var founders []server.MemberInfo
	for _, id := range cfg.Peers {
		founders = append(founders, server.MemberInfo{ID: id, Name: fmt.Sprintf("m%d", id),
			PeerURLs: []string{fmt.Sprintf("sim://%d", id)}})
	}
	tickMillis := max(1, int(cfg.Tick/time.Millisecond))
	rc := cfg.Raft
	m, err := server.New(server.Config{
		ID: cfg.ID, Name: fmt.Sprintf("m%d", cfg.ID), InitialCluster: founders, Joining: cfg.Joining,
		PeerURLs: []string{fmt.Sprintf("sim://%d", cfg.ID)},
		FS:       disk.FS(), Dir: dataDir, WAL: storage.Options{SegmentSize: 16 << 10},
		Rand:       rand.New(rand.NewPCG(cfg.Rand.Uint64(), cfg.ID)),
		TickMillis: tickMillis, TickLength: cfg.ClockTick,
		ElectionTicks: rc.ElectionTick, HeartbeatTicks: rc.HeartbeatTick,
		LeaseReads:    rc.ReadOnlyOption == raft.ReadOnlyLeaseBased,
		MaxSizePerMsg: max(rc.MaxSizePerMsg, 1), MaxInflightMsgs: rc.MaxInflightMsgs,
		MaxSnapshotChunkSize: rc.MaxSnapshotChunkSize,
		SnapshotEvery:        snapshotEvery(cfg.SnapshotEvery),
		SnapshotKeep:         max(cfg.SnapshotKeep, 1),
		// The member gives up on a request a little after the client does.
		RequestTimeoutTicks: int(3*time.Second/cfg.Tick) + 2*rc.ElectionTick,
		OnApplied:           cfg.OnApplied,
		// Raft's options as the run drew them (the server's defaults are
		// PreVote and CheckQuorum on), and its planted bug.
		TuneRaft: func(c *raft.Config) {
			c.PreVote, c.CheckQuorum, c.PlantedBug, c.Buggify = rc.PreVote, rc.CheckQuorum, rc.PlantedBug, rc.Buggify
		},
	})
	if err != nil {
		return nil, err
	}
	k := &kvMember{cfg: cfg, m: m, disk: disk}
	// A restarted member's durable state is what its disk holds.
	k.durable, _, _ = m.Storage().InitialState()
	return k, nil
}

func sameConf(a, b raft.ConfState) bool {
	return slices.Equal(a.Voters, b.Voters) && slices.Equal(a.Learners, b.Learners) &&
		slices.Equal(a.VotersOutgoing, b.VotersOutgoing) && slices.Equal(a.LearnersNext, b.LearnersNext)
}

// ConfState implements confReporter.
func (k *kvMember) ConfState() raft.ConfState { return k.m.ConfState() }

// snapshotEvery turns the drawn snapshot interval (0: never) into the
// member's.
func snapshotEvery(n uint64) uint64 {
	if n == 0 {
		return 1 << 40
	}
	return n
}

func (k *kvMember) Tick()                        { k.m.Tick(k.cfg.Now()) }
func (k *kvMember) Campaign()                    { k.m.Campaign() }
func (k *kvMember) TransferLeadership(to uint64) { k.m.TransferLeadership(to) }
func (k *kvMember) Receive(msg raft.Message)     { k.m.Receive(msg, k.cfg.Now()) }
func (k *kvMember) Storage() raft.Storage        { return k.m.Storage() }
func (k *kvMember) Applied() uint64              { return k.m.Applied() }
func (k *kvMember) HoldsLease() bool             { return k.m.HoldsLease() }
func (k *kvMember) Promising() bool              { return k.m.Promising() }
func (k *kvMember) LastEntry() (uint64, uint64)  { return k.m.LastEntry() }
func (k *kvMember) HasWork() bool                { return k.jobDue() || k.m.HasWork() }

// jobDue reports whether disk work waits and may run now.
func (k *kvMember) jobDue() bool { return k.job != nil && !k.cfg.Now().Before(k.jobAt) }

// RecoveredTornWrite implements tornRecoverer: the member's start cut a torn
// write off the end of its WAL (server/durable.go notes it so).
func (k *kvMember) RecoveredTornWrite() bool {
	for _, note := range k.m.RecoveryLog {
		if strings.HasPrefix(note, tornWALNote) {
			return true
		}
	}
	return false
}

// tornWALNote starts the note a member's recovery log holds for a torn
// write cut off its WAL.
const tornWALNote = "truncated an incomplete write"

// Submit implements Member.
func (k *kvMember) Submit(op Op, done func(Reply)) {
	if op.Request == nil {
		done(Reply{Err: fmt.Errorf("%w: not a key-space operation", ErrRefused)})
		return
	}
	req := *op.Request
	req.Now = k.cfg.Now()
	if k.cfg.Bug == BugStaleRead && req.Kind == server.RequestRead && k.m.Leader() != k.cfg.ID {
		// The planted bug: a follower answers a linearizable read from its
		// own copy, without asking the leader.
		req.Serializable = true
	}
	k.m.Submit(req, func(r server.Response) {
		reply := Reply{Response: &r}
		if req.Kind == server.RequestRead {
			reply.ServedAt = k.m.Applied()
			if k.m.Leader() == k.cfg.ID {
				reply.LeaderTerm = r.RaftTerm
			}
		}
		if isRefusal(r.Err) {
			reply.Err = fmt.Errorf("%w: %w", ErrRefused, r.Err)
		}
		done(reply)
	})
}

// isRefusal reports whether a member's error certainly means the request
// had no effect: a full disk refused it before proposing.
func isRefusal(err error) bool {
	var kerr *kvstore.Error
	return errors.As(err, &kerr) && kerr.Code == kvstore.CodeRaftInternal && kerr.Cause == server.ErrNoSpace.Error()
}

// Process implements Member.
func (k *kvMember) Process() Activity {
	if k.jobDue() {
		job := k.job
		k.job = nil
		err := job.Run()
		if isDiskDeath(err) {
			return Activity{Crashed: true}
		}
		k.m.PersistDone(job, err)
		if hs := job.HardState(); err == nil && !hs.IsEmpty() {
			k.durable = hs
		}
	}
	out := k.m.Process()
	// The term, vote and commit index as written, and the commit index at
	// least as far as what is applied: what the member has applied is
	// committed and durable here, while its in-memory commit index may run
	// ahead of the entries it has written (a follower learns a leader's
	// commit index with the entries, before writing them).
	hs := k.durable
	hs.Commit = max(hs.Commit, k.m.Applied())
	act := Activity{
		Messages: out.Messages, AfterPersist: out.AfterPersist,
		HardState: hs, SoftState: out.SoftState,
		Commit: out.HardState.Commit, CommitTerm: k.m.CommitTerm(),
		Snapshot: out.Snapshot, Entries: out.Entries, Applied: out.Applied,
		Synced: out.Synced, Stalled: out.Stalled,
	}
	if out.Err != nil {
		// A storage failure the member cannot go on from: it dies, and is
		// restarted from its disk.
		act.Crashed = true
		return act
	}
	if out.Persist != nil {
		k.job, k.jobAt = out.Persist, k.cfg.Now()
		if k.cfg.SlowDisk {
			k.jobAt = k.jobAt.Add(time.Duration(k.cfg.Rand.Int64N(int64(2 * k.cfg.Tick))))
		}
	}
	if len(out.Applied) > 0 || out.Snapshot.Index != 0 {
		act.StateHash, act.AppliedIndex = k.m.StoreHash(), k.m.Applied()
		if cs := k.m.ConfState(); !sameConf(cs, k.conf) {
			k.conf = cs
			act.Conf = &cs
		}
	}
	return act
}
