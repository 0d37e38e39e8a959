package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/raftkv/raftkv/raft"
)

// The hidden --planted-bug flag of raftkv serve: tests of the tests only.
// The nemesis (../../nemesis) runs real members and must show that its
// checks catch a member that breaks the rules; this is how a test makes a
// real binary break them. It is hidden from --help, and a member started
// with it says so in its log at every start.

// noCheckQuorum is the extra word of --planted-bug that turns CheckQuorum
// off: with read-index-no-heartbeat, a leader cut off from the others
// keeps answering linearizable reads from its own, stale, state for as
// long as the cut lasts (with CheckQuorum it would step down within an
// election timeout or two, and the window would be short).
const noCheckQuorum = "no-check-quorum"

// addPlantedBugFlag registers the hidden flag.
func addPlantedBugFlag(fl *pflag.FlagSet, target *string) {
	fl.StringVar(target, "planted-bug", "", "tests only: plant a known bug (a raft.PlantedBug name, and/or "+noCheckQuorum+", comma-separated)")
	_ = fl.MarkHidden("planted-bug")
}

// plantedBugTune turns the flag's value into the raft adjustment that
// plants it (nil for none).
func plantedBugTune(spec string) (func(*raft.Config), error) {
	if spec == "" {
		return nil, nil
	}
	bug, checkQuorum := raft.NoBug, true
	for _, word := range strings.Split(spec, ",") {
		word = strings.TrimSpace(word)
		if word == noCheckQuorum {
			checkQuorum = false
			continue
		}
		b, ok := raft.ParsePlantedBug(word)
		if !ok || b == raft.NoBug {
			var names []string
			for _, b := range raft.PlantedBugs() {
				names = append(names, b.String())
			}
			return nil, fmt.Errorf("--planted-bug %q: want some of %s, %s", word, strings.Join(names, ", "), noCheckQuorum)
		}
		bug = b
	}
	return func(c *raft.Config) {
		c.PlantedBug = bug
		c.CheckQuorum = checkQuorum
	}, nil
}
