package simulator

import (
	"fmt"
	"strings"
)

// FaultClass is one kind of fault the simulator can inject.
type FaultClass uint8

const (
	// FaultDrop drops messages at random.
	FaultDrop FaultClass = iota
	// FaultDup delivers some messages twice.
	FaultDup
	// FaultDelay gives some messages a long delay (a heavy tail).
	FaultDelay
	// FaultReorder delays some messages past later ones.
	FaultReorder
	// FaultPartition splits the members into two random halves.
	FaultPartition
	// FaultIsolate cuts one member (often the leader) off.
	FaultIsolate
	// FaultRing connects the members in a ring in which every member sees
	// a majority and no two see the same one.
	FaultRing
	// FaultOneWay cuts the links into or out of one member only.
	FaultOneWay
	// FaultClog holds the messages on some links, then releases them in a
	// random order.
	FaultClog
	// FaultCrash crashes a member (losing what its disk had not synced)
	// and restarts it later.
	FaultCrash
	// FaultTorn crashes a member in the middle of a disk write.
	FaultTorn
	// FaultPause stops a member, which then resumes with a backlog.
	FaultPause
	// FaultSlow makes a member's processing and disk slow for a while.
	FaultSlow
	// FaultDrift gives every member its own tick rate.
	FaultDrift
	// FaultDiskFull makes a member's writes fail for a while.
	FaultDiskFull
	// FaultCorrupt damages a durable record on a crashed member's disk,
	// which must then refuse to start (at most a minority of members).
	FaultCorrupt
	// FaultMembership changes the cluster's membership: adds a member (a
	// learner, promoted once caught up, or at once a voter), removes one
	// (the leader too), replaces one, promotes a learner (full members
	// only); sometimes a member crashes while the change is under way.
	FaultMembership
	// FaultStrand cuts a leader off just after it sent new entries, of
	// which only some reach their follower (see nemesis.go).
	FaultStrand
	// FaultChurn cuts off or crashes a leader as soon as it is elected.
	FaultChurn
	// FaultChase sends clients to a leader that was cut off.
	FaultChase
	numFaultClasses
)

var faultNames = [numFaultClasses]string{
	"drop", "dup", "delay", "reorder", "partition", "isolate", "ring", "oneway",
	"clog", "crash", "torn", "pause", "slow", "drift", "diskfull", "corrupt",
	"membership", "strand", "churn", "chase",
}

func (c FaultClass) String() string {
	if c < numFaultClasses {
		return faultNames[c]
	}
	return fmt.Sprintf("FaultClass(%d)", uint8(c))
}

// FaultSet is a set of fault classes.
type FaultSet uint32

// AllFaults has every class.
const AllFaults FaultSet = 1<<numFaultClasses - 1

// Has reports whether c is in s.
func (s FaultSet) Has(c FaultClass) bool { return s&(1<<c) != 0 }

// With returns s with c added; Without, with c removed.
func (s FaultSet) With(c FaultClass) FaultSet    { return s | 1<<c }
func (s FaultSet) Without(c FaultClass) FaultSet { return s &^ (1 << c) }

// Classes returns the classes in s, in order.
func (s FaultSet) Classes() []FaultClass {
	var out []FaultClass
	for c := range numFaultClasses {
		if s.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// String lists the classes ("none", "all", or names joined by commas), in
// the form ParseFaults reads.
func (s FaultSet) String() string {
	switch s {
	case 0:
		return "none"
	case AllFaults:
		return "all"
	}
	var names []string
	for _, c := range s.Classes() {
		names = append(names, c.String())
	}
	return strings.Join(names, ",")
}

// ParseFaults reads a comma-separated list of class names, "all" or
// "none"; a name prefixed with "-" removes that class ("all,-corrupt").
func ParseFaults(text string) (FaultSet, error) {
	var s FaultSet
	for _, name := range strings.Split(text, ",") {
		name = strings.TrimSpace(name)
		remove := strings.HasPrefix(name, "-")
		name = strings.TrimPrefix(name, "-")
		var add FaultSet
		switch name {
		case "":
			continue
		case "all":
			add = AllFaults
		case "none":
		case "network":
			add = 1<<FaultDrop | 1<<FaultDup | 1<<FaultDelay | 1<<FaultReorder | 1<<FaultPartition |
				1<<FaultIsolate | 1<<FaultRing | 1<<FaultOneWay | 1<<FaultClog | 1<<FaultStrand | 1<<FaultChurn | 1<<FaultChase
		default:
			found := false
			for c := range numFaultClasses {
				if c.String() == name {
					add, found = 1<<c, true
				}
			}
			if !found {
				return 0, fmt.Errorf("unknown fault class %q (known: all, none, network, %s)", name, strings.Join(faultNames[:], ", "))
			}
		}
		if remove {
			s &^= add
		} else {
			s |= add
		}
	}
	return s, nil
}

// cutsLinks reports whether faults of class c cut links (and their heal
// restores every link).
func (c FaultClass) cutsLinks() bool {
	switch c {
	case FaultPartition, FaultIsolate, FaultRing, FaultOneWay, FaultStrand, FaultChurn:
		return true
	}
	return false
}
