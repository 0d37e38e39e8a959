package linearizability

import (
	"testing"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// verdict is what a test expects of a history: linearizable, or caught by
// the per-key model, by the index order across keys, or by both.
type verdict int

const (
	linearizable verdict = iota
	byModel
	byIndexOrder
	byBoth
)

func requireVerdict(t *testing.T, want verdict, res Result) {
	t.Helper()
	switch want {
	case linearizable:
		require.True(t, res.Ok, "%s", res)
		require.Empty(t, res.Visualization)
	case byModel:
		require.False(t, res.Ok)
		require.NotEmpty(t, res.Illegal, "%s", res)
		require.Nil(t, res.IndexOrder, "%s", res)
	case byIndexOrder:
		require.False(t, res.Ok)
		require.Empty(t, res.Illegal, "%s", res)
		require.NotNil(t, res.IndexOrder, "%s", res)
	case byBoth:
		require.False(t, res.Ok)
		require.NotEmpty(t, res.Illegal, "%s", res)
		require.NotNil(t, res.IndexOrder, "%s", res)
	}
	if !res.Ok {
		require.FileExists(t, res.Visualization)
	}
}

func TestClassicHistories(t *testing.T) {
	tests := []struct {
		name    string
		history *builder
		want    verdict
	}{{
		name: "a read concurrent with a write may see either value",
		history: newBuilder().
			op(0, set("/x", "1"), wrote(5), 0, 10).
			op(0, set("/x", "2"), wrote(6), 20, 40).
			op(1, get("/x"), read(file("/x", "1", 5), 5), 25, 30).
			op(2, get("/x"), read(file("/x", "2", 6), 6), 25, 35).
			op(1, get("/x"), read(file("/x", "2", 6), 6), 45, 50),
		want: linearizable,
	}, {
		name: "a stale read after a completed write",
		history: newBuilder().
			op(0, set("/x", "1"), wrote(5), 0, 10).
			op(0, set("/x", "2"), wrote(6), 20, 30).
			op(1, get("/x"), read(file("/x", "1", 5), 0), 40, 50),
		want: byModel,
	}, {
		name: "a stale read that also reports a stale index",
		history: newBuilder().
			op(0, set("/x", "1"), wrote(5), 0, 10).
			op(0, set("/x", "2"), wrote(6), 20, 30).
			op(1, get("/x"), read(file("/x", "1", 5), 5), 40, 50),
		want: byBoth,
	}, {
		name: "a lost update: an acknowledged write is gone",
		history: newBuilder().
			op(0, set("/x", "1"), wrote(5), 0, 10).
			op(1, get("/x"), failed(kvstore.CodeKeyNotFound, 0), 20, 30),
		want: byModel,
	}, {
		name: "a compare-and-swap that succeeded twice",
		history: newBuilder().
			op(0, set("/x", "0"), wrote(5), 0, 10).
			op(1, cas("/x", "0", 0, "a"), wrote(0), 20, 40).
			op(2, cas("/x", "0", 0, "b"), wrote(0), 20, 40),
		want: byModel,
	}, {
		name: "compare-and-swaps from the same value: one wins",
		history: newBuilder().
			op(0, set("/x", "0"), wrote(5), 0, 10).
			op(1, cas("/x", "0", 0, "a"), wrote(7), 20, 40).
			op(2, cas("/x", "0", 0, "b"), failed(kvstore.CodeCompareFailed, 7), 20, 40).
			op(0, get("/x"), read(file("/x", "a", 7), 7), 50, 60),
		want: linearizable,
	}, {
		name: "a compare-and-swap on an index the key has left",
		history: newBuilder().
			op(0, set("/x", "0"), wrote(5), 0, 10).
			op(0, set("/x", "1"), wrote(6), 20, 30).
			op(1, cas("/x", "", 5, "a"), wrote(0), 40, 50),
		want: byModel,
	}, {
		name: "a read sees a value before its write was called",
		history: newBuilder().
			op(1, get("/x"), read(file("/x", "v", 5), 5), 0, 10).
			op(0, set("/x", "v"), wrote(5), 20, 30),
		want: byBoth,
	}, {
		name: "a read sees a value before its write was called, no indexes",
		history: newBuilder().
			op(1, get("/x"), read(file("/x", "v", 5), 0), 0, 10).
			op(0, set("/x", "v"), wrote(0), 20, 30),
		want: byModel,
	}, {
		name: "in-order creates under one directory",
		history: newBuilder().
			op(0, post("/q", "a"), wroteOver(5, file("/q/00000000000000000005", "a", 5), nil), 0, 10).
			op(1, post("/q", "b"), wrote(9), 0, 10).
			op(2, Read("/q", true), read(dir("/q", 5, file("/q/00000000000000000005", "a", 5), file("/q/00000000000000000009", "b", 9)), 9), 20, 30),
		want: linearizable,
	}, {
		name: "an in-order create with a duplicate index",
		history: newBuilder().
			op(0, post("/q", "a"), wrote(5), 0, 10).
			op(1, post("/q", "b"), wrote(5), 20, 30),
		want: byBoth,
	}, {
		name: "a write that answers with a value other than the one it was given",
		history: newBuilder().
			op(0, set("/x", "1"), wroteOver(5, file("/x", "2", 5), nil), 0, 10),
		want: byModel,
	}, {
		name: "an in-order create named other than by its index",
		history: newBuilder().
			op(0, post("/q", "a"), wroteOver(5, file("/q/00000000000000000004", "a", 5), nil), 0, 10),
		want: byModel,
	}, {
		name: "an index that goes backwards across keys",
		history: newBuilder().
			op(0, set("/a", "1"), wrote(10), 0, 10).
			op(1, get("/b"), failed(kvstore.CodeKeyNotFound, 5), 20, 30),
		want: byIndexOrder,
	}, {
		name: "a write whose index is below one seen before it was called",
		history: newBuilder().
			op(0, get("/a"), failed(kvstore.CodeKeyNotFound, 10), 0, 10).
			op(1, set("/b", "1"), wrote(10), 20, 30),
		want: byIndexOrder,
	}, {
		// The read must come before the write (it sees the old value), so
		// the write's index must be above the read's: real time alone
		// cannot tell, since they overlap.
		name: "a write below the index of a read it must follow",
		history: newBuilder().
			op(0, set("/x", "1"), wrote(30), 0, 10).
			op(1, get("/x"), read(file("/x", "1", 30), 50), 20, 40).
			op(2, set("/x", "2"), wrote(40), 20, 40),
		want: byModel,
	}, {
		// The read sees the delete, so it follows it, at a lower index.
		name: "a read below the index of a write it must follow",
		history: newBuilder().
			op(0, set("/x", "1"), wrote(5), 0, 10).
			op(1, del("/x"), wrote(40), 20, 100).
			op(2, get("/x"), failed(kvstore.CodeKeyNotFound, 30), 20, 100),
		want: byModel,
	}, {
		name: "a write above the index of a read it must follow",
		history: newBuilder().
			op(0, set("/x", "1"), wrote(30), 0, 10).
			op(1, get("/x"), read(file("/x", "1", 30), 50), 20, 40).
			op(2, set("/x", "2"), wrote(51), 20, 40),
		want: linearizable,
	}, {
		// The compare-and-swap consumed b, so it came after b's write,
		// yet its index is below b's.
		name: "a compare-and-swap below the index of the value it replaced",
		history: newBuilder().
			op(0, set("/x", "a"), wrote(5), 0, 10).
			op(1, get("/x"), read(file("/x", "a", 5), 8), 12, 15).
			unknown(0, set("/x", "b"), 20).
			op(1, cas("/x", "b", 0, "c"), wroteOver(9, file("/x", "c", 9), file("/x", "b", 12)), 30, 40),
		want: byModel,
	}, {
		name: "indexes that only look out of order because the operations overlap",
		history: newBuilder().
			op(0, set("/a", "1"), wrote(10), 0, 30).
			op(1, get("/b"), failed(kvstore.CodeKeyNotFound, 9), 10, 20).
			op(2, set("/b", "2"), wrote(11), 30, 40),
		want: linearizable,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireVerdict(t, tt.want, tt.history.check(t))
		})
	}
}

