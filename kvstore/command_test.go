package kvstore

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestEffectiveOp checks the PUT and DELETE dispatch table of spec §6.1.
func TestEffectiveOp(t *testing.T) {
	cases := []struct {
		cmd  Command
		want Op
	}{
		{Command{Op: OpSet}, OpSet},
		{Command{Op: OpSet, PrevExist: PrevExistTrue}, OpUpdate},
		{Command{Op: OpSet, PrevExist: PrevExistTrue, PrevValue: "x"}, OpCompareAndSwap},
		{Command{Op: OpSet, PrevExist: PrevExistTrue, PrevIndex: 3}, OpCompareAndSwap},
		{Command{Op: OpSet, PrevExist: PrevExistFalse, PrevValue: "x", PrevIndex: 3}, OpCreate},
		{Command{Op: OpSet, PrevValue: "x"}, OpCompareAndSwap},
		{Command{Op: OpSet, PrevIndex: 1}, OpCompareAndSwap},
		{Command{Op: OpDelete, Dir: true, Recursive: true}, OpDelete},
		{Command{Op: OpDelete, PrevValue: "x", Recursive: true}, OpCompareAndDelete},
		{Command{Op: OpDelete, PrevIndex: 9}, OpCompareAndDelete},
		{Command{Op: OpCreateInOrder, PrevExist: PrevExistTrue, PrevValue: "x"}, OpCreateInOrder},
		{Command{Op: OpUpdate, PrevValue: "x"}, OpUpdate},
		{Command{Op: OpExpire}, OpExpire},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, tc.cmd.EffectiveOp(), "%+v", tc.cmd)
	}
	assert.Equal(t, "compareAndSwap", OpCompareAndSwap.String())
	assert.Equal(t, "Op(42)", Op(42).String())
}

func TestHash(t *testing.T) {
	build := func(cmds ...Command) uint64 {
		s := newTestStore(t)
		for _, c := range cmds {
			mustApply(t, s, c)
		}
		return s.Hash()
	}
	base := build(set("/a", "1"), set("/b/c", "2"))
	assert.Equal(t, base, build(set("/a", "1"), set("/b/c", "2")), "same commands, same hash")
	assert.NotEqual(t, base, build(set("/a", "1"), set("/b/c", "3")), "value")
	assert.NotEqual(t, base, build(set("/b/c", "2"), set("/a", "1")), "indexes")
	assert.NotEqual(t, base, build(set("/a", "1"), set("/b/d", "2")), "path")
	assert.NotEqual(t, base, build(set("/a", "1"), withTTL(set("/b/c", "2"), 5)), "ttl")
	assert.NotEqual(t, build(set("/a", "")), build(mkdir("/a")), "file or directory")
	s := newTestStore(t)
	mustApply(t, s, set("/a", "1"))
	before := s.Hash()
	apply(s, Command{Op: OpCreate, Path: "/a"})
	assert.Equal(t, before, s.Hash(), "a failed command changes nothing")
}
