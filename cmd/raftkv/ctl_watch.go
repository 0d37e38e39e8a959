package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/raftkv/raftkv/client"
)

// ctlWatchCommands are watch and exec-watch.
func ctlWatchCommands(g *ctlGlobals, env *ctlEnv) []*cobra.Command {
	return []*cobra.Command{ctlWatchCommand(g, env), ctlExecWatchCommand(g, env)}
}

// watchFlags are the flags the two watch commands share.
type watchFlags struct {
	recursive  bool
	afterIndex uint64
}

func (f *watchFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&f.recursive, "recursive", "r", false, "watch the keys below KEY too")
	cmd.Flags().Uint64Var(&f.afterIndex, "after-index", 0, "report the changes after this index (the server keeps the last 1000)")
}

func (f *watchFlags) watcher(c *client.Client, key string) *client.Watcher {
	return c.Watcher(key, &client.WatcherOptions{AfterIndex: f.afterIndex, Recursive: f.recursive})
}

// untilInterrupted ends ctx at Ctrl-C or SIGTERM, which end a watch
// command successfully, as in etcdctl.
func untilInterrupted(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// endOfWatch is what a watch command returns when Next failed: nothing
// if the command was told to stop.
func endOfWatch(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func ctlWatchCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var f watchFlags
	var forever bool
	cmd := &cobra.Command{
		Use:   "watch KEY",
		Short: "Wait for a change of a key and print it (every change, with --forever)",
		Example: `  raftkv watch /config --recursive --forever
  raftkv watch /message --after-index 12`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, true, func(ctx context.Context, c *client.Client, out io.Writer) error {
				key, err := keyArg(args)
				if err != nil {
					return err
				}
				ctx, stop := untilInterrupted(ctx)
				defer stop()
				w := f.watcher(c, key)
				for {
					resp, err := w.Next(ctx)
					if err != nil {
						return endOfWatch(ctx, err)
					}
					if resp.Node.Dir {
						continue
					}
					if f.recursive {
						fmt.Fprintf(out, "[%s] %s\n", resp.Action, resp.Node.Key)
					}
					printResponse(out, resp, g.output)
					if !forever {
						return nil
					}
				}
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&forever, "forever", "f", false, "keep watching until Ctrl-C")
	return cmd
}

func ctlExecWatchCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "exec-watch KEY -- COMMAND [ARGS...]",
		Short: "Run a command at every change of a key, until Ctrl-C",
		Long: `Watch a key and run COMMAND at every change, with the change in the
environment as etcdctl gives it: ETCD_WATCH_ACTION, ETCD_WATCH_KEY,
ETCD_WATCH_VALUE and ETCD_WATCH_MODIFIED_INDEX. Changes to directories are
skipped. The commands run one at a time, in the order of the changes (etcdctl
starts them without waiting); their exit status is ignored.`,
		Example: `  raftkv exec-watch /config/colour -- sh -c 'echo "$ETCD_WATCH_KEY is now $ETCD_WATCH_VALUE"'
  raftkv exec-watch --recursive /services -- ./reload.sh`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, true, func(ctx context.Context, c *client.Client, out io.Writer) error {
				if len(args) < 2 {
					return badArgsf("key and command to exec required")
				}
				key, command := args[0], args[1:]
				ctx, stop := untilInterrupted(ctx)
				defer stop()
				w := f.watcher(c, key)
				for {
					resp, err := w.Next(ctx)
					if err != nil {
						return endOfWatch(ctx, err)
					}
					if resp.Node.Dir {
						fmt.Fprintf(cmd.ErrOrStderr(), "Ignored dir %s change\n", resp.Node.Key)
						continue
					}
					if err := runWatchCommand(ctx, command, resp, out, cmd.ErrOrStderr()); err != nil {
						return endOfWatch(ctx, err)
					}
				}
			})
		},
	}
	f.add(cmd)
	return cmd
}

// runWatchCommand runs command with the change in its environment. A
// command that cannot start ends exec-watch; its exit status does not.
func runWatchCommand(ctx context.Context, command []string, resp *client.Response, stdout, stderr io.Writer) error {
	run := exec.CommandContext(ctx, command[0], command[1:]...)
	run.Env = append(os.Environ(),
		"ETCD_WATCH_ACTION="+resp.Action,
		"ETCD_WATCH_MODIFIED_INDEX="+strconv.FormatUint(resp.Node.ModifiedIndex, 10),
		"ETCD_WATCH_KEY="+resp.Node.Key,
		"ETCD_WATCH_VALUE="+resp.Node.Value,
	)
	run.Stdout, run.Stderr = stdout, stderr
	if err := run.Start(); err != nil {
		return badArgs{err}
	}
	_ = run.Wait()
	return nil
}
