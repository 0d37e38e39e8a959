package kvstore

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// check verifies childList's invariants.
func (c *childList) check() error {
	if c == nil {
		return nil
	}
	total := 0
	var last *node
	if len(c.firsts) != len(c.chunks) {
		return fmt.Errorf("%d first names for %d chunks", len(c.firsts), len(c.chunks))
	}
	for i, chunk := range c.chunks {
		if len(chunk) == 0 || len(chunk) > childChunkMax {
			return fmt.Errorf("chunk %d holds %d children", i, len(chunk))
		}
		if c.firsts[i] != chunk[0].name {
			return fmt.Errorf("chunk %d starts with %q, its first name says %q", i, chunk[0].name, c.firsts[i])
		}
		for _, n := range chunk {
			if last != nil && last.name >= n.name {
				return fmt.Errorf("child %q comes after %q", n.name, last.name)
			}
			last = n
		}
		total += len(chunk)
	}
	if total != c.count {
		return fmt.Errorf("count %d, chunks hold %d", c.count, total)
	}
	return c.checkIndex()
}

// checkIndex verifies that the index is there exactly when the list is
// big enough and finds every child, and nothing else, from its home slot.
func (c *childList) checkIndex() error {
	x := c.index
	switch {
	case x == nil && c.count > indexFrom:
		return fmt.Errorf("%d children and no index", c.count)
	case x == nil:
		return nil
	case c.count < indexFrom/2:
		return fmt.Errorf("an index kept for %d children", c.count)
	case x.count != c.count:
		return fmt.Errorf("the index counts %d children, the list %d", x.count, c.count)
	}
	if err := x.check(); err != nil {
		return err
	}
	for n := range c.all() {
		if x.get(n.name) != n {
			return fmt.Errorf("the index does not find %q", n.name)
		}
	}
	return nil
}

// check verifies the table itself: a power of two of slots at most 3/4
// full, as many children as it counts, each reachable from its home slot.
func (x *nameIndex) check() error {
	if len(x.slots)&(len(x.slots)-1) != 0 || 4*x.count > 3*len(x.slots) {
		return fmt.Errorf("an index of %d slots for %d children", len(x.slots), x.count)
	}
	held := 0
	for i, n := range x.slots {
		if n == nil {
			continue
		}
		held++
		for j := x.home(n.name); j != i; j = (j + 1) & (len(x.slots) - 1) {
			if x.slots[j] == nil {
				return fmt.Errorf("child %q in slot %d is past a free slot %d", n.name, i, j)
			}
		}
	}
	if held != x.count {
		return fmt.Errorf("the index holds %d children and counts %d", held, x.count)
	}
	return nil
}

// TestPropertyChildListMatchesMap runs random inserts, removals and
// lookups on a childList and on a map, and compares: the same children,
// in name order, with the invariants kept after every step.
func TestPropertyChildListMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var list childList
		model := map[string]*node{}
		// Few distinct names make removals and repeats likely; many make
		// chunks split.
		names := rapid.IntRange(1, 3*childChunkMax).Draw(t, "names")
		ordered := rapid.Bool().Draw(t, "mostly in order")
		next := 0
		for step := range rapid.IntRange(1, 1500).Draw(t, "steps") {
			k := rapid.IntRange(0, names-1).Draw(t, "key")
			if ordered {
				k, next = next%names, next+1
			}
			name := fmt.Sprintf("k%05d", k)
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0, 1:
				if model[name] == nil {
					n := &node{name: name}
					list.insert(n)
					model[name] = n
				}
			case 2:
				_, had := model[name]
				if list.remove(name) != had {
					t.Fatalf("step %d: remove %s: %v, the model had it: %v", step, name, !had, had)
				}
				delete(model, name)
			case 3:
				if got := list.get(name); got != model[name] {
					t.Fatalf("step %d: get %s: %v, want %v", step, name, got, model[name])
				}
			}
			if err := list.check(); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		want := make([]string, 0, len(model))
		for name := range model {
			want = append(want, name)
		}
		sort.Strings(want)
		var got []string
		for n := range list.all() {
			got = append(got, n.name)
		}
		if !slices.Equal(got, want) || list.len() != len(want) {
			t.Fatalf("children %v (len %d), want %v", got, list.len(), want)
		}
	})
}

// The checker catches a list out of order and a wrong count.
func TestChildListCheckCatchesBrokenLists(t *testing.T) {
	var list childList
	for _, name := range []string{"a", "b", "c"} {
		list.insert(&node{name: name})
	}
	require.NoError(t, list.check())
	list.chunks[0][0], list.chunks[0][1] = list.chunks[0][1], list.chunks[0][0]
	require.Error(t, list.check())
	list.chunks[0][0], list.chunks[0][1] = list.chunks[0][1], list.chunks[0][0]
	list.count++
	require.Error(t, list.check())
	list.count--
	require.NoError(t, list.check())
	list.firsts[0] = "b"
	require.Error(t, list.check(), "a chunk's first name out of date")
	list.firsts[0] = "a"
	require.Panics(t, func() { list.insert(&node{name: "b"}) }, "a second child of the same name")

	for i := range indexFrom {
		list.insert(&node{name: fmt.Sprintf("n%05d", i)})
	}
	require.NotNil(t, list.index)
	require.NoError(t, list.check())
	victim := list.chunks[0][5]
	list.index.remove(victim.name)
	require.Error(t, list.check(), "a child missing from the index")
	list.index.add(victim)
	require.NoError(t, list.check())
	// A child moved from its home slot to a free one after it is lost to
	// lookups (they stop at the free home slot).
	x, moved := list.index, false
	for i, n := range x.slots {
		next := (i + 1) & (len(x.slots) - 1)
		if n != nil && x.home(n.name) == i && x.slots[next] == nil {
			x.slots[i], x.slots[next] = nil, n
			require.Error(t, list.check(), "a child past a free slot")
			x.slots[i], x.slots[next] = n, nil
			moved = true
			break
		}
	}
	require.True(t, moved, "no child at home before a free slot in an index %d/%d full", x.count, len(x.slots))
	require.NoError(t, list.check())
}
