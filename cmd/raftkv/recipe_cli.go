package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/client/recipe"
)

// The coordination commands (lock, elect, queue, registry) run the recipes
// of package client/recipe; their spellings follow etcdctl v3's lock and
// elect where it has them.

// recipeExitLost is the exit code of a command whose lock or leadership
// was lost (its session expired) while it held it.
const recipeExitLost = 3

func init() {
	addRecipeCommands(rootCmd, &ctlEnv{stdin: os.Stdin, exit: os.Exit})
}

// addRecipeCommands adds lock, elect, queue and registry to parent.
func addRecipeCommands(parent *cobra.Command, env *ctlEnv) {
	g := &ctlGlobals{}
	for _, cmd := range []*cobra.Command{recipeLockCommand(g, env), recipeElectCommand(g, env), recipeQueueCommand(g, env), recipeRegistryCommand(g, env)} {
		addClientFlags(cmd, g)
		parent.AddCommand(cmd)
	}
}

// addTTLFlag adds --ttl in seconds to cmd.
func addTTLFlag(cmd *cobra.Command, ttl *int) {
	cmd.Flags().IntVar(ttl, "ttl", 10, "time to live of the session's key, in seconds: how long a crashed holder keeps the others waiting")
}

// newRecipeSession starts a session with a TTL of seconds.
func newRecipeSession(c *client.Client, seconds int) (*recipe.Session, error) {
	if seconds < 1 {
		return nil, badArgsf("--ttl %d: a session's TTL is at least 1 second", seconds)
	}
	return recipe.NewSession(c, &recipe.SessionOptions{TTL: secondsOf(seconds)})
}

// closeSession ends s, deleting its keys, within a few seconds.
func closeSession(s *recipe.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Close(ctx)
}

// lostError prints and returns the failure of a command whose session
// was lost (exit code 3).
func lostError(stderr io.Writer, what string, s *recipe.Session) error {
	msg := fmt.Sprintf("%s: %v", what, s.Err())
	fmt.Fprintln(stderr, "Error: ", msg)
	return &ctlPrinted{code: recipeExitLost, msg: msg}
}

func recipeLockCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var ttl int
	cmd := &cobra.Command{
		Use:   "lock NAME [-- COMMAND [ARGS...]]",
		Short: "Acquire a distributed lock; run a command while holding it",
		Long: `Acquire the lock NAME (waiting for it as long as it takes) and run COMMAND
while holding it, with RAFTKV_LOCK_KEY (the holder's key) and
RAFTKV_LOCK_TOKEN (its fencing token: strictly increasing from holder to
holder) in its environment; release the lock when it ends, and exit with its
status. Without COMMAND, print the key and the token and hold the lock until
Ctrl-C.

If the lock is lost while held (the session could not be kept alive for
--ttl seconds: this process was paused, or the cluster was unreachable),
COMMAND is killed at once (SIGKILL to its process group) and raftkv exits
with code 3. A lock is a lease: have what COMMAND writes to check the token.`,
		Example: `  raftkv lock demo -- sh -c 'echo $RAFTKV_LOCK_TOKEN; sleep 1'
  raftkv lock --ttl 30 backups -- ./backup.sh`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, true, func(ctx context.Context, c *client.Client, out io.Writer) error {
				return runLock(ctx, cmd, c, out, args[0], args[1:], ttl)
			})
		},
	}
	addTTLFlag(cmd, &ttl)
	return cmd
}

