package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Membership changes travel through the log as EntryConfChange entries and
// take effect when the application applies them (ApplyConfChange). Two
// forms exist:
//
//   - a simple change adds or removes one voter (or any number of learners):
//     any two majorities of the old and new voters overlap, so no joint
//     state is needed (§4.1 of the thesis);
//   - a joint change replaces several voters at once: the cluster first
//     enters a joint configuration in which every decision needs a majority
//     of both the outgoing and the incoming voters, then leaves it (§4.3 of
//     the thesis, §6 of the paper).

// ConfChangeType is the kind of one change.
type ConfChangeType uint8

const (
	// ConfChangeAddNode adds a voter (or promotes a learner).
	ConfChangeAddNode ConfChangeType = iota
	// ConfChangeRemoveNode removes a voter or a learner.
	ConfChangeRemoveNode
	// ConfChangeAddLearnerNode adds a learner (or demotes a voter).
	ConfChangeAddLearnerNode
)

func (t ConfChangeType) String() string {
	switch t {
	case ConfChangeAddNode:
		return "AddNode"
	case ConfChangeRemoveNode:
		return "RemoveNode"
	case ConfChangeAddLearnerNode:
		return "AddLearnerNode"
	}
	return fmt.Sprintf("ConfChangeType(%d)", uint8(t))
}

// ConfChangeSingle is one member's change.
type ConfChangeSingle struct {
	Type   ConfChangeType
	NodeID uint64
}

// ConfChangeTransition says how a change with several voters is carried out.
type ConfChangeTransition uint8

const (
	// ConfChangeTransitionAuto uses a simple change when it is safe and a
	// joint one that is left automatically otherwise.
	ConfChangeTransitionAuto ConfChangeTransition = iota
	// ConfChangeTransitionJointImplicit always enters a joint configuration
	// and leaves it automatically.
	ConfChangeTransitionJointImplicit
	// ConfChangeTransitionJointExplicit enters a joint configuration that
	// the application leaves by proposing an empty ConfChange.
	ConfChangeTransitionJointExplicit
)

// ConfChange is a membership change proposed through the log. An empty
// Changes list leaves a joint configuration.
type ConfChange struct {
	Transition ConfChangeTransition
	Changes    []ConfChangeSingle
	// Context is opaque to raft; the application uses it to carry, say, the
	// new member's address.
	Context []byte
}

// LeavesJoint reports whether cc is the change that leaves a joint
// configuration.
func (cc *ConfChange) LeavesJoint() bool { return len(cc.Changes) == 0 }

// entersJoint reports whether cc must go through a joint configuration, and
// whether that configuration is left automatically.
func (cc *ConfChange) entersJoint() (joint, autoLeave bool) {
	if cc.Transition != ConfChangeTransitionAuto || len(cc.Changes) > 1 {
		switch cc.Transition {
		case ConfChangeTransitionAuto, ConfChangeTransitionJointImplicit:
			return true, true
		case ConfChangeTransitionJointExplicit:
			return true, false
		}
	}
	return false, false
}

// AppendBinary appends cc's encoding to b.
func (cc *ConfChange) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(cc.Transition))
	b = binary.AppendUvarint(b, uint64(len(cc.Changes)))
	for _, c := range cc.Changes {
		b = append(b, byte(c.Type))
		b = binary.AppendUvarint(b, c.NodeID)
	}
	return appendBytes(b, cc.Context), nil
}

// MarshalBinary encodes cc.
func (cc *ConfChange) MarshalBinary() ([]byte, error) { return cc.AppendBinary(nil) }

// UnmarshalBinary decodes cc from all of b.
func (cc *ConfChange) UnmarshalBinary(b []byte) error {
	d := decoder{buf: b}
	*cc = ConfChange{Transition: ConfChangeTransition(d.byte())}
	if n := d.count(2); n > 0 {
		cc.Changes = make([]ConfChangeSingle, n)
		for i := range cc.Changes {
			cc.Changes[i] = ConfChangeSingle{Type: ConfChangeType(d.byte()), NodeID: d.uvarint()}
			if cc.Changes[i].Type > ConfChangeAddLearnerNode && d.err == nil {
				d.fail(fmt.Errorf("raft: unknown conf change type %d", cc.Changes[i].Type))
			}
		}
	}
	cc.Context = d.bytes(true)
	if cc.Transition > ConfChangeTransitionJointExplicit && d.err == nil {
		d.fail(fmt.Errorf("raft: unknown conf change transition %d", cc.Transition))
	}
	return d.finish("conf change")
}

// changer computes the configuration that a change leads to, without
// touching the tracker it starts from.
type changer struct {
	tracker   *tracker
	lastIndex uint64
}