func TestDirectories(t *testing.T) {
	a, b := file("/d/a", "1", 5), file("/d/b", "2", 6)
	tests := []struct {
		name    string
		history *builder
		want    verdict
	}{{
		name: "a listing shows exactly the children",
		history: newBuilder().
			op(0, set("/d/a", "1"), wrote(5), 0, 10).
			op(0, set("/d/b", "2"), wrote(6), 20, 30).
			op(1, get("/d"), read(dir("/d", 5, a, b), 6), 40, 50),
		want: linearizable,
	}, {
		name: "a listing that misses a child",
		history: newBuilder().
			op(0, set("/d/a", "1"), wrote(5), 0, 10).
			op(0, set("/d/b", "2"), wrote(6), 20, 30).
			op(1, get("/d"), read(dir("/d", 5, a), 6), 40, 50),
		want: byModel,
	}, {
		name: "a listing hides hidden children",
		history: newBuilder().
			op(0, set("/d/a", "1"), wrote(5), 0, 10).
			op(0, set("/d/_h", "2"), wrote(6), 20, 30).
			op(1, get("/d"), read(dir("/d", 5, a), 6), 40, 50),
		want: linearizable,
	}, {
		name: "a key under a file is error 104",
		history: newBuilder().
			op(0, set("/f", "1"), wrote(5), 0, 10).
			op(0, set("/f/x", "2"), failed(kvstore.CodeNotDir, 5), 20, 30).
			op(1, get("/f/x"), failed(kvstore.CodeNotDir, 5), 40, 50),
		want: linearizable,
	}, {
		name: "a recursive delete removes the subtree",
		history: newBuilder().
			op(0, set("/d/a", "1"), wrote(5), 0, 10).
			op(0, del("/d"), failed(kvstore.CodeNotFile, 5), 20, 30).
			op(0, Input{Kind: KindDelete, Key: "/d", Dir: true}, failed(kvstore.CodeDirNotEmpty, 5), 40, 50).
			op(0, Input{Kind: KindDelete, Key: "/d", Recursive: true}, wrote(6), 60, 70).
			op(1, get("/d/a"), failed(kvstore.CodeKeyNotFound, 6), 80, 90),
		want: linearizable,
	}, {
		name: "a child that survives a recursive delete",
		history: newBuilder().
			op(0, set("/d/a", "1"), wrote(5), 0, 10).
			op(0, Input{Kind: KindDelete, Key: "/d", Recursive: true}, wrote(6), 60, 70).
			op(1, get("/d/a"), read(a, 6), 80, 90),
		want: byModel,
	}, {
		name: "the wrong error code",
		history: newBuilder().
			op(0, set("/x", "1"), wrote(5), 0, 10).
			op(0, create("/x", "2"), failed(kvstore.CodeKeyNotFound, 5), 20, 30),
		want: byModel,
	}, {
		name: "a listing of the root sees every top-level key",
		history: newBuilder().
			op(0, set("/a", "1"), wrote(5), 0, 10).
			op(1, set("/b/c", "2"), wrote(6), 0, 10).
			op(2, get("/"), read(dir("", 0, file("/a", "1", 5), dir("/b", 6)), 6), 20, 30),
		want: linearizable,
	}, {
		name: "a listing of the root that misses a key",
		history: newBuilder().
			op(0, set("/a", "1"), wrote(5), 0, 10).
			op(1, set("/b/c", "2"), wrote(6), 0, 10).
			op(2, get("/"), read(dir("", 0, file("/a", "1", 5)), 6), 20, 30),
		want: byModel,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireVerdict(t, tt.want, tt.history.check(t))
		})
	}
}

