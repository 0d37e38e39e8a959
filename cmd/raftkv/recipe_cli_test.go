package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newRecipeCommand prepares "raftkv args..." with the coordination
// commands, returning exit codes instead of exiting.
func newRecipeCommand(endpoints []string, args ...string) *ctlCommand {
	root := &cobra.Command{Use: "raftkv", SilenceUsage: true, SilenceErrors: true}
	addRecipeCommands(root, &ctlEnv{stdin: strings.NewReader("")})
	at := len(args)
	if i := slices.Index(args, "--"); i >= 0 {
		at = i
	}
	args = slices.Insert(slices.Clone(args), at, "--endpoints", strings.Join(endpoints, ","))
	c := &ctlCommand{root: root, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	root.SetArgs(args)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetIn(strings.NewReader(""))
	return c
}

func recipeCtl(t *testing.T, ctx context.Context, endpoints []string, args ...string) ctlResult {
	t.Helper()
	return newRecipeCommand(endpoints, args...).run(ctx)
}

// TestRecipeLockCommandSerialises: two `raftkv lock demo -- sh -c ...` at
// once run their commands one after the other, each with a higher token.
func TestRecipeLockCommandSerialises(t *testing.T) {
	c := startCtlCluster(t, 3)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]ctlResult, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := filepath.Join(dir, fmt.Sprint("run", i))
			results[i] = recipeCtl(t, ctx, c.endpoints, "lock", "demo", "--ttl", "2", "--",
				"sh", "-c", `echo $RAFTKV_LOCK_TOKEN; date +%s%N > `+log+`.start; sleep 0.5; date +%s%N > `+log+`.end; exit 7`)
		}()
	}
	wg.Wait()
	type span struct{ start, end, token int64 }
	var spans []span
	for i, r := range results {
		assert.Equal(t, 7, r.code, "the command's status: %q", r.stderr)
		token, err := strconv.ParseInt(strings.TrimSpace(r.stdout), 10, 64)
		require.NoError(t, err, "the token is printed: %q", r.stdout)
		read := func(suffix string) int64 {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprint("run", i)+suffix))
			require.NoError(t, err)
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			require.NoError(t, err)
			return n
		}
		spans = append(spans, span{read(".start"), read(".end"), token})
	}
	slices.SortFunc(spans, func(a, b span) int { return int(a.start - b.start) })
	assert.LessOrEqual(t, spans[0].end, spans[1].start, "the two commands ran one after the other")
	assert.Less(t, spans[0].token, spans[1].token, "the second holder's token is higher")

	r := recipeCtl(t, ctx, c.endpoints, "lock", "demo", "--ttl", "0", "--", "true")
	assert.Equal(t, ctlExitBadArgs, r.code)
	assert.Contains(t, r.stderr, "--ttl 0: a session's TTL is at least 1 second")
	r = recipeCtl(t, ctx, c.endpoints, "lock", "demo", "--", "/nonexistent/command")
	assert.Equal(t, ctlExitBadArgs, r.code)
	assert.Contains(t, r.stderr, "/nonexistent/command")
}

