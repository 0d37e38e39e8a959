package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkv/raftkv/nemesis"
)

func init() {
	var (
		cfg    nemesis.Config
		faults string
		seed   int64
	)
	cmd := &cobra.Command{
		Use:   "nemesis",
		Short: "Run real members in network namespaces under network and process faults, and check what clients saw (root)",
		Long: `Run a raftkv cluster as real processes, one per network namespace (a test
host with its own address in 10.211.0.0/16), joined pairwise by veth links, and
break it: partitions, isolated members (the leader too), a ring of overlapping
majorities, one-way cuts, packet loss (and delay where the kernel has netem),
SIGKILL, SIGSTOP, member removal and re-addition, a wiped data directory, a
full disk. The faults come from a seed; the schedule is printed first.

Clients bound to every member write (set, create, compare-and-swap,
compare-and-delete, in-order create), read linearizably and serializably, and
watch every change. At the end the history is checked for linearizability
(porcupine), the watches against what the cluster applied, the serializable
reads for values that never were, and the members' final state against the
applied history. After every heal a write must succeed within --liveness.
A failure prints its problems, the seed and where the logs and the
visualisation are, and exits 1.

Needs root (network namespaces). Every namespace, link, mount and process is
removed at the end, on failure and on Ctrl-C; what a killed run left behind is
removed at the next start.

Examples:
  sudo raftkv nemesis                                  # 60 s, 3 members
  sudo raftkv nemesis --duration 10m --members 5
  sudo raftkv nemesis --seed 42 --faults isolate,kill  # replay a schedule, some faults only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kinds, err := nemesis.ParseKinds(faults)
			if err != nil {
				return err
			}
			cfg.Kinds = kinds
			if faults == "" || faults == "all" {
				cfg.Kinds = nil
			}
			cfg.Seed = uint64(seed)
			if seed < 0 {
				cfg.Seed = uint64(time.Now().UnixNano() % 1_000_000_000)
			}
			if cfg.Members != 3 && cfg.Members != 5 && cfg.Members != 1 && cfg.Members != 7 {
				return fmt.Errorf("--members %d: want 3 or 5 (or 1, 7)", cfg.Members)
			}
			if cfg.Binary == "" {
				if cfg.Binary, err = os.Executable(); err != nil {
					return err
				}
			}
			cfg.Log, cfg.Progress = cmd.OutOrStdout(), cmd.OutOrStdout()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := nemesis.Run(ctx, cfg)
			if errors.Is(err, nemesis.ErrNoNamespaces) {
				return &exitError{code: 2, msg: err.Error()}
			}
			if rep != nil && err == nil {
				fmt.Fprintln(cmd.OutOrStdout())
				rep.WriteTable(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return &exitError{code: 1, msg: fmt.Sprintf("nemesis run failed (seed %d): see %s", cfg.Seed, rep.OutDir)}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&cfg.Duration, "duration", time.Minute, "how long the faults go on")
	fl.IntVar(&cfg.Members, "members", 3, "cluster size: 3 or 5")
	fl.Int64Var(&seed, "seed", -1, "seed of the schedule and the clients (default: a fresh one, printed)")
	fl.StringVar(&faults, "faults", "all", "comma-separated faults to draw from: "+fmt.Sprint(nemesis.AllKinds()))
	fl.DurationVar(&cfg.FaultMin, "fault-min", 3*time.Second, "shortest fault")
	fl.DurationVar(&cfg.FaultMax, "fault-max", 6*time.Second, "longest fault")
	fl.DurationVar(&cfg.LivenessBound, "liveness", 0, "how soon after a heal a write must succeed (default: 5 election timeouts)")
	fl.IntVar(&cfg.ElectionMs, "election-timeout", 1000, "the members' election timeout in milliseconds")
	fl.IntVar(&cfg.HeartbeatMs, "heartbeat-interval", 100, "the members' heartbeat interval in milliseconds")
	fl.StringVar(&cfg.OutDir, "out", "", "directory for logs, schedule and visualisation (default: a temporary one, removed after a run that passed)")
	fl.StringVar(&cfg.Binary, "binary", "", "raftkv binary the members run (default: this one)")
	fl.DurationVar(&cfg.ProgressEvery, "progress", 10*time.Second, "time between progress lines")
	rootCmd.AddCommand(cmd)
}
