package linearizability

import "github.com/raftkv/raftkv/kvstore"

// The key space's operations on a model tree, following kvstore/apply.go
// and spec §6 rule for rule: the same checks in the same order, so the
// same error codes. What the model does not know exactly it carries as
// spans (indexes) and branches (a compare against an index it only knows a
// range of may go either way).

// effect is one way an operation can go from one tree.
type effect struct {
	// t is the tree after the operation (before a failure: unchanged).
	t *tree
	// code is the etcd error code, 0 on success.
	code int
	// prev is a copy of the node a write replaced, changed or removed.
	prev *mnode
	// wrote says the operation produced an index.
	wrote bool
}

// written describes the node a write makes: where its index and TTL come
// from.
type written struct {
	// index is the index the write produces: exact when the answer said.
	index span
	// ttl and vanishAt are the TTL of the node written (see mnode).
	ttl      bool
	vanishAt int64
}

// apply runs in on t, which it may change, and returns every way it can go.
func apply(t *tree, in *Input, w written) []effect {
	p := in.Key
	switch in.Kind {
	case KindGet:
		_, _, code := lookup(t, p)
		return []effect{{t: t, code: code}}
	case KindSet:
		return []effect{setNode(t, p, in, w)}
	case KindCreate:
		return []effect{createNode(t, p, in, in.Value, false, w)}
	case KindUpdate:
		return []effect{updateNode(t, p, in, w)}
	case KindCompareAndSwap:
		return compareAndSwap(t, p, in, w)
	case KindDelete:
		return []effect{removeNode(t, p, in)}
	case KindCompareAndDelete:
		return compareAndDelete(t, p, in)
	case KindCreateInOrder:
		return []effect{createInOrder(t, p, in, w)}
	}
	panic("linearizability: unknown operation " + in.Kind.String())
}

// lookup finds the node at p as the store does: a file on the way is 104,
// a missing segment 100. For the root it returns nil and root true.
func lookup(t *tree, p string) (n *mnode, root bool, code int) {
	if p == "/" {
		return nil, true, 0
	}
	dir := true
	for _, q := range ancestors(p) {
		if !dir {
			return nil, false, kvstore.CodeNotDir
		}
		if n = t.get(q); n == nil {
			return nil, false, kvstore.CodeKeyNotFound
		}
		dir = n.dir
	}
	return n, false, 0
}

// findDir finds the directory at p without making anything, and returns
// the paths still to be made; a file on the way is 104.
func findDir(t *tree, p string) ([]string, int) {
	all := ancestors(p)
	for i, q := range all {
		n := t.get(q)
		if n == nil {
			return all[i:], 0
		}
		if !n.dir {
			return nil, kvstore.CodeNotDir
		}
	}
	return nil, 0
}

// newNode is the node a write makes at p.
func newNode(p string, dir bool, value string, w written) mnode {
	n := mnode{path: p, dir: dir, index: w.index, ttl: w.ttl, vanishAt: w.vanishAt}
	if !dir {
		n.value = value
	}
	return n
}

// setNode creates or replaces the node at p (spec §6.4).
func setNode(t *tree, p string, in *Input, w written) effect {
	if p == "/" {
		return effect{t: t, code: kvstore.CodeRootReadOnly}
	}
	value := in.Value
	if in.Refresh {
		n, _, code := lookup(t, p)
		if code != 0 {
			return effect{t: t, code: code}
		}
		value = n.value
	}
	return createNode(t, p, in, value, true, w)
}

// createNode makes the node at p and its missing parents (spec §6.4, §6.5);
// replace allows an existing file to be replaced.
func createNode(t *tree, p string, in *Input, value string, replace bool, w written) effect {
	if p == "/" {
		return effect{t: t, code: kvstore.CodeRootReadOnly}
	}
	dir, _ := splitKey(p)
	missing, code := findDir(t, dir)
	if code != 0 {
		return effect{t: t, code: code}
	}
	var existing *mnode
	if len(missing) == 0 {
		existing = t.get(p)
	}
	if existing != nil && !replace {
		return effect{t: t, code: kvstore.CodeNodeExist}
	}
	if existing != nil && existing.dir {
		return effect{t: t, code: kvstore.CodeNotFile}
	}
	e := effect{t: t, wrote: true}
	if existing != nil {
		prev := *existing
		e.prev = &prev
	}
	for _, m := range missing {
		t.put(mnode{path: m, dir: true, index: w.index})
	}
	t.put(newNode(p, in.Dir, value, w))
	return e
}