// TestRecipeElectQueueRegistryCommands drives elect, queue and registry.
func TestRecipeElectQueueRegistryCommands(t *testing.T) {
	c := startCtlCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	listenCtx, stopListening := context.WithCancel(ctx)
	listener := newRecipeCommand(c.endpoints, "elect", "sched", "--listen")
	listened := make(chan ctlResult, 1)
	go func() { listened <- listener.run(listenCtx) }()
	campaignCtx, resign := context.WithCancel(ctx)
	candidate := newRecipeCommand(c.endpoints, "elect", "sched", "host-a", "--ttl", "2")
	campaigned := make(chan ctlResult, 1)
	go func() { campaigned <- candidate.run(campaignCtx) }()
	require.Eventually(t, func() bool { return strings.Contains(candidate.stdout.String(), "host-a") }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(listener.stdout.String(), "host-a") }, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, candidate.stdout.String(), "/_recipes/elections/sched/")
	resign()
	assert.Equal(t, 0, (<-campaigned).code)
	stopListening()
	<-listened
	r := recipeCtl(t, ctx, c.endpoints, "elect", "sched")
	assert.Equal(t, ctlExitBadArgs, r.code)
	assert.Contains(t, r.stderr, "a proposal is required")

	for _, v := range []string{"one", "two"} {
		r := recipeCtl(t, ctx, c.endpoints, "queue", "push", "jobs", v)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Contains(t, r.stdout, "/_recipes/queues/jobs/")
	}
	r = recipeCtl(t, ctx, c.endpoints, "queue", "list", "jobs")
	assert.Regexp(t, `^\d{20} one\n\d{20} two\n$`, r.stdout)
	assert.Equal(t, "one\n", recipeCtl(t, ctx, c.endpoints, "queue", "pop", "jobs").stdout)
	assert.Equal(t, "two\n", recipeCtl(t, ctx, c.endpoints, "queue", "pop", "jobs").stdout)
	require.Equal(t, 0, recipeCtl(t, ctx, c.endpoints, "queue", "push", "urgent", "later", "--priority", "7").code)
	require.Equal(t, 0, recipeCtl(t, ctx, c.endpoints, "queue", "push", "urgent", "now", "--priority", "0").code)
	assert.Equal(t, "now\n", recipeCtl(t, ctx, c.endpoints, "queue", "pop", "urgent", "--priority", "0").stdout)

	watchCtx, stopWatching := context.WithCancel(ctx)
	watcher := newRecipeCommand(c.endpoints, "registry", "watch", "api")
	watched := make(chan ctlResult, 1)
	go func() { watched <- watcher.run(watchCtx) }()
	regCtx, deregister := context.WithCancel(ctx)
	reg := newRecipeCommand(c.endpoints, "registry", "register", "api", "a", "10.0.0.1:80", "--ttl", "2")
	registered := make(chan ctlResult, 1)
	go func() { registered <- reg.run(regCtx) }()
	require.Eventually(t, func() bool {
		return recipeCtl(t, ctx, c.endpoints, "registry", "list", "api").stdout == "a 10.0.0.1:80\n"
	}, 10*time.Second, 20*time.Millisecond)
	deregister()
	regR := <-registered
	assert.Equal(t, 0, regR.code, regR.stderr)
	assert.Equal(t, "", recipeCtl(t, ctx, c.endpoints, "registry", "list", "api").stdout)
	require.Eventually(t, func() bool { return strings.Contains(watcher.stdout.String(), "- a") }, 10*time.Second, 10*time.Millisecond)
	stopWatching()
	<-watched
	assert.Equal(t, "+ a 10.0.0.1:80\n- a\n", watcher.stdout.String())
}

// TestRecipeLockHolderPaused: a `raftkv lock` process stopped (SIGSTOP)
// while it holds the lock leaves it to the next waiter once its TTL runs
// out, and when it resumes it kills its command and exits 3.
func TestRecipeLockHolderPaused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := startCtlCluster(t, 3)
	bin := raftkvBinary(t)
	eps := strings.Join(c.endpoints, ",")
	holder := exec.Command(bin, "lock", "killed", "--ttl", "1", "--endpoints", eps, "--", "sh", "-c", "echo holding; exec sleep 30")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out lockedBuffer
	holder.Stdout, holder.Stderr = &out, &out
	require.NoError(t, holder.Start())
	t.Cleanup(func() { _ = syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); _ = holder.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := c.client(t)
	require.Eventually(t, func() bool {
		resp, err := cl.Get(ctx, "/_recipes/locks/killed", nil)
		return err == nil && len(resp.Node.Nodes) == 1
	}, 10*time.Second, 20*time.Millisecond, "the holder takes the lock: %s", out.String())
	// Its key is there before it knows it holds the lock: wait for the
	// command, or a pause could catch it still in Lock (then it never runs
	// the command and says it lost the session instead).
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "holding\n") },
		10*time.Second, 20*time.Millisecond, "the holder's command never started: %s", out.String())

	// SIGSTOP the raftkv process only: its command keeps running, which
	// is what a lock as a lease cannot prevent (hence fencing tokens).
	require.NoError(t, holder.Process.Signal(syscall.SIGSTOP))
	start := time.Now()
	r := recipeCtl(t, ctx, c.endpoints, "lock", "killed", "--ttl", "1", "--", "true")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "the lock passes on only when the TTL has run out")
	require.NoError(t, holder.Process.Signal(syscall.SIGCONT))
	err := holder.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, recipeExitLost, exit.ExitCode(), "output: %s", out.String())
	assert.Contains(t, out.String(), "lock killed lost while sh ran (killed it)")
}
