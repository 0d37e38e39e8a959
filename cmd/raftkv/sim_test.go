package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/simulator"
)

func TestSimRunPrintsSummary(t *testing.T) {
	var out, errOut bytes.Buffer
	f := simFlags{seed: 1, members: 3, duration: 2 * time.Second, faults: "all", bug: "none", verbose: true}
	if err := runSim(&out, &errOut, f); err != nil {
		t.Fatalf("runSim: %v\n%s", err, out.String())
	}
	for _, want := range []string{"becomes leader of term", "events per second", "simulated / wall time", "result", "ok"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSimCampaignPrintsTable(t *testing.T) {
	var out, errOut bytes.Buffer
	f := simFlags{seed: 1, seeds: 6, duration: time.Second, faults: "all", bug: "none"}
	if err := runSim(&out, &errOut, f); err != nil {
		t.Fatalf("runSim: %v\n%s", err, out.String())
	}
	for _, want := range []string{"runs", "failures", "events per second", "runs per fault class"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "6/6 runs") {
		t.Errorf("no progress bar: %q", errOut.String())
	}
}

func TestSimPlantedBugFailsWithReplayAndShrinks(t *testing.T) {
	// Find a seed that exposes the planted bug, then run it as a user would.
	seed := uint64(0)
	for s := uint64(1); s <= 300 && seed == 0; s++ {
		if simulator.Run(simulator.Config{Seed: s, Bug: simulator.BugForgetVote, NoLinearizability: true}).Failure != nil {
			seed = s
		}
	}
	if seed == 0 {
		t.Fatal("no seed in 1..300 exposes the planted bug")
	}
	var out, errOut bytes.Buffer
	f := simFlags{seed: seed, duration: 10 * time.Second, faults: "all", bug: "forget-vote", shrink: true}
	err := runSim(&out, &errOut, f)
	var exit *exitError
	if !errors.As(err, &exit) || exit.code != 1 {
		t.Fatalf("want exit code 1, got %v\n%s", err, out.String())
	}
	for _, want := range []string{"replay: raftkv sim --seed=" + strconv.FormatUint(seed, 10), "--bug=forget-vote", "smallest failing configuration"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSimBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runSim(&out, &errOut, simFlags{seed: 1, faults: "nonsense", bug: "none"}); err == nil {
		t.Fatal("an unknown fault class was accepted")
	}
}

func TestSimPlantedBugTable(t *testing.T) {
	var out, errOut bytes.Buffer
	f := simFlags{seed: 1, seeds: 200, duration: 10 * time.Second, faults: "all", bug: "all"}
	if err := runSim(&out, &errOut, f); err != nil {
		t.Fatalf("runSim: %v\n%s", err, out.String())
	}
	for _, bug := range simulator.PlantedBugs() {
		if !strings.Contains(out.String(), bug.String()+" ") {
			t.Errorf("the table lacks planted bug %s:\n%s", bug, out.String())
		}
	}
	if !strings.Contains(out.String(), "seeds to catch") || strings.Contains(out.String(), "not in 200") {
		t.Errorf("table:\n%s", out.String())
	}
	// A catalogue that cannot catch is a failure the user sees.
	f = simFlags{seed: 1, seeds: 1, duration: time.Second, faults: "none", bug: "all"}
	var exit *exitError
	if err := runSim(&out, &errOut, f); !errors.As(err, &exit) || exit.code != 1 {
		t.Fatalf("want exit code 1 when bugs go uncaught, got %v", err)
	}
}

// TestSimReplayScript replays a tour saved as a file twice, through the
// command, and gets the same trace bytes and the porcupine page beside
// them; a bad Script is refused naming the file and the problem.
func TestSimReplayScript(t *testing.T) {
	dir := t.TempDir()
	tour, err := simulator.Tour("conflict")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "lab.json")
	if err := os.WriteFile(script, tour.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	var traces [2][]byte
	for k := range traces {
		trace := filepath.Join(dir, fmt.Sprintf("run%d.jsonl", k))
		var out, errOut bytes.Buffer
		if err := runSim(&out, &errOut, simFlags{seed: 1, faults: "all", bug: "none", kind: "kv", replay: script, trace: trace}); err != nil {
			t.Fatalf("replay: %v\n%s", err, out.String())
		}
		if traces[k], err = os.ReadFile(trace); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("run%d.history.html", k))); err != nil {
			t.Errorf("no history page beside the trace: %v", err)
		}
	}
	if !bytes.Equal(traces[0], traces[1]) || !bytes.Contains(traces[0], []byte(`"kind":"action","do":"isolate"`)) {
		t.Fatalf("the replays differ, or lack the tour's actions (%d and %d bytes)", len(traces[0]), len(traces[1]))
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version":1,"seed":1,"duration":"1s","actions":[{"t_us":1,"do":"explode"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err = runSim(io.Discard, io.Discard, simFlags{seed: 1, faults: "all", bug: "none", kind: "kv", replay: bad})
	if err == nil || !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), "unknown action") {
		t.Fatalf("bad script: got %v", err)
	}
}