// createInOrder creates a node under the directory p named by the index
// it produces (spec §6.6). If the index is not known, the node is pending:
// its name is learned when someone sees it.
func createInOrder(t *tree, p string, in *Input, w written) effect {
	if w.index.known() {
		return createNode(t, childKey(p, inOrderName(w.index.lo)), in, in.Value, false, w)
	}
	missing, code := findDir(t, p)
	if code != 0 {
		return effect{t: t, code: code}
	}
	for _, m := range missing {
		t.put(mnode{path: m, dir: true, index: w.index})
	}
	n := newNode(p, in.Dir, in.Value, w)
	n.pending = true
	t.put(n)
	return effect{t: t, wrote: true}
}

// updateNode changes an existing node's value and TTL (spec §6.7); on a
// directory only its TTL.
func updateNode(t *tree, p string, in *Input, w written) effect {
	if p == "/" {
		return effect{t: t, code: kvstore.CodeRootReadOnly}
	}
	n, _, code := lookup(t, p)
	if code != 0 {
		return effect{t: t, code: code}
	}
	if n.dir && in.Value != "" {
		return effect{t: t, code: kvstore.CodeNotFile}
	}
	prev := *n
	if !n.dir {
		if !in.Refresh {
			n.value = in.Value
		}
		n.index = w.index
	}
	n.ttl, n.vanishAt = w.ttl, w.vanishAt
	return effect{t: t, prev: &prev, wrote: true}
}

// compareAndSwap updates a file whose value and index match (spec §6.8).
func compareAndSwap(t *tree, p string, in *Input, w written) []effect {
	if p == "/" {
		return []effect{{t: t, code: kvstore.CodeRootReadOnly}}
	}
	n, _, code := lookup(t, p)
	if code != 0 {
		return []effect{{t: t, code: code}}
	}
	if n.dir {
		return []effect{{t: t, code: kvstore.CodeNotFile}}
	}
	match, mismatch := compare(n, in)
	var out []effect
	if mismatch {
		out = append(out, effect{t: t, code: kvstore.CodeCompareFailed})
	}
	if match {
		t := t.clone()
		n := t.get(p)
		if in.PrevIndex != 0 {
			n.index = exactly(in.PrevIndex)
		}
		prev := *n
		if !in.Refresh {
			n.value = in.Value
		}
		n.index, n.ttl, n.vanishAt = w.index, w.ttl, w.vanishAt
		out = append(out, effect{t: t, prev: &prev, wrote: true})
	}
	return out
}

// compare says whether the file n can match in's prevValue and prevIndex,
// and whether it can fail to: both, when the index of n is known only as a
// span holding prevIndex.
func compare(n *mnode, in *Input) (match, mismatch bool) {
	valueOK := in.PrevValue == "" || in.PrevValue == n.value
	indexMay := in.PrevIndex == 0 || n.index.has(in.PrevIndex)
	indexMust := in.PrevIndex == 0 || (n.index.known() && n.index.lo == in.PrevIndex)
	return valueOK && indexMay, !valueOK || !indexMust
}

// removeNode deletes a file, or a directory if allowed (spec §6.9).
func removeNode(t *tree, p string, in *Input) effect {
	if p == "/" {
		return effect{t: t, code: kvstore.CodeRootReadOnly}
	}
	n, _, code := lookup(t, p)
	if code != 0 {
		return effect{t: t, code: code}
	}
	if n.dir {
		if !in.Dir && !in.Recursive {
			return effect{t: t, code: kvstore.CodeNotFile}
		}
		if !in.Recursive && t.hasChildren(p) {
			return effect{t: t, code: kvstore.CodeDirNotEmpty}
		}
	}
	prev := *n
	t.remove(p)
	return effect{t: t, prev: &prev, wrote: true}
}

// compareAndDelete deletes a file whose value and index match (spec
// §6.10). It has no root check: the root is a directory, error 102.
func compareAndDelete(t *tree, p string, in *Input) []effect {
	n, root, code := lookup(t, p)
	if code != 0 {
		return []effect{{t: t, code: code}}
	}
	if root || n.dir {
		return []effect{{t: t, code: kvstore.CodeNotFile}}
	}
	match, mismatch := compare(n, in)
	var out []effect
	if mismatch {
		out = append(out, effect{t: t, code: kvstore.CodeCompareFailed})
	}
	if match {
		t := t.clone()
		n := t.get(p)
		if in.PrevIndex != 0 {
			n.index = exactly(in.PrevIndex)
		}
		prev := *n
		t.remove(p)
		out = append(out, effect{t: t, prev: &prev, wrote: true})
	}
	return out
}
