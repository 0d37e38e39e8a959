package linearizability

import (
	"fmt"
	"sync"
	"time"
)

// Operation is one recorded client operation.
type Operation struct {
	// ID is the operation's number in its recorder, from 0.
	ID int
	// Client is the client that issued it; the visualisation draws one row
	// per client. Zero-based.
	Client int
	// Input is what was asked.
	Input Input
	// Output is the answer; meaningless when Unknown.
	Output Output
	// Call and Return are when the client sent the request and received
	// the answer, in nanoseconds of the recorder's clock. Return is
	// meaningless when Unknown or Unseen.
	Call, Return int64
	// Unknown says the client never learned the outcome: the request timed
	// out, the connection or the member was lost. Such an operation may
	// take effect at any time after its call, or never.
	Unknown bool
	// Unseen says the client never received the answer, but whoever
	// recorded the history learned it another way (the simulator reads it
	// from the applied log): Output is what the key space answered, at
	// some time after the call.
	Unseen bool
	// NoEffect says whoever recorded the history knows the operation never
	// took effect within it (the simulator saw no member apply it): the
	// check leaves it out.
	NoEffect bool
}

// Annotation marks a stretch of time in the visualisation: a fault (a
// partition, a crash), a leader change, anything that helps explain a
// history. Annotations are drawn in rows of their own, one per Tag.
type Annotation struct {
	// Tag names the row ("network", "member 2", "leader").
	Tag string
	// Start and End bound the annotated stretch, in the recorder's clock.
	// End == Start marks a point in time; End < Start means the stretch
	// was still going on when the history ended.
	Start, End int64
	// Description is drawn in the row; Details shows when hovered.
	Description string
	Details     string
	// Color is an optional CSS background colour ("#f4cccc").
	Color string
}

// History is a recorded history: the operations of every client and the
// annotations that explain it.
type History struct {
	Operations  []Operation
	Annotations []Annotation
}

// Recorder records a history as clients run. It is safe for concurrent use,
// so a real-cluster test can share one between goroutines; the simulator
// uses it from its one goroutine with virtual time. Times are nanoseconds
// on any clock that never goes backwards and agrees with the members'
// clocks up to Options.ClockSkew (see Options.Epoch).
type Recorder struct {
	mu sync.Mutex
	// ops are the operations in call order.
	// Invariant: ops[i].ID == i.
	ops []Operation
	// done says which operations have returned or been declared unknown.
	// Invariant: len(done) == len(ops).
	done        []bool
	annotations []Annotation
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{}
}

// Call records that client sent the operation in at time at, and returns
// the operation's id for Return or Unknown.
//
// A client that retries a request after a timeout, and may be answered
// from the member's duplicate table, must keep one operation for all its
// attempts: the call of the first, the answer of the last. Recorded as a
// new operation, the retry would carry an index produced before it was
// called.
func (r *Recorder) Call(client int, in Input, at int64) int {
	if client < 0 {
		panic(fmt.Sprintf("linearizability: negative client id %d", client))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := len(r.ops)
	r.ops = append(r.ops, Operation{ID: id, Client: client, Input: in, Call: at})
	r.done = append(r.done, false)
	return id
}

// Return records the answer out to operation id, received at time at.
func (r *Recorder) Return(id int, out Output, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id >= 0 && id < len(r.ops) && at < r.ops[id].Call {
		panic(fmt.Sprintf("linearizability: operation %d returns at %d before its call at %d", id, at, r.ops[id].Call))
	}
	op := r.finish(id)
	op.Output, op.Return = out, at
}

// Unknown records that the outcome of operation id will never be known:
// it timed out, or its member or connection was lost. The operation may
// take effect at any time after its call, or never.
func (r *Recorder) Unknown(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finish(id).Unknown = true
}

// Applied records that operation id took effect with the answer out, which
// its client never received: a harness that sees every member's applied
// log (the simulator) knows what a timed-out write did. The operation may
// have taken effect at any time after its call. Prefer it to Unknown
// whenever the outcome can be learned: a known answer is far cheaper to
// check than an unknown one. A write that the harness knows never took
// effect is recorded with NoEffect.
func (r *Recorder) Applied(id int, out Output) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op := r.finish(id)
	op.Output, op.Unseen = out, true
}

// NoEffect records that operation id, whose client never learned its
// outcome, is known never to have taken effect within the history: a
// harness that sees every member's applied log saw no member apply it. The
// check leaves it out, as if it had never been called; that is sound only
// if nothing in the history could have observed it.
func (r *Recorder) NoEffect(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finish(id).NoEffect = true
}

// finish marks operation id done and returns it. The caller holds mu.
func (r *Recorder) finish(id int) *Operation {
	if id < 0 || id >= len(r.ops) {
		panic(fmt.Sprintf("linearizability: no operation %d", id))
	}
	if r.done[id] {
		panic(fmt.Sprintf("linearizability: operation %d finished twice", id))
	}
	r.done[id] = true
	return &r.ops[id]
}

// Annotate adds an annotation to the history.
func (r *Recorder) Annotate(a Annotation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.annotations = append(r.annotations, a)
}

// History returns a copy of the history so far. Operations still in
// flight are marked Unknown in the copy: their outcome is not known yet.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := History{
		Operations:  append([]Operation(nil), r.ops...),
		Annotations: append([]Annotation(nil), r.annotations...),
	}
	for i := range h.Operations {
		if !r.done[i] {
			h.Operations[i].Unknown = true
		}
	}
	return h
}

// WallClock returns a clock for recording real-cluster histories: now
// reads nanoseconds since the call from the monotonic clock, so it never
// goes backwards, and epoch is the wall-clock instant of its zero, to be
// passed as Options.Epoch so that TTL expirations (wall-clock instants)
// can be compared with recorded times.
func WallClock() (now func() int64, epoch time.Time) {
	start := time.Now()
	return func() int64 { return int64(time.Since(start)) }, start
}
