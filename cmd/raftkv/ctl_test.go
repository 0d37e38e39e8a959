package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/embed"
)

// TestCtlKeyCommands runs the key commands against a 3-member cluster and
// checks their output, error lines and exit codes against etcdctl v2's.
func TestCtlKeyCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	eps := startCtlCluster(t, 3).endpoints

	t.Run("set and get", func(t *testing.T) {
		assert.Equal(t, "Hello\n", ctlOK(t, eps, "set", "/message", "Hello"))
		assert.Equal(t, "Hello\n", ctlOK(t, eps, "get", "/message"))
		assert.Equal(t, "Hello\n", ctlOK(t, eps, "get", "message", "--quorum"), "a key without a leading slash")

		ext := ctlOK(t, eps, "get", "/message", "-o", "extended")
		assert.Regexp(t, `^Key: /message\nCreated-Index: \d+\nModified-Index: \d+\nTTL: 0\nIndex: \d+\n\nHello\n$`, ext)

		assert.Regexp(t, `^\{"action":"get","node":\{"key":"/message","value":"Hello","nodes":null,"createdIndex":(\d+),"modifiedIndex":(\d+)\},"prevNode":null\}\n$`,
			ctlOK(t, eps, "get", "/message", "-o", "json"), "etcdctl's JSON: the official client's types")
		var ev struct {
			Action string `json:"action"`
			Node   struct {
				Key, Value    string
				ModifiedIndex uint64 `json:"modifiedIndex"`
			} `json:"node"`
		}
		require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps, "get", "/message", "--output", "json")), &ev))
		assert.Equal(t, "get", ev.Action)
		assert.Equal(t, "Hello", ev.Node.Value)
		assert.NotZero(t, ev.Node.ModifiedIndex)
	})

	t.Run("errors as etcdctl prints them", func(t *testing.T) {
		r := ctl(t, eps, "get", "/missing")
		assert.Equal(t, 4, r.code)
		assert.Regexp(t, `^Error:  100: Key not found \(/missing\) \[\d+\]\n$`, r.stderr)
		assert.Empty(t, r.stdout)

		r = ctl(t, eps, "get", "/missing", "-o", "json")
		assert.Equal(t, 4, r.code)
		assert.Regexp(t, `^Error:  100: Key not found \(/missing\) \[\d+\]\n$`, r.stderr, "etcdctl prints errors so with -o json too")

		r = ctl(t, eps, "set")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, "Error:  key required\n", r.stderr)

		r = ctl(t, eps, "get", "/message", "-o", "yaml")
		assert.Equal(t, 1, r.code)

		r = ctl(t, []string{"http://" + loopbackAddr(t)}, "get", "/message")
		assert.Equal(t, 2, r.code, "no endpoint reachable")
		assert.Regexp(t, `^Error:  client: etcd cluster is unavailable or misconfigured; error #0: dial tcp 127.0.0.1:\d+: connect: connection refused\n\n`+
			`error #0: dial tcp 127.0.0.1:\d+: connect: connection refused\n\n$`, r.stderr, "etcdctl's lines")
	})

	t.Run("compare and swap", func(t *testing.T) {
		ctlOK(t, eps, "set", "/cas", "one")
		r := ctl(t, eps, "set", "/cas", "two", "--swap-with-value", "zero")
		assert.Equal(t, 4, r.code)
		assert.Regexp(t, `^Error:  101: Compare failed \(\[zero != one\]\) \[\d+\]\n$`, r.stderr)
		assert.Equal(t, "two\n", ctlOK(t, eps, "set", "/cas", "two", "--swap-with-value", "one"))
		assert.Equal(t, 4, ctl(t, eps, "set", "/cas", "x", "--swap-with-index", "1").code)
	})

	t.Run("value from stdin", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r := newCtlCommand(eps, "from\nstdin\n", "set", "/stdin").run(ctx)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, "from\nstdin\n\n", ctlOK(t, eps, "get", "/stdin"), "kept as it is, as etcdctl does")
		assert.Equal(t, "-dash\n", ctlOK(t, eps, "set", "--", "/dash", "-dash"))
	})

	t.Run("mk, update, ttl", func(t *testing.T) {
		r := ctl(t, eps, "mk", "/message", "again")
		assert.Equal(t, 4, r.code)
		assert.Regexp(t, `^Error:  105: Key already exists \(/message\) \[\d+\]\n$`, r.stderr)
		assert.Equal(t, "v\n", ctlOK(t, eps, "mk", "/new", "v", "--ttl", "100"))
		assert.Regexp(t, `\nTTL: (100|99)\n`, ctlOK(t, eps, "get", "/new", "-o", "extended"))
		assert.Equal(t, "w\n", ctlOK(t, eps, "update", "/new", "w"))
		assert.Contains(t, ctlOK(t, eps, "get", "/new", "-o", "extended"), "\nTTL: 0\n", "update without --ttl makes the key permanent")
		r = ctl(t, eps, "update", "/nothing", "x")
		assert.Equal(t, 4, r.code)
		assert.Contains(t, r.stderr, "100: Key not found (/nothing)")
		assert.Equal(t, "PrevNode.Value: w\n", ctlOK(t, eps, "rm", "/new", "--with-value", "w"))
	})

	t.Run("directories", func(t *testing.T) { testCtlDirectories(t, eps) })
	t.Run("environment", func(t *testing.T) {
		t.Setenv("RAFTKV_ENDPOINTS", strings.Join(eps, ","))
		assert.Equal(t, "Hello\n", ctlOK(t, nil, "get", "/message"))
	})
	t.Run("etcdctl environment", func(t *testing.T) {
		t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(eps, ","))
		assert.Equal(t, "Hello\n", ctlOK(t, nil, "get", "/message"))
		// RAFTKV_ENDPOINTS wins.
		t.Setenv("RAFTKV_ENDPOINTS", "http://127.0.0.1:1")
		assert.NotEqual(t, 0, ctl(t, nil, "get", "/message").code)
	})
}

