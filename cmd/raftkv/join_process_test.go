package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Joining a member as etcd operators do (issue 16): `member add` prints the
// ETCD_* environment of the new member — no cluster token — and the member
// started with it (and its listen flags) learns the cluster's IDs and its
// own from the members it names.

const joinTestToken = "issue-16-token"

// startProcWith starts m with exactly args and the environment env (plus
// PATH/HOME) in directory dir, and waits until it serves clients.
func (c *procCluster) startProcWith(m *procMember, env []string, dir string) {
	c.t.Helper()
	m.cmd = exec.Command(c.bin, m.args...)
	m.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	m.cmd.Dir = dir
	m.cmd.Stdout, m.cmd.Stderr = m.logs, m.logs
	if err := m.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", m.name, err)
	}
	c.waitServing(m, 30*time.Second)
}

// runCtl runs a raftkv command line to its end and returns its output.
func (c *procCluster) runCtl(args ...string) (string, error) {
	out, err := exec.Command(c.bin, args...).CombinedOutput()
	return string(out), err
}

// memberAddEnv runs `raftkv member add name peerURL` (retrying while
// another change is under way) and returns the printed ID and the ETCD_*
// lines as NAME=value.
func (c *procCluster) memberAddEnv(name, peerURL string) (string, []string) {
	c.t.Helper()
	var out string
	var err error
	for attempt := 0; attempt < 40; attempt++ {
		out, err = c.runCtl("member", "add", name, peerURL, "--endpoints", strings.Join(c.liveEndpoints(), ","))
		if err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("member add %s: %v\n%s", name, err, out)
	}
	head := regexp.MustCompile(`(?m)^Added member named ` + name + ` with ID ([0-9a-f]+) to cluster$`).FindStringSubmatch(out)
	if head == nil {
		c.t.Fatalf("member add printed %q", out)
	}
	var env []string
	for _, l := range strings.Split(out, "\n") {
		k, quoted, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(k, "ETCD_") {
			continue
		}
		v, err := strconv.Unquote(quoted)
		if err != nil {
			c.t.Fatalf("member add printed %q: %v", l, err)
		}
		env = append(env, k+"="+v)
	}
	return head[1], env
}

func (c *procCluster) liveEndpoints() []string {
	var eps []string
	for _, m := range c.members {
		if m.cmd != nil {
			eps = append(eps, m.clientURL)
		}
	}
	return eps
}

// getKey reads key from endpoint: value, modifiedIndex, createdIndex and
// the X-Etcd-Index header.
type keyRead struct {
	Value                      string
	Modified, Created, EtcdIdx uint64
	Status                     int
}

