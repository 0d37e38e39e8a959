package recipe

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/embed"
)

// testCluster is a cluster of in-process members on fixed loopback ports,
// so that a stopped member restarts where clients expect it.
type testCluster struct {
	t         testing.TB
	mu        sync.Mutex
	configs   []embed.Config
	members   []*embed.Member // nil while stopped
	endpoints []string
}

// startTestCluster starts n members, waits until the cluster takes a
// write, and stops them at the end of the test.
func startTestCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, members: make([]*embed.Member, n)}
	var initial []string
	peers := make([]string, n)
	for i := range n {
		peers[i] = "http://" + freeAddr(t)
		initial = append(initial, fmt.Sprintf("m%d=%s", i+1, peers[i]))
	}
	dir := t.TempDir()
	for i := range n {
		clientURL := "http://" + freeAddr(t)
		c.endpoints = append(c.endpoints, clientURL)
		c.configs = append(c.configs, embed.Config{
			Name: fmt.Sprintf("m%d", i+1), DataDir: fmt.Sprintf("%s/m%d", dir, i+1),
			ListenClientURLs: []string{clientURL}, ListenPeerURLs: []string{peers[i]},
			InitialCluster: strings.Join(initial, ","), HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		})
	}
	t.Cleanup(func() {
		for i := range c.members {
			c.stop(i)
		}
	})
	for i := range n {
		c.start(i)
	}
	cl := c.client()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cl.Set(ctx, "/_ready", "", nil)
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "the cluster takes no write")
	return c
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// start starts member i (again).
func (c *testCluster) start(i int) {
	m, err := embed.Start(c.configs[i])
	require.NoError(c.t, err, "start %s", c.configs[i].Name)
	c.mu.Lock()
	c.members[i] = m
	c.mu.Unlock()
}

// stop stops member i, if running.
func (c *testCluster) stop(i int) {
	c.mu.Lock()
	m := c.members[i]
	c.members[i] = nil
	c.mu.Unlock()
	if m != nil {
		_ = m.Stop()
	}
}

// leader returns the index of the member that leads, waiting for one.
func (c *testCluster) leader() int {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for i, m := range c.members {
			if m != nil && m.Runtime().Status().Leader == m.ID() {
				c.mu.Unlock()
				return i
			}
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader")
	return -1
}

// client returns a client of every member, closed at the end of the test.
func (c *testCluster) client() *client.Client {
	cl, err := client.New(client.Config{Endpoints: c.endpoints, DialTimeout: 500 * time.Millisecond})
	require.NoError(c.t, err)
	c.t.Cleanup(cl.Close)
	return cl
}

// session starts a session of a new client with ttl, closed at the end.
func (c *testCluster) session(ttl time.Duration) *Session {
	s, err := NewSession(c.client(), &SessionOptions{TTL: ttl})
	require.NoError(c.t, err)
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// testCtx is a context for one test step.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
