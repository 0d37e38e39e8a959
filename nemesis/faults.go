package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The faults. Those aimed at "a member" hit a member drawn from the seed,
// or the leader of the moment when the schedule says so.
const (
	// Halves splits the members into two groups that cannot talk, a
	// minority and a majority (with 3 members: one and two).
	Halves Kind = "partition-halves"
	// Isolate cuts one member off from every other, both ways.
	Isolate Kind = "isolate"
	// Ring leaves each member with links to its neighbours on a ring only:
	// every member sees a majority (itself and its neighbours, with 5),
	// no two the same one. With 3 members, one link is cut: the member in
	// the middle is a bridge between two that cannot talk.
	Ring Kind = "ring"
	// OneWay drops what one member sends to the others (or what they send
	// it) while the other direction works.
	OneWay Kind = "one-way"
	// Loss drops a random share of the packets on every link between
	// members.
	Loss Kind = "loss"
	// Delay delays every packet between members (tc netem; only where the
	// kernel has it).
	Delay Kind = "delay"
	// Kill SIGKILLs a member; the heal restarts it on its data directory.
	Kill Kind = "kill"
	// Pause stops a member with SIGSTOP; the heal continues it (SIGCONT).
	Pause Kind = "pause"
	// RemoveAdd removes a member from the cluster under load (`member
	// remove`); the heal adds it back as a new member with an empty data
	// directory.
	RemoveAdd Kind = "remove-add"
	// Wipe SIGKILLs a member and wipes its data directory. An empty
	// member must not come back under its old ID (it could vote away
	// acknowledged writes), so the operator's steps follow: `member
	// remove` at once, and at the heal `member add` and a start with
	// --initial-cluster-state existing on the empty directory.
	Wipe Kind = "wipe"
	// DiskFull fills the file system of the member whose data directory is
	// a small tmpfs; the heal frees it.
	DiskFull Kind = "disk-full"
)

// AllKinds lists every kind of fault, in the order of the tables.
func AllKinds() []Kind {
	return []Kind{Halves, Isolate, Ring, OneWay, Loss, Delay, Kill, Pause, RemoveAdd, Wipe, DiskFull}
}

// ParseKinds reads a comma-separated list of kinds ("all" for every one).
func ParseKinds(s string) ([]Kind, error) {
	if s == "" || s == "all" {
		return AllKinds(), nil
	}
	var out []Kind
	for _, name := range strings.Split(s, ",") {
		k := Kind(strings.TrimSpace(name))
		if !slices.Contains(AllKinds(), k) {
			return nil, fmt.Errorf("unknown fault %q: want some of %v", k, AllKinds())
		}
		out = append(out, k)
	}
	return out, nil
}

// Leader in Fault.Member means the member that leads when the fault starts.
const Leader = -1

// Fault is one entry of a schedule.
type Fault struct {
	Kind Kind
	// Member is the member hit (0-based), or Leader.
	Member int
	// Out says, for OneWay, that what Member sends is dropped (else what
	// it receives).
	Out bool
	// Groups is Halves' split: Groups[i] is member i's side (0 or 1).
	Groups []int
	// Share is Loss's share of packets dropped; DelayMs Delay's delay.
	Share   float64
	DelayMs int
	// Duration is how long the fault lasts before it is healed; Quiet how
	// long the cluster then runs undisturbed (after its first write).
	Duration, Quiet time.Duration
}

// target names the member the fault hits.
func (f Fault) target() string {
	if f.Member == Leader {
		return "the leader"
	}
	return fmt.Sprintf("m%d", f.Member+1)
}

// String describes the fault as the schedule prints it.
func (f Fault) String() string {
	return fmt.Sprintf("%-16s %-62s for %v", f.Kind, f.what(), f.Duration.Round(100*time.Millisecond))
}

// what says what the fault does.
func (f Fault) what() string {
	var what string
	switch f.Kind {
	case Halves:
		var a, b []string
		for i, g := range f.Groups {
			if g == 0 {
				a = append(a, fmt.Sprintf("m%d", i+1))
			} else {
				b = append(b, fmt.Sprintf("m%d", i+1))
			}
		}
		what = fmt.Sprintf("partition %s | %s", strings.Join(a, " "), strings.Join(b, " "))
	case Isolate:
		what = "isolate " + f.target()
	case Ring:
		what = "ring of overlapping majorities"
	case OneWay:
		if f.Out {
			what = fmt.Sprintf("one-way: %s cannot send", f.target())
		} else {
			what = fmt.Sprintf("one-way: %s cannot receive", f.target())
		}
	case Loss:
		what = fmt.Sprintf("lose %.0f%% of packets between members", f.Share*100)
	case Delay:
		what = fmt.Sprintf("delay packets between members %dms±%dms", f.DelayMs, f.DelayMs/2)
	case Kill:
		what = "SIGKILL " + f.target() + ", restart at heal"
	case Pause:
		what = "SIGSTOP " + f.target() + ", SIGCONT at heal"
	case RemoveAdd:
		what = "member remove " + f.target() + ", add back empty at heal"
	case Wipe:
		what = "SIGKILL " + f.target() + " and wipe its data, member remove; add back empty at heal"
	case DiskFull:
		what = "fill the disk of " + f.target()
	}
	return what
}