func TestRootOperationsMakeOnePart(t *testing.T) {
	res := newBuilder().
		op(0, set("/a", "1"), wrote(5), 0, 10).
		op(1, set("/b", "2"), wrote(6), 0, 10).
		op(2, get("/"), read(dir("", 0, file("/a", "1", 5)), 6), 20, 30).
		check(t)
	require.Equal(t, 1, res.Partitions)
	require.Equal(t, []string{"/"}, res.Illegal)

	res = newBuilder().
		op(0, set("/a", "1"), wrote(5), 0, 10).
		op(1, set("/b/c", "2"), wrote(6), 0, 10).
		op(2, get("/b/c"), failed(kvstore.CodeKeyNotFound, 6), 20, 30).
		check(t)
	require.Equal(t, 2, res.Partitions)
	require.Equal(t, []string{"/b"}, res.Illegal)
}

func TestTTL(t *testing.T) {
	s := int64(time.Second)
	tests := []struct {
		name    string
		history *builder
		skew    time.Duration
		want    verdict
	}{{
		name: "a key read before and after its expiry",
		history: newBuilder().
			op(0, setTTL("/x", "v", 1), wroteOver(5, expiring(file("/x", "v", 5), time.Second), nil), 0, 10).
			op(1, get("/x"), read(file("/x", "v", 5), 5), 500*ms, 600*ms).
			op(1, get("/x"), failed(kvstore.CodeKeyNotFound, 6), 2*s, 2*s+10),
		want: linearizable,
	}, {
		name: "a key still there long after its expiration: expiry is only a possibility",
		history: newBuilder().
			op(0, setTTL("/x", "v", 1), wroteOver(5, expiring(file("/x", "v", 5), time.Second), nil), 0, 10).
			op(1, get("/x"), read(file("/x", "v", 5), 5), 60*s, 60*s+10),
		want: linearizable,
	}, {
		name: "a key read after its observed expiry",
		history: newBuilder().
			op(0, setTTL("/x", "v", 1), wroteOver(5, expiring(file("/x", "v", 5), time.Second), nil), 0, 10).
			op(1, get("/x"), failed(kvstore.CodeKeyNotFound, 6), 2*s, 2*s+10).
			op(1, get("/x"), read(file("/x", "v", 5), 6), 3*s, 3*s+10),
		want: byModel,
	}, {
		name: "a key gone before its expiration",
		history: newBuilder().
			op(0, setTTL("/x", "v", 10), wroteOver(5, expiring(file("/x", "v", 5), 10*time.Second), nil), 0, 10).
			op(1, get("/x"), failed(kvstore.CodeKeyNotFound, 6), 2*s, 2*s+10),
		want: byModel,
	}, {
		name: "a key gone before its expiration, within the clock skew",
		history: newBuilder().
			op(0, setTTL("/x", "v", 10), wroteOver(5, expiring(file("/x", "v", 5), 10*time.Second), nil), 0, 10).
			op(1, get("/x"), failed(kvstore.CodeKeyNotFound, 6), 2*s, 2*s+10),
		skew: 8 * time.Second,
		want: linearizable,
	}, {
		name: "a key gone at any time when clocks are unbounded",
		history: newBuilder().
			op(0, setTTL("/x", "v", 10), wroteOver(5, expiring(file("/x", "v", 5), 10*time.Second), nil), 0, 10).
			op(1, get("/x"), failed(kvstore.CodeKeyNotFound, 6), 20, 30),
		skew: UnboundedClockSkew,
		want: linearizable,
	}, {
		name: "an expired directory takes its children",
		history: newBuilder().
			op(0, Input{Kind: KindSet, Key: "/d", Dir: true, HasTTL: true, TTL: 1},
				wroteOver(5, expiring(dir("/d", 5), time.Second), nil), 0, 10).
			op(0, set("/d/a", "1"), wrote(6), 20, 30).
			op(1, get("/d/a"), failed(kvstore.CodeKeyNotFound, 7), 2*s, 2*s+10).
			op(1, get("/d"), failed(kvstore.CodeKeyNotFound, 7), 2*s+20, 2*s+30),
		want: linearizable,
	}, {
		name: "a child listed after its directory expired",
		history: newBuilder().
			op(0, Input{Kind: KindSet, Key: "/d", Dir: true, HasTTL: true, TTL: 1},
				wroteOver(5, expiring(dir("/d", 5), time.Second), nil), 0, 10).
			op(0, set("/d/a", "1"), wrote(6), 20, 30).
			op(1, get("/d"), failed(kvstore.CodeKeyNotFound, 7), 2*s, 2*s+10).
			op(1, get("/d/a"), read(file("/d/a", "1", 6), 7), 2*s+20, 2*s+30),
		want: byModel,
	}, {
		name: "a listing leaves out an expired child",
		history: newBuilder().
			op(0, set("/d/a", "1"), wrote(5), 0, 10).
			op(0, setTTL("/d/b", "2", 1), wroteOver(6, expiring(file("/d/b", "2", 6), time.Second), nil), 0, 10).
			op(1, get("/d"), read(dir("/d", 5, file("/d/a", "1", 5), file("/d/b", "2", 6)), 6), 20, 30).
			op(1, get("/d"), read(dir("/d", 5, file("/d/a", "1", 5)), 7), 2*s, 2*s+10).
			op(1, get("/d/b"), failed(kvstore.CodeKeyNotFound, 7), 2*s+20, 2*s+30),
		want: linearizable,
	}, {
		name: "a create succeeds over an expired key, a set replaces a live one",
		history: newBuilder().
			op(0, setTTL("/x", "v", 1), wroteOver(5, expiring(file("/x", "v", 5), time.Second), nil), 0, 10).
			op(0, set("/x", "w"), wroteOver(6, file("/x", "w", 6), file("/x", "v", 5)), 20, 30).
			op(0, setTTL("/x", "v", 1), wroteOver(7, expiring(file("/x", "v", 7), time.Second+40), file("/x", "w", 6)), 40, 50).
			op(1, create("/x", "z"), wrote(9), 2*s, 2*s+10),
		want: linearizable,
	}, {
		name: "a set whose prevNode says the key was there",
		history: newBuilder().
			op(0, setTTL("/x", "v", 1), wroteOver(5, expiring(file("/x", "v", 5), time.Second), nil), 0, 10).
			op(1, get("/x"), failed(kvstore.CodeKeyNotFound, 6), 2*s, 2*s+10).
			op(0, set("/x", "w"), wroteOver(7, file("/x", "w", 7), file("/x", "v", 5)), 3*s, 3*s+10),
		want: byModel,
	}, {
		name: "an unknown write with a TTL may expire from its call time plus its TTL",
		history: newBuilder().
			unknown(0, setTTL("/x", "v", 1), 0).
			op(1, get("/x"), read(file("/x", "v", 5), 5), 500*ms, 600*ms).
			op(1, get("/x"), failed(kvstore.CodeKeyNotFound, 6), 2*s, 2*s+10),
		want: linearizable,
	}, {
		name: "an unknown write with a TTL cannot expire before its call time plus its TTL",
		history: newBuilder().
			unknown(0, setTTL("/x", "v", 5), 0).
			op(1, get("/x"), read(file("/x", "v", 5), 5), 500*ms, 600*ms).
			op(1, get("/x"), failed(kvstore.CodeKeyNotFound, 6), 2*s, 2*s+10),
		want: byModel,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := quiet(t)
			opts.ClockSkew = tt.skew
			requireVerdict(t, tt.want, Check(tt.history.history(), opts))
		})
	}
}

func TestUnknownOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		history *builder
		want    verdict
	}{{
		name: "an unknown write that took effect",
		history: newBuilder().
			op(0, set("/x", "u"), wrote(3), 0, 10).
			unknown(0, set("/x", "v"), 20).
			op(1, get("/x"), read(file("/x", "v", 7), 7), 40, 50).
			op(1, get("/x"), read(file("/x", "v", 7), 8), 60, 70),
		want: linearizable,
	}, {
		name: "an unknown write that never took effect",
		history: newBuilder().
			op(0, set("/x", "u"), wrote(3), 0, 10).
			unknown(0, set("/x", "v"), 20).
			op(1, get("/x"), read(file("/x", "u", 3), 7), 40, 50).
			op(1, get("/x"), read(file("/x", "u", 3), 8), 60, 70),
		want: linearizable,
	}, {
		name: "an unknown write that took effect late",
		history: newBuilder().
			op(0, set("/x", "u"), wrote(3), 0, 10).
			unknown(0, set("/x", "v"), 20).
			op(1, get("/x"), read(file("/x", "u", 3), 7), 40, 50).
			op(1, get("/x"), read(file("/x", "v", 9), 9), 60, 70),
		want: linearizable,
	}, {
		name: "an unknown write seen before it was called",
		history: newBuilder().
			op(1, get("/x"), read(file("/x", "v", 7), 7), 0, 10).
			unknown(0, set("/x", "v"), 20),
		want: byModel,
	}, {
		name: "an unknown write seen, then unseen",
		history: newBuilder().
			op(0, set("/x", "u"), wrote(3), 0, 10).
			unknown(0, set("/x", "v"), 20).
			op(1, get("/x"), read(file("/x", "v", 7), 7), 40, 50).
			op(1, get("/x"), read(file("/x", "u", 3), 8), 60, 70),
		want: byModel,
	}, {
		name: "an unknown write cannot have an index below one seen before it",
		history: newBuilder().
			op(0, set("/x", "u"), wrote(3), 0, 10).
			op(1, get("/x"), read(file("/x", "u", 3), 7), 15, 18).
			unknown(0, set("/x", "v"), 20).
			op(1, get("/x"), read(file("/x", "v", 6), 9), 40, 50),
		want: byModel,
	}, {
		name: "an unknown compare-and-swap decides a later one",
		history: newBuilder().
			op(0, set("/x", "0"), wrote(3), 0, 10).
			unknown(1, cas("/x", "0", 0, "a"), 20).
			op(2, cas("/x", "0", 0, "b"), failed(kvstore.CodeCompareFailed, 6), 30, 40),
		want: linearizable,
	}, {
		name: "an unknown in-order create seen in a listing",
		history: newBuilder().
			op(0, post("/q", "a"), wrote(3), 0, 10).
			unknown(1, post("/q", "b"), 20).
			op(2, get("/q"), read(dir("/q", 3, file("/q/00000000000000000003", "a", 3), file("/q/00000000000000000007", "b", 7)), 8), 30, 40).
			op(2, get("/q/00000000000000000007"), read(file("/q/00000000000000000007", "b", 7), 8), 50, 60),
		want: linearizable,
	}, {
		name: "an unknown in-order create seen by name, then deleted",
		history: newBuilder().
			op(0, post("/q", "a"), wrote(3), 0, 10).
			unknown(1, post("/q", "b"), 20).
			op(2, del("/q/00000000000000000007"), wroteOver(9, &kvstore.Node{Key: "/q/00000000000000000007"}, file("/q/00000000000000000007", "b", 7)), 30, 40).
			op(2, get("/q"), read(dir("/q", 3, file("/q/00000000000000000003", "a", 3)), 9), 50, 60),
		want: linearizable,
	}, {
		name: "an unknown in-order create named below an index seen before it was called",
		history: newBuilder().
			op(0, post("/q", "a"), wrote(3), 0, 10).
			op(2, get("/q"), read(dir("/q", 3, file("/q/00000000000000000003", "a", 3)), 8), 12, 18).
			unknown(1, post("/q", "b"), 20).
			op(2, get("/q"), read(dir("/q", 3, file("/q/00000000000000000003", "a", 3), file("/q/00000000000000000007", "b", 7)), 9), 30, 40),
		want: byModel,
	}, {
		name: "a listing with a child nobody created",
		history: newBuilder().
			op(0, post("/q", "a"), wrote(3), 0, 10).
			unknown(1, post("/q", "b"), 20).
			op(2, get("/q"), read(dir("/q", 3, file("/q/00000000000000000003", "a", 3), file("/q/00000000000000000007", "c", 7)), 8), 30, 40),
		want: byModel,
	}, {
		name: "an unknown in-order create, once seen, stays",
		history: newBuilder().
			op(0, post("/q", "a"), wrote(3), 0, 10).
			unknown(1, post("/q", "b"), 20).
			op(2, get("/q"), read(dir("/q", 3, file("/q/00000000000000000003", "a", 3), file("/q/00000000000000000007", "b", 7)), 8), 30, 40).
			op(2, get("/q"), read(dir("/q", 3, file("/q/00000000000000000003", "a", 3)), 8), 50, 60),
		want: byModel,
	}, {
		name: "a write that failed with an internal error (a timeout) may have taken effect",
		history: newBuilder().
			op(0, set("/x", "u"), wrote(3), 0, 10).
			op(0, set("/x", "v"), failed(kvstore.CodeRaftInternal, 0), 20, 30).
			op(1, get("/x"), read(file("/x", "v", 7), 7), 40, 50),
		want: linearizable,
	}, {
		name: "a write refused as a bad request never took effect",
		history: newBuilder().
			op(0, set("/x", "u"), wrote(3), 0, 10).
			op(0, set("/x", "v"), failed(kvstore.CodeInvalidField, 0), 20, 30).
			op(1, get("/x"), read(file("/x", "v", 7), 7), 40, 50),
		want: byModel,
	}, {
		name: "an unknown read constrains nothing",
		history: newBuilder().
			op(0, set("/x", "u"), wrote(3), 0, 10).
			unknown(1, get("/x"), 20),
		want: linearizable,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireVerdict(t, tt.want, tt.history.check(t))
		})
	}
}

