package kvstore

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCommandRoundTrip(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 3, 123456789, time.FixedZone("x", 3600))
	commands := []Command{
		{},
		{Op: OpSet, Path: "/a", Value: "v", Now: now},
		{Op: OpSet, Path: "/a/b", Value: "", Dir: true, HasTTL: true, TTL: 5, Now: now},
		{Op: OpCompareAndSwap, Path: "/a", Value: "new", PrevValue: "old", PrevIndex: 42, PrevExist: PrevExistTrue, Now: now},
		{Op: OpDelete, Path: "/d", Dir: true, Recursive: true},
		{Op: OpSet, Path: "/k", Refresh: true, HasTTL: true, TTL: 1<<64 - 1, PrevExist: PrevExistFalse, Now: now},
		{Op: OpExpire, Now: time.Unix(-5, 7)},
		{Op: OpCreateInOrder, Path: "/queue", Value: string([]byte{0, 0xff, '\n'})},
	}
	for _, c := range commands {
		data, err := c.MarshalBinary()
		require.NoError(t, err)
		var got Command
		if c.Op == 0 {
			require.ErrorIs(t, got.UnmarshalBinary(data), ErrBadCommand, "op 0 is not a command")
			continue
		}
		require.NoError(t, got.UnmarshalBinary(data))
		require.True(t, got.Now.Equal(c.Now), "now %v != %v", got.Now, c.Now)
		want := c
		want.Now, got.Now = time.Time{}, time.Time{}
		require.Equal(t, want, got)
		again, _ := got.MarshalBinary()
		if !c.Now.IsZero() {
			got.Now = c.Now
			again, _ = got.MarshalBinary()
		}
		require.Equal(t, data, again, "encoding is deterministic")
	}
}

func TestCommandDecodeRejectsBadInput(t *testing.T) {
	good, _ := Command{Op: OpSet, Path: "/a", Value: "v", HasTTL: true, TTL: 3,
		Now: time.Unix(1700000000, 5)}.MarshalBinary()
	// Every strict prefix is truncated.
	for i := range good {
		var c Command
		require.ErrorIs(t, c.UnmarshalBinary(good[:i]), ErrBadCommand, "prefix of %d bytes", i)
	}
	mutate := func(f func([]byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	cases := map[string][]byte{
		"version":        mutate(func(b []byte) []byte { b[0] = 9; return b }),
		"op zero":        mutate(func(b []byte) []byte { b[1] = 0; return b }),
		"op unknown":     mutate(func(b []byte) []byte { b[1] = 99; return b }),
		"flags":          mutate(func(b []byte) []byte { b[2] |= 0x80; return b }),
		"prevExist":      mutate(func(b []byte) []byte { b[3] = 3; return b }),
		"trailing":       mutate(func(b []byte) []byte { return append(b, 0) }),
		"path too long":  mutate(func(b []byte) []byte { b[4] = 0x7f; return b }),
		"non-minimal":    append([]byte{1, 1, 0, 0, 0x82, 0x00, '/', 'a'}, 0, 0, 0, 0),
		"nanos too big":  append(append([]byte(nil), good[:len(good)-5]...), 0x80, 0x94, 0xeb, 0xdc, 0x03),
		"varint garbage": append([]byte{1, 1, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	}
	for name, data := range cases {
		var c Command
		c.Path = "unchanged"
		err := c.UnmarshalBinary(data)
		require.ErrorIs(t, err, ErrBadCommand, name)
		require.Equal(t, "unchanged", c.Path, "%s: a failed decode leaves the command alone", name)
	}
}

func FuzzCommandDecode(f *testing.F) {
	for _, c := range []Command{
		{Op: OpSet, Path: "/a", Value: "v"},
		{Op: OpCompareAndSwap, Path: "/a", PrevValue: "x", PrevIndex: 3, HasTTL: true, TTL: 9, Now: time.Unix(1e9, 1)},
		{Op: OpExpire, Now: time.Unix(1e9, 0)},
	} {
		data, _ := c.MarshalBinary()
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Command
		if err := c.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		// The encoding is canonical: whatever decodes re-encodes to itself.
		again, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", data, again)
		}
	})
}

func TestUvarintSize(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 1<<14 - 1, 1 << 14, 1<<63 - 1, 1 << 63, 1<<64 - 1} {
		require.Equal(t, len(binary.AppendUvarint(nil, v)), uvarintSize(v), "v=%d", v)
	}
}