// ScheduleOptions shape a schedule.
type ScheduleOptions struct {
	// Seed draws everything.
	Seed uint64
	// Members is the cluster's size; DiskMember the member with a small
	// disk (-1: none, and no DiskFull).
	Members, DiskMember int
	// Kinds are the kinds to draw from (the unavailable ones left out).
	Kinds []Kind
	// Duration is the time the faults should fill, with their quiet
	// stretches; Liveness an estimate of the wait for a first write after
	// each heal.
	Duration, Liveness time.Duration
	// FaultMin, FaultMax bound a fault's duration.
	FaultMin, FaultMax time.Duration
}

// NewSchedule draws a schedule: the kinds in a seeded order, every kind
// once before any twice, each with its target and its duration.
func NewSchedule(o ScheduleOptions) []Fault {
	rng := rand.New(rand.NewPCG(o.Seed, 0x6e656d65736973))
	if o.FaultMin <= 0 {
		o.FaultMin = 3 * time.Second
	}
	if o.FaultMax < o.FaultMin {
		o.FaultMax = 2 * o.FaultMin
	}
	var out []Fault
	var bag []Kind
	var total time.Duration
	for total < o.Duration && len(o.Kinds) > 0 {
		if len(bag) == 0 {
			bag = slices.Clone(o.Kinds)
			rng.Shuffle(len(bag), func(i, j int) { bag[i], bag[j] = bag[j], bag[i] })
		}
		k := bag[0]
		bag = bag[1:]
		f := Fault{Kind: k, Member: rng.IntN(o.Members),
			Duration: o.FaultMin + time.Duration(rng.Int64N(int64(o.FaultMax-o.FaultMin)+1)),
			Quiet:    time.Second + time.Duration(rng.Int64N(int64(time.Second)))}
		if rng.IntN(2) == 0 && k != DiskFull {
			f.Member = Leader
		}
		switch k {
		case Halves:
			perm := rng.Perm(o.Members)
			f.Groups = make([]int, o.Members)
			for rank, i := range perm {
				if rank < o.Members/2 {
					f.Groups[i] = 1
				}
			}
		case OneWay:
			f.Out = rng.IntN(2) == 0
		case Loss:
			f.Share = 0.1 + 0.3*rng.Float64()
		case Delay:
			f.DelayMs = 20 + rng.IntN(180)
		case DiskFull:
			f.Member = o.DiskMember
		}
		out = append(out, f)
		total += f.Duration + f.Quiet + o.Liveness
	}
	return out
}

// heal undoes a fault; it is nil for faults that need nothing undone.
type heal func(ctx context.Context) error

// link is one direction of the link between two members (0-based).
type link struct{ from, to int }

// cutsOf lists the links a network fault cuts among n members, victim
// being the member it aims at, and describes them.
func cutsOf(f Fault, n, victim int, name string) ([]link, string) {
	var cuts []link
	both := func(i, j int) { cuts = append(cuts, link{i, j}, link{j, i}) }
	switch f.Kind {
	case Halves:
		for i := range n {
			for j := range n {
				if f.Groups[i] != f.Groups[j] {
					cuts = append(cuts, link{i, j})
				}
			}
		}
		return cuts, f.what()
	case Isolate:
		for j := range n {
			if j != victim {
				both(victim, j)
			}
		}
		return cuts, "isolate " + name
	case Ring:
		// Keep the links between ring neighbours (i, i±1) and cut the
		// rest; with 3 members (all neighbours on a ring), cut the link
		// between the two others, so that the victim bridges them.
		var names []string
		for i := range n {
			for j := i + 1; j < n; j++ {
				neighbours := j == i+1 || (i == 0 && j == n-1)
				if n == 3 {
					neighbours = i == victim || j == victim
				}
				if !neighbours {
					both(i, j)
					names = append(names, fmt.Sprintf("m%d-m%d", i+1, j+1))
				}
			}
		}
		return cuts, "ring: cut " + strings.Join(names, " ")
	case OneWay:
		for j := range n {
			if j == victim {
				continue
			}
			if f.Out {
				cuts = append(cuts, link{victim, j})
			} else {
				cuts = append(cuts, link{j, victim})
			}
		}
		if f.Out {
			return cuts, "one-way: " + name + " cannot send"
		}
		return cuts, "one-way: " + name + " cannot receive"
	}
	return nil, ""
}

