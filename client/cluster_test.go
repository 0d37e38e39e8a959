package client_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/embed"
)

// startCluster starts n raftkv members in this process on loopback ports,
// waits until a write succeeds, and stops them at the end of the test.
func startCluster(t testing.TB, n int) ([]*embed.Member, []string) {
	t.Helper()
	members, endpoints, stop, err := startMembers(n, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, stop()) })
	return members, endpoints
}

// startMembers starts n members with data under dir and returns them,
// their client URLs and a function that stops them all.
func startMembers(n int, dir string) ([]*embed.Member, []string, func() error, error) {
	var parts []string
	peerURLs := make([]string, n)
	for i := range n {
		addr, err := freeAddr()
		if err != nil {
			return nil, nil, nil, err
		}
		peerURLs[i] = "http://" + addr
		parts = append(parts, fmt.Sprintf("m%d=%s", i+1, peerURLs[i]))
	}
	var members []*embed.Member
	var endpoints []string
	stop := func() error {
		var first error
		for _, m := range members {
			if err := m.Stop(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for i := range n {
		m, err := embed.Start(embed.Config{
			Name: fmt.Sprintf("m%d", i+1), DataDir: fmt.Sprintf("%s/m%d", dir, i+1),
			ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{peerURLs[i]},
			InitialCluster: strings.Join(parts, ","), HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		})
		if err != nil {
			_ = stop()
			return nil, nil, nil, err
		}
		members = append(members, m)
		endpoints = append(endpoints, m.ClientURLs()[0])
	}
	if err := waitWritable(endpoints); err != nil {
		_ = stop()
		return nil, nil, nil, err
	}
	return members, endpoints, stop, nil
}

// waitWritable waits until the cluster takes a write.
func waitWritable(endpoints []string) error {
	c, err := client.New(client.Config{Endpoints: endpoints})
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Set(ctx, "/_ready", "", nil)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster took no write within 15s: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func newClient(t testing.TB, endpoints []string) *client.Client {
	c, err := client.New(client.Config{Endpoints: endpoints})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func tempDir() string {
	dir, err := os.MkdirTemp("", "raftkv-client-example-")
	if err != nil {
		panic(err)
	}
	return dir
}
