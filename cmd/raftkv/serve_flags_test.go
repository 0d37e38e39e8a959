package main

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestServeNamesABadFlagValue checks that serve refuses a bad
// --max-inflight-appends with a message naming the flag, and that the
// value, though it starts with a dash, is not taken for an unknown flag,
// while a flag raftkv does not know is still named as ignored.
func TestServeNamesABadFlagValue(t *testing.T) {
	cmd := exec.Command(raftkvBinary(t), "serve", "--data-dir", t.TempDir(),
		"--listen-client-urls", "http://"+loopbackAddr(t), "--listen-peer-urls", "http://"+loopbackAddr(t),
		"--max-inflight-appends", "-1", "--no-such-flag")
	out, err := cmd.CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "--max-inflight-appends -1: want at least 1")
	assert.Contains(t, string(out), "ignoring flag --no-such-flag")
	assert.NotContains(t, string(out), "ignoring flag -1")
}
