package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	client "go.etcd.io/etcd/client/v2"

	"github.com/raftkv/raftkv/embed"
	"github.com/raftkv/raftkv/rpc"
	"github.com/raftkv/raftkv/server"
	"github.com/raftkv/raftkv/storage"
)

// testCluster is an in-process cluster of real members (raft, key space,
// WAL on memory file systems, connected by a LocalNetwork), each serving
// the client API on its own loopback port.
type testCluster struct {
	endpoints []string
	runtimes  []*server.Runtime
	apis      []*rpc.API
}

func startTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	c := &testCluster{}
	var listeners []net.Listener
	var infos []server.MemberInfo
	for i := 1; i <= n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		listeners = append(listeners, l)
		endpoint := "http://" + l.Addr().String()
		c.endpoints = append(c.endpoints, endpoint)
		infos = append(infos, server.MemberInfo{
			ID: uint64(i), Name: fmt.Sprintf("m%d", i),
			// The peers talk in process; their peer URLs are only names.
			PeerURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", 12380+i)}, ClientURLs: []string{endpoint},
		})
	}
	network := server.NewLocalNetwork()
	for i, info := range infos {
		m, err := server.New(server.Config{
			ID: info.ID, Name: info.Name, InitialCluster: infos, ClusterToken: "rpc-test",
			PeerURLs: info.PeerURLs, ClientURLs: info.ClientURLs,
			FS: storage.NewMemFS(), Dir: "data", Rand: rand.New(rand.NewPCG(info.ID, 7)),
			TickMillis: 10, ElectionTicks: 10,
		})
		require.NoError(t, err)
		rt := server.NewRuntime(m, network, server.RuntimeOptions{Tick: 10 * time.Millisecond})
		network.Join(info.ID, rt)
		c.runtimes = append(c.runtimes, rt)
		api, err := rpc.NewAPI(rpc.NewRuntimeBackend(rt), rpc.APIOptions{})
		require.NoError(t, err)
		c.apis = append(c.apis, api)
		go api.Serve(listeners[i], nil)
	}
	for _, rt := range c.runtimes {
		rt.Start()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, api := range c.apis {
			assert.NoError(t, api.Shutdown(ctx))
		}
		for _, rt := range c.runtimes {
			assert.NoError(t, rt.Stop())
		}
	})
	require.Eventually(t, func() bool {
		for _, rt := range c.runtimes {
			if rt.Status().Leader == 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "no leader elected")
	return c
}

func newClient(t *testing.T, endpoints ...string) client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		Endpoints:               endpoints,
		Transport:               client.DefaultTransport,
		HeaderTimeoutPerRequest: 10 * time.Second,
	})
	require.NoError(t, err)
	return c
}

// etcdError unwraps the client's error into the etcd error it carries.
func etcdError(t *testing.T, err error) client.Error {
	t.Helper()
	var e client.Error
	require.True(t, errors.As(err, &e), "want an etcd error, got %v", err)
	return e
}

// TestEtcdClientCompatibility drives a 3-member in-process cluster with
// the official etcd v2 Go client and checks the answers the spec gives
// (spec §13).
func TestEtcdClientCompatibility(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cluster := startTestCluster(t, 3)
	runEtcdClientSuite(t, cluster.endpoints, cluster.runtimes)
}

