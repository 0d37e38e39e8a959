package kvstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// populated returns a store with files, directories, hidden keys, TTLs and
// a history with every kind of event.
func populated(t testing.TB) *Store {
	s := newTestStore(t)
	mustApply(t, s, set("/a", "1"))
	mustApply(t, s, withTTL(set("/d/x", "2"), 30))
	mustApply(t, s, withTTL(mkdir("/d/sub"), 40))
	mustApply(t, s, set("/_hidden/y", ""))
	mustApply(t, s, Command{Op: OpSet, Path: "/d/x", Refresh: true, HasTTL: true, TTL: 60})
	mustApply(t, s, Command{Op: OpCreateInOrder, Path: "/q", Value: "job"})
	mustApply(t, s, Command{Op: OpCompareAndSwap, Path: "/a", PrevValue: "1", Value: "one"})
	mustApply(t, s, set("/gone/z", "z"))
	mustApply(t, s, Command{Op: OpDelete, Path: "/gone", Recursive: true})
	mustApply(t, s, withTTL(set("/soon", "s"), 1))
	apply(s, Command{Op: OpExpire, Now: t0.Add(2 * time.Second)})
	return s
}

// AppendSnapshot writes after the caller's header exactly what Save
// returns, in a buffer sized once (AppendSnapshot panics if its sizing pass
// and the encoding disagree, which every Save in these tests checks).
func TestAppendSnapshotAfterAHeader(t *testing.T) {
	s := populated(t)
	mustApply(t, s, withTTL(set("/far", "f"), 1<<40))
	alone, err := s.Save()
	require.NoError(t, err)
	assert.LessOrEqual(t, cap(alone), len(alone)+len(alone)/8+16, "sized before written (up to the allocator's rounding)")
	header := []byte("header")
	both, err := s.AppendSnapshot(header)
	require.NoError(t, err)
	assert.Equal(t, "header", string(both[:len(header)]))
	assert.Equal(t, alone, both[len(header):])
	restored := newTestStore(t)
	require.NoError(t, restored.Restore(both[len(header):]))
	assert.Equal(t, s.Hash(), restored.Hash())
}

// WriteSnapshot streams exactly the bytes Save returns, in pieces, and
// stops at the writer's first error.
func TestWriteSnapshotStreamsSavesBytes(t *testing.T) {
	s := populated(t)
	for i := range 3000 { // several pieces of snapshotPieceBytes
		mustApply(t, s, set(fmt.Sprintf("/many/%05d", i), strings.Repeat("v", 40)))
	}
	want, err := s.Save()
	require.NoError(t, err)
	var pieces pieceRecorder
	require.NoError(t, s.WriteSnapshot(&pieces))
	assert.Equal(t, want, pieces.all)
	assert.Greater(t, pieces.writes, 2, "written in pieces")
	for _, size := range pieces.sizes[:len(pieces.sizes)-2] { // the history and the checksum last
		assert.LessOrEqual(t, size, snapshotPieceBytes+4096, "a piece of the tree much larger than snapshotPieceBytes")
	}

	broken := &pieceRecorder{failAfter: 1}
	err = s.WriteSnapshot(broken)
	require.ErrorIs(t, err, errPieceRefused)
	assert.Equal(t, 2, broken.writes, "went on writing after an error")
}

var errPieceRefused = errors.New("piece refused")

// pieceRecorder keeps what is written to it, and refuses writes after
// failAfter of them when that is set.
type pieceRecorder struct {
	all       []byte
	writes    int
	sizes     []int
	failAfter int
}

func (p *pieceRecorder) Write(b []byte) (int, error) {
	p.writes++
	if p.failAfter > 0 && p.writes > p.failAfter {
		return 0, errPieceRefused
	}
	p.all = append(p.all, b...)
	p.sizes = append(p.sizes, len(b))
	return len(b), nil
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := populated(t)
	data, err := s.Save()
	require.NoError(t, err)
	again, _ := s.Save()
	assert.Equal(t, data, again, "Save is deterministic")

	restored := newTestStore(t)
	require.NoError(t, restored.Restore(data))
	assert.Equal(t, s.Hash(), restored.Hash())
	assert.Equal(t, s.CurrentIndex(), restored.CurrentIndex())
	copied, _ := restored.Save()
	assert.Equal(t, data, copied)
	next1, _ := s.NextExpiration()
	next2, _ := restored.NextExpiration()
	assert.Equal(t, next1, next2)

	for _, opts := range []GetOptions{{Recursive: true, Now: t0}, {Now: t0.Add(time.Second)}} {
		e1, err1 := s.Get("/", opts)
		e2, err2 := restored.Get("/", opts)
		require.NoError(t, err1)
		require.NoError(t, err2)
		assert.Equal(t, jsonOf(t, e1), jsonOf(t, e2))
	}
	// The history came along: a watch from index 1 sees the same event.
	w1 := mustWatch(t, s, "/", WatchOptions{Recursive: true, SinceIndex: 2})
	w2 := mustWatch(t, restored, "/", WatchOptions{Recursive: true, SinceIndex: 2})
	e1, _ := received(w1)
	e2, _ := received(w2)
	assert.Equal(t, jsonOf(t, e1), jsonOf(t, e2))
}

