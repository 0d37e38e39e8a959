package kvstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// t0 is the proposer's clock in most tests.
var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// newTestStore returns an empty store with default limits.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	s, err := New(Config{})
	require.NoError(t, err)
	return s
}

// apply applies cmd with Now defaulting to t0 and a made-up Raft index.
func apply(s *Store, cmd Command) Result {
	if cmd.Now.IsZero() {
		cmd.Now = t0
	}
	return s.Apply(s.CurrentIndex()+100, cmd)
}

// mustApply applies cmd and fails the test on an error.
func mustApply(t testing.TB, s *Store, cmd Command) *Event {
	t.Helper()
	r := apply(s, cmd)
	require.Nil(t, r.Err, "apply %+v", cmd)
	return r.Event
}

// jsonOf marshals v the way the HTTP layer will.
func jsonOf(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return string(data)
}

// set, mkdir are shorthands for common setup commands.
func set(path, value string) Command { return Command{Op: OpSet, Path: path, Value: value} }
func mkdir(path string) Command      { return Command{Op: OpSet, Path: path, Dir: true} }
func withTTL(c Command, ttl uint64) Command {
	c.HasTTL, c.TTL = true, ttl
	return c
}

// jsonMarshal is json.Marshal, named for the property tests.
var jsonMarshal = json.Marshal
