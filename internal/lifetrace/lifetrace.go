// Package lifetrace follows one write through the member processes of a
// cluster: the instants it passes each stage of its life, from the
// client's request read on one member, through the append sent to each
// follower, each member's fsync and the acknowledgements, to the answer
// written back. `go run ./benchmarks/compare -life` builds raftkv with the
// lifetrace build tag, runs one client against a local cluster and prints
// where a write's time goes (benchmarks/RESULTS.md).
//
// In a build without the tag, Mark and Message are empty and the
// compiler removes their calls: the product pays nothing for them. With
// the tag, a process whose environment names RAFTKV_LIFETRACE=PREFIX
// appends its records to the file PREFIX.<pid>, one line each: the member
// ID, the peer's ID, the log index, the stage and the wall-clock time in
// nanoseconds (comparable across processes of one machine).
package lifetrace

import "github.com/raftkv/raftkv/raft"

// Stage is a point in a write's life.
type Stage uint8

// The stages, in the order a write on the leader passes them.
const (
	// RequestRead: a client request's head was read (the fast HTTP path).
	RequestRead Stage = iota + 1
	// Submitted: the event loop took the request.
	Submitted
	// AppendSent: the event loop handed an append (MsgApp with entries,
	// index = its last entry) to the transport.
	AppendSent
	// AppendWriting, AppendWritten: the peer writer began and finished the
	// write system call carrying it.
	AppendWriting
	AppendWritten
	// AppendReceived: the follower's stream reader decoded it;
	// AppendStepped: its event loop took it.
	AppendReceived
	AppendStepped
	// DiskStart, DiskDone: the disk goroutine began and finished a job
	// writing entries up to index (write + fdatasync); PersistDone: the
	// event loop learnt it.
	DiskStart
	DiskDone
	PersistDone
	// AckSent .. AckStepped: the acknowledgement (MsgAppResp, index = the
	// follower's last index) on its way back, as for the append.
	AckSent
	AckWriting
	AckWritten
	AckReceived
	AckStepped
	// Applied: the event loop applied entries up to index.
	Applied
	// Answered: the member answered the request (its callback ran);
	// HandlerDone: the HTTP handler returned; ResponseWritten: the
	// answer's write system call returned.
	Answered
	HandlerDone
	ResponseWritten
	numStages
)

var stageNames = [numStages]string{
	RequestRead: "request read", Submitted: "submitted", AppendSent: "append sent",
	AppendWriting: "append writing", AppendWritten: "append written", AppendReceived: "append received",
	AppendStepped: "append stepped", DiskStart: "disk start", DiskDone: "disk done",
	PersistDone: "persist done", AckSent: "ack sent", AckWriting: "ack writing", AckWritten: "ack written",
	AckReceived: "ack received", AckStepped: "ack stepped", Applied: "applied", Answered: "answered",
	HandlerDone: "handler done", ResponseWritten: "response written",
}

func (s Stage) String() string {
	if s == 0 || s >= numStages {
		return "stage?"
	}
	return stageNames[s]
}

// Indexed says whether a stage's records carry a log index.
func (s Stage) Indexed() bool {
	switch s {
	case AppendSent, AppendWriting, AppendWritten, AppendReceived, AppendStepped,
		DiskStart, DiskDone, PersistDone, AckSent, AckWriting, AckWritten, AckReceived, AckStepped, Applied:
		return true
	}
	return false
}

// Message records stage app for an append carrying entries, or stage ack
// for an acknowledgement that accepts entries; any other message is not
// part of a write's life. peer is the other end.
func Message(member, peer uint64, m *raft.Message, app, ack Stage) {
	if !Enabled {
		return
	}
	switch {
	case m.Type == raft.MsgApp && len(m.Entries) > 0:
		Mark(member, peer, m.Entries[len(m.Entries)-1].Index, app)
	case m.Type == raft.MsgAppResp && !m.Reject:
		Mark(member, peer, m.Index, ack)
	}
}
