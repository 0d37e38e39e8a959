package raft

import "slices"

import "fmt"

// None is the ID of no member: "no vote", "no leader".
const None uint64 = 0

// EntryType says how an entry's Data is to be read.
type EntryType uint8

const (
	// EntryNormal carries application data (or nothing: a leader's no-op).
	EntryNormal EntryType = iota
	// EntryConfChange carries an encoded ConfChange (see confchange.go).
	EntryConfChange
)

func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "Normal"
	case EntryConfChange:
		return "ConfChange"
	}
	return fmt.Sprintf("EntryType(%d)", uint8(t))
}

// Entry is one slot of the replicated log (Figure 2: "log[]: each entry
// contains command for state machine, and term when entry was received by
// leader").
type Entry struct {
	Term  uint64
	Index uint64
	Type  EntryType
	Data  []byte
}

// size is the number of bytes an entry counts for against byte limits
// (MaxSizePerMsg, MaxInflightBytes, MaxUncommittedEntriesSize).
func (e *Entry) size() uint64 { return uint64(len(e.Data)) + 16 }

// HardState is the part of a member's state that must be durable before it
// answers any message (Figure 2, "Persistent state on all servers"). The log
// itself is persisted as entries.
type HardState struct {
	// Term is the latest term this member has seen.
	Term uint64
	// Vote is the candidate that received this member's vote in Term, or None.
	Vote uint64
	// Commit is the highest log index known to be committed. Persisting it is
	// an optimisation (a restarted member can apply without waiting for a
	// leader); losing it is safe.
	Commit uint64
}

// IsEmpty reports whether h is the zero HardState.
func (h HardState) IsEmpty() bool { return h == HardState{} }

// ConfState is the membership configuration in force at some log index: the
// voters, the learners, and (in a joint configuration, §4.3 of the thesis)
// the outgoing voters and the learners to add when the joint state is left.
type ConfState struct {
	Voters         []uint64
	Learners       []uint64
	VotersOutgoing []uint64
	LearnersNext   []uint64
	// AutoLeave, in a joint configuration, makes the leader propose leaving
	// it as soon as entering it has committed.
	AutoLeave bool
}

// Contains reports whether the configuration names member id, as a voter
// or a learner, in either half of a joint configuration.
func (cs ConfState) Contains(id uint64) bool {
	return slices.Contains(cs.Voters, id) || slices.Contains(cs.Learners, id) ||
		slices.Contains(cs.VotersOutgoing, id) || slices.Contains(cs.LearnersNext, id)
}

// SnapshotMetadata says which prefix of the log a snapshot replaces.
type SnapshotMetadata struct {
	// Index and Term are those of the last entry the snapshot includes.
	Index uint64
	Term  uint64
	// ConfState is the configuration as of Index.
	ConfState ConfState
}

// Snapshot is the state machine's image as of Metadata.Index.
type Snapshot struct {
	Metadata SnapshotMetadata
	Data     []byte
}

// IsEmpty reports whether s holds no snapshot.
func (s Snapshot) IsEmpty() bool { return s.Metadata.Index == 0 }

// SnapshotChunk is one piece of a snapshot in flight from a leader to a
// follower (InstallSnapshot, Figure 13 of the paper: "offset", "data[]",
// "done"). A snapshot is sent as a stream of chunks so that no single message
// holds all of it.
type SnapshotChunk struct {
	Metadata SnapshotMetadata
	// Offset is the byte position of Data in the whole snapshot.
	Offset uint64
	// Total is the size in bytes of the whole snapshot.
	Total uint64
	Data  []byte
}

// Last reports whether c completes its snapshot.
func (c *SnapshotChunk) Last() bool { return c.Offset+uint64(len(c.Data)) >= c.Total }

// MessageType names the RPCs of Raft and of its extensions.
type MessageType uint8

