package server

import (
	"encoding/binary"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
)

// Linearizable reads go through raft's ReadIndex (§6.4 of the thesis) in
// batches: every read that arrives while a round is being set up joins the
// same round, so one round of heartbeats serves many reads. A batch is
// served once the member has applied the index its round returned.

// readPipeline holds the reads in flight.
type readPipeline struct {
	// unsent are reads not yet in a ReadIndex round.
	unsent []pendingRead
	// batches are rounds asked of raft, in order.
	batches []*readBatch
	// nextCtx numbers rounds.
	nextCtx uint64
}

type pendingRead struct {
	req      Request
	done     func(Response)
	deadline uint64
}

type readBatch struct {
	reads []pendingRead
	// ctx identifies the batch's current round (it changes on retry).
	ctx uint64
	// index is the read index the round returned; 0 until then.
	index uint64
	// askedAt is the tick the current round was asked.
	askedAt uint64
}

func (p *readPipeline) init() {}

func (p *readPipeline) add(req Request, done func(Response), deadline uint64) {
	p.unsent = append(p.unsent, pendingRead{req: req, done: done, deadline: deadline})
}

func (p *readPipeline) hasUnsent() bool { return len(p.unsent) > 0 }

// flush asks raft for a read index for the reads that arrived since the
// last round.
func (p *readPipeline) flush(m *Member) {
	if len(p.unsent) == 0 {
		return
	}
	b := &readBatch{reads: p.unsent}
	p.unsent = nil
	p.batches = append(p.batches, b)
	p.ask(m, b)
}

func (p *readPipeline) ask(m *Member, b *readBatch) {
	p.nextCtx++
	b.ctx, b.askedAt = p.nextCtx, m.ticks
	// The context names this incarnation of the member too: an answer to
	// a request the member made before a restart must not be taken for
	// the answer to a new one (its index may be older than the new read).
	ctx := binary.AppendUvarint(nil, m.incarnation)
	m.node.ReadIndex(binary.AppendUvarint(ctx, b.ctx))
}

// readStates records the read indexes raft returned.
func (p *readPipeline) readStates(m *Member, states []raft.ReadState) {
	for _, rs := range states {
		incarnation, n := binary.Uvarint(rs.RequestCtx)
		if n <= 0 || incarnation != m.incarnation {
			continue
		}
		ctx, k := binary.Uvarint(rs.RequestCtx[n:])
		if k <= 0 {
			continue
		}
		for _, b := range p.batches {
			if b.ctx == ctx && b.index == 0 {
				b.index = rs.Index
			}
		}
	}
}

// serve answers the batches whose read index has been applied.
func (p *readPipeline) serve(m *Member) {
	kept := p.batches[:0]
	for _, b := range p.batches {
		if b.index == 0 || b.index > m.applied {
			kept = append(kept, b)
			continue
		}
		for _, r := range b.reads {
			r.done(m.read(r.req))
		}
	}
	clear(p.batches[len(kept):])
	p.batches = kept
}

// retry asks again for rounds that got no answer in ReadRetryTicks (the
// request, or its answer, was lost, or there was no leader).
func (p *readPipeline) retry(m *Member) {
	for _, b := range p.batches {
		if b.index == 0 && m.ticks >= b.askedAt+uint64(m.cfg.ReadRetryTicks) {
			p.ask(m, b)
		}
	}
}

// expire fails the reads whose deadline passed.
func (p *readPipeline) expire(m *Member) {
	timeout := internalError(ErrTimeout)
	kept := p.batches[:0]
	for _, b := range p.batches {
		live := b.reads[:0]
		for _, r := range b.reads {
			if r.deadline <= m.ticks {
				r.done(m.errorResponse(timeout))
				continue
			}
			live = append(live, r)
		}
		b.reads = live
		if len(live) > 0 {
			kept = append(kept, b)
		}
	}
	clear(p.batches[len(kept):])
	p.batches = kept
}

// failAll answers every pending read with err.
func (p *readPipeline) failAll(m *Member, err *kvstore.Error) {
	for _, r := range p.unsent {
		r.done(m.errorResponse(err))
	}
	for _, b := range p.batches {
		for _, r := range b.reads {
			r.done(m.errorResponse(err))
		}
	}
	p.unsent, p.batches = nil, nil
}