// simple applies changes that alter at most one voter.
func (c changer) simple(changes []ConfChangeSingle) (TrackerConfig, map[uint64]*Progress, error) {
	if c.tracker.config.Voters.IsJoint() {
		return TrackerConfig{}, nil, errors.New("raft: a simple change cannot be made in a joint configuration")
	}
	cfg, prs := c.copy()
	if err := c.apply(&cfg, prs, changes); err != nil {
		return TrackerConfig{}, nil, err
	}
	if n := symmetricDifference(c.tracker.config.Voters[0], cfg.Voters[0]); n > 1 {
		return TrackerConfig{}, nil, errors.New("raft: a simple change may alter at most one voter; use a joint change")
	}
	return cfg, prs, checkConfig(cfg, prs)
}

// enterJoint makes the current voters the outgoing half and applies changes
// to the incoming one.
func (c changer) enterJoint(autoLeave bool, changes []ConfChangeSingle) (TrackerConfig, map[uint64]*Progress, error) {
	if c.tracker.config.Voters.IsJoint() {
		return TrackerConfig{}, nil, errors.New("raft: already in a joint configuration")
	}
	cfg, prs := c.copy()
	if len(cfg.Voters[0]) == 0 {
		return TrackerConfig{}, nil, errors.New("raft: cannot make a joint change from an empty configuration")
	}
	cfg.Voters[1] = cloneSet(cfg.Voters[0])
	if err := c.apply(&cfg, prs, changes); err != nil {
		return TrackerConfig{}, nil, err
	}
	cfg.AutoLeave = autoLeave
	return cfg, prs, checkConfig(cfg, prs)
}

// leaveJoint drops the outgoing half; members that were to become learners
// become learners, members in neither half leave.
func (c changer) leaveJoint() (TrackerConfig, map[uint64]*Progress, error) {
	if !c.tracker.config.Voters.IsJoint() {
		return TrackerConfig{}, nil, errors.New("raft: cannot leave a joint configuration: not in one")
	}
	cfg, prs := c.copy()
	for id := range cfg.LearnersNext {
		cfg.Learners[id] = struct{}{}
		prs[id].IsLearner = true
	}
	clear(cfg.LearnersNext)
	for id := range cfg.Voters[1] {
		_, voter := cfg.Voters[0][id]
		_, learner := cfg.Learners[id]
		if !voter && !learner {
			delete(prs, id)
		}
	}
	cfg.Voters[1] = MajorityConfig{}
	cfg.AutoLeave = false
	return cfg, prs, checkConfig(cfg, prs)
}

func (c changer) apply(cfg *TrackerConfig, prs map[uint64]*Progress, changes []ConfChangeSingle) error {
	for _, cc := range changes {
		if cc.NodeID == None {
			return errors.New("raft: a conf change names member 0")
		}
		switch cc.Type {
		case ConfChangeAddNode:
			c.makeVoter(cfg, prs, cc.NodeID)
		case ConfChangeAddLearnerNode:
			c.makeLearner(cfg, prs, cc.NodeID)
		case ConfChangeRemoveNode:
			c.remove(cfg, prs, cc.NodeID)
		default:
			return fmt.Errorf("raft: unknown conf change type %d", cc.Type)
		}
	}
	if len(cfg.Voters[0]) == 0 {
		return errors.New("raft: the change removes every voter")
	}
	return nil
}

func (c changer) makeVoter(cfg *TrackerConfig, prs map[uint64]*Progress, id uint64) {
	pr := prs[id]
	if pr == nil {
		c.initProgress(cfg, prs, id, false)
		return
	}
	pr.IsLearner = false
	delete(cfg.Learners, id)
	delete(cfg.LearnersNext, id)
	cfg.Voters[0][id] = struct{}{}
}

func (c changer) makeLearner(cfg *TrackerConfig, prs map[uint64]*Progress, id uint64) {
	pr := prs[id]
	if pr == nil {
		c.initProgress(cfg, prs, id, true)
		return
	}
	if pr.IsLearner {
		return
	}
	delete(cfg.Voters[0], id)
	// A member still voting in the outgoing half cannot be a learner at the
	// same time; it becomes one when the joint configuration is left.
	if _, outgoing := cfg.Voters[1][id]; outgoing {
		cfg.LearnersNext[id] = struct{}{}
		return
	}
	pr.IsLearner = true
	cfg.Learners[id] = struct{}{}
}

func (c changer) remove(cfg *TrackerConfig, prs map[uint64]*Progress, id uint64) {
	if _, ok := prs[id]; !ok {
		return
	}
	delete(cfg.Voters[0], id)
	delete(cfg.Learners, id)
	delete(cfg.LearnersNext, id)
	// A member of the outgoing half keeps its progress until the joint
	// configuration is left.
	if _, outgoing := cfg.Voters[1][id]; !outgoing {
		delete(prs, id)
	}
}

