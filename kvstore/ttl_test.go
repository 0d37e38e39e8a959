package kvstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExpire(t *testing.T) {
	s := newTestStore(t)
	_, ok := s.NextExpiration()
	assert.False(t, ok)

	mustApply(t, s, withTTL(set("/late", "v"), 20))               // 1
	mustApply(t, s, withTTL(mkdir("/dir"), 10))                   // 2
	mustApply(t, s, withTTL(set("/dir/child", "c"), 5))           // 3
	mustApply(t, s, withTTL(set("/dir/sub/grandchild", "g"), 30)) // 4
	mustApply(t, s, set("/permanent", "p"))                       // 5

	next, ok := s.NextExpiration()
	require.True(t, ok)
	assert.Equal(t, t0.Add(5*time.Second), next)

	// Nothing is due a nanosecond early.
	r := apply(s, Command{Op: OpExpire, Now: t0.Add(5*time.Second - 1)})
	assert.Empty(t, r.Expired)
	assert.Equal(t, uint64(5), s.CurrentIndex())

	// Due at exactly the expiration.
	r = apply(s, Command{Op: OpExpire, Now: t0.Add(5 * time.Second)})
	require.Len(t, r.Expired, 1)
	assert.Equal(t,
		`{"action":"expire","node":{"key":"/dir/child","modifiedIndex":6,"createdIndex":3},"prevNode":{"key":"/dir/child","value":"c","expiration":"2024-05-01T10:00:05Z","modifiedIndex":3,"createdIndex":3}}`,
		jsonOf(t, r.Expired[0]))

	// The directory takes its subtree with it, TTL'd grandchild included,
	// as one event; later nodes follow in order, each with its own index.
	w := mustWatch(t, s, "/dir/sub/grandchild", WatchOptions{})
	r = apply(s, Command{Op: OpExpire, Now: t0.Add(21 * time.Second)})
	require.Len(t, r.Expired, 2)
	assert.Equal(t,
		`{"action":"expire","node":{"key":"/dir","dir":true,"modifiedIndex":7,"createdIndex":2},"prevNode":{"key":"/dir","dir":true,"expiration":"2024-05-01T10:00:10Z","ttl":-11,"modifiedIndex":2,"createdIndex":2}}`,
		jsonOf(t, r.Expired[0]))
	assert.Equal(t, "/late", r.Expired[1].Node.Key)
	assert.Equal(t, uint64(8), r.Expired[1].Index())
	events, _ := received(w)
	require.Len(t, events, 1)
	assert.Equal(t, "/dir", events[0].Node.Key)

	_, ok = s.NextExpiration()
	assert.False(t, ok, "the grandchild left the heap with its directory")
	_, err := s.Get("/dir", GetOptions{})
	require.Error(t, err)
	_, err = s.Get("/permanent", GetOptions{})
	require.NoError(t, err)
}

func TestExpireTiesGoInPathOrder(t *testing.T) {
	s := newTestStore(t)
	for _, k := range []string{"/c", "/a/x", "/b", "/a"} {
		if k == "/a" {
			mustApply(t, s, withTTL(Command{Op: OpUpdate, Path: k}, 5))
			continue
		}
		mustApply(t, s, withTTL(set(k, "v"), 5))
	}
	r := apply(s, Command{Op: OpExpire, Now: t0.Add(time.Minute)})
	var keys []string
	for _, e := range r.Expired {
		keys = append(keys, e.Node.Key)
	}
	// /a goes first and takes /a/x with it.
	assert.Equal(t, []string{"/a", "/b", "/c"}, keys)
}

func TestTTLChanges(t *testing.T) {
	s := newTestStore(t)
	mustApply(t, s, withTTL(set("/k", "v"), 5))
	mustApply(t, s, withTTL(Command{Op: OpUpdate, Path: "/k", Value: "v"}, 50))
	next, _ := s.NextExpiration()
	assert.Equal(t, t0.Add(50*time.Second), next)
	mustApply(t, s, Command{Op: OpCompareAndSwap, Path: "/k", PrevValue: "v", Value: "w"})
	_, ok := s.NextExpiration()
	assert.False(t, ok, "compare-and-swap without ttl made the key permanent")
	r := apply(s, Command{Op: OpExpire, Now: t0.Add(time.Hour)})
	assert.Empty(t, r.Expired)
}

func TestDeleteDropsTTLs(t *testing.T) {
	s := newTestStore(t)
	mustApply(t, s, withTTL(set("/d/a", "v"), 5))
	mustApply(t, s, withTTL(set("/d/b/c", "v"), 6))
	mustApply(t, s, withTTL(set("/e", "v"), 7))
	mustApply(t, s, Command{Op: OpDelete, Path: "/d", Recursive: true})
	next, ok := s.NextExpiration()
	require.True(t, ok)
	assert.Equal(t, t0.Add(7*time.Second), next)
	mustApply(t, s, Command{Op: OpCompareAndDelete, Path: "/e", PrevValue: "v"})
	_, ok = s.NextExpiration()
	assert.False(t, ok)
}

func TestTTLWithoutNowIsRefused(t *testing.T) {
	s := newTestStore(t)
	r := s.Apply(1, Command{Op: OpSet, Path: "/k", HasTTL: true, TTL: 5})
	require.NotNil(t, r.Err)
	assert.Equal(t, CodeInvalidField, r.Err.Code)
}
