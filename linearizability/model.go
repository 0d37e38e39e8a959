package linearizability

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
	"github.com/raftkv/raftkv/kvstore"
)

// call is an operation's input as porcupine carries it.
type call struct {
	// in is the input, its key cleaned.
	in Input
	// id and client name the operation in descriptions.
	id, client int
	// at is the call time.
	at int64
	// node is the index and TTL of the node the operation writes, as far as
	// they are known before the model runs (the index is filled in by step).
	node written
}

// answer is an operation's output as porcupine carries it.
type answer struct {
	out Output
	// at is the return time; math.MaxInt64 when the outcome is unknown.
	at int64
	// unknown says the client never learned the outcome; unseen that the
	// client never received out, which was learned another way.
	unknown, unseen bool
}

// model returns the porcupine model of the key space, partitioned by
// top-level key (see partition) if asked.
func model(partitioned bool) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{(&tree{}).seal()} },
		Step: func(state, input, output any) []any {
			next := step(state.(*tree), input.(*call), output.(*answer))
			out := make([]any, len(next))
			for i, t := range next {
				out[i] = t
			}
			return out
		},
		Equal:             func(a, b any) bool { return a.(*tree).key == b.(*tree).key },
		Hash:              func(s any) uint64 { return s.(*tree).sum },
		DescribeOperation: func(input, output any) string { return describe(input.(*call), output.(*answer)) },
		DescribeState:     func(s any) string { return s.(*tree).String() },
		DescribeOperationMetadata: func(info any) string {
			if id, ok := info.(int); ok {
				return fmt.Sprintf("operation %d", id)
			}
			return ""
		},
	}
	if partitioned {
		nm.Partition = partition
	}
	return nm.ToModel()
}