func (c changer) initProgress(cfg *TrackerConfig, prs map[uint64]*Progress, id uint64, learner bool) {
	if learner {
		cfg.Learners[id] = struct{}{}
	} else {
		cfg.Voters[0][id] = struct{}{}
	}
	prs[id] = &Progress{
		// The leader starts probing at its last index; Match 0 means
		// nothing is known yet.
		Next:      max(c.lastIndex, 1),
		IsLearner: learner,
		inflights: newInflights(c.tracker.maxInflight, c.tracker.maxInflightBytes),
	}
}

// copy returns deep copies of the configuration and progress.
func (c changer) copy() (TrackerConfig, map[uint64]*Progress) {
	cfg := c.tracker.config.clone()
	prs := make(map[uint64]*Progress, len(c.tracker.progress))
	for id, pr := range c.tracker.progress {
		p := *pr
		in := *pr.inflights
		in.buffer = append([]inflight(nil), in.buffer...)
		p.inflights = &in
		prs[id] = &p
	}
	return cfg, prs
}

// checkConfig verifies the invariants of TrackerConfig against prs; a
// failure here is a bug in the changer.
func checkConfig(cfg TrackerConfig, prs map[uint64]*Progress) error {
	for _, half := range cfg.Voters {
		for id := range half {
			if _, ok := prs[id]; !ok {
				return fmt.Errorf("raft: voter %d has no progress", id)
			}
		}
	}
	for id := range cfg.Learners {
		if cfg.Voters.Contains(id) {
			return fmt.Errorf("raft: %d is both a voter and a learner", id)
		}
		if pr, ok := prs[id]; !ok || !pr.IsLearner {
			return fmt.Errorf("raft: learner %d is not tracked as one", id)
		}
	}
	for id := range cfg.LearnersNext {
		if _, ok := cfg.Voters[1][id]; !ok {
			return fmt.Errorf("raft: %d is to become a learner but is not an outgoing voter", id)
		}
	}
	for id := range prs {
		_, learner := cfg.Learners[id]
		_, next := cfg.LearnersNext[id]
		if !cfg.Voters.Contains(id) && !learner && !next {
			return fmt.Errorf("raft: member %d is tracked but not in the configuration", id)
		}
	}
	return nil
}

func symmetricDifference(a, b MajorityConfig) int {
	n := 0
	for id := range a {
		if _, ok := b[id]; !ok {
			n++
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			n++
		}
	}
	return n
}

// restoreConfig builds the configuration described by cs from nothing, by
// replaying it as changes (so the same checks apply).
func restoreConfig(t *tracker, lastIndex uint64, cs ConfState) error {
	c := changer{tracker: t, lastIndex: lastIndex}
	build := func(changes []ConfChangeSingle, joint bool) error {
		if len(changes) == 0 {
			return nil
		}
		var cfg TrackerConfig
		var prs map[uint64]*Progress
		var err error
		if joint {
			cfg, prs, err = c.enterJoint(cs.AutoLeave, changes)
		} else {
			cfg, prs, err = c.simple(changes)
		}
		if err != nil {
			return err
		}
		t.setConfig(cfg, prs)
		return nil
	}
	// Start from the outgoing voters (or the incoming ones when not joint),
	// one voter at a time, which simple changes allow.
	first := cs.VotersOutgoing
	if len(first) == 0 {
		first = cs.Voters
	}
	for _, id := range first {
		if err := build([]ConfChangeSingle{{Type: ConfChangeAddNode, NodeID: id}}, false); err != nil {
			return err
		}
	}
	var learners []ConfChangeSingle
	for _, id := range cs.Learners {
		learners = append(learners, ConfChangeSingle{Type: ConfChangeAddLearnerNode, NodeID: id})
	}
	if len(cs.VotersOutgoing) == 0 {
		return build(learners, false)
	}
	// Joint: enter with the incoming voters replacing the outgoing ones.
	var changes []ConfChangeSingle
	for _, id := range cs.VotersOutgoing {
		changes = append(changes, ConfChangeSingle{Type: ConfChangeRemoveNode, NodeID: id})
	}
	for _, id := range cs.Voters {
		changes = append(changes, ConfChangeSingle{Type: ConfChangeAddNode, NodeID: id})
	}
	changes = append(changes, learners...)
	for _, id := range cs.LearnersNext {
		changes = append(changes, ConfChangeSingle{Type: ConfChangeAddLearnerNode, NodeID: id})
	}
	return build(changes, true)
}