// apply starts fault f on the cluster (whose leader is lead, -1 if none is
// known) and returns the member hit (-1: none in particular), a
// description naming it, and the heal.
func (c *Cluster) apply(ctx context.Context, f Fault, lead int) (int, string, heal, error) {
	victim := f.Member
	if victim == Leader {
		victim = max(lead, 0)
	}
	name := c.Members[victim].Name
	if f.Member == Leader {
		name += " (the leader)"
	}
	healNet := func(context.Context) error { return c.Net.Heal() }
	switch f.Kind {
	case Halves, Isolate, Ring, OneWay:
		cuts, desc := cutsOf(f, len(c.Members), victim, name)
		for _, l := range cuts {
			if err := c.Net.Cut(l.from, l.to); err != nil {
				return victim, desc, healNet, err
			}
		}
		if f.Kind == Halves || f.Kind == Ring {
			victim = -1
		}
		return victim, desc, healNet, nil
	case Loss:
		return -1, fmt.Sprintf("lose %.0f%% of packets", f.Share*100), healNet, c.everyLink(func(i, j int) error { return c.Net.Lose(i, j, f.Share) })
	case Delay:
		undo := func(context.Context) error {
			return c.everyLink(func(i, j int) error { c.Net.Undelay(i, j); return nil })
		}
		return -1, fmt.Sprintf("delay %dms", f.DelayMs), undo, c.everyLink(func(i, j int) error { return c.Net.Delay(i, j, f.DelayMs, f.DelayMs/2) })
	case Kill, Pause:
		return c.applyProcess(f, victim, name)
	case RemoveAdd, Wipe:
		return c.applyMembership(ctx, f, victim, name)
	case DiskFull:
		return c.applyDiskFull(victim, name)
	}
	return -1, "", nil, fmt.Errorf("nemesis: unknown fault %q", f.Kind)
}

// everyLink runs do for every direction of every link between members.
func (c *Cluster) everyLink(do func(i, j int) error) error {
	for i := range c.Members {
		for j := range c.Members {
			if i != j {
				if err := do(i, j); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// applyProcess starts a fault on member victim's process.
func (c *Cluster) applyProcess(f Fault, victim int, name string) (int, string, heal, error) {
	switch f.Kind {
	case Kill:
		c.Members[victim].Kill()
		return victim, "SIGKILL " + name, func(context.Context) error { return c.Restart(victim) }, nil
	case Pause:
		if err := c.Members[victim].Pause(); err != nil {
			return victim, "", nil, err
		}
		return victim, "SIGSTOP " + name, func(context.Context) error { return c.Members[victim].Resume() }, nil
	}
	return -1, "", nil, fmt.Errorf("nemesis: %q is no process fault", f.Kind)
}

// applyMembership removes member victim from the cluster (after wiping its
// data, for Wipe); the heal adds it back as a new member.
func (c *Cluster) applyMembership(ctx context.Context, f Fault, victim int, name string) (int, string, heal, error) {
	switch f.Kind {
	case RemoveAdd:
		if err := c.RemoveMember(ctx, victim); err != nil {
			return victim, "", nil, err
		}
		return victim, "member remove " + name, func(ctx context.Context) error { return c.AddMember(ctx, victim) }, nil
	case Wipe:
		c.Members[victim].Kill()
		if err := c.Members[victim].Wipe(); err != nil {
			return victim, "", nil, err
		}
		if err := c.restartWiped(victim); err != nil {
			return victim, "", nil, err
		}
		if err := c.RemoveMember(ctx, victim); err != nil {
			return victim, "", nil, err
		}
		return victim, "SIGKILL and wipe " + name + ", member remove", func(ctx context.Context) error { return c.AddMember(ctx, victim) }, nil
	}
	return -1, "", nil, fmt.Errorf("nemesis: %q is no membership fault", f.Kind)
}

// applyDiskFull fills member victim's disk; the heal frees it.
func (c *Cluster) applyDiskFull(victim int, name string) (int, string, heal, error) {
	logFrom := c.Members[victim].logSize()
	// raftkv refuses writes while its WAL has no room and tries a
	// snapshot again later: a member that stops on a full disk is a
	// problem like any exit nobody caused.
	if err := c.FillDisk(); err != nil {
		return victim, "", nil, err
	}
	return victim, "fill the disk of " + name, func(context.Context) error {
		if err := c.FreeDisk(); err != nil {
			return err
		}
		// Say whether the member felt it: its WAL segment is
		// preallocated, so a full disk bites when a snapshot or a new
		// segment is written.
		c.logf("nemesis: %s logged %d disk-full lines while its disk was full", name, c.Members[victim].countLog(logFrom, "no space", "disk full"))
		return nil
	}, nil
}