func testCtlDirectories(t *testing.T, eps []string) {
	assert.Empty(t, ctlOK(t, eps, "mkdir", "/dir"), "mkdir prints nothing, as etcdctl")
	r := ctl(t, eps, "mkdir", "/dir")
	assert.Equal(t, 4, r.code)
	assert.Contains(t, r.stderr, "105: Key already exists (/dir)")
	ctlOK(t, eps, "set", "/dir/b", "2")
	ctlOK(t, eps, "set", "/dir/sub/c", "3")
	ctlOK(t, eps, "set", "/dir/a", "1")

	assert.Equal(t, "/dir/a\n/dir/b\n/dir/sub\n", ctlOK(t, eps, "ls", "/dir", "--sort"))
	assert.Equal(t, "/dir/a\n/dir/b\n/dir/sub/\n/dir/sub/c\n", ctlOK(t, eps, "ls", "/dir", "--sort", "--recursive", "-p"))
	assert.Equal(t, "/dir/a\n", ctlOK(t, eps, "ls", "/dir/a"), "ls of a key prints the key")
	assert.Contains(t, ctlOK(t, eps, "ls", "--sort"), "/dir\n", "ls lists the root by default")

	r = ctl(t, eps, "get", "/dir")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "/dir: is a directory\n", r.stderr)

	var first, second string
	first = strings.TrimSpace(ctlOK(t, eps, "mk", "/queue", "job1", "--in-order", "-o", "extended"))
	second = strings.TrimSpace(ctlOK(t, eps, "mk", "/queue", "job2", "--in-order", "-o", "extended"))
	keyOf := func(ext string) string { return strings.TrimPrefix(strings.SplitN(ext, "\n", 2)[0], "Key: ") }
	assert.Equal(t, keyOf(first)+"\n"+keyOf(second)+"\n", ctlOK(t, eps, "ls", "/queue", "--sort"))
	assert.Regexp(t, `^/queue/\d{20}$`, keyOf(first))

	assert.Empty(t, ctlOK(t, eps, "updatedir", "/dir", "--ttl", "100"))
	var ev struct {
		Node struct {
			TTL int64 `json:"ttl"`
		} `json:"node"`
	}
	require.NoError(t, json.Unmarshal([]byte(ctlOK(t, eps, "ls", "/dir", "-o", "json")), &ev))
	assert.InDelta(t, 100, ev.Node.TTL, 1)

	r = ctl(t, eps, "rm", "/dir")
	assert.Equal(t, 4, r.code)
	assert.Contains(t, r.stderr, "102: Not a file (/dir)")
	r = ctl(t, eps, "rmdir", "/dir")
	assert.Equal(t, 4, r.code)
	assert.Contains(t, r.stderr, "108: Directory not empty (/dir)")
	assert.Empty(t, ctlOK(t, eps, "rm", "/dir", "--recursive"))
	ctlOK(t, eps, "mkdir", "/empty")
	assert.Empty(t, ctlOK(t, eps, "rmdir", "/empty"))
	r = ctl(t, eps, "ls", "/dir")
	assert.Equal(t, 4, r.code)
}

