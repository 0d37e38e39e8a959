package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/embed"
)

// ctlCluster is a cluster of in-process members for the client commands'
// tests.
type ctlCluster struct {
	members   []*embed.Member
	endpoints []string
	peerURLs  []string
}

// startCtlCluster starts n members on loopback ports, waits until the
// cluster takes a write, and stops the members at the end of the test.
func startCtlCluster(t *testing.T, n int) *ctlCluster {
	t.Helper()
	c := &ctlCluster{}
	var initial []string
	for i := range n {
		c.peerURLs = append(c.peerURLs, "http://"+loopbackAddr(t))
		initial = append(initial, fmt.Sprintf("m%d=%s", i+1, c.peerURLs[i]))
	}
	for i := range n {
		m, err := embed.Start(embed.Config{
			Name: fmt.Sprintf("m%d", i+1), DataDir: t.TempDir(),
			ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{c.peerURLs[i]},
			InitialCluster: strings.Join(initial, ","), HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		})
		require.NoError(t, err)
		c.members = append(c.members, m)
		c.endpoints = append(c.endpoints, m.ClientURLs()[0])
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			assert.NoError(t, m.Stop())
		}
	})
	cl := c.client(t)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cl.Set(ctx, "/_ready", "", nil)
		return err == nil
	}, 15*time.Second, 20*time.Millisecond, "the cluster takes no write")
	// A member publishes its client URLs once it has started.
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		members, err := cl.Members().List(ctx)
		return err == nil && len(members) == n && !slices.ContainsFunc(members, func(m client.Member) bool { return len(m.ClientURLs) == 0 })
	}, 15*time.Second, 20*time.Millisecond, "the members never published their client URLs")
	return c
}

func (c *ctlCluster) client(t *testing.T) *client.Client {
	cl, err := client.New(client.Config{Endpoints: c.endpoints})
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// syncBuffer is a buffer that a running command writes while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ctlResult is what a command printed and its exit code.
type ctlResult struct {
	stdout, stderr string
	code           int
}

// ctlCommand is a client command line ready to run in this process.
type ctlCommand struct {
	root           *cobra.Command
	stdout, stderr *syncBuffer
}

// newCtlCommand prepares "raftkv args..." with a fresh command tree whose
// client commands return their exit code instead of exiting. endpoints, if
// any, go in --endpoints (before a "--").
func newCtlCommand(endpoints []string, stdin string, args ...string) *ctlCommand {
	root := &cobra.Command{Use: "raftkv", SilenceUsage: true, SilenceErrors: true}
	addCtlCommands(root, &ctlEnv{stdin: strings.NewReader(stdin)})
	root.AddCommand(newBenchCommand())
	if len(endpoints) > 0 {
		at := len(args)
		if i := slices.Index(args, "--"); i >= 0 {
			at = i
		}
		args = slices.Insert(slices.Clone(args), at, "--endpoints", strings.Join(endpoints, ","))
	}
	c := &ctlCommand{root: root, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	root.SetArgs(args)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetIn(strings.NewReader(stdin))
	return c
}

// run runs the command until it ends or ctx does.
func (c *ctlCommand) run(ctx context.Context) ctlResult {
	err := c.root.ExecuteContext(ctx)
	code := 0
	if err != nil {
		code = exitCode(err)
	}
	return ctlResult{stdout: c.stdout.String(), stderr: c.stderr.String(), code: code}
}

// ctl runs a client command line to its end.
func ctl(t *testing.T, endpoints []string, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return newCtlCommand(endpoints, "", args...).run(ctx)
}

// ctlOK runs a command line that must succeed and returns its output.
func ctlOK(t *testing.T, endpoints []string, args ...string) string {
	t.Helper()
	r := ctl(t, endpoints, args...)
	require.Equal(t, 0, r.code, "raftkv %s: stderr %q", strings.Join(args, " "), r.stderr)
	return r.stdout
}
