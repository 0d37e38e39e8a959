package simulator

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPlantedBugIsFound plants a bug — a member that forgets its vote when
// it restarts, and so can grant a second vote in the same term — and checks
// that a campaign finds it, that the failure says how to replay it, that
// the replay fails the same way, and that the shrinker reduces it.
func TestPlantedBugIsFound(t *testing.T) {
	cfg, found := firstFailure(t, Config{Bug: BugForgetVote, Duration: 10 * time.Second}, 300)
	f := found.Failure
	t.Logf("seed %d found it: %v", found.Seed, f)
	require.Equal(t, FailSafety, f.Kind)
	require.Contains(t, []string{InvVoteOnce, InvElectionSafety}, f.Invariant)
	require.Contains(t, f.Replay, "raftkv sim --seed="+itoa(found.Seed))
	require.Contains(t, f.Replay, "--bug=forget-vote")
	require.True(t, strings.HasPrefix(f.ReplayTest, "go test ./simulator -run TestSimulation -seed="+itoa(found.Seed)))

	// The replay fails identically.
	again := Run(cfg)
	require.NotNil(t, again.Failure)
	require.Equal(t, f.Event, again.Failure.Event)
	require.Equal(t, found.TraceHash, again.TraceHash)

	// The same seeds without the bug pass.
	fixed := cfg
	fixed.Bug = NoBug
	require.Nil(t, Run(fixed).Failure)

	var log strings.Builder
	shrunk := Shrink(cfg, *found, &log)
	t.Logf("shrink log:\n%s", log.String())
	t.Logf("shrunk to: %s (%d tries, removed %v)", ReplayCommand(shrunk.Config), shrunk.Tries, shrunk.Removed)
	require.NotNil(t, shrunk.Result.Failure)
	require.Equal(t, FailSafety, shrunk.Result.Failure.Kind)
	smaller := shrunk.Config.Duration < cfg.withDefaults().Duration ||
		len(shrunk.Result.Params.Faults.Classes()) < len(found.Params.Faults.Classes())
	require.True(t, smaller, "the shrinker did not reduce the failing configuration")
	// The shrunk configuration replays.
	require.NotNil(t, Run(shrunk.Config).Failure)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

var flagCatchFirst = flag.Uint64("catch-first", 1, "first seed of TestPlantedBugs' campaigns")

// catchLimit is how many seeds of the default campaign may pass before a
// planted bug must have been caught.
const catchLimit = 200

// TestPlantedBugs is the mutation score: for every bug of the catalogue
// (PlantedBugs: raft's one-line deviations from the paper, and the
// simulator's own), the default campaign — full members, every fault class
// allowed, swarm — runs from seed -catch-first until a seed fails, and
// must catch it within catchLimit seeds. The table it logs is the one in
// benchmarks/RESULTS.md (go test ./simulator -run TestPlantedBugs -v).
func TestPlantedBugs(t *testing.T) {
	var catches []Catch
	for _, bug := range PlantedBugs() {
		c := CatchBug(Config{}, bug, *flagCatchFirst, catchLimit, 0)
		catches = append(catches, c)
		if !c.Caught {
			t.Errorf("planted bug %s: not caught in %d seeds from %d", bug, catchLimit, *flagCatchFirst)
		}
	}
	var table strings.Builder
	WriteCatchTable(&table, catches)
	t.Log("\n" + table.String())
}

// firstFailure runs base with seeds 1, 2, ... up to last and returns the
// configuration and result of the first run that fails.
func firstFailure(t *testing.T, base Config, last uint64) (Config, *Result) {
	t.Helper()
	for seed := uint64(1); seed <= last; seed++ {
		cfg := base
		cfg.Seed = seed
		if r := Run(cfg); r.Failure != nil {
			return cfg, &r
		}
	}
	t.Fatalf("no seed in 1..%d failed with bug %s", last, base.Bug)
	return Config{}, nil
}

// TestPlantedStaleReadIsCaught plants a stale-read bug in full members —
// a follower answers a linearizable read from its own copy, without asking
// the leader — and checks that porcupine catches it in a short campaign,
// that the failure names the visualisation, and that the visualisation
// was written with the faults drawn in. The same seed without the bug
// passes.
func TestPlantedStaleReadIsCaught(t *testing.T) {
	dir := t.TempDir()
	// The rule checks would catch it first (read-fresh): this test is
	// about porcupine's catching it by itself.
	cfg, found := firstFailure(t, Config{Bug: BugStaleRead, VisualizationDir: dir, NoRuleChecks: true}, 50)
	f := found.Failure
	t.Logf("seed %d caught it: %v", found.Seed, f)
	require.Equal(t, FailLinearizability, f.Kind)
	require.Equal(t, InvLinearizable, f.Invariant)
	require.Contains(t, f.Replay, "--bug=stale-read")

	page := filepath.Join(dir, fmt.Sprintf("seed-%d.html", found.Seed))
	require.Contains(t, f.Detail, "visualisation: "+page)
	html, err := os.ReadFile(page)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(html), "<title>Porcupine</title>"), "not porcupine's page")
	require.True(t, strings.Contains(string(html), `"Tag":"network"`) || strings.Contains(string(html), `"Tag":"member `),
		"the faults are not drawn in")

	fixed := cfg
	fixed.Bug = NoBug
	require.Nil(t, Run(fixed).Failure)
}
