package rpc

import (
	"encoding/json"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/raftkv/raftkv/kvstore"
)

// TestPropertyEventJSON: the hand-written encoder writes exactly what
// encoding/json writes, for any event, any string (HTML characters,
// control characters, invalid UTF-8, U+2028) and any time.
func TestPropertyEventJSON(t *testing.T) {
	str := rapid.OneOf(
		rapid.String(),
		rapid.StringMatching(`[a-z/<>&"\\\x00-\x1f\x{2028}\x{2029}é]*`),
		rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }),
	)
	var node func(depth int) *rapid.Generator[*kvstore.Node]
	node = func(depth int) *rapid.Generator[*kvstore.Node] {
		return rapid.Custom(func(t *rapid.T) *kvstore.Node {
			n := &kvstore.Node{
				Key: str.Draw(t, "key"), Dir: rapid.Bool().Draw(t, "dir"),
				TTL:           rapid.Int64Range(-5, 1<<40).Draw(t, "ttl"),
				ModifiedIndex: rapid.Uint64().Draw(t, "mod"), CreatedIndex: rapid.Uint64Range(0, 3).Draw(t, "created"),
			}
			if rapid.Bool().Draw(t, "hasValue") {
				v := str.Draw(t, "value")
				n.Value = &v
			}
			if rapid.Bool().Draw(t, "hasExpiration") {
				e := time.Unix(rapid.Int64Range(0, 1<<35).Draw(t, "sec"), rapid.Int64Range(0, 999999999).Draw(t, "nsec")).UTC()
				n.Expiration = &e
			}
			if depth > 0 {
				n.Nodes = rapid.SliceOfN(node(depth-1), 0, 3).Draw(t, "nodes")
			}
			return n
		})
	}
	rapid.Check(t, func(t *rapid.T) {
		ev := &kvstore.Event{Action: rapid.SampledFrom([]string{"get", "set", "expire", "<&>"}).Draw(t, "action")}
		if rapid.Bool().Draw(t, "hasNode") {
			ev.Node = node(2).Draw(t, "node")
		}
		if rapid.Bool().Draw(t, "hasPrev") {
			ev.PrevNode = node(0).Draw(t, "prev")
		}
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendEvent(nil, ev); string(got) != string(want) {
			t.Fatalf("encoding differs:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkEventJSON(b *testing.B) {
	v := "some value of moderate length"
	exp := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ev := &kvstore.Event{Action: "set", Node: &kvstore.Node{Key: "/a/b/c", Value: &v, Expiration: &exp, TTL: 5, ModifiedIndex: 42, CreatedIndex: 42},
		PrevNode: &kvstore.Node{Key: "/a/b/c", Value: &v, ModifiedIndex: 40, CreatedIndex: 40}}
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for range b.N {
			buf = appendEvent(buf[:0], ev)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_, _ = json.Marshal(ev)
		}
	})
}
