package simulator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// TraceHeader is a trace's first line (see the package doc, "The trace").
type TraceHeader struct {
	Kind          string `json:"kind"`
	Format        string `json:"format"`
	Version       int    `json:"version"`
	Seed          uint64 `json:"seed"`
	Members       int    `json:"members"`
	Slots         int    `json:"slots"`
	MemberKind    string `json:"member_kind"`
	TickUs        int64  `json:"tick_us"`
	ElectionTick  int    `json:"election_tick"`
	HeartbeatTick int    `json:"heartbeat_tick"`
	DurationUs    int64  `json:"duration_us"`
	Params        string `json:"params"`
	Replay        string `json:"replay"`
}

// TraceVersion is the version of the trace format this simulator writes.
const TraceVersion = 2

// TraceLine is one line of a trace: every field any kind uses.
type TraceLine struct {
	N        uint64     `json:"n"`
	AtUs     int64      `json:"t_us"`
	Kind     string     `json:"kind"`
	Member   uint64     `json:"member"`
	Status   string     `json:"status"`
	Role     string     `json:"role"`
	Term     uint64     `json:"term"`
	Vote     uint64     `json:"vote"`
	Lead     uint64     `json:"lead"`
	Commit   uint64     `json:"commit"`
	Applied  uint64     `json:"applied"`
	First    uint64     `json:"first"`
	From     uint64     `json:"from"`
	To       uint64     `json:"to"`
	Runs     [][3]any   `json:"runs"`
	Snap     uint64     `json:"snap_index"`
	SnapTerm uint64     `json:"snap_term"`
	Voters   []uint64   `json:"voters"`
	Learners []uint64   `json:"learners"`
	Outgoing []uint64   `json:"outgoing"`
	ID       uint64     `json:"id"`
	Msg      string     `json:"msg"`
	Why      string     `json:"why"`
	Cut      [][]uint64 `json:"cut"`
	Detail   string     `json:"detail"`
	Class    string     `json:"class"`
	Op       string     `json:"op"`
	Result   string     `json:"result"`
	Outcome  string     `json:"outcome"`
	Do       string     `json:"do"`
}

// MemberState is one member's state as a trace tells it, after some event.
type MemberState struct {
	ID      uint64 `json:"id"`
	Status  string `json:"status"` // "" for a slot never started
	Role    string `json:"role"`
	Term    uint64 `json:"term"`
	Vote    uint64 `json:"vote"`
	Lead    uint64 `json:"lead"`
	Commit  uint64 `json:"commit"`
	Applied uint64 `json:"applied"`
	// The log as written: entries First..Last (none if Last < First),
	// Terms and Types (one letter each: n, e, c) of each; it starts after
	// the snapshot SnapIndex, SnapTerm.
	First     uint64   `json:"first"`
	Last      uint64   `json:"last"`
	SnapIndex uint64   `json:"snap_index"`
	SnapTerm  uint64   `json:"snap_term"`
	Terms     []uint64 `json:"terms"`
	Types     string   `json:"types"`
	Voters    []uint64 `json:"voters"`
	Learners  []uint64 `json:"learners"`
	Outgoing  []uint64 `json:"outgoing"`
}

// ClusterState is the whole cluster after event N.
type ClusterState struct {
	N    uint64 `json:"n"`
	AtUs int64  `json:"t_us"`
	// Commit is the cluster's commit index.
	Commit  uint64        `json:"commit"`
	Members []MemberState `json:"members"`
	// InFlight are the IDs of the messages sent and not yet delivered or
	// dropped, in increasing order; Cut the directed links cut.
	InFlight []uint64   `json:"in_flight"`
	Cut      [][]uint64 `json:"cut"`
}

// Rebuilder rebuilds the cluster's state from a trace, line by line: the
// reference the viewer's replay model is tested against, and which is
// itself tested against the members' real state.
type Rebuilder struct {
	Header   TraceHeader
	state    ClusterState
	inFlight map[uint64]bool
}

// NewRebuilder starts from a trace's header line.
func NewRebuilder(header []byte) (*Rebuilder, error) {
	var h TraceHeader
	if err := json.Unmarshal(header, &h); err != nil {
		return nil, fmt.Errorf("trace header: %w", err)
	}
	if h.Kind != "header" || h.Format != "raftkv-trace" {
		return nil, fmt.Errorf("trace header: not a raftkv trace (kind %q, format %q)", h.Kind, h.Format)
	}
	if h.Version != TraceVersion {
		return nil, fmt.Errorf("trace header: version %d, this raftkv reads version %d", h.Version, TraceVersion)
	}
	if h.Slots < h.Members || h.Slots > 64 {
		return nil, fmt.Errorf("trace header: %d slots for %d members", h.Slots, h.Members)
	}
	r := &Rebuilder{Header: h, inFlight: map[uint64]bool{}}
	r.state.Members = make([]MemberState, h.Slots)
	for i := range r.state.Members {
		r.state.Members[i] = MemberState{ID: uint64(i + 1), First: 1}
	}
	return r, nil
}

