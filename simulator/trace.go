package simulator

import (
	"bufio"
	"io"
	"strconv"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// tracer folds every event into the run's trace hash and, if a writer is
// set, writes it as one JSON line:
//
//	{"n":17,"t_us":10250,"kind":"deliver","from":1,"to":3,"msg":"MsgApp","term":2,"index":5,"commit":4,"entries":1}
//
// n is the event number (the one a failure names), t_us the virtual time in
// microseconds. Fields that do not apply are left out.
type tracer struct {
	hash uint64
	w    *bufio.Writer
	buf  []byte
	// lb builds the lines of viewtrace.go.
	lb lineBuilder
}

func newTracer(w io.Writer) *tracer {
	t := &tracer{hash: hashInit}
	if w != nil {
		t.w = bufio.NewWriterSize(w, 1<<16)
	}
	return t
}

// traceKind names a trace line.
type traceKind uint8

const (
	trDeliver traceKind = iota + 1
	trDrop
	trDup
	trTick
	trProcess
	trState
	trCommit
	trFault
	trHeal
	trCrash
	trRestart
	trCall
	trReturn
	trTimeout
	trPhase
)

var traceNames = [...]string{"?", "deliver", "drop", "dup", "tick", "process", "state", "commit", "fault", "heal", "crash", "restart", "call", "return", "timeout", "phase"}

// written are the kinds add writes; the rest are hashed only, and the
// lines of viewtrace.go say them for a reader.
var written = [...]bool{trCommit: true, trCrash: true, trRestart: true, trPhase: true}

// traceRecord is one line; zero fields are not written.
type traceRecord struct {
	n      uint64
	at     time.Duration
	kind   traceKind
	member uint64
	from   uint64
	to     uint64
	msg    raft.MessageType
	term   uint64
	index  uint64
	commit uint64
	count  uint64
	lead   uint64
	state  string
	detail string
}

func (t *tracer) add(r *traceRecord) {
	h := mix(t.hash, r.n)
	h = mix(h, uint64(r.at))
	h = mix(h, uint64(r.kind)|uint64(r.msg)<<8|r.member<<16|r.from<<32|r.to<<48)
	h = mix(h, r.term)
	h = mix(h, r.index)
	h = mix(h, r.commit^r.count<<40^r.lead<<52)
	if r.detail != "" {
		h = hashBytes(h, []byte(r.detail))
	}
	t.hash = h
	if t.w == nil || !written[r.kind] {
		return // the other kinds are written as the lines of viewtrace.go
	}
	b := t.buf[:0]
	b = append(b, `{"n":`...)
	b = strconv.AppendUint(b, r.n, 10)
	b = append(b, `,"t_us":`...)
	b = strconv.AppendInt(b, r.at.Microseconds(), 10)
	b = append(b, `,"kind":"`...)
	b = append(b, traceNames[r.kind]...)
	b = append(b, '"')
	field := func(name string, v uint64) {
		if v != 0 {
			b = append(b, `,"`...)
			b = append(b, name...)
			b = append(b, `":`...)
			b = strconv.AppendUint(b, v, 10)
		}
	}
	field("member", r.member)
	field("from", r.from)
	field("to", r.to)
	if r.msg != 0 {
		b = append(b, `,"msg":"`...)
		b = append(b, r.msg.String()...)
		b = append(b, '"')
	}
	field("term", r.term)
	field("index", r.index)
	field("commit", r.commit)
	field("count", r.count)
	field("lead", r.lead)
	if r.state != "" {
		b = append(b, `,"state":"`...)
		b = append(b, r.state...)
		b = append(b, '"')
	}
	if r.detail != "" {
		b = append(b, `,"detail":`...)
		b = strconv.AppendQuote(b, r.detail)
	}
	b = append(b, "}\n"...)
	t.buf = b
	_, _ = t.w.Write(b)
}

func (t *tracer) flush() {
	if t.w != nil {
		_ = t.w.Flush()
	}
}
