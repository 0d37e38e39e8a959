package kvstore

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// TestPropertyNameIndexMatchesMap grows a name index well past a few
// resizes and empties it again (shrinking it), against a map: the same
// lookups, and every child reachable from its home slot.
func TestPropertyNameIndexMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := newNameIndex(rapid.IntRange(0, 100).Draw(t, "size"))
		model := map[string]*node{}
		names := rapid.IntRange(1, 3000).Draw(t, "names")
		fill := rapid.IntRange(0, 3*names).Draw(t, "adds first")
		for step := range fill + rapid.IntRange(0, 3*names).Draw(t, "then removes") {
			name := fmt.Sprintf("n%d", rapid.IntRange(0, names-1).Draw(t, "name"))
			if step < fill {
				if model[name] == nil {
					n := &node{name: name}
					x.add(n)
					model[name] = n
				}
			} else if model[name] != nil {
				before := len(x.slots)
				x.remove(name)
				delete(model, name)
				if sparse := len(x.slots) > 8 && 8*x.count < len(x.slots); sparse && len(x.slots) == before {
					t.Fatalf("step %d: %d slots kept for %d children", step, len(x.slots), x.count)
				}
			} else {
				x.remove(name) // not there: nothing changes
			}
			if got := x.get(name); got != model[name] {
				t.Fatalf("step %d: get %s: %v, want %v", step, name, got, model[name])
			}
		}
		if x.count != len(model) {
			t.Fatalf("count %d, want %d", x.count, len(model))
		}
		if err := x.check(); err != nil {
			t.Fatal(err)
		}
		for name, n := range model {
			if x.get(name) != n {
				t.Fatalf("%s not found", name)
			}
		}
	})
}