// TestNoEffectLeavesTheOperationOut: a write the harness knows never took
// effect is left out of the check, so a read that saw it fails the check.
func TestNoEffectLeavesTheOperationOut(t *testing.T) {
	b := newBuilder().op(0, set("/x", "u"), wrote(3), 0, 10)
	b.rec.NoEffect(b.rec.Call(1, set("/x", "v"), 20))
	b.op(2, get("/x"), Output{Index: 3, Node: file("/x", "u", 3)}, 30, 40)
	requireVerdict(t, linearizable, b.check(t))

	b = newBuilder().op(0, set("/x", "u"), wrote(3), 0, 10)
	b.rec.NoEffect(b.rec.Call(1, set("/x", "v"), 20))
	b.op(2, get("/x"), Output{Index: 4, Node: file("/x", "v", 4)}, 30, 40)
	require.False(t, b.check(t).Ok, "the read saw a write left out")
}

func TestInFlightOperationsAreUnknown(t *testing.T) {
	rec := NewRecorder()
	rec.Return(rec.Call(0, set("/x", "u"), 0), wrote(3), 10)
	rec.Call(1, set("/x", "v"), 20)
	h := rec.History()
	require.Len(t, h.Operations, 2)
	assert.False(t, h.Operations[0].Unknown)
	assert.True(t, h.Operations[1].Unknown)
	rec.Return(1, wrote(4), 30)
	assert.False(t, rec.History().Operations[1].Unknown)
}

func TestRecorderRejectsMisuse(t *testing.T) {
	rec := NewRecorder()
	id := rec.Call(0, set("/x", "u"), 10)
	require.Panics(t, func() { rec.Return(id, wrote(3), 5) }, "a return before its call")
	require.Panics(t, func() { rec.Return(id+1, wrote(3), 20) }, "no such operation")
	rec.Unknown(id)
	require.Panics(t, func() { rec.Return(id, wrote(3), 20) }, "finished twice")
	require.Panics(t, func() { rec.Call(-1, set("/x", "u"), 10) }, "negative client")
}