// TestCtlWatchCommands: watch prints one change (or every change, with
// --forever), exec-watch runs a command with the change in its
// environment; Ctrl-C (here: the context) ends both with exit code 0.
func TestCtlWatchCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := startCtlCluster(t, 3)
	eps, cl := c.endpoints, c.client(t)
	ctx := context.Background()
	index := func() string {
		resp, err := cl.Set(ctx, "/_mark", "", nil)
		require.NoError(t, err)
		return fmt.Sprint(resp.Index)
	}

	after := index()
	ctlOK(t, eps, "set", "/w/a", "1")
	assert.Equal(t, "1\n", ctlOK(t, eps, "watch", "/w/a", "--after-index", after), "a past change comes from the history")
	assert.Equal(t, "[set] /w/a\n1\n", ctlOK(t, eps, "watch", "/w", "--recursive", "--after-index", after))

	after = index()
	watch := newCtlCommand(eps, "", "watch", "/w", "-r", "--forever", "--after-index", after)
	exec := newCtlCommand(eps, "", "exec-watch", "--recursive", "--after-index", after, "/w", "--",
		"sh", "-c", `echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_MODIFIED_INDEX"`)
	runCtx, stop := context.WithCancel(ctx)
	results := make(chan ctlResult, 2)
	go func() { results <- watch.run(runCtx) }()
	go func() { results <- exec.run(runCtx) }()
	ctlOK(t, eps, "set", "/w/a", "2")
	ctlOK(t, eps, "mkdir", "/w/d")
	ctlOK(t, eps, "rm", "/w/a")
	require.Eventually(t, func() bool {
		return strings.Count(watch.stdout.String(), "\n") >= 4 && strings.Count(exec.stdout.String(), "\n") >= 2
	}, 10*time.Second, 10*time.Millisecond, "watch: %q, exec-watch: %q", watch.stdout.String(), exec.stdout.String())
	stop()
	for range 2 {
		r := <-results
		assert.Equal(t, 0, r.code, "interrupted watches end well: %s", r.stderr)
	}
	assert.Equal(t, "[set] /w/a\n2\n[delete] /w/a\nPrevNode.Value: 2\n", watch.stdout.String(), "directories are skipped")
	assert.Regexp(t, `^set /w/a 2 \d+\ndelete /w/a  \d+\n$`, exec.stdout.String())
	assert.Equal(t, "Ignored dir /w/d change\n", exec.stderr.String())

	r := ctl(t, eps, "exec-watch", "/w")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "Error:  key and command to exec required\n", r.stderr)
}

var memberLine = regexp.MustCompile(`^([0-9a-f]+): name=(m\d) peerURLs=(\S+) clientURLs=(\S+) isLeader=(true|false)$`)

// TestCtlMemberCommands lists, adds (and starts with the printed
// environment), updates, promotes and removes members, and checks the
// cluster's health.
func TestCtlMemberCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := startCtlCluster(t, 3)
	eps := c.endpoints
	// A log of more than 64 entries, so that a learner is promoted only once
	// it has caught up from something (servers before 543027d promoted one
	// that never started while the log was short).
	cl := c.client(t)
	for i := range 80 {
		_, err := cl.Set(context.Background(), fmt.Sprintf("/fill/%d", i), "x", nil)
		require.NoError(t, err)
	}

	lines := strings.Split(strings.TrimSpace(ctlOK(t, eps, "member", "list")), "\n")
	require.Len(t, lines, 3)
	leaders := 0
	for _, l := range lines {
		m := memberLine.FindStringSubmatch(l)
		require.NotNil(t, m, l)
		if m[5] == "true" {
			leaders++
		}
	}
	assert.Equal(t, 1, leaders)
	health := ctlOK(t, eps, "cluster-health")
	assert.Equal(t, 3, strings.Count(health, " is healthy: got healthy result from http://127.0.0.1:"), health)
	assert.True(t, strings.HasSuffix(health, "\ncluster is healthy\n"), health)

	joined := testCtlMemberAdd(t, c)
	defer func() { assert.NoError(t, joined.Stop()) }()
	testCtlUnstartedMember(t, eps)

	r := ctl(t, eps, "member", "remove", "abc")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "Couldn't find a member in the cluster with an ID of abc.\n", r.stderr)
	id := fmt.Sprintf("%x", joined.ID())
	assert.Equal(t, "Removed member "+id+" from cluster\n", ctlOK(t, eps, "member", "remove", id))
	assert.Eventually(t, func() bool {
		return len(strings.Split(strings.TrimSpace(ctl(t, eps, "member", "list").stdout), "\n")) == 3
	}, 5*time.Second, 20*time.Millisecond)

	// Two of three members gone: no majority is healthy.
	require.NoError(t, c.members[1].Stop())
	require.NoError(t, c.members[2].Stop())
	r = ctl(t, eps, "cluster-health", "--timeout", "10s")
	assert.Equal(t, 5, r.code, r.stdout+r.stderr)
	assert.True(t, strings.HasSuffix(r.stdout, "\ncluster is unhealthy\n"), r.stdout)
	assert.Contains(t, r.stdout, "are all unreachable")
}

