package client_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/client"
)

// TestAgainstEtcd runs the key, watch, member-list, version and health
// checks against a real etcd cluster serving the v2 API (etcd
// --enable-v2), when RAFTKV_TEST_ETCD_ENDPOINTS names its client URLs. The
// cluster should be fresh: the test writes under /, and its directory
// checks expect the keys they create to be alone.
func TestAgainstEtcd(t *testing.T) {
	env := os.Getenv("RAFTKV_TEST_ETCD_ENDPOINTS")
	if env == "" {
		t.Skip("RAFTKV_TEST_ETCD_ENDPOINTS is not set")
	}
	endpoints := strings.Split(env, ",")
	c := newClient(t, endpoints)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, key := range []string{"/message", "/dir", "/ttl", "/watched", "/hist"} {
		_, _ = c.Delete(ctx, key, &client.DeleteOptions{Recursive: true})
	}
	t.Run("keys", func(t *testing.T) { testKeys(ctx, t, c) })
	t.Run("directories", func(t *testing.T) { testDirectories(ctx, t, c) })
	t.Run("ttl", func(t *testing.T) { testTTL(ctx, t, c) })
	t.Run("watch", func(t *testing.T) { testWatch(ctx, t, c) })
	t.Run("index cleared", func(t *testing.T) { testIndexCleared(ctx, t, c) })
	t.Run("version and health", func(t *testing.T) { testVersionAndHealth(ctx, t, c, endpoints) })
	t.Run("members", func(t *testing.T) {
		members, err := c.Members().List(ctx)
		require.NoError(t, err)
		assert.Len(t, members, len(endpoints))
		leader, err := c.Members().Leader(ctx)
		require.NoError(t, err)
		assert.Contains(t, members, *leader)
		// etcd reads a POST under /v2/members as an add: without a JSON
		// body it refuses it, and nothing is added.
		assert.ErrorIs(t, c.Members().Promote(ctx, members[0].ID), client.ErrPromoteUnsupported)
		after, err := c.Members().List(ctx)
		require.NoError(t, err)
		assert.Equal(t, members, after)
	})
}
