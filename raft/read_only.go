package raft

import "encoding/binary"

// ReadIndex (§6.4 of the thesis). A leader serves a read at its commit index
// once it knows it was still the leader when the read arrived: it numbers
// each broadcast of heartbeats (a round), and a read is released once a
// quorum has acknowledged a round sent after the read arrived.
//
// Heartbeats carry their round and the leader's tick count at sending in
// Context; followers echo Context back. The tick count gives leases: if a
// quorum acknowledged a round sent at tick t, no follower of that quorum
// grants a vote before t + ElectionTick, so no other leader exists before
// then (§6.4.1).

// readRequest is one ReadIndex call waiting for its round to be confirmed.
type readRequest struct {
	// index is the leader's commit index when the request arrived.
	index uint64
	// ctx identifies the request to the application.
	ctx []byte
	// from is the follower that forwarded the request, or None if local.
	from uint64
	// round is the heartbeat round that must be acknowledged.
	round uint64
}

// readOnly is a leader's state for ReadIndex rounds. It is reset at every
// change of term.
type readOnly struct {
	option ReadOnlyOption
	// round is the number of the last heartbeat round sent.
	round uint64
	// acked is, per member, the highest round acknowledged and the tick it
	// was sent at.
	acked map[uint64]roundAck
	// pending are the requests waiting, in order of round.
	// Invariant: rounds increase along pending.
	pending []readRequest
}

type roundAck struct {
	round, sentTick uint64
}

func newReadOnly(option ReadOnlyOption) *readOnly {
	return &readOnly{option: option, acked: map[uint64]roundAck{}}
}

// nextRound starts a round and returns the heartbeat Context for it.
func (ro *readOnly) nextRound(tick uint64) []byte {
	ro.round++
	ctx := binary.AppendUvarint(nil, ro.round)
	return binary.AppendUvarint(ctx, tick)
}

// recordAck records that member id answered a heartbeat with ctx.
func (ro *readOnly) recordAck(id uint64, ctx []byte) {
	round, n := binary.Uvarint(ctx)
	if n <= 0 || round > ro.round {
		return // not a round of ours (or from before a restart of the term)
	}
	sentTick, m := binary.Uvarint(ctx[n:])
	if m <= 0 {
		return
	}
	if prev := ro.acked[id]; round > prev.round {
		ro.acked[id] = roundAck{round: round, sentTick: sentTick}
	}
}

// add queues a request for the next round (which the caller then sends).
func (ro *readOnly) add(req readRequest) {
	req.round = ro.round + 1
	ro.pending = append(ro.pending, req)
}

// release removes and returns the requests whose round a quorum of voters
// has acknowledged. self is the leader, which acknowledges every round.
func (ro *readOnly) release(voters JointConfig, self uint64) []readRequest {
	confirmed := voters.CommittedIndex(func(id uint64) uint64 {
		if id == self {
			return ro.round
		}
		return ro.acked[id].round
	})
	n := 0
	for n < len(ro.pending) && ro.pending[n].round <= confirmed {
		n++
	}
	if n == 0 {
		return nil
	}
	released := ro.pending[:n:n]
	ro.pending = ro.pending[n:]
	return released
}

// leaseStart returns the tick at which the latest round acknowledged by a
// quorum was sent: the leader's lease runs from then. now is the leader's
// current tick.
func (ro *readOnly) leaseStart(voters JointConfig, self, now uint64) uint64 {
	return voters.CommittedIndex(func(id uint64) uint64 {
		if id == self {
			return now
		}
		return ro.acked[id].sentTick
	})
}