func runLock(ctx context.Context, cmd *cobra.Command, c *client.Client, out io.Writer, name string, command []string, ttl int) error {
	s, err := newRecipeSession(c, ttl)
	if err != nil {
		return err
	}
	defer closeSession(s)
	m, err := recipe.NewMutex(s, name)
	if err != nil {
		return badArgs{err}
	}
	ctx, stop := untilInterrupted(ctx)
	defer stop()
	if err := m.Lock(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	token := strconv.FormatUint(m.Token(), 10)
	if len(command) == 0 {
		fmt.Fprintln(out, m.Key())
		fmt.Fprintln(out, token)
		select {
		case <-ctx.Done():
			return m.Unlock(context.Background())
		case <-m.Lost():
			return lostError(cmd.ErrOrStderr(), "lock "+name+" lost", s)
		}
	}
	run := exec.Command(command[0], command[1:]...)
	run.Env = append(os.Environ(), "RAFTKV_LOCK_KEY="+m.Key(), "RAFTKV_LOCK_TOKEN="+token)
	run.Stdin, run.Stdout, run.Stderr = cmd.InOrStdin(), out, cmd.ErrOrStderr()
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := run.Start(); err != nil {
		_ = m.Unlock(context.Background())
		return badArgs{err}
	}
	waited := make(chan error, 1)
	go func() { waited <- run.Wait() }()
	var runErr error
	select {
	case runErr = <-waited:
	case <-ctx.Done():
		// Ctrl-C or SIGTERM: pass it on, wait for the command, then unlock.
		_ = syscall.Kill(-run.Process.Pid, syscall.SIGTERM)
		runErr = <-waited
	case <-m.Lost():
		_ = syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
		<-waited
		return lostError(cmd.ErrOrStderr(), fmt.Sprintf("lock %s lost while %s ran (killed it)", name, command[0]), s)
	}
	unlockErr := m.Unlock(context.Background())
	var exit *exec.ExitError
	if errors.As(runErr, &exit) {
		code := exit.ExitCode()
		if code < 0 {
			code = 128 + int(exit.Sys().(syscall.WaitStatus).Signal())
		}
		return &ctlPrinted{code: code, msg: fmt.Sprintf("%s: %v", command[0], runErr)}
	}
	if runErr != nil {
		return runErr
	}
	return unlockErr
}

func recipeElectCommand(g *ctlGlobals, env *ctlEnv) *cobra.Command {
	var ttl int
	var listen bool
	cmd := &cobra.Command{
		Use:   "elect NAME [PROPOSAL]",
		Short: "Campaign in an election, or observe one (--listen)",
		Long: `Campaign in the election NAME with PROPOSAL as this candidate's value: wait
until elected, print the leader's key and value, and lead until Ctrl-C (then
resign). With --listen, take no part: print the leader's key and value at
each change of leader, until Ctrl-C. If the leadership is lost (the session
expired), raftkv exits with code 3.`,
		Example: `  raftkv elect scheduler host-a
  raftkv elect scheduler --listen`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, env, true, func(ctx context.Context, c *client.Client, out io.Writer) error {
				ctx, stop := untilInterrupted(ctx)
				defer stop()
				if listen {
					for l := range recipe.Observe(ctx, c, args[0]) {
						fmt.Fprintln(out, l.Key)
						fmt.Fprintln(out, l.Value)
					}
					return nil
				}
				if len(args) < 2 {
					return badArgsf("a proposal is required to campaign (or --listen to observe)")
				}
				return runElectionCampaign(ctx, c, out, cmd.ErrOrStderr(), args[0], args[1], ttl)
			})
		},
	}
	addTTLFlag(cmd, &ttl)
	cmd.Flags().BoolVarP(&listen, "listen", "l", false, "observe the election's leader changes instead of campaigning")
	return cmd
}

func runElectionCampaign(ctx context.Context, c *client.Client, out, stderr io.Writer, name, proposal string, ttl int) error {
	s, err := newRecipeSession(c, ttl)
	if err != nil {
		return err
	}
	defer closeSession(s)
	e, err := recipe.NewElection(s, name)
	if err != nil {
		return badArgs{err}
	}
	if err := e.Campaign(ctx, proposal); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	fmt.Fprintln(out, e.Key())
	fmt.Fprintln(out, proposal)
	select {
	case <-ctx.Done():
		return e.Resign(context.Background())
	case <-e.Lost():
		return lostError(stderr, "leadership of "+name+" lost", s)
	}
}

// secondsOf is a whole number of seconds as a duration.
func secondsOf(seconds int) time.Duration { return time.Duration(seconds) * time.Second }