func getKey(endpoint, key string) (keyRead, error) {
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get(endpoint + "/v2/keys" + key)
	if err != nil {
		return keyRead{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ev struct {
		Node struct {
			Value         string `json:"value"`
			ModifiedIndex uint64 `json:"modifiedIndex"`
			CreatedIndex  uint64 `json:"createdIndex"`
		} `json:"node"`
	}
	r := keyRead{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &ev); err != nil {
			return r, fmt.Errorf("GET %s: %s", key, body)
		}
	}
	r.Value, r.Modified, r.Created = ev.Node.Value, ev.Node.ModifiedIndex, ev.Node.CreatedIndex
	r.EtcdIdx, _ = strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	return r, nil
}

// writeKeys writes n keys through the leader and returns what a read of
// each answered right after.
func (c *procCluster) writeKeys(prefix string, n int) map[string]keyRead {
	c.t.Helper()
	want := map[string]keyRead{}
	for i := range n {
		key := fmt.Sprintf("%s/k%02d", prefix, i)
		if code, body := putValue(c.leader().clientURL+"/v2/keys"+key, fmt.Sprintf("v%d", i)); code != http.StatusCreated && code != http.StatusOK {
			c.t.Fatalf("PUT %s: %d %s", key, code, body)
		}
		r, err := getKey(c.leader().clientURL, key)
		if err != nil || r.Status != http.StatusOK {
			c.t.Fatalf("GET %s: %v %+v", key, err, r)
		}
		want[key] = r
	}
	return want
}

// waitKeys waits until endpoint serves every key as want has it.
func waitKeys(t *testing.T, endpoint string, want map[string]keyRead) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for key, w := range want {
		for {
			r, err := getKey(endpoint, key)
			if err == nil && r.Value == w.Value && r.Modified == w.Modified && r.Created == w.Created {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s serves %s as %+v (%v), want %+v", endpoint, key, r, err, w)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestJoinWithMemberAddEnvironment: a cluster with a non-default token; a
// fourth member started with only what `raftkv member add` printed plus
// its listen flags joins, serves the existing keys, and restarts under the
// ID it learned.
func TestJoinWithMemberAddEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := startProcCluster(t, 3, "--initial-cluster-token", joinTestToken)
	want := c.writeKeys("/join", 5)

	m4 := &procMember{name: "m4", clientURL: "http://" + loopbackAddr(t), peerURL: "http://" + loopbackAddr(t), logs: &lockedBuffer{}}
	id, env := c.memberAddEnv("m4", m4.peerURL)
	if len(env) != 4 {
		t.Fatalf("member add printed %d ETCD_ lines, want 4: %v", len(env), env)
	}
	for _, l := range env {
		if strings.Contains(l, "TOKEN") {
			t.Fatalf("member add printed the token: %v", env)
		}
	}
	// The default data dir (./raftkv.data) in a directory of its own.
	dir := t.TempDir()
	m4.dataDir = filepath.Join(dir, "raftkv.data")
	m4.args = []string{"serve", "--listen-client-urls", m4.clientURL, "--listen-peer-urls", m4.peerURL}
	c.members = append(c.members, m4)
	c.startProcWith(m4, env, dir)
	waitKeys(t, m4.clientURL, want)
	c.waitVoters(4)
	var self struct{ ID string }
	resp, err := http.Get(m4.clientURL + "/v2/stats/self")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&self)
	resp.Body.Close()
	if self.ID != id {
		t.Fatalf("m4 runs as %q, member add gave it %s", self.ID, id)
	}

	// Restarted the same way, it comes back as the same member (from its
	// data dir) and serves a write made while it was down.
	c.kill(m4)
	more := c.writeKeys("/join-later", 2)
	c.startProcWith(m4, env, dir)
	waitKeys(t, m4.clientURL, more)
	if got := c.waitMemberID("m4"); got != id {
		t.Fatalf("after a restart the cluster lists m4 as %s, want %s", got, id)
	}
}

// TestMemberOfAnotherClusterRefused: members of another cluster are
// refused with a clear error — a founder of a new cluster (another token)
// whose --initial-cluster names a member of this one, and a joiner that
// this cluster never added.
func TestMemberOfAnotherClusterRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := startProcCluster(t, 3, "--initial-cluster-token", joinTestToken)
	c.writeKeys("/mine", 1)

	// A founder of cluster "other" that names m1's peer URL.
	stranger := &procMember{name: "x1", clientURL: "http://" + loopbackAddr(t), peerURL: "http://" + loopbackAddr(t), logs: &lockedBuffer{}}
	stranger.args = []string{"serve", "--name", "x1", "--data-dir", filepath.Join(t.TempDir(), "x1"),
		"--listen-client-urls", stranger.clientURL, "--listen-peer-urls", stranger.peerURL,
		"--initial-cluster", "x1=" + stranger.peerURL + ",x2=" + c.members[0].peerURL,
		"--initial-cluster-token", "other", "--heartbeat-interval", "50", "--election-timeout", "500"}
	c.startProcWith(stranger, nil, t.TempDir())
	defer c.kill(stranger)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stranger.logs.String(), "peer belongs to another cluster") {
		if time.Now().After(deadline) {
			t.Fatalf("x1 never said that m1 refused it:\n%s", stranger.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(stranger.logs.String(), "different --initial-cluster-token?") {
		t.Fatalf("the refusal does not name the likely cause:\n%s", stranger.logs.String())
	}
	if n := len(c.listMembers(c.leader().clientURL)); n != 3 {
		t.Fatalf("the cluster has %d members, want 3", n)
	}
	if r, err := getKey(stranger.clientURL, "/mine/k00"); err == nil && r.Status == http.StatusOK {
		t.Fatalf("x1 serves this cluster's key: %+v", r)
	}

	// A member started to join this cluster without having been added.
	peer := "http://" + loopbackAddr(t)
	cmd := exec.Command(c.bin, "serve", "--name", "j1", "--data-dir", filepath.Join(t.TempDir(), "j1"),
		"--listen-client-urls", "http://"+loopbackAddr(t), "--listen-peer-urls", peer,
		"--initial-cluster", "m1="+c.members[0].peerURL+",j1="+peer, "--initial-cluster-state", "existing")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a member never added started:\n%s", out)
	}
	if !strings.Contains(string(out), "has no member with peer URLs "+peer) || !strings.Contains(string(out), "raftkv member add j1 "+peer) {
		t.Fatalf("the refusal does not say what is wrong and what to do:\n%s", out)
	}
}

// TestWipedMemberRefusedThenReplaced: a member whose data dir was wiped,
// started again as a founder (--initial-cluster-state new) while its peers
// run the cluster, refuses to start (with an empty log it could help lose
// acknowledged writes) and says what to do; doing it — remove, add back,
// start with existing — brings it back with every key.
func TestWipedMemberRefusedThenReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := startProcCluster(t, 3, "--initial-cluster-token", joinTestToken)
	want := c.writeKeys("/wiped", 5)
	m2 := c.members[1]
	id := c.waitMemberID("m2")
	c.kill(m2)
	if err := os.RemoveAll(m2.dataDir); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, m2.args...)
	timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	out, err := cmd.CombinedOutput()
	timer.Stop()
	if err == nil {
		t.Fatalf("m2 started with an empty data dir under its old identity:\n%s", out)
	}
	for _, s := range []string{"m2 (ID " + id + ") has already been started", "raftkv member remove " + id,
		"raftkv member add m2", "--initial-cluster-state existing"} {
		if !strings.Contains(string(out), s) {
			t.Fatalf("the refusal does not say %q:\n%s", s, out)
		}
	}
	if _, err := os.Stat(filepath.Join(m2.dataDir, "wal")); err == nil {
		t.Fatalf("the refused member wrote a WAL in %s", m2.dataDir)
	}

	// The operator's steps.
	c.leader() // a leader among the live members first: the dead one may have led
	c.removeWithCtl(id)
	newID, env := c.memberAddEnv("m2", m2.peerURL)
	if newID == id {
		t.Fatalf("m2 was added back under its removed ID %s", id)
	}
	m2.args = []string{"serve", "--data-dir", m2.dataDir, "--listen-client-urls", m2.clientURL, "--listen-peer-urls", m2.peerURL}
	c.startProcWith(m2, env, t.TempDir())
	waitKeys(t, m2.clientURL, want)
	if got := c.waitMemberID("m2"); got != newID {
		t.Fatalf("the cluster lists m2 as %s, want %s", got, newID)
	}

	// Wiped again and started with the joining environment it was given:
	// refused too (it has run under the ID that environment leads to).
	c.kill(m2)
	if err := os.RemoveAll(m2.dataDir); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(c.bin, m2.args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	timer = time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	out, err = cmd.CombinedOutput()
	timer.Stop()
	if err == nil || !strings.Contains(string(out), "m2 (ID "+newID+") has already been started") {
		t.Fatalf("m2, wiped, joined again under its ID (%v):\n%s", err, out)
	}
}

// removeWithCtl runs `raftkv member remove id`, retrying while the cluster
// has no leader or another change is under way.
func (c *procCluster) removeWithCtl(id string) {
	c.t.Helper()
	var out string
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if out, err = c.runCtl("member", "remove", id, "--endpoints", strings.Join(c.liveEndpoints(), ",")); err == nil {
			return
		}
		c.t.Logf("member remove %s: %v: %s", id, err, out)
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("member remove %s: %v\n%s", id, err, out)
}

// waitMemberID returns the ID of the member named name, waiting until it
// has published its name.
func (c *procCluster) waitMemberID(name string) string {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, m := range c.listMembers(c.leader().clientURL) {
			if m.Name == name {
				return m.ID
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no member named %s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