// step returns every tree the operation c, answered a, can lead to from s:
// none if the answer is impossible there.
func step(s *tree, c *call, a *answer) []*tree {
	base := s.clone()
	w := c.node
	w.index = span{s.floor + 1, maxIndex}
	if !a.unknown {
		x := a.out.Index
		switch {
		case a.out.Err == 0 && c.in.isWrite() && x != 0:
			// The write produced x: everything before it is below x.
			if x <= s.floor || !base.bound(x-1) {
				return nil
			}
			w.index = exactly(x)
		case x != 0:
			// Served at index x: nothing before it is above x.
			if x < s.floor || !base.bound(x) {
				return nil
			}
		}
		if a.out.Err != 0 && !modelledError(a.out.Err) {
			// Refused before it reached the key space: no effect.
			base.floor = max(base.floor, x)
			return []*tree{base.seal()}
		}
	}
	seen := map[string]bool{}
	var out []*tree
	for _, pre := range branches(base, c, a) {
		for _, e := range apply(pre, &c.in, w) {
			t := settle(e, c, a, w)
			if t == nil {
				continue
			}
			t.seal()
			if !seen[t.key] {
				seen[t.key] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// settle checks the effect e against the answer a and returns the tree
// after the operation, or nil if the answer rules e out.
func settle(e effect, c *call, a *answer, w written) *tree {
	t := e.t
	if a.unknown {
		if e.wrote {
			t.floor = max(t.floor, w.index.lo)
		}
		return t
	}
	out := &a.out
	if out.Err != 0 || e.code != 0 {
		if out.Err != e.code {
			return nil
		}
		t.floor = max(t.floor, out.Index)
		return t
	}
	if c.in.Kind == KindGet {
		if !matchRead(t, &c.in, a) {
			return nil
		}
		t.floor = max(t.floor, out.Index)
		return t
	}
	if out.Node != nil {
		if !matchPrev(t, e.prev, out.Prev) {
			return nil
		}
		if c.in.Kind == KindCreateInOrder && w.index.known() &&
			out.Node.Key != childKey(c.in.Key, inOrderName(w.index.lo)) {
			return nil
		}
		if writesValue(&c.in) && out.Node.Value != nil && *out.Node.Value != c.in.Value {
			return nil
		}
	}
	t.floor = max(t.floor, w.index.lo)
	return t
}

// eligible reports whether the node n may have expired by the time the
// operation answered a took effect.
func eligible(n *mnode, a *answer) bool {
	return n.ttl && (a.unknown || n.vanishAt <= a.at)
}

// branches returns the trees the operation may meet, from what the model
// left open in s: a pending in-order create may turn out to be the node the
// operation names, and a node with a TTL may have expired. The model
// decides both lazily, when an operation depends on them, which is sound
// because neither can be observed any other way.
func branches(s *tree, c *call, a *answer) []*tree {
	p := c.in.Key
	states := []*tree{s}
	// A pending node may be the node at p or at one of its ancestors.
	for _, q := range ancestors(p) {
		states = materialize(states, q, nil, false)
	}
	if c.in.Kind == KindGet && !a.unknown && a.out.Err == 0 && a.out.Node != nil && a.out.Node.Dir {
		// Every child listed that the model does not know must be a
		// pending in-order create.
		for _, child := range listed(a.out.Node, c.in.Recursive) {
			states = materialize(states, child.Key, child, true)
		}
	}
	// Any node with a TTL on the way to p may have expired, with its subtree.
	var out []*tree
	for _, t := range states {
		out = append(out, t)
		for _, q := range ancestors(p) {
			if n := t.get(q); n != nil && eligible(n, a) {
				v := t.clone()
				v.remove(q)
				out = append(out, v)
			}
		}
	}
	// A directory deleted without recursive must be empty: its children
	// with TTLs may all have expired.
	if c.in.Kind == KindDelete && !c.in.Recursive {
		for _, t := range out {
			if v := expireChildren(t, p, a); v != nil {
				out = append(out, v)
			}
		}
	}
	return out
}

// materialize returns, for each tree, the trees in which a pending node
// has become the node at p: each candidate in turn, and also the tree as it
// is unless required. seen, when known, is the node an answer showed at p.
func materialize(states []*tree, p string, seen *kvstore.Node, required bool) []*tree {
	var out []*tree
	for _, t := range states {
		if t.get(p) != nil || len(t.pending) == 0 {
			out = append(out, t)
			continue
		}
		if !required {
			out = append(out, t)
		}
		for i := range t.pending {
			n := &t.pending[i]
			if !n.canMaterialize(p) {
				continue
			}
			if seen != nil && (seen.Dir != n.dir || (!n.dir && (seen.Value == nil || *seen.Value != n.value))) {
				continue
			}
			v := t.clone()
			node := v.pending[i]
			v.removePending(i)
			_, name := splitKey(p)
			index, _ := strconv.ParseUint(name, 10, 64)
			node.path, node.pending, node.index = p, false, exactly(index)
			v.put(node)
			out = append(out, v)
		}
	}
	return out
}

// expireChildren returns t with every child of p expired, if they all may
// have and there is at least one; nil otherwise.
func expireChildren(t *tree, p string, a *answer) *tree {
	var paths []string
	for i := range t.nodes {
		n := &t.nodes[i]
		if n.parent() == p {
			if !eligible(n, a) {
				return nil
			}
			paths = append(paths, n.path)
		}
	}
	pendingLeft := false
	for i := range t.pending {
		if t.pending[i].path == p {
			if !eligible(&t.pending[i], a) {
				return nil
			}
			pendingLeft = true
		}
	}
	if len(paths) == 0 && !pendingLeft {
		return nil
	}
	v := t.clone()
	for _, q := range paths {
		v.remove(q)
	}
	pending := v.pending[:0]
	for _, n := range v.pending {
		if n.path != p {
			pending = append(pending, n)
		}
	}
	v.pending = pending
	return v
}

// listed returns every node a directory listing shows, depth first.
func listed(dir *kvstore.Node, recursive bool) []*kvstore.Node {
	var out []*kvstore.Node
	for _, child := range dir.Nodes {
		out = append(out, child)
		if recursive && child.Dir {
			out = append(out, listed(child, true)...)
		}
	}
	return out
}

// matchRead checks a successful read's answer against t, learning the
// indexes it shows and the expiries its listing implies.
func matchRead(t *tree, in *Input, a *answer) bool {
	out := &a.out
	got := out.Node
	if got == nil {
		return false
	}
	n, root, code := lookup(t, in.Key)
	if code != 0 {
		return false
	}
	if root {
		return got.Dir && matchListing(t, "/", got.Nodes, in.Recursive, a)
	}
	if !matchNode(n, got, out.Index) {
		return false
	}
	if !n.dir {
		return true
	}
	return matchListing(t, in.Key, got.Nodes, in.Recursive, a)
}

// matchNode checks one node an answer showed against the model's n, and
// learns its index. x, if not 0, is the index the answer was served at.
func matchNode(n *mnode, got *kvstore.Node, x uint64) bool {
	if got.Dir != n.dir {
		return false
	}
	if !n.dir && (got.Value == nil || *got.Value != n.value) {
		return false
	}
	i := got.ModifiedIndex
	if !n.index.has(i) || (x != 0 && i > x) {
		return false
	}
	n.index = exactly(i)
	return true
}

// matchListing checks the visible children of the directory p against a
// listing. A child the listing leaves out must have expired; a pending
// child still pending was not listed, so it must have expired too.
func matchListing(t *tree, p string, children []*kvstore.Node, recursive bool, a *answer) bool {
	x := a.out.Index
	byKey := make(map[string]*kvstore.Node, len(children))
	for _, child := range children {
		byKey[child.Key] = child
	}
	var paths []string
	for i := range t.nodes {
		if t.nodes[i].parent() == p && !hidden(t.nodes[i].path) {
			paths = append(paths, t.nodes[i].path)
		}
	}
	matched := 0
	for _, q := range paths {
		n := t.get(q)
		got, ok := byKey[q]
		if !ok {
			if !eligible(n, a) {
				return false
			}
			t.remove(q)
			continue
		}
		matched++
		if !matchNode(n, got, x) {
			return false
		}
		if n.dir && recursive && !matchListing(t, q, got.Nodes, true, a) {
			return false
		}
	}
	if matched != len(children) {
		return false
	}
	pending := t.pending[:0]
	for i := range t.pending {
		n := t.pending[i]
		if n.path == p {
			if !eligible(&n, a) {
				return false
			}
			continue
		}
		pending = append(pending, n)
	}
	t.pending = pending
	return true
}

// partition splits a history into independent parts: one per top-level
// key, since no operation on /a/... can see or change /b/... . Operations
// on the root itself (a listing of /, an in-order create under /, a write
// to /) see every top-level key, so a history with any of them is checked
// as one part.
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	index := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range history {
		key := topLevel(op.Input.(*call).in.Key)
		if key == "/" {
			return [][]porcupine.Operation{history}
		}
		i, ok := index[key]
		if !ok {
			i = len(parts)
			index[key] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

// topLevel returns the top-level path a clean path lies under ("/a" for
// "/a/b"), or "/" for the root.
func topLevel(p string) string {
	if p == "/" {
		return p
	}
	if i := strings.IndexByte(p[1:], '/'); i >= 0 {
		return p[:i+1]
	}
	return p
}

// describe renders an operation for the visualisation.
func describe(c *call, a *answer) string {
	var b strings.Builder
	in := &c.in
	fmt.Fprintf(&b, "%v %s", in.Kind, in.Key)
	if in.Kind != KindGet && in.Kind != KindDelete && in.Kind != KindCompareAndDelete {
		switch {
		case in.Refresh:
			b.WriteString(" refresh")
		case in.Dir:
			b.WriteString(" dir")
		default:
			fmt.Fprintf(&b, "=%q", in.Value)
		}
	}
	if in.Kind == KindDelete && (in.Dir || in.Recursive) {
		b.WriteString(map[bool]string{false: " dir", true: " recursive"}[in.Recursive])
	}
	if in.Kind == KindGet && in.Recursive {
		b.WriteString(" recursive")
	}
	if in.PrevValue != "" {
		fmt.Fprintf(&b, " if=%q", in.PrevValue)
	}
	if in.PrevIndex != 0 {
		fmt.Fprintf(&b, " if@%d", in.PrevIndex)
	}
	if in.HasTTL {
		fmt.Fprintf(&b, " ttl=%ds", in.TTL)
	}
	b.WriteString(" → ")
	b.WriteString(describeAnswer(c, a))
	return b.String()
}

func describeAnswer(c *call, a *answer) string {
	if a.unseen {
		return "(unseen) " + describeKnown(c, a)
	}
	return describeKnown(c, a)
}

func describeKnown(c *call, a *answer) string {
	out := &a.out
	switch {
	case a.unknown:
		return "? (outcome unknown)"
	case out.Err != 0:
		return fmt.Sprintf("error %d, index %d", out.Err, out.Index)
	case c.in.Kind != KindGet:
		if c.in.Kind == KindCreateInOrder && out.Node != nil {
			return fmt.Sprintf("%s, index %d", out.Node.Key, out.Index)
		}
		return fmt.Sprintf("ok, index %d", out.Index)
	case out.Node == nil:
		return "ok"
	}
	return fmt.Sprintf("%s, index %d", describeNode(out.Node), out.Index)
}

func describeNode(n *kvstore.Node) string {
	if !n.Dir {
		value := "<nil>"
		if n.Value != nil {
			value = strconv.Quote(*n.Value)
		}
		return fmt.Sprintf("%s@%d", value, n.ModifiedIndex)
	}
	names := make([]string, 0, len(n.Nodes))
	for _, child := range n.Nodes {
		_, name := splitKey(child.Key)
		if child.Dir {
			name += "/"
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return fmt.Sprintf("dir@%d [%s]", n.ModifiedIndex, strings.Join(names, " "))
}

// matchPrev checks a write's prevNode against the node the model says it
// replaced, changed or removed, and learns its index if the node is still
// there (a directory's TTL update keeps the directory).
func matchPrev(t *tree, prev *mnode, got *kvstore.Node) bool {
	if prev == nil || got == nil {
		return prev == nil && got == nil
	}
	if got.Dir != prev.dir || (!prev.dir && (got.Value == nil || *got.Value != prev.value)) {
		return false
	}
	i := got.ModifiedIndex
	if !prev.index.has(i) {
		return false
	}
	if n := t.get(prev.path); n != nil && !n.index.known() && n.index == prev.index {
		n.index = exactly(i)
	}
	return true
}

// writesValue reports whether a successful in leaves its Value in the node
// it answers with: not for removals, directories or refreshes.
func writesValue(in *Input) bool {
	switch in.Kind {
	case KindSet, KindCreate, KindUpdate, KindCompareAndSwap, KindCreateInOrder:
		return !in.Dir && !in.Refresh
	}
	return false
}
