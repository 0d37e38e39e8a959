package raft

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Scenario tests: stories of a cluster told as text files in testdata/.
// Each file is a sequence of commands, each followed by "----" and the
// output it must produce:
//
//	# Member 1 wins the first election.
//	campaign 1
//	----
//	1 became PreCandidate at term 1
//
// Run with -rewrite to write the actual outputs into the files (then read
// the diff: it is the behaviour change).
//
// Commands:
//
//	add-nodes N [prevote] [checkquorum] [lease] [chunk=BYTES] [maxmsg=BYTES] [inflight=N]
//	campaign ID                  start an election at ID
//	propose ID DATA              propose DATA at ID
//	tick N [ID...]               tick the given members (all by default) N times
//	run N                        tick all members N times, delivering everything after each tick
//	deliver [from=ID] [to=ID] [n=N]  deliver the queued messages once (filtered; the first N)
//	drop [from=ID] [to=ID] [n=N]     drop queued messages (filtered; the first N)
//	stabilize                    deliver until nothing moves
//	partition 1 2 | 3            cut every link between the groups
//	heal                         restore every link
//	raft-log ID                  print ID's log
//	status [ID...]               print role, term, leader, commit, applied
//	read-index ID CTX            ReadIndex at ID
//	read-states ID               print and clear ID's ReadStates
//	transfer-leadership FROM TO  ask FROM (leader) to hand over to TO
//	compact ID INDEX             snapshot ID's state at INDEX and compact
//	restart ID                   crash ID (durable state survives) and restart it
//	applied ID                   print the data ID applied
//	new-node ID                  start member ID with empty storage (joining)
//	propose-conf-change ID CHANGES  e.g. "v4 l5 r1" [joint|explicit]; none: leave joint
//	conf ID...                   print members' configurations
var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs of scenario tests")

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in testdata/: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScenario(t, file)
		})
	}
}

// scenarioStep is one command with its expected output.
type scenarioStep struct {
	comments []string
	command  string
	expected string
	line     int
}

func parseScenario(t *testing.T, file string) []scenarioStep {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []scenarioStep
	var cur scenarioStep
	var out []string
	inOutput := false
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case inOutput && text == "":
			cur.expected = strings.Join(out, "\n")
			steps = append(steps, cur)
			cur, out, inOutput = scenarioStep{}, nil, false
		case inOutput:
			out = append(out, text)
		case strings.HasPrefix(text, "#") || (text == "" && cur.command == ""):
			cur.comments = append(cur.comments, text)
		case text == "----":
			inOutput = true
		default:
			if cur.command != "" {
				t.Fatalf("%s:%d: command %q has no ---- line", file, line, cur.command)
			}
			cur.command, cur.line = text, line
		}
	}
	if inOutput {
		cur.expected = strings.Join(out, "\n")
		steps = append(steps, cur)
	}
	return steps
}

