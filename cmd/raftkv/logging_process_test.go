package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logProcess is one raftkv serve process whose stdout and stderr are kept
// apart.
type logProcess struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	clientURL      string
}

func startLogProcess(t *testing.T, dataDir string, extra ...string) *logProcess {
	t.Helper()
	p := &logProcess{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, clientURL: "http://" + loopbackAddr(t)}
	args := append([]string{"serve", "--name", "m1", "--data-dir", dataDir,
		"--listen-client-urls", p.clientURL, "--listen-peer-urls", "http://" + loopbackAddr(t)}, extra...)
	p.cmd = exec.Command(raftkvBinary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.clientURL + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "stderr:\n%s", p.stderr.String())
	return p
}

// stop ends the process with SIGTERM, as an operator would, and waits.
func (p *logProcess) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.cmd.Wait())
}

// identityOf asks the member its ID and cluster ID.
func identityOf(t *testing.T, clientURL string) (memberID, clusterID string) {
	t.Helper()
	resp, err := http.Get(clientURL + "/v2/stats/self")
	require.NoError(t, err)
	defer resp.Body.Close()
	var self struct{ ID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&self))
	members, err := http.Get(clientURL + "/v2/members")
	require.NoError(t, err)
	members.Body.Close()
	return self.ID, members.Header.Get("X-Etcd-Cluster-Id")
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestServeLogsJSONWithTheMembersIdentity runs a member with the default
// logging flags: every line on stderr is a JSON object, as etcd 3.5's zap
// logger writes, and every one names the member, its cluster, its data
// dir and its URLs.
func TestServeLogsJSONWithTheMembersIdentity(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "m1")
	p := startLogProcess(t, dataDir)
	memberID, clusterID := identityOf(t, p.clientURL)
	require.NotEmpty(t, clusterID)
	p.stop(t)

	assert.Empty(t, p.stdout.String(), "logs go to stderr by default")
	got := lines(p.stderr.String())
	require.NotEmpty(t, got)
	var messages []string
	for _, line := range got {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not a JSON line: %s", line)
		for _, field := range []string{"time", "level", "msg"} {
			assert.Contains(t, rec, field, line)
		}
		assert.Equal(t, "m1", rec["name"], line)
		assert.Equal(t, memberID, rec["local-member-id"], line)
		assert.Equal(t, clusterID, rec["cluster-id"], line)
		assert.Equal(t, dataDir, rec["data-dir"], line)
		assert.Equal(t, []any{p.clientURL}, rec["advertise-client-urls"], line)
		assert.NotEmpty(t, rec["advertise-peer-urls"], line)
		messages = append(messages, rec["msg"].(string))
	}
	assert.Contains(t, messages, "member started")
	assert.Contains(t, messages, "stopping")
}

// TestServeLogsTextToTheOutputsAsked runs a member with text lines sent to
// stdout and to a file, and at warn level: no line below warn.
func TestServeLogsTextToTheOutputsAsked(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "member.log")
	p := startLogProcess(t, filepath.Join(dir, "m1"), "--log-format", "text", "--log-outputs", "stdout,"+logFile)
	memberID, _ := identityOf(t, p.clientURL)
	p.stop(t)
	assert.Empty(t, p.stderr.String(), "nothing on stderr")
	out := lines(p.stdout.String())
	require.NotEmpty(t, out)
	for _, line := range out {
		assert.True(t, strings.HasPrefix(line, "time="), "not a text line: %s", line)
		assert.Contains(t, line, "local-member-id="+memberID)
		assert.Contains(t, line, "data-dir=")
	}
	assert.Contains(t, p.stdout.String(), `msg="member started"`)
	file, err := os.ReadFile(logFile)
	require.NoError(t, err)
	assert.Equal(t, p.stdout.String(), string(file), "the file has the same lines")

	quiet := startLogProcess(t, filepath.Join(dir, "m2"), "--log-level", "warn")
	quiet.stop(t)
	assert.NotContains(t, quiet.stderr.String(), `"level":"INFO"`)
}

// TestServeRefusesBadLogFlags checks that a bad logging flag stops serve
// with a message naming the flag.
func TestServeRefusesBadLogFlags(t *testing.T) {
	for _, tc := range []struct{ args []string }{
		{[]string{"--logger", "capnslog"}},
		{[]string{"--log-format", "xml"}},
		{[]string{"--log-outputs", filepath.Join(t.TempDir(), "missing", "dir", "log")}},
		{[]string{"--log-level", "loud"}},
	} {
		cmd := exec.Command(raftkvBinary(t), append([]string{"serve", "--data-dir", t.TempDir(),
			"--listen-client-urls", "http://" + loopbackAddr(t), "--listen-peer-urls", "http://" + loopbackAddr(t)}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		assert.Error(t, err, "%v", tc.args)
		assert.Contains(t, string(out), tc.args[0], "%v: the message names the flag", tc.args)
	}
}
