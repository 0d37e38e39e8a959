package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests that run raftkv as real processes: the binary is built once per
// test run, members listen on loopback ports, and every process a test
// starts is killed when the test ends.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// raftkvBinary builds the raftkv binary (once) and returns its path.
func raftkvBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "raftkv-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "raftkv")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// procMember is one member run as a process.
type procMember struct {
	name, clientURL, peerURL, dataDir string
	args                              []string
	cmd                               *exec.Cmd
	logs                              *lockedBuffer
}

// procCluster is a cluster of member processes on loopback.
type procCluster struct {
	t       *testing.T
	bin     string
	members []*procMember
}

// lockedBuffer collects a process's output for failure reports.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// handedOut holds the loopback addresses loopbackAddr returned: the
// kernel may offer a port again once its listener closed, and two members
// of one cluster given the same port do not start.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// loopbackAddr returns a loopback address that was free a moment ago and
// that no earlier call of this test process returned.
func loopbackAddr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return addr
		}
	}
}

// startProcCluster starts n member processes with etcd-style flags.
func startProcCluster(t *testing.T, n int, extra ...string) *procCluster {
	c := &procCluster{t: t, bin: raftkvBinary(t)}
	var initial []string
	for i := range n {
		m := &procMember{
			name:      fmt.Sprintf("m%d", i+1),
			clientURL: "http://" + loopbackAddr(t),
			peerURL:   "http://" + loopbackAddr(t),
			dataDir:   filepath.Join(t.TempDir(), fmt.Sprintf("m%d", i+1)),
			logs:      &lockedBuffer{},
		}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for _, m := range c.members {
		m.args = append([]string{"serve", "--name", m.name, "--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL, "--listen-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--heartbeat-interval", "50", "--election-timeout", "500"}, extra...)
		c.start(m)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			c.kill(m)
		}
		if t.Failed() {
			for _, m := range c.members {
				t.Logf("--- %s output:\n%s", m.name, m.logs.String())
			}
		}
	})
	return c
}

func (c *procCluster) start(m *procMember) {
	m.cmd = exec.Command(c.bin, m.args...)
	m.cmd.Stdout, m.cmd.Stderr = m.logs, m.logs
	if err := m.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", m.name, err)
	}
	c.waitServing(m, 20*time.Second)
}

// waitServing waits until m answers clients, failing the test after d with
// its logs.
func (c *procCluster) waitServing(m *procMember, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(m.clientURL + "/version")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s does not serve clients: %v\n%s", m.name, err, m.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops a member with SIGKILL: no chance to flush or sync anything.
func (c *procCluster) kill(m *procMember) {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	_ = m.cmd.Wait()
	m.cmd = nil
}

// endpoints returns every member's client URL.
func (c *procCluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL)
	}
	return eps
}

// leader returns the member that says it leads, waiting for one.
func (c *procCluster) leader() *procMember {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range c.members {
			if m.cmd == nil {
				continue
			}
			resp, err := http.Get(m.clientURL + "/v2/stats/self")
			if err != nil {
				continue
			}
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if strings.Contains(b.String(), `"state":"StateLeader"`) {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader")
	return nil
}