func runScenario(t *testing.T, file string) {
	steps := parseScenario(t, file)
	s := &scenario{t: t}
	var rewritten strings.Builder
	for _, st := range steps {
		got := strings.TrimRight(s.run(st.command), "\n")
		if got == "" {
			got = "ok"
		}
		if *rewrite {
			for _, c := range st.comments {
				rewritten.WriteString(c + "\n")
			}
			fmt.Fprintf(&rewritten, "%s\n----\n%s\n\n", st.command, got)
			continue
		}
		if got != st.expected {
			t.Fatalf("%s:%d: %s\nexpected:\n%s\ngot:\n%s", file, st.line, st.command, st.expected, got)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(strings.TrimRight(rewritten.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scenario is the state of one story: a cluster and what it printed.
type scenario struct {
	t   *testing.T
	c   *testCluster
	out strings.Builder
	// quiet suppresses the printing of messages.
	quiet bool
	// roles remembers each member's last reported role and term, to print
	// changes.
	roles map[uint64]string
}

func (s *scenario) printf(format string, args ...any) { fmt.Fprintf(&s.out, format+"\n", args...) }

func (s *scenario) run(command string) string {
	s.out.Reset()
	fields := strings.Fields(command)
	args := fields[1:]
	switch fields[0] {
	case "add-nodes":
		s.addNodes(args)
	case "campaign":
		s.c.nodes[s.id(args[0])].Campaign()
		s.settle()
	case "propose":
		if err := s.c.nodes[s.id(args[0])].Propose([]byte(args[1])); err != nil {
			s.printf("error: %v", err)
		}
		s.settle()
	case "tick":
		s.tick(args)
	case "run":
		// Tick everyone N times, letting the network settle after each
		// tick: time passes with a fast network.
		// Only changes of role are printed.
		s.quiet = true
		for range s.uint(args[0]) {
			s.tick([]string{"1"})
			for len(s.c.inflight) > 0 {
				s.deliver(nil, false)
			}
		}
		s.quiet = false
	case "deliver":
		s.deliver(args, false)
	case "drop":
		s.deliver(args, true)
	case "stabilize":
		for i := 0; len(s.c.inflight) > 0; i++ {
			if i > 1000 {
				s.t.Fatal("stabilize: no end in sight")
			}
			s.deliver(nil, false)
		}
	case "partition":
		var groups [][]uint64
		var g []uint64
		for _, a := range args {
			if a == "|" {
				groups, g = append(groups, g), nil
				continue
			}
			g = append(g, s.id(a))
		}
		s.c.partition(append(groups, g)...)
	case "heal":
		s.c.heal()
	case "raft-log":
		s.raftLog(s.id(args[0]))
	case "status":
		ids := s.c.ids
		if len(args) > 0 {
			ids = nil
			for _, a := range args {
				ids = append(ids, s.id(a))
			}
		}
		for _, id := range ids {
			s.printf("%s", s.status(id))
		}
	case "read-index":
		s.c.nodes[s.id(args[0])].ReadIndex([]byte(args[1]))
		s.settle()
	case "read-states":
		id := s.id(args[0])
		for _, rs := range s.c.readStates[id] {
			s.printf("%d: read %q at index %d", id, rs.RequestCtx, rs.Index)
		}
		s.c.readStates[id] = nil
	case "transfer-leadership":
		s.c.nodes[s.id(args[0])].TransferLeadership(s.id(args[1]))
		s.settle()
	case "compact":
		s.compact(s.id(args[0]), s.uint(args[1]))
	case "restart":
		id := s.id(args[0])
		s.c.restart(id)
		s.roles[id] = ""
		s.settle()
	case "new-node":
		// A member with empty storage, joining: it learns its cluster from
		// the leader (a snapshot, or the log from the start).
		id := s.id(args[0])
		s.c.addMember(id)
		s.roles[id] = ""
		s.settle()
	case "propose-conf-change":
		s.proposeConfChange(s.id(args[0]), args[1:])
	case "conf":
		for _, a := range args {
			id := s.id(a)
			cs := s.c.nodes[id].Status().Config
			line := fmt.Sprintf("%d: voters=%v", id, cs.Voters)
			if len(cs.VotersOutgoing) > 0 {
				line += fmt.Sprintf(" outgoing=%v", cs.VotersOutgoing)
			}
			if len(cs.Learners) > 0 {
				line += fmt.Sprintf(" learners=%v", cs.Learners)
			}
			if len(cs.LearnersNext) > 0 {
				line += fmt.Sprintf(" learners-next=%v", cs.LearnersNext)
			}
			if cs.AutoLeave {
				line += " autoleave"
			}
			s.printf("%s", line)
		}
	case "applied":
		id := s.id(args[0])
		s.printf("%d: %s", id, strings.Join(s.c.appliedData(id), " "))
	default:
		s.t.Fatalf("unknown command %q", command)
	}
	return s.out.String()
}

func (s *scenario) id(a string) uint64 { return s.uint(a) }

// proposeConfChange proposes a change at member id: "v4" adds voter 4, "l4"
// learner 4, "r4" removes 4; "joint" or "explicit" choose the transition.
func (s *scenario) proposeConfChange(id uint64, args []string) {
	var cc ConfChange
	for _, a := range args {
		switch a {
		case "joint":
			cc.Transition = ConfChangeTransitionJointImplicit
			continue
		case "explicit":
			cc.Transition = ConfChangeTransitionJointExplicit
			continue
		case "leave":
			continue // no changes: leave the joint configuration
		}
		t := map[byte]ConfChangeType{'v': ConfChangeAddNode, 'l': ConfChangeAddLearnerNode, 'r': ConfChangeRemoveNode}[a[0]]
		cc.Changes = append(cc.Changes, ConfChangeSingle{Type: t, NodeID: s.id(a[1:])})
	}
	if err := s.c.nodes[id].ProposeConfChange(cc); err != nil {
		s.printf("error: %v", err)
	}
	s.settle()
}

func (s *scenario) uint(a string) uint64 {
	v, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		s.t.Fatalf("bad number %q", a)
	}
	return v
}

func (s *scenario) addNodes(args []string) {
	n := int(s.uint(args[0]))
	opts := map[string]string{}
	for _, a := range args[1:] {
		k, v, _ := strings.Cut(a, "=")
		opts[k] = v
	}
	s.c = newTestCluster(s.t, n, func(c *Config) {
		_, c.PreVote = opts["prevote"]
		_, c.CheckQuorum = opts["checkquorum"]
		if _, ok := opts["lease"]; ok {
			c.ReadOnlyOption = ReadOnlyLeaseBased
		}
		if v, ok := opts["chunk"]; ok {
			c.MaxSnapshotChunkSize = s.uint(v)
		}
		if v, ok := opts["maxmsg"]; ok {
			c.MaxSizePerMsg = s.uint(v)
		}
		if v, ok := opts["inflight"]; ok {
			c.MaxInflightMsgs = int(s.uint(v))
		}
	})
	s.roles = map[uint64]string{}
	s.reportRoles()
	for _, id := range s.c.ids {
		s.printf("%s", s.status(id))
	}
}

// settle processes readies (which queues messages) and reports role changes.
func (s *scenario) settle() {
	for s.c.processReadies() {
	}
	s.reportRoles()
}

func (s *scenario) reportRoles() {
	for _, id := range s.c.ids {
		hs, ss, _ := s.c.nodes[id].BasicStatus()
		role := fmt.Sprintf("%s at term %d", ss.State, hs.Term)
		if s.roles[id] != "" && s.roles[id] != role {
			s.printf("%d became %s", id, role)
		}
		s.roles[id] = role
	}
}

func (s *scenario) tick(args []string) {
	n := int(s.uint(args[0]))
	ids := s.c.ids
	if len(args) > 1 {
		ids = nil
		for _, a := range args[1:] {
			ids = append(ids, s.id(a))
		}
	}
	for range n {
		for _, id := range ids {
			s.c.nodes[id].Tick()
		}
		s.settle()
	}
}

// deliver hands over (or drops) the queued messages that match the filter,
// printing each.
func (s *scenario) deliver(args []string, drop bool) {
	var from, to uint64
	limit := -1
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "from":
			from = s.id(v)
		case "to":
			to = s.id(v)
		case "n":
			limit = int(s.uint(v))
		}
	}
	msgs := s.c.inflight
	s.c.inflight = nil
	var keep []Message
	for _, m := range msgs {
		if (from != 0 && m.From != from) || (to != 0 && m.To != to) || limit == 0 {
			keep = append(keep, m)
			continue
		}
		limit--
		if drop || s.c.cut[[2]uint64{m.From, m.To}] {
			if !s.quiet {
				s.printf("dropped: %s", describe(m))
			}
			continue
		}
		n, ok := s.c.nodes[m.To]
		if !ok {
			if !s.quiet {
				s.printf("dropped (no such member): %s", describe(m))
			}
			continue
		}
		if !s.quiet {
			s.printf("%s", describe(m))
		}
		_ = n.Step(m)
	}
	s.c.inflight = append(keep, s.c.inflight...)
	s.settle()
}

func (s *scenario) status(id uint64) string {
	st := s.c.nodes[id].Status()
	line := fmt.Sprintf("%d: %s term=%d", id, st.State, st.Term)
	if st.Lead != None && st.State != StateLeader {
		line += fmt.Sprintf(" lead=%d", st.Lead)
	}
	if st.Vote != None {
		line += fmt.Sprintf(" vote=%d", st.Vote)
	}
	return line + fmt.Sprintf(" commit=%d applied=%d last=%d", st.Commit, st.Applied, st.LastIndex)
}

func (s *scenario) raftLog(id uint64) {
	n := s.c.nodes[id]
	first := n.r.log.firstIndex()
	if first > 1 {
		s.printf("%d: snapshot at %d", id, first-1)
	}
	ents, err := n.r.log.slice(first, n.r.log.lastIndex()+1, ^uint64(0))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range ents {
		s.printf("%d: %s", id, describeEntry(e))
	}
}

func (s *scenario) compact(id, index uint64) {
	st := s.c.storage[id]
	cs := s.c.nodes[id].r.trk.config.ConfState()
	data := []byte(strings.Join(s.c.appliedData(id), ","))
	if _, err := st.CreateSnapshot(index, &cs, data); err != nil {
		s.printf("error: %v", err)
		return
	}
	if err := st.Compact(index); err != nil {
		s.printf("error: %v", err)
	}
}

func describeEntry(e Entry) string {
	switch {
	case e.Type == EntryConfChange:
		var cc ConfChange
		if err := cc.UnmarshalBinary(e.Data); err != nil {
			return fmt.Sprintf("%d/%d conf change (undecodable)", e.Index, e.Term)
		}
		var parts []string
		for _, c := range cc.Changes {
			parts = append(parts, fmt.Sprintf("%s(%d)", c.Type, c.NodeID))
		}
		if len(parts) == 0 {
			parts = []string{"LeaveJoint"}
		}
		return fmt.Sprintf("%d/%d conf %s", e.Index, e.Term, strings.Join(parts, " "))
	case len(e.Data) == 0:
		return fmt.Sprintf("%d/%d no-op", e.Index, e.Term)
	}
	return fmt.Sprintf("%d/%d %q", e.Index, e.Term, e.Data)
}

// describe is a one-line account of a message, saying only what its type
// uses.
func describe(m Message) string {
	head := fmt.Sprintf("%d->%d %s term=%d", m.From, m.To, m.Type, m.Term)
	switch m.Type {
	case MsgApp:
		var ents []string
		for _, e := range m.Entries {
			ents = append(ents, describeEntry(e))
		}
		return fmt.Sprintf("%s prev=%d/%d commit=%d entries=[%s]", head, m.Index, m.LogTerm, m.Commit, strings.Join(ents, ", "))
	case MsgAppResp:
		if m.Reject {
			return fmt.Sprintf("%s rejected index=%d hint=%d/%d", head, m.Index, m.RejectHint, m.LogTerm)
		}
		return fmt.Sprintf("%s index=%d", head, m.Index)
	case MsgVote, MsgPreVote:
		s := fmt.Sprintf("%s last=%d/%d", head, m.Index, m.LogTerm)
		if m.Transfer {
			s += " transfer"
		}
		return s
	case MsgVoteResp, MsgPreVoteResp:
		if m.Reject {
			return head + " rejected"
		}
		return head + " granted"
	case MsgHeartbeat:
		return fmt.Sprintf("%s commit=%d", head, m.Commit)
	case MsgSnap:
		c := m.Snapshot
		return fmt.Sprintf("%s snapshot=%d/%d bytes=[%d,%d) of %d", head, c.Metadata.Index, c.Metadata.Term, c.Offset, c.Offset+uint64(len(c.Data)), c.Total)
	case MsgSnapResp:
		s := fmt.Sprintf("%s snapshot=%d received=%d", head, m.Snapshot.Metadata.Index, m.Snapshot.Offset)
		if m.Reject {
			s += " rejected"
		}
		return s
	case MsgProp:
		return fmt.Sprintf("%s entries=%d", head, len(m.Entries))
	case MsgReadIndex:
		return fmt.Sprintf("%s ctx=%q", head, m.Context)
	case MsgReadIndexResp:
		return fmt.Sprintf("%s index=%d ctx=%q", head, m.Index, m.Context)
	}
	return head
}

var _ = slices.Sort[[]uint64]
