package kvstore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorTable checks every code of spec §5: message text and HTTP status.
func TestErrorTable(t *testing.T) {
	cases := []struct {
		code    int
		message string
		status  int
	}{
		{100, "Key not found", 404},
		{101, "Compare failed", 412},
		{102, "Not a file", 403},
		{103, "Reached the max number of peers in the cluster", 400},
		{104, "Not a directory", 400},
		{105, "Key already exists", 412},
		{106, "The prefix of given key is a keyword in etcd", 400},
		{107, "Root is read only", 400},
		{108, "Directory not empty", 403},
		{109, "Peer address has existed", 400},
		{110, "The request requires user authentication", 401},
		{200, "Value is Required in POST form", 400},
		{201, "PrevValue is Required in POST form", 400},
		{202, "The given TTL in POST form is not a number", 400},
		{203, "The given index in POST form is not a number", 400},
		{204, "Value or TTL is required in POST form", 400},
		{205, "The given timeout in POST form is not a number", 400},
		{206, "Name is required in POST form", 400},
		{207, "Index or value is required", 400},
		{208, "Index and value cannot both be specified", 400},
		{209, "Invalid field", 400},
		{210, "Invalid POST form", 400},
		{211, "Value provided on refresh", 400},
		{212, "A TTL must be provided on refresh", 400},
		{300, "Raft Internal Error", 500},
		{301, "During Leader Election", 500},
		{400, "watcher is cleared due to etcd recovery", 400},
		{401, "The event in requested index is outdated and cleared", 400},
		{402, "Standby Internal Error", 400},
		{403, "Invalid active size", 400},
		{404, "Standby remove delay", 400},
		{500, "Client Internal Error", 400},
	}
	require.Len(t, errorMessages, len(cases), "every defined code is in the table")
	for _, tc := range cases {
		e := NewError(tc.code, "cause", 7)
		assert.Equal(t, tc.message, e.Message, "code %d", tc.code)
		assert.Equal(t, tc.status, e.StatusCode(), "code %d", tc.code)
		assert.Equal(t, tc.message+" (cause)", e.Error())
	}
	assert.Panics(t, func() { NewError(999, "", 0) })
}

func TestErrorJSON(t *testing.T) {
	assert.Equal(t, `{"errorCode":100,"message":"Key not found","cause":"/missing","index":3}`,
		jsonOf(t, NewError(CodeKeyNotFound, "/missing", 3)))
	assert.Equal(t, `{"errorCode":102,"message":"Not a file","index":0}`,
		jsonOf(t, NewError(CodeNotFile, "", 0)), "an empty cause is omitted")
}

func TestConfig(t *testing.T) {
	bad := []Config{
		{MaxKeyLength: -1}, {MaxKeyLength: 1}, {MaxKeyLength: 1 << 21},
		{MaxValueSize: -5}, {MaxDepth: -1}, {MaxDepth: 1 << 20},
		{MaxListNodes: -1}, {WatchBuffer: -1}, {WatchBuffer: 1 << 30},
	}
	for _, cfg := range bad {
		_, err := New(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
	s, err := New(Config{})
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxDepth, s.cfg.MaxDepth)
	assert.Equal(t, DefaultWatchBuffer, s.cfg.WatchBuffer)
}

func TestLimits(t *testing.T) {
	s, err := New(Config{MaxKeyLength: 10, MaxValueSize: 4, MaxDepth: 3, MaxListNodes: 3})
	require.NoError(t, err)
	cases := []struct {
		name  string
		cmd   Command
		cause string
	}{
		{"key length", set("/0123456789", "v"), "key is 11 bytes long, the limit is 10"},
		{"value size", set("/k", "12345"), "value is 5 bytes long, the limit is 4"},
		{"depth", set("/a/b/c/d", "v"), "key has 4 segments, the limit is 3"},
		{"in-order name counts", Command{Op: OpCreateInOrder, Path: "/q"}, "key is 23 bytes long, the limit is 10"},
		{"unknown op", Command{Op: 77, Path: "/k"}, "unknown operation Op(77)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := apply(s, tc.cmd)
			require.NotNil(t, r.Err)
			assert.Equal(t, CodeInvalidField, r.Err.Code)
			assert.Equal(t, tc.cause, r.Err.Cause)
			assert.Equal(t, uint64(0), r.Err.Index)
		})
	}
	mustApply(t, s, set("/a/b/c", "v"))
	mustApply(t, s, set("/a/x", "1234"))
	mustApply(t, s, set("/a/y", "v"))
	_, err = s.Get("/a", GetOptions{})
	require.NoError(t, err, "three nodes fit")
	_, err = s.Get("/a", GetOptions{Recursive: true})
	var kvErr *Error
	require.ErrorAs(t, err, &kvErr)
	assert.Equal(t, "the listing of /a has more than 3 nodes", kvErr.Cause)
	_, err = s.Get("/a/b/c/d", GetOptions{})
	require.ErrorAs(t, err, &kvErr)
	assert.Equal(t, CodeInvalidField, kvErr.Code)
}
