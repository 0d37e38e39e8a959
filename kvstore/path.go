package kvstore

import (
	"fmt"
	"path"
	"strings"
)

// cleanPath turns a client key into the store's canonical path: rooted,
// without "//", "." or "..", without a trailing slash ("/" for the root),
// the way etcd joins the key onto its namespace and cleans it (spec §2).
func cleanPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

// depth returns the number of segments in a clean path ("/" has none).
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// checkPath enforces the key limits on a clean path. Violations are request
// errors (index 0), like the parameter errors of spec §3.3.
func (s *Store) checkPath(p string) *Error {
	if len(p) > s.cfg.MaxKeyLength {
		return NewError(CodeInvalidField,
			fmt.Sprintf("key is %d bytes long, the limit is %d", len(p), s.cfg.MaxKeyLength), 0)
	}
	if d := depth(p); d > s.cfg.MaxDepth {
		return NewError(CodeInvalidField,
			fmt.Sprintf("key has %d segments, the limit is %d", d, s.cfg.MaxDepth), 0)
	}
	return nil
}

// lookup returns the node at the clean path p. A missing node is error 100
// with the first missing segment's path as cause; a file in the way is error
// 104 with the file's path as cause (spec §5).
func (s *Store) lookup(p string) (*node, *Error) {
	current := s.root
	for start := 1; start < len(p); {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		if !current.isDir() {
			return nil, NewError(CodeNotDir, p[:start-1], s.index)
		}
		child := current.children().get(p[start:end])
		if child == nil {
			return nil, NewError(CodeKeyNotFound, p[:end], s.index)
		}
		current = child
		start = end + 1
	}
	return current, nil
}

// splitPath splits a clean, non-root path into its parent's path and its
// last segment.
func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}