// TestEtcdClientCompatibilityTCP does the same on real members: peers on
// loopback TCP, WALs fsynced on disk (embed, as raftkv serve runs them).
func TestEtcdClientCompatibilityTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	const n = 3
	var parts []string
	peerURLs := make([]string, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		peerURLs[i] = "http://" + l.Addr().String()
		l.Close()
		parts = append(parts, fmt.Sprintf("m%d=%s", i+1, peerURLs[i]))
	}
	var endpoints []string
	var runtimes []*server.Runtime
	for i := range n {
		m, err := embed.Start(embed.Config{
			Name: fmt.Sprintf("m%d", i+1), DataDir: t.TempDir(),
			ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{peerURLs[i]},
			InitialCluster: strings.Join(parts, ","), InitialClusterToken: "rpc-test",
			HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		})
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, m.Stop()) })
		endpoints = append(endpoints, m.ClientURLs()...)
		runtimes = append(runtimes, m.Runtime())
	}
	require.Eventually(t, func() bool {
		for _, rt := range runtimes {
			if rt.Status().Leader == 0 {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond, "no leader elected")
	runEtcdClientSuite(t, endpoints, runtimes)
}

// runEtcdClientSuite checks a running cluster through the official client;
// endpoints[i] is the client URL of the member runtimes[i] runs, and the
// members are named m1, m2, ...
func runEtcdClientSuite(t *testing.T, endpoints []string, runtimes []*server.Runtime) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newClient(t, endpoints...)
	kapi := client.NewKeysAPI(c)
	// One client per member, to check that any member answers anything.
	var perMember []client.KeysAPI
	for _, ep := range endpoints {
		perMember = append(perMember, client.NewKeysAPI(newClient(t, ep)))
	}

	var id uint64
	require.NoError(t, runtimes[0].Query(ctx, func(m *server.Member) { id = m.ClusterID() }))
	clusterID := fmt.Sprintf("%x", id)
	require.NotEqual(t, "0", clusterID)

	t.Run("set, replace, read anywhere", func(t *testing.T) {
		resp, err := kapi.Set(ctx, "/message", "Hello", nil)
		require.NoError(t, err)
		assert.Equal(t, "set", resp.Action)
		assert.Equal(t, "/message", resp.Node.Key)
		assert.Equal(t, "Hello", resp.Node.Value)
		assert.Equal(t, resp.Index, resp.Node.ModifiedIndex)
		assert.Equal(t, resp.Node.CreatedIndex, resp.Node.ModifiedIndex)
		assert.Nil(t, resp.PrevNode)
		assert.Equal(t, clusterID, resp.ClusterID)

		again, err := kapi.Set(ctx, "/message", "World", nil)
		require.NoError(t, err)
		assert.Equal(t, resp.Index+1, again.Index, "one index per change")
		assert.Equal(t, again.Index, again.Node.CreatedIndex, "set replaces the node")
		require.NotNil(t, again.PrevNode)
		assert.Equal(t, "Hello", again.PrevNode.Value)

		// Reads are linearizable on every member: each sees the write at once.
		for i, member := range perMember {
			got, err := member.Get(ctx, "/message", nil)
			require.NoError(t, err, "member %d", i+1)
			assert.Equal(t, "World", got.Node.Value, "member %d", i+1)
			assert.GreaterOrEqual(t, got.Index, again.Index)
		}
		_, err = kapi.Get(ctx, "/missing", nil)
		e := etcdError(t, err)
		assert.Equal(t, client.ErrorCodeKeyNotFound, e.Code)
		assert.Equal(t, "/missing", e.Cause)
		assert.Equal(t, again.Index, e.Index)
	})

	t.Run("set options", func(t *testing.T) {
		_, err := kapi.Set(ctx, "/opt", "a", &client.SetOptions{PrevExist: client.PrevNoExist})
		require.NoError(t, err)
		_, err = kapi.Set(ctx, "/opt", "b", &client.SetOptions{PrevExist: client.PrevNoExist})
		assert.Equal(t, client.ErrorCodeNodeExist, etcdError(t, err).Code)
		created, err := kapi.Create(ctx, "/opt2", "x")
		require.NoError(t, err)
		assert.Equal(t, "create", created.Action)

		upd, err := kapi.Set(ctx, "/opt", "b", &client.SetOptions{PrevExist: client.PrevExist})
		require.NoError(t, err)
		assert.Equal(t, "update", upd.Action)
		assert.Equal(t, "a", upd.PrevNode.Value)
		_, err = kapi.Update(ctx, "/nothing", "x")
		assert.Equal(t, client.ErrorCodeKeyNotFound, etcdError(t, err).Code)

		_, err = kapi.Set(ctx, "/opt", "c", &client.SetOptions{PrevValue: "zzz"})
		e := etcdError(t, err)
		assert.Equal(t, client.ErrorCodeTestFailed, e.Code)
		assert.Equal(t, "[zzz != b]", e.Cause)
		_, err = kapi.Set(ctx, "/opt", "c", &client.SetOptions{PrevIndex: 1})
		assert.Equal(t, fmt.Sprintf("[1 != %d]", upd.Node.ModifiedIndex), etcdError(t, err).Cause)
		cas, err := kapi.Set(ctx, "/opt", "c", &client.SetOptions{PrevValue: "b", PrevIndex: upd.Node.ModifiedIndex})
		require.NoError(t, err)
		assert.Equal(t, "compareAndSwap", cas.Action)
		assert.Equal(t, upd.Node.CreatedIndex, cas.Node.CreatedIndex, "createdIndex kept by CAS")

		quiet, err := kapi.Set(ctx, "/opt", "d", &client.SetOptions{NoValueOnSuccess: true})
		require.NoError(t, err)
		assert.Equal(t, "set", quiet.Action)
		assert.Nil(t, quiet.Node)

		dir, err := kapi.Set(ctx, "/somedir", "", &client.SetOptions{Dir: true})
		require.NoError(t, err)
		assert.True(t, dir.Node.Dir)
		_, err = kapi.Set(ctx, "/somedir", "", &client.SetOptions{Dir: true})
		assert.Equal(t, client.ErrorCodeNotFile, etcdError(t, err).Code)
	})

	t.Run("ttl and refresh", func(t *testing.T) {
		resp, err := kapi.Set(ctx, "/ttl", "v", &client.SetOptions{TTL: 5 * time.Second})
		require.NoError(t, err)
		assert.Equal(t, int64(5), resp.Node.TTL)
		require.NotNil(t, resp.Node.Expiration)
		assert.WithinDuration(t, time.Now().Add(5*time.Second), *resp.Node.Expiration, 2*time.Second)

		ref, err := kapi.Set(ctx, "/ttl", "", &client.SetOptions{TTL: 30 * time.Second, Refresh: true, PrevExist: client.PrevExist})
		require.NoError(t, err)
		assert.Equal(t, "update", ref.Action)
		assert.Equal(t, "v", ref.Node.Value, "refresh keeps the value")
		assert.Equal(t, int64(30), ref.Node.TTL)

		// An update without a TTL makes the key permanent.
		perm, err := kapi.Set(ctx, "/ttl", "w", &client.SetOptions{PrevExist: client.PrevExist})
		require.NoError(t, err)
		assert.Nil(t, perm.Node.Expiration)
		assert.Zero(t, perm.Node.TTL)
	})

	t.Run("expiry", func(t *testing.T) {
		resp, err := kapi.Set(ctx, "/short", "v", &client.SetOptions{TTL: time.Second})
		require.NoError(t, err)
		w := kapi.Watcher("/short", &client.WatcherOptions{AfterIndex: resp.Index})
		ev, err := w.Next(ctx)
		require.NoError(t, err)
		assert.Equal(t, "expire", ev.Action)
		assert.Equal(t, "/short", ev.Node.Key)
		require.NotNil(t, ev.PrevNode)
		assert.Equal(t, "v", ev.PrevNode.Value)
		_, err = kapi.Get(ctx, "/short", nil)
		assert.Equal(t, client.ErrorCodeKeyNotFound, etcdError(t, err).Code)
	})

	t.Run("get recursive sorted", func(t *testing.T) {
		for _, k := range []string{"/tree/b/2", "/tree/a", "/tree/b/1", "/tree/_hidden"} {
			_, err := kapi.Set(ctx, k, k, nil)
			require.NoError(t, err)
		}
		resp, err := kapi.Get(ctx, "/tree", &client.GetOptions{Recursive: true, Sort: true, Quorum: true})
		require.NoError(t, err)
		require.True(t, resp.Node.Dir)
		var keys []string
		var walk func(n *client.Node)
		walk = func(n *client.Node) {
			keys = append(keys, n.Key)
			for _, c := range n.Nodes {
				walk(c)
			}
		}
		walk(resp.Node)
		assert.Equal(t, []string{"/tree", "/tree/a", "/tree/b", "/tree/b/1", "/tree/b/2"}, keys)
		flat, err := kapi.Get(ctx, "/tree", &client.GetOptions{Sort: true})
		require.NoError(t, err)
		require.Len(t, flat.Node.Nodes, 2)
		assert.Empty(t, flat.Node.Nodes[1].Nodes, "no grandchildren without recursive")
	})

	t.Run("delete", func(t *testing.T) {
		set, err := kapi.Set(ctx, "/del/a", "1", nil)
		require.NoError(t, err)
		_, err = kapi.Delete(ctx, "/del", nil)
		assert.Equal(t, client.ErrorCodeNotFile, etcdError(t, err).Code)
		_, err = kapi.Delete(ctx, "/del", &client.DeleteOptions{Dir: true})
		assert.Equal(t, client.ErrorCodeDirNotEmpty, etcdError(t, err).Code)
		_, err = kapi.Delete(ctx, "/del/a", &client.DeleteOptions{PrevValue: "x"})
		assert.Equal(t, "[x != 1]", etcdError(t, err).Cause)
		_, err = kapi.Delete(ctx, "/del/a", &client.DeleteOptions{PrevIndex: set.Index + 100})
		assert.Equal(t, client.ErrorCodeTestFailed, etcdError(t, err).Code)
		cad, err := kapi.Delete(ctx, "/del/a", &client.DeleteOptions{PrevValue: "1", PrevIndex: set.Index})
		require.NoError(t, err)
		assert.Equal(t, "compareAndDelete", cad.Action)
		assert.Equal(t, "1", cad.PrevNode.Value)
		_, err = kapi.Set(ctx, "/del/b/c", "1", nil)
		require.NoError(t, err)
		del, err := kapi.Delete(ctx, "/del", &client.DeleteOptions{Recursive: true})
		require.NoError(t, err)
		assert.Equal(t, "delete", del.Action)
		assert.True(t, del.Node.Dir)
		assert.True(t, del.PrevNode.Dir)
		_, err = kapi.Delete(ctx, "/", &client.DeleteOptions{Recursive: true})
		assert.Equal(t, client.ErrorCodeRootROnly, etcdError(t, err).Code)
	})

	t.Run("create in order", func(t *testing.T) {
		first, err := kapi.CreateInOrder(ctx, "/queue", "job1", nil)
		require.NoError(t, err)
		assert.Equal(t, "create", first.Action)
		assert.Equal(t, fmt.Sprintf("/queue/%020d", first.Index), first.Node.Key)
		second, err := kapi.CreateInOrder(ctx, "/queue", "job2", &client.CreateInOrderOptions{TTL: time.Minute})
		require.NoError(t, err)
		assert.Equal(t, int64(60), second.Node.TTL)
		list, err := kapi.Get(ctx, "/queue", &client.GetOptions{Sort: true})
		require.NoError(t, err)
		require.Len(t, list.Node.Nodes, 2)
		assert.Equal(t, "job1", list.Node.Nodes[0].Value)
		assert.Equal(t, "job2", list.Node.Nodes[1].Value)
	})

	t.Run("watchers", func(t *testing.T) {
		first, err := kapi.Set(ctx, "/watched/k", "1", nil)
		require.NoError(t, err)
		second, err := kapi.Set(ctx, "/watched/k", "2", nil)
		require.NoError(t, err)
		// From the history: the change after AfterIndex.
		w := kapi.Watcher("/watched/k", &client.WatcherOptions{AfterIndex: first.Index})
		ev, err := w.Next(ctx)
		require.NoError(t, err)
		assert.Equal(t, second.Index, ev.Node.ModifiedIndex)
		assert.Equal(t, "1", ev.PrevNode.Value)

		// Recursive, on another member than the one written to. AfterIndex
		// makes the watch see the write even if it registers after it.
		rw := perMember[2].Watcher("/watched", &client.WatcherOptions{Recursive: true, AfterIndex: second.Index})
		got := make(chan *client.Response, 1)
		errs := make(chan error, 1)
		go func() {
			ev, err := rw.Next(ctx)
			if err != nil {
				errs <- err
				return
			}
			got <- ev
		}()
		time.Sleep(50 * time.Millisecond) // most likely a live event, then
		third, err := perMember[0].Set(ctx, "/watched/deep/x", "3", nil)
		require.NoError(t, err)
		select {
		case ev := <-got:
			assert.Equal(t, "set", ev.Action)
			assert.Equal(t, "/watched/deep/x", ev.Node.Key)
			assert.Equal(t, third.Index, ev.Node.ModifiedIndex)
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("no event")
		}
		// The watcher continues from the last event.
		_, err = perMember[1].Set(ctx, "/watched/k", "4", nil)
		require.NoError(t, err)
		ev, err = rw.Next(ctx)
		require.NoError(t, err)
		assert.Equal(t, "4", ev.Node.Value)
	})

	t.Run("members", func(t *testing.T) {
		mapi := client.NewMembersAPI(c)
		members, err := mapi.List(ctx)
		require.NoError(t, err)
		require.Len(t, members, 3)
		// Sorted by ID, each with its name and client URL.
		for i, m := range members {
			if i > 0 {
				assert.Less(t, hexID(t, members[i-1].ID), hexID(t, m.ID))
			}
			j := slices.IndexFunc(runtimes, func(rt *server.Runtime) bool { return rt.Status().ID == hexID(t, m.ID) })
			require.GreaterOrEqual(t, j, 0, "member %s", m.ID)
			assert.Equal(t, fmt.Sprintf("m%d", j+1), m.Name)
			assert.Equal(t, []string{endpoints[j]}, m.ClientURLs)
			assert.Len(t, m.PeerURLs, 1)
		}
		leader, err := mapi.Leader(ctx)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("%x", runtimes[0].Status().Leader), leader.ID)
		require.NoError(t, c.Sync(ctx))
		synced := c.Endpoints()
		slices.Sort(synced)
		want := slices.Clone(endpoints)
		slices.Sort(want)
		assert.Equal(t, want, synced)
		v, err := c.GetVersion(ctx)
		require.NoError(t, err)
		assert.Equal(t, rpc.DefaultServerVersion, v.Server)
	})

	t.Run("health", func(t *testing.T) {
		for _, ep := range endpoints {
			resp, err := http.Get(ep + "/health")
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
		}
	})
}

// TestClusterSingleMember: a one-member cluster takes a 2 MiB value (no
// smaller limit bites, spec §3.1) and reads it back through ReadIndex.
func TestClusterSingleMember(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cluster := startTestCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kapi := client.NewKeysAPI(newClient(t, cluster.endpoints[0]))
	big := strings.Repeat("x", 2<<20)
	resp, err := kapi.Set(ctx, "/big", big, nil)
	require.NoError(t, err, "a 2 MiB value is accepted")
	got, err := kapi.Get(ctx, "/big", &client.GetOptions{Quorum: true})
	require.NoError(t, err)
	assert.Equal(t, resp.Index, got.Node.ModifiedIndex)
	assert.Len(t, got.Node.Value, len(big))
}

func hexID(t *testing.T, s string) uint64 {
	t.Helper()
	id, err := strconv.ParseUint(s, 16, 64)
	require.NoError(t, err)
	return id
}
