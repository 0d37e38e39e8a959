package recipecheck

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// at is a time n milliseconds after an arbitrary origin.
func at(ms int) time.Time { return time.Unix(1700000000, 0).Add(time.Duration(ms) * time.Millisecond) }

func TestCheckLock(t *testing.T) {
	cases := []struct {
		name     string
		sections []Section
		want     string // "" = passes; else a substring of the error
	}{
		{"serial", []Section{
			{Holder: "a", Token: 5, Enter: at(0), Exit: at(10)},
			{Holder: "b", Token: 7, Enter: at(10), Exit: at(20)},
			{Holder: "a", Token: 9, Enter: at(30)},
		}, ""},
		{"told it lost before the next entered", []Section{
			{Holder: "a", Token: 5, Enter: at(0), Lost: at(10), Exit: at(50)},
			{Holder: "b", Token: 7, Enter: at(11), Exit: at(20)},
		}, ""},
		{"overlap", []Section{
			{Holder: "a", Token: 5, Enter: at(0), Exit: at(15)},
			{Holder: "b", Token: 7, Enter: at(10), Exit: at(20)},
		}, "a (token 5) and b (token 7) both held the lock"},
		{"never told", []Section{
			{Holder: "a", Token: 5, Enter: at(0)},
			{Holder: "b", Token: 7, Enter: at(10), Exit: at(20)},
		}, "never told it lost"},
		{"told too late", []Section{
			{Holder: "a", Token: 5, Enter: at(0), Lost: at(12)},
			{Holder: "b", Token: 7, Enter: at(10), Exit: at(20)},
		}, "believed it held until"},
		{"token goes down", []Section{
			{Holder: "a", Token: 9, Enter: at(0), Exit: at(5)},
			{Holder: "b", Token: 7, Enter: at(10), Exit: at(20)},
		}, "fencing token 7 of b"},
		{"token repeated", []Section{
			{Holder: "a", Token: 7, Enter: at(0), Exit: at(5)},
			{Holder: "b", Token: 7, Enter: at(10), Exit: at(20)},
		}, "is not above token 7"},
		{"exit before entry", []Section{{Holder: "a", Token: 7, Enter: at(10), Exit: at(5)}}, "before it entered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckLock(tc.sections)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	err := CheckElection([]Section{{Holder: "a", Token: 1, Enter: at(0)}, {Holder: "b", Token: 2, Enter: at(1)}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "both led")
}

func TestCheckQueue(t *testing.T) {
	enq := []Enqueued{
		{Producer: "p", Seq: 1, Item: "p1", Acked: true, Index: 10},
		{Producer: "p", Seq: 2, Item: "p2", Acked: true, Index: 11},
		{Producer: "q", Seq: 1, Item: "q1", Acked: false},
		{Producer: "q", Seq: 2, Item: "q2", Acked: true, Index: 13},
	}
	ok := []Dequeued{{Consumer: "c", Item: "p1", Index: 20}, {Consumer: "d", Item: "p2", Index: 21}, {Consumer: "c", Item: "q2", Unknown: true}}
	assert.NoError(t, CheckQueue(enq, ok, nil))
	assert.NoError(t, CheckQueue(enq, ok[:2], []string{"q2"}), "an item still in the queue is not lost")

	cases := []struct {
		name string
		deq  []Dequeued
		want string
	}{
		{"twice", append(ok, Dequeued{Consumer: "d", Item: "p1", Index: 30}), `item "p1" was dequeued twice`},
		{"lost", ok[:2], `item "q2" (enqueued by q as its #2 at index 13) was lost`},
		{"invented", append(ok, Dequeued{Consumer: "d", Item: "zz", Index: 30}), `d dequeued "zz", which nobody enqueued`},
		{"order", []Dequeued{{Consumer: "c", Item: "p1", Index: 22}, {Consumer: "d", Item: "p2", Index: 21}, {Consumer: "c", Item: "q2", Index: 25}},
			`p enqueued "p1" (#1) before "p2" (#2), but they were dequeued in the other order`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckQueue(enq, tc.deq, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCheckWatch(t *testing.T) {
	truth := []WatchEvent{
		{Index: 3, Key: "/d/a", Action: "set", Value: "1"},
		{Index: 5, Key: "/d/b", Action: "set", Value: "2"},
		{Index: 6, Key: "/d/a", Action: "delete"},
		{Index: 8, Key: "/d/b", Action: "compareAndSwap", Value: "3"},
	}
	assert.NoError(t, CheckWatch(truth, truth), "the history itself")
	resynced := []WatchEvent{
		{Index: 3, Key: "/d/a", Action: "set", Value: "1"},
		{Index: 7, Action: ActionSnapshot},
		{Index: 7, Key: "/d/a", Action: "delete", Resync: true},
		{Index: 7, Key: "/d/b", Action: "set", Value: "2", Resync: true},
		{Index: 8, Key: "/d/b", Action: "compareAndSwap", Value: "3"},
	}
	assert.NoError(t, CheckWatch(truth, resynced), "a re-read that brings the view up to date")
	initial := []WatchEvent{
		{Index: 5, Action: ActionSnapshot},
		{Index: 5, Key: "/d/a", Action: "set", Value: "1", Resync: true},
		{Index: 5, Key: "/d/b", Action: "set", Value: "2", Resync: true},
		{Index: 6, Key: "/d/a", Action: "delete"},
		{Index: 8, Key: "/d/b", Action: "compareAndSwap", Value: "3"},
	}
	assert.NoError(t, CheckWatch(truth, initial), "a first read, then events")

	cases := []struct {
		name string
		seen []WatchEvent
		want string
	}{
		{"skip", []WatchEvent{truth[0], truth[2], truth[3]}, "skipped 1 event(s) from index 5 before index 6"},
		{"repeat", []WatchEvent{truth[0], truth[1], truth[1], truth[2], truth[3]}, "repeated or out of order"},
		{"wrong value", []WatchEvent{truth[0], {Index: 5, Key: "/d/b", Action: "set", Value: "9"}, truth[2], truth[3]}, `the history has set /d/b="2"`},
		{"invented", []WatchEvent{truth[0], {Index: 4, Key: "/d/x", Action: "set"}, truth[1], truth[2], truth[3]}, "not in the directory's history"},
		{"tail", truth[:3], "never reported 1 event(s) from index 8"},
		{"bad re-read", []WatchEvent{truth[0], {Index: 7, Action: ActionSnapshot}, {Index: 7, Key: "/d/b", Action: "set", Value: "2", Resync: true}, truth[3]},
			"after the re-read at index 7 the watcher's view differs from the directory: /d/a is \"1\" but does not exist"},
		{"stray resync", []WatchEvent{truth[0], {Index: 5, Key: "/d/b", Action: "set", Value: "2", Resync: true}}, "follows no re-read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckWatch(truth, tc.seen)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