// Apply folds one trace line into the state.
func (r *Rebuilder) Apply(line []byte) error {
	var l TraceLine
	if err := json.Unmarshal(line, &l); err != nil {
		return fmt.Errorf("trace line %.80q: %w", line, err)
	}
	r.state.N, r.state.AtUs = l.N, l.AtUs
	var m *MemberState
	if l.Member >= 1 && int(l.Member) <= len(r.state.Members) {
		m = &r.state.Members[l.Member-1]
	}
	switch l.Kind {
	case "member":
		if m == nil {
			return fmt.Errorf("event %d: member line for member %d", l.N, l.Member)
		}
		m.Status, m.Role, m.Term, m.Vote, m.Lead, m.Commit, m.Applied = l.Status, l.Role, l.Term, l.Vote, l.Lead, l.Commit, l.Applied
	case "log":
		if m == nil {
			return fmt.Errorf("event %d: log line for member %d", l.N, l.Member)
		}
		return applyLog(m, &l)
	case "conf":
		if m == nil {
			return fmt.Errorf("event %d: conf line for member %d", l.N, l.Member)
		}
		m.Voters, m.Learners, m.Outgoing = l.Voters, l.Learners, l.Outgoing
	case "send":
		r.inFlight[l.ID] = true
	case "deliver", "drop":
		if !r.inFlight[l.ID] {
			return fmt.Errorf("event %d: %s of message %d, which is not in flight", l.N, l.Kind, l.ID)
		}
		delete(r.inFlight, l.ID)
	case "commit":
		r.state.Commit = l.Commit
	case "fault", "heal":
		if l.Cut != nil {
			r.state.Cut = l.Cut
		}
	}
	return nil
}

// applyLog applies a log line (see the package doc) to m.
func applyLog(m *MemberState, l *TraceLine) error {
	if l.First != 0 {
		if l.First > m.First {
			drop := min(l.First-m.First, uint64(len(m.Terms)))
			m.Terms, m.Types = m.Terms[drop:], m.Types[drop:]
		}
		if l.First != m.First && l.From != l.First && l.First > m.Last+1 {
			return fmt.Errorf("event %d: member %d's log starts at %d, after its last entry %d, without entries", l.N, m.ID, l.First, m.Last)
		}
		if l.First < m.First && l.From != l.First {
			return fmt.Errorf("event %d: member %d's log first index goes back from %d to %d", l.N, m.ID, m.First, l.First)
		}
		m.First = l.First
		if m.Last < m.First-1 {
			m.Last = m.First - 1
		}
		m.SnapIndex, m.SnapTerm = l.Snap, l.SnapTerm
	}
	if l.From == 0 {
		return nil
	}
	if l.From < m.First || l.From > m.Last+1 {
		return fmt.Errorf("event %d: member %d's log %d..%d: entries from %d leave a gap", l.N, m.ID, m.First, m.Last, l.From)
	}
	keep := l.From - m.First
	m.Terms, m.Types = slices.Clone(m.Terms[:keep]), m.Types[:keep]
	var types strings.Builder
	types.WriteString(m.Types)
	for _, run := range l.Runs {
		term, okTerm := run[0].(float64)
		count, okCount := run[1].(float64)
		kind, okKind := run[2].(string)
		if !okTerm || !okCount || !okKind || count < 1 || len(kind) != 1 {
			return fmt.Errorf("event %d: member %d: bad log run %v (want [term, count, type])", l.N, m.ID, run)
		}
		for range int(count) {
			m.Terms = append(m.Terms, uint64(term))
			types.WriteString(kind)
		}
	}
	m.Types = types.String()
	m.Last = m.First + uint64(len(m.Terms)) - 1
	return nil
}

// State returns the state as of the last line applied.
func (r *Rebuilder) State() ClusterState {
	st := r.state
	st.Members = slices.Clone(st.Members)
	for i := range st.Members {
		st.Members[i].Terms = slices.Clone(st.Members[i].Terms)
	}
	st.InFlight = make([]uint64, 0, len(r.inFlight))
	for id := range r.inFlight {
		st.InFlight = append(st.InFlight, id)
	}
	slices.Sort(st.InFlight)
	return st
}

// RebuildAt reads a trace and returns the state after each event in at
// (increasing), by event number.
func RebuildAt(trace io.Reader, at []uint64) (TraceHeader, map[uint64]ClusterState, error) {
	sc := bufio.NewScanner(trace)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	if !sc.Scan() {
		return TraceHeader{}, nil, fmt.Errorf("trace: empty")
	}
	r, err := NewRebuilder(sc.Bytes())
	if err != nil {
		return TraceHeader{}, nil, err
	}
	states := map[uint64]ClusterState{}
	next := 0
	var peek struct {
		N uint64 `json:"n"`
	}
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &peek); err != nil {
			return r.Header, nil, fmt.Errorf("trace line %.80q: %w", sc.Bytes(), err)
		}
		for next < len(at) && peek.N > at[next] {
			states[at[next]] = r.State()
			next++
		}
		if err := r.Apply(sc.Bytes()); err != nil {
			return r.Header, nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return r.Header, nil, fmt.Errorf("trace: %w", err)
	}
	for ; next < len(at); next++ {
		states[at[next]] = r.State()
	}
	return r.Header, states, nil
}
