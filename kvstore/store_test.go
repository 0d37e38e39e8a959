package kvstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// applyCase is one row of the operation tables: setup commands, then the
// command under test and the JSON etcd would answer with (an event or an
// error body), plus the HTTP status it would use.
type applyCase struct {
	name   string
	setup  []Command
	cmd    Command
	want   string
	status int
}

func runApplyCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t)
			for _, c := range tc.setup {
				mustApply(t, s, c)
			}
			before := s.Hash()
			indexBefore := s.CurrentIndex()
			r := apply(s, tc.cmd)
			if r.Err != nil {
				assert.Equal(t, tc.want, jsonOf(t, r.Err))
				assert.Equal(t, tc.status, r.Err.StatusCode())
				assert.Equal(t, before, s.Hash(), "a failed command changes nothing")
				assert.Equal(t, indexBefore, s.CurrentIndex())
				return
			}
			assert.Equal(t, tc.want, jsonOf(t, r.Event))
			status := 200
			if r.Event.IsCreated() {
				status = 201
			}
			assert.Equal(t, tc.status, status)
			assert.Equal(t, indexBefore+1, s.CurrentIndex(), "one event, one index")
			assert.Equal(t, s.CurrentIndex(), r.Event.EtcdIndex)
		})
	}
}

func TestSet(t *testing.T) {
	runApplyCases(t, []applyCase{
		{name: "new key is 201 set without prevNode",
			cmd:    set("/message", "Hello"),
			want:   `{"action":"set","node":{"key":"/message","value":"Hello","modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "replacing gets a new createdIndex and a prevNode",
			setup:  []Command{set("/message", "Hello")},
			cmd:    set("/message", "World"),
			want:   `{"action":"set","node":{"key":"/message","value":"World","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/message","value":"Hello","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "empty value is present",
			cmd:    set("/e", ""),
			want:   `{"action":"set","node":{"key":"/e","value":"","modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "key is cleaned",
			cmd:    set("a//b/./c/", "v"),
			want:   `{"action":"set","node":{"key":"/a/b/c","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "root is read only",
			cmd:    set("/", "v"),
			want:   `{"errorCode":107,"message":"Root is read only","cause":"/","index":0}`,
			status: 400},
		{name: "a file in the path is 104 naming the file",
			setup:  []Command{set("/f", "v")},
			cmd:    set("/f/x/y", "v"),
			want:   `{"errorCode":104,"message":"Not a directory","cause":"/f","index":1}`,
			status: 400},
		{name: "over a directory is 102",
			setup:  []Command{mkdir("/d")},
			cmd:    set("/d", "v"),
			want:   `{"errorCode":102,"message":"Not a file","cause":"/d","index":1}`,
			status: 403},
		{name: "dir over a directory is 102",
			setup:  []Command{mkdir("/d")},
			cmd:    mkdir("/d"),
			want:   `{"errorCode":102,"message":"Not a file","cause":"/d","index":1}`,
			status: 403},
		{name: "dir makes a directory without value",
			cmd:    Command{Op: OpSet, Path: "/d", Dir: true, Value: "ignored"},
			want:   `{"action":"set","node":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "dir replaces a file",
			setup:  []Command{set("/f", "v")},
			cmd:    mkdir("/f"),
			want:   `{"action":"set","node":{"key":"/f","dir":true,"modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/f","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "ttl gives expiration and ttl",
			cmd:    withTTL(set("/t", "v"), 5),
			want:   `{"action":"set","node":{"key":"/t","value":"v","expiration":"2024-05-01T10:00:05Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "no ttl makes a ttl'd key permanent",
			setup:  []Command{withTTL(set("/t", "v"), 5)},
			cmd:    set("/t", "w"),
			want:   `{"action":"set","node":{"key":"/t","value":"w","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/t","value":"v","expiration":"2024-05-01T10:00:05Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "ttl 0 expires now: expiration without ttl",
			cmd:    withTTL(set("/t", "v"), 0),
			want:   `{"action":"set","node":{"key":"/t","value":"v","expiration":"2024-05-01T10:00:00Z","modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "ttl 9999999999 wraps before 2000: permanent",
			cmd:    withTTL(set("/t", "v"), 9999999999),
			want:   `{"action":"set","node":{"key":"/t","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "ttl 2^64-1 wraps to -1s",
			cmd:    withTTL(set("/t", "v"), 1<<64-1),
			want:   `{"action":"set","node":{"key":"/t","value":"v","expiration":"2024-05-01T09:59:59Z","ttl":-1,"modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "refresh keeps the value and resets createdIndex",
			setup:  []Command{withTTL(set("/t", "v"), 5)},
			cmd:    Command{Op: OpSet, Path: "/t", Refresh: true, HasTTL: true, TTL: 10},
			want:   `{"action":"set","node":{"key":"/t","value":"v","expiration":"2024-05-01T10:00:10Z","ttl":10,"modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/t","value":"v","expiration":"2024-05-01T10:00:05Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "refresh of a missing key is 100",
			cmd:    Command{Op: OpSet, Path: "/nope", Refresh: true, HasTTL: true, TTL: 10},
			want:   `{"errorCode":100,"message":"Key not found","cause":"/nope","index":0}`,
			status: 404},
		{name: "refresh of a directory is 102",
			setup:  []Command{withTTL(mkdir("/d"), 5)},
			cmd:    Command{Op: OpSet, Path: "/d", Refresh: true, HasTTL: true, TTL: 10},
			want:   `{"errorCode":102,"message":"Not a file","cause":"/d","index":1}`,
			status: 403},
		{name: "refresh with a value is 211",
			setup:  []Command{set("/t", "v")},
			cmd:    Command{Op: OpSet, Path: "/t", Value: "x", Refresh: true, HasTTL: true, TTL: 10},
			want:   `{"errorCode":211,"message":"Value provided on refresh","cause":"A value was provided on a refresh","index":0}`,
			status: 400},
		{name: "refresh without a ttl is 212",
			setup:  []Command{set("/t", "v")},
			cmd:    Command{Op: OpSet, Path: "/t", Refresh: true},
			want:   `{"errorCode":212,"message":"A TTL must be provided on refresh","cause":"No TTL value set","index":0}`,
			status: 400},
	})
}

func TestCreate(t *testing.T) {
	create := func(path, value string) Command {
		return Command{Op: OpSet, Path: path, Value: value, PrevExist: PrevExistFalse}
	}
	runApplyCases(t, []applyCase{
		{name: "prevExist=false on a new key is 201 create",
			cmd:    create("/c", "v"),
			want:   `{"action":"create","node":{"key":"/c","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "prevExist=false on an existing key is 105",
			setup:  []Command{set("/c", "v")},
			cmd:    create("/c", "w"),
			want:   `{"errorCode":105,"message":"Key already exists","cause":"/c","index":1}`,
			status: 412},
		{name: "an existing directory is 105 too",
			setup:  []Command{mkdir("/d")},
			cmd:    Command{Op: OpCreate, Path: "/d", Dir: true},
			want:   `{"errorCode":105,"message":"Key already exists","cause":"/d","index":1}`,
			status: 412},
		{name: "prevValue and prevIndex are ignored",
			cmd:    Command{Op: OpSet, Path: "/c", Value: "v", PrevExist: PrevExistFalse, PrevValue: "x", PrevIndex: 7},
			want:   `{"action":"create","node":{"key":"/c","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "root is read only",
			cmd:    create("/", "v"),
			want:   `{"errorCode":107,"message":"Root is read only","cause":"/","index":0}`,
			status: 400},
		{name: "a file in the path is 104",
			setup:  []Command{set("/f", "v")},
			cmd:    create("/f/g", "v"),
			want:   `{"errorCode":104,"message":"Not a directory","cause":"/f","index":1}`,
			status: 400},
		{name: "a directory with a ttl",
			cmd:    withTTL(Command{Op: OpCreate, Path: "/a/d", Dir: true}, 7),
			want:   `{"action":"create","node":{"key":"/a/d","dir":true,"expiration":"2024-05-01T10:00:07Z","ttl":7,"modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "refresh is ignored by create",
			cmd:    Command{Op: OpCreate, Path: "/c", Refresh: true, HasTTL: true, TTL: 3},
			want:   `{"action":"create","node":{"key":"/c","value":"","expiration":"2024-05-01T10:00:03Z","ttl":3,"modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
	})
}

func TestCreateInOrder(t *testing.T) {
	post := func(path, value string) Command { return Command{Op: OpCreateInOrder, Path: path, Value: value} }
	runApplyCases(t, []applyCase{
		{name: "named by the new index, 20 digits",
			setup:  []Command{set("/x", "1"), set("/y", "2"), set("/z", "3"), set("/w", "4"), set("/v", "5")},
			cmd:    post("/queue", "job"),
			want:   `{"action":"create","node":{"key":"/queue/00000000000000000006","value":"job","modifiedIndex":6,"createdIndex":6}}`,
			status: 201},
		{name: "posting to the root makes a top-level key",
			cmd:    post("/", "v"),
			want:   `{"action":"create","node":{"key":"/00000000000000000001","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "posting under a file is 104",
			setup:  []Command{set("/f", "v")},
			cmd:    post("/f", "v"),
			want:   `{"errorCode":104,"message":"Not a directory","cause":"/f","index":1}`,
			status: 400},
		{name: "an in-order directory with a ttl",
			cmd:    withTTL(Command{Op: OpCreateInOrder, Path: "/q", Dir: true}, 2),
			want:   `{"action":"create","node":{"key":"/q/00000000000000000001","dir":true,"expiration":"2024-05-01T10:00:02Z","ttl":2,"modifiedIndex":1,"createdIndex":1}}`,
			status: 201},
		{name: "prevExist is ignored",
			setup:  []Command{mkdir("/q")},
			cmd:    Command{Op: OpCreateInOrder, Path: "/q", Value: "v", PrevExist: PrevExistTrue, PrevValue: "x"},
			want:   `{"action":"create","node":{"key":"/q/00000000000000000002","value":"v","modifiedIndex":2,"createdIndex":2}}`,
			status: 201},
	})
}

func TestUpdate(t *testing.T) {
	update := func(path, value string) Command {
		return Command{Op: OpSet, Path: path, Value: value, PrevExist: PrevExistTrue}
	}
	runApplyCases(t, []applyCase{
		{name: "missing key is 100",
			cmd:    update("/u", "v"),
			want:   `{"errorCode":100,"message":"Key not found","cause":"/u","index":0}`,
			status: 404},
		{name: "existing key keeps its createdIndex",
			setup:  []Command{set("/u", "v"), set("/other", "o")},
			cmd:    update("/u", "w"),
			want:   `{"action":"update","node":{"key":"/u","value":"w","modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/u","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "root is read only",
			cmd:    update("/", "v"),
			want:   `{"errorCode":107,"message":"Root is read only","cause":"/","index":0}`,
			status: 400},
		{name: "no ttl removes the ttl",
			setup:  []Command{withTTL(set("/u", "v"), 5)},
			cmd:    update("/u", "v"),
			want:   `{"action":"update","node":{"key":"/u","value":"v","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/u","value":"v","expiration":"2024-05-01T10:00:05Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "a ttl without a value blanks the value",
			setup:  []Command{set("/u", "v")},
			cmd:    withTTL(update("/u", ""), 5),
			want:   `{"action":"update","node":{"key":"/u","value":"","expiration":"2024-05-01T10:00:05Z","ttl":5,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/u","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "refresh keeps the value",
			setup:  []Command{withTTL(set("/u", "v"), 5)},
			cmd:    Command{Op: OpSet, Path: "/u", PrevExist: PrevExistTrue, Refresh: true, HasTTL: true, TTL: 10},
			want:   `{"action":"update","node":{"key":"/u","value":"v","expiration":"2024-05-01T10:00:10Z","ttl":10,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/u","value":"v","expiration":"2024-05-01T10:00:05Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "a directory with a value is 102",
			setup:  []Command{mkdir("/d")},
			cmd:    update("/d", "v"),
			want:   `{"errorCode":102,"message":"Not a file","cause":"/d","index":1}`,
			status: 403},
		{name: "a directory's ttl changes (etcd 2.3)",
			setup:  []Command{mkdir("/d")},
			cmd:    withTTL(Command{Op: OpSet, Path: "/d", Dir: true, PrevExist: PrevExistTrue}, 30),
			want:   `{"action":"update","node":{"key":"/d","dir":true,"expiration":"2024-05-01T10:00:30Z","ttl":30,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "dir on a file updates the file (etcd's known bug)",
			setup:  []Command{set("/f", "v")},
			cmd:    Command{Op: OpSet, Path: "/f", Dir: true, PrevExist: PrevExistTrue},
			want:   `{"action":"update","node":{"key":"/f","value":"","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/f","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "a huge ttl wraps into the past and is kept",
			setup:  []Command{set("/u", "v")},
			cmd:    withTTL(update("/u", "v"), 9999999999),
			want:   `{"action":"update","node":{"key":"/u","value":"v","expiration":"1756-08-31T04:12:05.290448384Z","ttl":-8446744074,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/u","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
	})
}

func TestCompareAndSwap(t *testing.T) {
	cas := func(path, value, prevValue string, prevIndex uint64) Command {
		return Command{Op: OpSet, Path: path, Value: value, PrevValue: prevValue, PrevIndex: prevIndex}
	}
	setup := []Command{set("/k", "one"), set("/other", "x")}
	runApplyCases(t, []applyCase{
		{name: "value mismatch",
			setup:  setup,
			cmd:    cas("/k", "two", "x", 0),
			want:   `{"errorCode":101,"message":"Compare failed","cause":"[x != one]","index":2}`,
			status: 412},
		{name: "index mismatch",
			setup:  setup,
			cmd:    cas("/k", "two", "", 2),
			want:   `{"errorCode":101,"message":"Compare failed","cause":"[2 != 1]","index":2}`,
			status: 412},
		{name: "both mismatch",
			setup:  setup,
			cmd:    cas("/k", "two", "x", 2),
			want:   `{"errorCode":101,"message":"Compare failed","cause":"[x != one] [2 != 1]","index":2}`,
			status: 412},
		{name: "value match",
			setup:  setup,
			cmd:    cas("/k", "two", "one", 0),
			want:   `{"action":"compareAndSwap","node":{"key":"/k","value":"two","modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/k","value":"one","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "both match, with prevExist=true",
			setup:  setup,
			cmd:    Command{Op: OpSet, Path: "/k", Value: "two", PrevValue: "one", PrevIndex: 1, PrevExist: PrevExistTrue},
			want:   `{"action":"compareAndSwap","node":{"key":"/k","value":"two","modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/k","value":"one","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "missing key is 100",
			cmd:    cas("/k", "two", "one", 0),
			want:   `{"errorCode":100,"message":"Key not found","cause":"/k","index":0}`,
			status: 404},
		{name: "a directory is 102",
			setup:  []Command{mkdir("/d")},
			cmd:    Command{Op: OpCompareAndSwap, Path: "/d", Dir: true, PrevIndex: 1},
			want:   `{"errorCode":102,"message":"Not a file","cause":"/d","index":1}`,
			status: 403},
		{name: "root is read only",
			cmd:    cas("/", "v", "x", 0),
			want:   `{"errorCode":107,"message":"Root is read only","cause":"/","index":0}`,
			status: 400},
		{name: "refresh keeps the value and sets the ttl",
			setup:  setup,
			cmd:    Command{Op: OpSet, Path: "/k", PrevIndex: 1, Refresh: true, HasTTL: true, TTL: 4},
			want:   `{"action":"compareAndSwap","node":{"key":"/k","value":"one","expiration":"2024-05-01T10:00:04Z","ttl":4,"modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/k","value":"one","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "no ttl clears the ttl",
			setup:  []Command{withTTL(set("/k", "one"), 9)},
			cmd:    cas("/k", "two", "one", 0),
			want:   `{"action":"compareAndSwap","node":{"key":"/k","value":"two","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"one","expiration":"2024-05-01T10:00:09Z","ttl":9,"modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
	})
}

func TestDelete(t *testing.T) {
	del := func(path string, dir, recursive bool) Command {
		return Command{Op: OpDelete, Path: path, Dir: dir, Recursive: recursive}
	}
	runApplyCases(t, []applyCase{
		{name: "a file",
			setup:  []Command{set("/f", "v")},
			cmd:    del("/f", false, false),
			want:   `{"action":"delete","node":{"key":"/f","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/f","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "a file with dir and recursive",
			setup:  []Command{withTTL(set("/f", "v"), 3)},
			cmd:    del("/f", true, true),
			want:   `{"action":"delete","node":{"key":"/f","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/f","value":"v","expiration":"2024-05-01T10:00:03Z","ttl":3,"modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "missing is 100",
			cmd:    del("/f", false, false),
			want:   `{"errorCode":100,"message":"Key not found","cause":"/f","index":0}`,
			status: 404},
		{name: "root is read only",
			cmd:    del("/", true, true),
			want:   `{"errorCode":107,"message":"Root is read only","cause":"/","index":0}`,
			status: 400},
		{name: "a directory without dir is 102",
			setup:  []Command{mkdir("/d")},
			cmd:    del("/d", false, false),
			want:   `{"errorCode":102,"message":"Not a file","cause":"/d","index":1}`,
			status: 403},
		{name: "a non-empty directory with dir is 108",
			setup:  []Command{set("/d/x", "v")},
			cmd:    del("/d", true, false),
			want:   `{"errorCode":108,"message":"Directory not empty","cause":"/d","index":1}`,
			status: 403},
		{name: "hidden children count",
			setup:  []Command{set("/d/_x", "v")},
			cmd:    del("/d", true, false),
			want:   `{"errorCode":108,"message":"Directory not empty","cause":"/d","index":1}`,
			status: 403},
		{name: "an empty directory with dir",
			setup:  []Command{mkdir("/d")},
			cmd:    del("/d", true, false),
			want:   `{"action":"delete","node":{"key":"/d","dir":true,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "recursive implies dir",
			setup:  []Command{set("/d/a/b", "v"), set("/d/c", "w")},
			cmd:    del("/d", false, true),
			want:   `{"action":"delete","node":{"key":"/d","dir":true,"modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
	})
}

func TestCompareAndDelete(t *testing.T) {
	cad := func(path, prevValue string, prevIndex uint64) Command {
		return Command{Op: OpDelete, Path: path, PrevValue: prevValue, PrevIndex: prevIndex}
	}
	runApplyCases(t, []applyCase{
		{name: "value mismatch",
			setup:  []Command{set("/k", "v")},
			cmd:    cad("/k", "x", 0),
			want:   `{"errorCode":101,"message":"Compare failed","cause":"[x != v]","index":1}`,
			status: 412},
		{name: "index mismatch",
			setup:  []Command{set("/k", "v")},
			cmd:    cad("/k", "", 5),
			want:   `{"errorCode":101,"message":"Compare failed","cause":"[5 != 1]","index":1}`,
			status: 412},
		{name: "match",
			setup:  []Command{set("/k", "v")},
			cmd:    cad("/k", "v", 1),
			want:   `{"action":"compareAndDelete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "dir and recursive are ignored",
			setup:  []Command{set("/k", "v")},
			cmd:    Command{Op: OpDelete, Path: "/k", PrevValue: "v", Dir: true, Recursive: true},
			want:   `{"action":"compareAndDelete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`,
			status: 200},
		{name: "a directory is 102",
			setup:  []Command{mkdir("/d")},
			cmd:    cad("/d", "x", 0),
			want:   `{"errorCode":102,"message":"Not a file","cause":"/d","index":1}`,
			status: 403},
		{name: "the root is 102 without a cause",
			cmd:    cad("/", "x", 0),
			want:   `{"errorCode":102,"message":"Not a file","index":0}`,
			status: 403},
		{name: "missing is 100",
			cmd:    Command{Op: OpCompareAndDelete, Path: "/a/b", PrevValue: "x"},
			want:   `{"errorCode":100,"message":"Key not found","cause":"/a","index":0}`,
			status: 404},
	})
}

func TestGet(t *testing.T) {
	s := newTestStore(t)
	mustApply(t, s, set("/v", "1"))
	mustApply(t, s, set("/_h", "hidden"))
	mustApply(t, s, set("/dir/b", "2"))
	mustApply(t, s, set("/dir/a", "3"))
	mustApply(t, s, set("/dir/sub/x", "4"))
	mustApply(t, s, set("/dir/_hidden/y", "5"))
	mustApply(t, s, withTTL(set("/dir/t", "6"), 10))
	mustApply(t, s, mkdir("/empty"))
	now := t0.Add(2500 * time.Millisecond)

	cases := []struct {
		name, path string
		opts       GetOptions
		want       string
	}{
		{"a file", "/v", GetOptions{},
			`{"action":"get","node":{"key":"/v","value":"1","modifiedIndex":1,"createdIndex":1}}`},
		{"a hidden file by path", "/_h", GetOptions{},
			`{"action":"get","node":{"key":"/_h","value":"hidden","modifiedIndex":2,"createdIndex":2}}`},
		{"ttl counts down, rounded up", "/dir/t", GetOptions{Now: now},
			`{"action":"get","node":{"key":"/dir/t","value":"6","expiration":"2024-05-01T10:00:10Z","ttl":8,"modifiedIndex":7,"createdIndex":7}}`},
		{"an empty directory", "/empty", GetOptions{},
			`{"action":"get","node":{"key":"/empty","dir":true,"modifiedIndex":8,"createdIndex":8}}`},
		{"root: no key, no indexes, hidden keys left out", "/", GetOptions{Sorted: true},
			`{"action":"get","node":{"dir":true,"nodes":[{"key":"/dir","dir":true,"modifiedIndex":3,"createdIndex":3},{"key":"/empty","dir":true,"modifiedIndex":8,"createdIndex":8},{"key":"/v","value":"1","modifiedIndex":1,"createdIndex":1}]}}`},
		{"a directory, sorted", "/dir", GetOptions{Sorted: true, Now: now},
			`{"action":"get","node":{"key":"/dir","dir":true,"nodes":[{"key":"/dir/a","value":"3","modifiedIndex":4,"createdIndex":4},{"key":"/dir/b","value":"2","modifiedIndex":3,"createdIndex":3},{"key":"/dir/sub","dir":true,"modifiedIndex":5,"createdIndex":5},{"key":"/dir/t","value":"6","expiration":"2024-05-01T10:00:10Z","ttl":8,"modifiedIndex":7,"createdIndex":7}],"modifiedIndex":3,"createdIndex":3}}`},
		{"recursive", "/dir", GetOptions{Recursive: true, Sorted: true, Now: now},
			`{"action":"get","node":{"key":"/dir","dir":true,"nodes":[{"key":"/dir/a","value":"3","modifiedIndex":4,"createdIndex":4},{"key":"/dir/b","value":"2","modifiedIndex":3,"createdIndex":3},{"key":"/dir/sub","dir":true,"nodes":[{"key":"/dir/sub/x","value":"4","modifiedIndex":5,"createdIndex":5}],"modifiedIndex":5,"createdIndex":5},{"key":"/dir/t","value":"6","expiration":"2024-05-01T10:00:10Z","ttl":8,"modifiedIndex":7,"createdIndex":7}],"modifiedIndex":3,"createdIndex":3}}`},
		{"a hidden directory lists its visible children", "/dir/_hidden", GetOptions{},
			`{"action":"get","node":{"key":"/dir/_hidden","dir":true,"nodes":[{"key":"/dir/_hidden/y","value":"5","modifiedIndex":6,"createdIndex":6}],"modifiedIndex":6,"createdIndex":6}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := s.Get(tc.path, tc.opts)
			require.NoError(t, err)
			assert.Equal(t, tc.want, jsonOf(t, e))
			assert.Equal(t, uint64(8), e.EtcdIndex)
		})
	}

	errorCases := []struct{ name, path, want string }{
		{"missing", "/missing", `{"errorCode":100,"message":"Key not found","cause":"/missing","index":8}`},
		{"first missing segment", "/a/b/c", `{"errorCode":100,"message":"Key not found","cause":"/a","index":8}`},
		{"missing below a directory", "/dir/nope/x", `{"errorCode":100,"message":"Key not found","cause":"/dir/nope","index":8}`},
		{"through a file", "/v/x", `{"errorCode":104,"message":"Not a directory","cause":"/v","index":8}`},
		{"deep through a file", "/dir/a/x/y", `{"errorCode":104,"message":"Not a directory","cause":"/dir/a","index":8}`},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Get(tc.path, GetOptions{})
			var kvErr *Error
			require.ErrorAs(t, err, &kvErr)
			assert.Equal(t, tc.want, jsonOf(t, kvErr))
		})
	}
}

func TestGetIsDeterministicWithoutSorted(t *testing.T) {
	s := newTestStore(t)
	for _, k := range []string{"q", "b", "z", "a", "m", "c", "y"} {
		mustApply(t, s, set("/d/"+k, k))
	}
	first, err := s.Get("/d", GetOptions{})
	require.NoError(t, err)
	for range 20 {
		again, _ := s.Get("/d", GetOptions{})
		require.Equal(t, jsonOf(t, first), jsonOf(t, again))
	}
}

func TestIndexAdvancesByOnePerEvent(t *testing.T) {
	s := newTestStore(t)
	cmds := []Command{
		set("/a", "1"), mkdir("/d"), Command{Op: OpCreate, Path: "/c"},
		Command{Op: OpUpdate, Path: "/a", Value: "2"},
		Command{Op: OpSet, Path: "/a", Refresh: true, HasTTL: true, TTL: 5},
		Command{Op: OpCompareAndSwap, Path: "/a", PrevValue: "2", Value: "3"},
		Command{Op: OpCreateInOrder, Path: "/q"},
		Command{Op: OpCompareAndDelete, Path: "/c", PrevIndex: 3},
		Command{Op: OpDelete, Path: "/d", Dir: true},
	}
	for i, c := range cmds {
		e := mustApply(t, s, c)
		require.Equal(t, uint64(i+1), e.Index())
		require.Equal(t, uint64(i+1), s.CurrentIndex())
	}
	// Failed writes and reads do not move the index.
	require.NotNil(t, apply(s, Command{Op: OpCreate, Path: "/a"}).Err)
	_, _ = s.Get("/a", GetOptions{})
	require.Equal(t, uint64(len(cmds)), s.CurrentIndex())
}

// TestNodeCount follows the count of keys and directories through
// creations (with their missing parents), replacements, recursive deletes,
// expiry and a snapshot round trip.
func TestNodeCount(t *testing.T) {
	s := newTestStore(t)
	assert.Equal(t, 0, s.NodeCount())
	mustApply(t, s, set("/a/b/c", "1")) // a, a/b, a/b/c
	assert.Equal(t, 3, s.NodeCount())
	mustApply(t, s, set("/a/b/c", "2")) // a replacement adds nothing
	mustApply(t, s, set("/a/d", "1"))
	mustApply(t, s, mkdir("/e"))
	assert.Equal(t, 5, s.NodeCount())
	mustApply(t, s, Command{Op: OpDelete, Path: "/a/b", Recursive: true}) // a/b and a/b/c
	assert.Equal(t, 3, s.NodeCount())
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	mustApply(t, s, Command{Op: OpSet, Path: "/e/t", Value: "x", TTL: 1, HasTTL: true, Now: now})
	assert.Equal(t, 4, s.NodeCount())
	apply(s, Command{Op: OpExpire, Now: now.Add(2 * time.Second)})
	assert.Equal(t, 3, s.NodeCount())
	require.NoError(t, checkInvariants(s))

	data, err := s.Save()
	require.NoError(t, err)
	restored := newTestStore(t)
	require.NoError(t, restored.Restore(data))
	assert.Equal(t, 3, restored.NodeCount())
}