// testCtlMemberAdd adds m4 and starts it with the environment member add
// printed: it joins under the ID the cluster gave it.
func testCtlMemberAdd(t *testing.T, c *ctlCluster) *embed.Member {
	peer := "http://" + loopbackAddr(t)
	out := ctlOK(t, c.endpoints, "member", "add", "m4", peer)
	lines := strings.Split(out, "\n")
	head := regexp.MustCompile(`^Added member named m4 with ID ([0-9a-f]+) to cluster$`).FindStringSubmatch(lines[0])
	require.NotNil(t, head, out)
	env := map[string]string{}
	for _, l := range lines[2:] {
		if l == "" {
			continue
		}
		name, quoted, ok := strings.Cut(l, "=")
		require.True(t, ok, l)
		v, err := strconv.Unquote(quoted)
		require.NoError(t, err, l)
		env[name] = v
	}
	// Members come in ID order, as member list shows them.
	assert.ElementsMatch(t, []string{"m1=" + c.peerURLs[0], "m2=" + c.peerURLs[1], "m3=" + c.peerURLs[2], "m4=" + peer},
		strings.Split(env["ETCD_INITIAL_CLUSTER"], ","))
	assert.Equal(t, map[string]string{
		"ETCD_NAME": "m4", "ETCD_INITIAL_CLUSTER": env["ETCD_INITIAL_CLUSTER"], "ETCD_INITIAL_ADVERTISE_PEER_URLS": peer,
		"ETCD_INITIAL_CLUSTER_STATE": "existing",
	}, env)

	m, err := embed.Start(embed.Config{
		Name: env["ETCD_NAME"], DataDir: t.TempDir(),
		ListenClientURLs: []string{"http://127.0.0.1:0"}, ListenPeerURLs: []string{peer},
		InitialAdvertisePeerURLs: splitList(env["ETCD_INITIAL_ADVERTISE_PEER_URLS"]),
		InitialCluster:           env["ETCD_INITIAL_CLUSTER"], InitialClusterState: env["ETCD_INITIAL_CLUSTER_STATE"],
		HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	assert.Equal(t, head[1], fmt.Sprintf("%x", m.ID()))
	require.Eventually(t, func() bool {
		return strings.Contains(ctl(t, c.endpoints, "member", "list").stdout, "name=m4 ")
	}, 15*time.Second, 50*time.Millisecond, "m4 never started")
	return m
}

// testCtlUnstartedMember adds a member that never starts, updates its
// peer URL, promotes it and removes it.
func testCtlUnstartedMember(t *testing.T, eps []string) {
	peer := "http://" + loopbackAddr(t)
	out := ctlOK(t, eps, "member", "add", "m5", peer)
	head := regexp.MustCompile(`^Added member named m5 with ID ([0-9a-f]+) to cluster\n`).FindStringSubmatch(out)
	require.NotNil(t, head, out)
	id := head[1]
	// GET /v2/members answers from the member's own table, which may lag
	// behind the leader's for a moment, as in etcd.
	listShows := func(line string) {
		assert.Eventually(t, func() bool { return strings.Contains(ctl(t, eps, "member", "list").stdout, line) },
			5*time.Second, 20*time.Millisecond, "member list never showed %q", line)
	}
	listShows(id + "[unstarted]: peerURLs=" + peer + "\n")

	// Refused for its URL (a change sent while another, such as an
	// automatic promotion, is under way waits its turn first).
	r := ctl(t, eps, "member", "add", "m6", peer)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "membership: peerURL exists\n", r.stderr)

	moved := "http://" + loopbackAddr(t)
	assert.Equal(t, "Updated member with ID "+id+" in cluster\n", ctlOK(t, eps, "member", "update", id, moved))
	listShows(id + "[unstarted]: peerURLs=" + moved + "\n")
	assert.Equal(t, "Promoted member "+id+" to voter in cluster\n", ctlOK(t, eps, "member", "promote", id))
	r = ctl(t, eps, "member", "promote", id)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "can only promote a learner")
	assert.Equal(t, "Removed member "+id+" from cluster\n", ctlOK(t, eps, "member", "remove", id))
}