func TestSnapshotEmptyStore(t *testing.T) {
	s := newTestStore(t)
	data, err := s.Save()
	require.NoError(t, err)
	restored := populated(t)
	require.NoError(t, restored.Restore(data))
	assert.Equal(t, s.Hash(), restored.Hash())
	assert.Equal(t, uint64(0), restored.CurrentIndex())
	_, ok := restored.NextExpiration()
	assert.False(t, ok)
}

func TestSnapshotCorruptionLeavesStoreUnchanged(t *testing.T) {
	data, err := populated(t).Save()
	require.NoError(t, err)
	s := newTestStore(t)
	mustApply(t, s, set("/mine", "v"))
	w := mustWatch(t, s, "/mine", WatchOptions{})
	hash := s.Hash()

	check := func(name string, bad []byte) {
		err := s.Restore(bad)
		require.ErrorIs(t, err, ErrBadSnapshot, name)
		require.Equal(t, hash, s.Hash(), name)
	}
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x10
		check(fmt.Sprintf("bit flip at %d", i), bad)
	}
	for i := range data {
		check(fmt.Sprintf("truncated to %d", i), data[:i])
	}
	check("nil", nil)
	check("extra byte", append(append([]byte(nil), data...), 0))
	assert.Equal(t, 1, s.WatcherCount(), "a failed restore keeps the watchers")
	_, closed := received(w)
	assert.False(t, closed)
}

func TestSnapshotRestoreClosesWatchers(t *testing.T) {
	data, err := populated(t).Save()
	require.NoError(t, err)
	s := newTestStore(t)
	w := mustWatch(t, s, "/a", WatchOptions{Stream: true})
	require.NoError(t, s.Restore(data))
	events, closed := received(w)
	assert.Empty(t, events)
	assert.True(t, closed)
	assert.Equal(t, 0, s.WatcherCount())
}

func TestSnapshotRejectsBrokenInvariants(t *testing.T) {
	// A well-checksummed snapshot whose content is inconsistent.
	s := newTestStore(t)
	mustApply(t, s, set("/a", "1"))
	good, _ := s.Save()
	body := good[:len(good)-4]
	reseal := func(b []byte) []byte {
		out := append([]byte(nil), b...)
		return appendCRC(out)
	}
	// Index byte right after magic+version: claim index 5 with a history
	// ending at 1.
	bad := append([]byte(nil), body...)
	bad[5] = 5
	err := s.Restore(reseal(bad))
	require.ErrorIs(t, err, ErrBadSnapshot)
	assert.Contains(t, err.Error(), "history ends at 1, index is 5")

	// Claim index 0: the node /a, created at 1, is from the future.
	bad[5] = 0
	err = s.Restore(reseal(bad))
	require.ErrorIs(t, err, ErrBadSnapshot)
	assert.Contains(t, err.Error(), "beyond index 0")
}

// FuzzRestore feeds Restore arbitrary snapshot bodies, correctly sealed
// so that they get past the checksum to the decoder: it must never panic,
// and whatever it accepts must be a consistent store that saves back to
// the same bytes.
func FuzzRestore(f *testing.F) {
	for _, s := range []*Store{newTestStore(f), populated(f)} {
		data, _ := s.Save()
		f.Add(data[len(snapshotMagic)+1 : len(data)-4])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append([]byte(snapshotMagic), snapshotVersion)
		data = appendCRC(append(data, body...))
		s := newTestStore(t)
		if err := s.Restore(data); err != nil {
			require.ErrorIs(t, err, ErrBadSnapshot)
			return
		}
		require.NoError(t, checkInvariants(s))
		again, err := s.Save()
		require.NoError(t, err)
		restored := newTestStore(t)
		require.NoError(t, restored.Restore(again))
		require.Equal(t, s.Hash(), restored.Hash())
	})
}