const (
	// MsgApp is AppendEntries (§5.3): Index/LogTerm are prevLogIndex and
	// prevLogTerm, Entries follow them, Commit is leaderCommit.
	MsgApp MessageType = iota + 1
	// MsgAppResp answers MsgApp. On success Index is the last index the
	// follower now holds from the leader; on Reject, Index is the rejected
	// prevLogIndex and RejectHint/LogTerm point the leader at where to retry.
	MsgAppResp
	// MsgVote is RequestVote (§5.2): Index/LogTerm describe the candidate's
	// last entry.
	MsgVote
	MsgVoteResp
	// MsgPreVote asks whether a vote would be granted at Term, without
	// anybody changing term (§9.6 of the thesis).
	MsgPreVote
	MsgPreVoteResp
	// MsgHeartbeat is an empty AppendEntries (§5.2). Commit is
	// min(leader's commit, follower's match); Context carries a ReadIndex
	// round number.
	MsgHeartbeat
	MsgHeartbeatResp
	// MsgSnap carries one chunk of InstallSnapshot (§7).
	MsgSnap
	// MsgSnapResp acknowledges a chunk (Index is the byte offset received so
	// far) or, with Reject, asks the leader to start the snapshot again.
	MsgSnapResp
	// MsgTimeoutNow tells the target of a leadership transfer to start an
	// election at once (§3.10 of the thesis).
	MsgTimeoutNow
	// MsgProp forwards proposals from a follower to its leader.
	MsgProp
	// MsgReadIndex forwards a ReadIndex request from a follower to its
	// leader (§6.4 of the thesis); Context identifies the request.
	MsgReadIndex
	// MsgReadIndexResp answers it with the read index in Index.
	MsgReadIndexResp
	// MsgTransferLeader forwards a leadership transfer request to the leader;
	// From is the proposed new leader.
	MsgTransferLeader
)

var messageTypeNames = [...]string{
	MsgApp: "MsgApp", MsgAppResp: "MsgAppResp", MsgVote: "MsgVote",
	MsgVoteResp: "MsgVoteResp", MsgPreVote: "MsgPreVote",
	MsgPreVoteResp: "MsgPreVoteResp", MsgHeartbeat: "MsgHeartbeat",
	MsgHeartbeatResp: "MsgHeartbeatResp", MsgSnap: "MsgSnap",
	MsgSnapResp: "MsgSnapResp", MsgTimeoutNow: "MsgTimeoutNow",
	MsgProp: "MsgProp", MsgReadIndex: "MsgReadIndex",
	MsgReadIndexResp: "MsgReadIndexResp", MsgTransferLeader: "MsgTransferLeader",
}

func (t MessageType) String() string {
	if int(t) < len(messageTypeNames) && messageTypeNames[t] != "" {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// isResponse reports whether t answers a request from the leader or a
// candidate (responses never bump a term by themselves when rejected).
func (t MessageType) isResponse() bool {
	switch t {
	case MsgAppResp, MsgVoteResp, MsgPreVoteResp, MsgHeartbeatResp, MsgSnapResp, MsgReadIndexResp:
		return true
	}
	return false
}

// Message is one RPC between members. Which fields mean what depends on
// Type; see the MessageType constants.
type Message struct {
	Type MessageType
	To   uint64
	From uint64
	// Term is the sender's current term (0 for MsgProp, MsgReadIndex and
	// MsgTransferLeader, which are local to a term and never change one).
	Term    uint64
	LogTerm uint64
	Index   uint64
	Entries []Entry
	Commit  uint64
	Reject  bool
	// RejectHint is, on a rejected MsgAppResp, the follower's guess of the
	// highest index at which its log might match the leader's (§5.3's
	// "optimization", done as in etcd: the leader skips a whole term).
	RejectHint uint64
	// Transfer marks a MsgVote/MsgPreVote caused by a leadership transfer:
	// voters grant it even while they still hear from a leader.
	Transfer bool
	// Context is opaque data carried for the application (ReadIndex request
	// identifiers) or for a ReadIndex round (heartbeats).
	Context []byte
	// Snapshot is set on MsgSnap.
	Snapshot *SnapshotChunk
}

func (m Message) String() string {
	return fmt.Sprintf("%d->%d %s Term:%d Log:%d/%d Commit:%d Entries:%d Reject:%v",
		m.From, m.To, m.Type, m.Term, m.LogTerm, m.Index, m.Commit, len(m.Entries), m.Reject)
}

// StateType is a member's role.
type StateType uint8

const (
	StateFollower StateType = iota
	StatePreCandidate
	StateCandidate
	StateLeader
)

func (s StateType) String() string {
	switch s {
	case StateFollower:
		return "Follower"
	case StatePreCandidate:
		return "PreCandidate"
	case StateCandidate:
		return "Candidate"
	case StateLeader:
		return "Leader"
	}
	return fmt.Sprintf("StateType(%d)", uint8(s))
}

// SoftState is volatile state worth reporting: who leads, and our role.
type SoftState struct {
	Lead  uint64
	State StateType
}

// ReadState answers a ReadIndex request: once the application has applied
// Index, a read of its state machine reflects every write committed before
// the request was made (§6.4 of the thesis).
type ReadState struct {
	Index      uint64
	RequestCtx []byte
}
