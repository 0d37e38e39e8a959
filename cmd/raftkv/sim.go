package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/raftkv/raftkv/simulator"
	"github.com/spf13/cobra"
)

// simFlags are the flags of raftkv sim.
type simFlags struct {
	seed                     uint64
	seeds, workers           int
	members, clients         int
	duration, opInterval     time.Duration
	faults, trace, bug, kind string
	replay, viewAddr         string
	view, lockRecipe         bool
	noSwarm, noLiveness      bool
	shrink, verbose, determi bool
}

func init() {
	var f simFlags
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the deterministic cluster simulator: one seed, or a campaign of seeds",
		Long: `Run whole raftkv clusters in one process on virtual time, with a faulty network
and faulty disks, checking Raft's safety properties after every event, liveness
after the faults heal, and the clients' history for linearizability.

A run is a function of its seed: the same seed replays the same run, event for
event. Every failure prints the command that replays it.

Examples:
  raftkv sim --seed 1 --members 3 --duration 10s --verbose
  raftkv sim --seed 1 --seeds 1000                  # a campaign of seeds 1..1000
  raftkv sim --seed 42 --trace run.jsonl            # every event as JSON lines
  raftkv sim --seed 7 --bug forget-vote --shrink    # find, replay and shrink a planted bug
  raftkv sim --bug all --seed 1 --seeds 200         # how many seeds each planted bug survives
  raftkv sim --seed 1 --seeds 1000 --kind log       # raft alone, without the key space and WAL
  raftkv sim --seed 7 --view                        # run, then watch it in a browser
  raftkv sim --replay lab-run.json --trace run.jsonl # replay a lab run or tour (a Script)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSim(cmd.OutOrStdout(), cmd.ErrOrStderr(), f) },
	}
	fl := cmd.Flags()
	fl.Uint64Var(&f.seed, "seed", 1, "the seed of the run (the first seed of a campaign)")
	fl.IntVar(&f.seeds, "seeds", 0, "run a campaign of this many seeds, from --seed on")
	fl.IntVar(&f.workers, "workers", 0, "campaign runs in parallel (0: one per CPU)")
	fl.IntVar(&f.members, "members", 0, "cluster size (0: drawn from the seed among 1, 3, 5, 7)")
	fl.IntVar(&f.clients, "clients", 0, "number of clients (0: drawn from the seed)")
	fl.DurationVar(&f.opInterval, "op-interval", 0, "virtual time between a client's operations (0: drawn)")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "virtual time of the fault phase (a liveness phase follows)")
	fl.StringVar(&f.faults, "faults", "all", "fault classes allowed: all, none, network, or a list such as crash,partition,-torn")
	fl.BoolVar(&f.noSwarm, "no-swarm", false, "turn every allowed fault class on, instead of a mix drawn per seed")
	fl.BoolVar(&f.noLiveness, "no-liveness", false, "skip the liveness phase after the faults")
	fl.StringVar(&f.trace, "trace", "", "write every event of the run as JSON lines to this file")
	fl.BoolVar(&f.shrink, "shrink", false, "on a failure, look for a smaller configuration that still fails")
	fl.BoolVar(&f.verbose, "verbose", false, "tell the story of the run: leader changes, commits, faults")
	fl.BoolVar(&f.determi, "check-determinism", false, "run each seed twice and compare the traces event by event")
	fl.StringVar(&f.bug, "bug", "none", "plant a bug in every member, to see the simulator find it: "+plantedBugNames()+
		"; all runs the campaign against each in turn and prints how many seeds each took")
	fl.StringVar(&f.replay, "replay", "", "replay a lab run or tour saved as a Script (JSON): its seed, settings and actions")
	fl.BoolVar(&f.lockRecipe, "lock-recipe", false, "add lock clients running the lock recipe to key-space runs, and check the lock stays exclusive")
	fl.BoolVar(&f.view, "view", false, "after the run, serve it to a browser on 127.0.0.1 (see raftkv view)")
	fl.StringVar(&f.viewAddr, "view-addr", "127.0.0.1:0", "the address --view serves on")
	fl.StringVar(&f.kind, "kind", "kv", "members: kv (full members: key space, WAL on a faulty disk) or log (raft alone, with a log-appending state machine)")
	rootCmd.AddCommand(cmd)
}

// plantedBugNames lists the catalogue for --bug's help.
func plantedBugNames() string {
	var names []string
	for _, b := range simulator.PlantedBugs() {
		names = append(names, b.String())
	}
	return strings.Join(names, ", ")
}

func (f simFlags) config() (simulator.Config, error) {
	faults, err := simulator.ParseFaults(f.faults)
	if err != nil {
		return simulator.Config{}, err
	}
	if f.bug == "all" {
		f.bug = "none" // runCatchTable plants each in turn
	}
	bug, err := simulator.ParseBug(f.bug)
	if err != nil {
		return simulator.Config{}, err
	}
	kind, err := simulator.ParseKind(f.kind)
	if err != nil {
		return simulator.Config{}, err
	}
	return simulator.Config{Kind: kind,
		Seed: f.seed, Duration: f.duration, Members: f.members, Clients: f.clients, OpInterval: f.opInterval,
		Faults: faults, NoFaults: faults == 0, NoSwarm: f.noSwarm, NoLiveness: f.noLiveness, Bug: bug,
		LockRecipe: f.lockRecipe,
	}, nil
}

func runSim(stdout, stderr io.Writer, f simFlags) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	var script *simulator.Script
	if f.replay != "" {
		if f.seeds > 0 || f.bug == "all" {
			return fmt.Errorf("--replay replays one run: use it without --seeds or --bug all")
		}
		data, err := os.ReadFile(f.replay)
		if err != nil {
			return fmt.Errorf("read script: %w", err)
		}
		sc, err := simulator.ParseScript(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f.replay, err)
		}
		if cfg, err = sc.Config(); err != nil {
			return fmt.Errorf("%s: %w", f.replay, err)
		}
		script = &sc
	}
	if f.bug == "all" {
		return runCatchTable(stdout, stderr, cfg, f)
	}
	if f.seeds > 0 {
		if f.trace != "" {
			return fmt.Errorf("--trace writes one run: use it without --seeds")
		}
		return runCampaign(stdout, stderr, cfg, f)
	}
	var traces []io.Writer
	if f.trace != "" {
		file, err := os.Create(f.trace)
		if err != nil {
			return fmt.Errorf("create trace file: %w", err)
		}
		defer file.Close()
		w := bufio.NewWriter(file)
		defer w.Flush()
		traces = append(traces, w)
		if cfg.Kind == simulator.KindKV {
			cfg.HistoryVisualization = historyPathFor(f.trace)
		}
	}
	var viewTrace bytes.Buffer
	if f.view {
		traces = append(traces, &viewTrace)
		if cfg.HistoryVisualization == "" && cfg.Kind == simulator.KindKV {
			dir, err := os.MkdirTemp("", "raftkv-view-")
			if err != nil {
				return fmt.Errorf("temporary directory for the history page: %w", err)
			}
			defer os.RemoveAll(dir)
			cfg.HistoryVisualization = filepath.Join(dir, "history.html")
		}
	}
	if len(traces) > 0 {
		cfg.Trace = io.MultiWriter(traces...)
	}
	if f.verbose {
		cfg.Log = stdout
	}
	res := simulator.Run(cfg)
	if f.determi && res.Failure == nil {
		if df := simulator.CheckDeterminism(cfg); df != nil {
			res.Failure = df
		}
	}
	writeRunSummary(stdout, res)
	if f.view {
		if err := viewAfterRun(stdout, f.viewAddr, viewTrace.Bytes(), cfg.HistoryVisualization, script); err != nil {
			return err
		}
	}
	if res.Failure == nil {
		return nil
	}
	if f.shrink {
		shrinkAndReport(stdout, cfg, res)
	}
	return &exitError{code: 1, msg: fmt.Sprintf("seed %d failed (%s: %s)", res.Seed, res.Failure.Kind, res.Failure.Invariant)}
}

// runCatchTable runs the campaign of cfg against every planted bug, from
// --seed for up to --seeds seeds (200 if unset), and prints how many seeds
// each took to catch; it fails if one was not caught.
func runCatchTable(stdout, stderr io.Writer, cfg simulator.Config, f simFlags) error {
	limit := f.seeds
	if limit == 0 {
		limit = 200
	}
	var catches []simulator.Catch
	missed := 0
	for _, bug := range simulator.PlantedBugs() {
		fmt.Fprintf(stderr, "planting %s ...\n", bug)
		c := simulator.CatchBug(cfg, bug, f.seed, limit, f.workers)
		if !c.Caught {
			missed++
		}
		catches = append(catches, c)
	}
	simulator.WriteCatchTable(stdout, catches)
	if missed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d planted bugs not caught in %d seeds from %d", missed, limit, f.seed)}
	}
	return nil
}

func runCampaign(stdout, stderr io.Writer, cfg simulator.Config, f simFlags) error {
	if f.determi {
		fmt.Fprintln(stderr, "checking determinism: each seed runs twice")
	}
	start := time.Now()
	res := simulator.Campaign(simulator.CampaignConfig{
		Base: cfg, First: f.seed, Seeds: f.seeds, Workers: f.workers,
		Progress: func(done, total, failed int) { progressBar(stderr, done, total, failed, time.Since(start)) },
	})
	fmt.Fprintln(stderr)
	if f.determi {
		for i := range f.seeds {
			c := cfg
			c.Seed = f.seed + uint64(i)
			if df := simulator.CheckDeterminism(c); df != nil {
				res.Failures = append(res.Failures, simulator.Result{Seed: c.Seed, Failure: df})
			}
		}
	}
	res.WriteSummary(stdout)
	if len(res.Failures) == 0 {
		return nil
	}
	if f.shrink {
		first := res.Failures[0]
		c := cfg
		c.Seed = first.Seed
		shrinkAndReport(stdout, c, first)
	}
	return &exitError{code: 1, msg: fmt.Sprintf("%d of %d runs failed", len(res.Failures), res.Runs)}
}

// progressBar redraws one line: a bar, the count, failures and the rate.
func progressBar(w io.Writer, done, total, failed int, elapsed time.Duration) {
	const width = 30
	filled := width * done / max(total, 1)
	rate := float64(done) / max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "\r[%s%s] %d/%d runs, %d failed, %.1f runs/s ", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total, failed, rate)
}

func writeRunSummary(w io.Writer, r simulator.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	st := r.Stats
	fmt.Fprintf(tw, "seed\t%d\n", r.Seed)
	fmt.Fprintf(tw, "parameters\t%v\n", r.Params)
	fmt.Fprintf(tw, "simulated time\t%v\n", r.SimTime.Round(time.Microsecond))
	fmt.Fprintf(tw, "wall time\t%v\n", r.Wall.Round(time.Microsecond))
	fmt.Fprintf(tw, "events\t%d\n", r.Events)
	if r.Wall > 0 {
		fmt.Fprintf(tw, "events per second\t%.0f\n", float64(r.Events)/r.Wall.Seconds())
		fmt.Fprintf(tw, "simulated / wall time\t%.0f×\n", r.SimTime.Seconds()/r.Wall.Seconds())
	}
	fmt.Fprintf(tw, "commit index\t%d\n", st.Commit)
	fmt.Fprintf(tw, "leader changes\t%d\n", st.LeaderChanges)
	fmt.Fprintf(tw, "crashes / restarts / failed disks\t%d / %d / %d\n", st.Crashes, st.Restarts, st.FailedDisks)
	fmt.Fprintf(tw, "messages sent / dropped / duplicated\t%d / %d / %d\n", st.Messages, st.Dropped, st.Duplicated)
	fmt.Fprintf(tw, "client ops ok / unknown / refused\t%d / %d / %d\n", st.OpsOK, st.OpsUnknown, st.OpsRefused)
	fmt.Fprintf(tw, "linearizability\t%s\n", st.Linearizability)
	fmt.Fprintf(tw, "trace hash\t%016x\n", r.TraceHash)
	result := "ok"
	if r.Failure != nil {
		result = "FAILED"
	}
	fmt.Fprintf(tw, "result\t%s\n", result)
	_ = tw.Flush()
	fmt.Fprintln(w)
	r.Coverage.WriteTable(w)
	if r.Failure != nil {
		fmt.Fprintf(w, "\n%v\n", r.Failure)
	}
}

func shrinkAndReport(w io.Writer, cfg simulator.Config, failed simulator.Result) {
	fmt.Fprintf(w, "\nshrinking seed %d...\n", failed.Seed)
	s := simulator.Shrink(cfg, failed, w)
	fmt.Fprintf(w, "smallest failing configuration (%d tries): %s\n", s.Tries, simulator.ReplayCommand(s.Config))
	fmt.Fprintf(w, "  fails with: %s at event %d (t=%v)\n", s.Result.Failure.Invariant, s.Result.Failure.Event, s.Result.Failure.At)
}

// historyPathFor names the porcupine page written beside a trace file:
// run.jsonl → run.history.html.
func historyPathFor(tracePath string) string {
	return strings.TrimSuffix(tracePath, filepath.Ext(tracePath)) + ".history.html"
}
