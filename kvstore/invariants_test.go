package kvstore

import "fmt"

// checkInvariants verifies every documented invariant of the store's
// structures and returns the first violation. Tests call it after each
// step; it is too slow for production.
func checkInvariants(s *Store) error {
	if s.root.parent != nil || s.root.name != "" || !s.root.isDir() || s.root.expiry() != nil ||
		s.root.createdIndex != 0 || s.root.modifiedIndex != 0 {
		return fmt.Errorf("root is not a permanent, unnamed directory at index 0")
	}
	timed := 0
	var walk func(n *node, p string) error
	walk = func(n *node, p string) error {
		if n.createdIndex > n.modifiedIndex || n.modifiedIndex > s.index {
			return fmt.Errorf("%s: indexes %d/%d, store index %d", p, n.createdIndex, n.modifiedIndex, s.index)
		}
		if n.isDir() && n.value != "" {
			return fmt.Errorf("%s: a directory with a value", p)
		}
		if n.extra != nil && n.extra.children == nil && (n.extra.expiry == nil || n.extra.descendants != 0) {
			return fmt.Errorf("%s: a permanent file or a file with descendants keeps an extra part", p)
		}
		if n.expiry() != nil {
			timed++
			i := n.expiry().heapIndex
			if i >= len(s.expiries.nodes) || s.expiries.nodes[i] != n {
				return fmt.Errorf("%s: heap index %d does not point back", p, i)
			}
		}
		if n.path() != p {
			return fmt.Errorf("%s: path() says %s", p, n.path())
		}
		below := 0
		for child := range n.children().all() {
			below += 1 + child.descendants()
		}
		if n.descendants() != below {
			return fmt.Errorf("%s: counts %d nodes below, its children %d", p, n.descendants(), below)
		}
		if err := n.children().check(); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for child := range n.children().all() {
			name := child.name
			if child.parent != n || name == "" {
				return fmt.Errorf("%s: child %q is linked wrongly", p, name)
			}
			if err := walk(child, childPath(p, name)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(s.root, "/"); err != nil {
		return err
	}
	if timed != s.expiries.len() {
		return fmt.Errorf("%d nodes have a TTL, the heap holds %d", timed, s.expiries.len())
	}
	for i := 1; i < s.expiries.len(); i++ {
		if s.expiries.less(i, (i-1)/2) {
			return fmt.Errorf("heap order broken at %d", i)
		}
	}
	if s.history.lastIndex() != s.index {
		return fmt.Errorf("history ends at %d, index is %d", s.history.lastIndex(), s.index)
	}
	for i := 1; i < s.history.size; i++ {
		if s.history.at(i).Index() != s.history.at(i-1).Index()+1 {
			return fmt.Errorf("history gap after %d", s.history.at(i-1).Index())
		}
	}
	return nil
}
