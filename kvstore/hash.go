package kvstore

import (
	"encoding/binary"
	"hash/fnv"
)

// Hash returns a deterministic 64-bit digest of the key space (every
// node's path, kind, value, indexes and expiration) and the etcd index.
// Members that applied the same commands have equal hashes; the simulator
// compares them. Watchers and the event history are not included.
//
// Each node is hashed on its own and the node hashes are added up, so the
// digest does not depend on the order the tree is walked in.
func (s *Store) Hash() uint64 {
	var sum uint64
	path := make([]byte, 0, 256)
	var walk func(n *node)
	walk = func(n *node) {
		sum += hashNode(n, path)
		for child := range n.children().all() {
			before := len(path)
			path = append(append(path, '/'), child.name...)
			walk(child)
			path = path[:before]
		}
	}
	walk(s.root)
	return mix64(sum ^ mix64(s.index))
}

// hashNode digests one node found at path.
func hashNode(n *node, path []byte) uint64 {
	h := fnv.New64a()
	var scratch [binary.MaxVarintLen64]byte
	writeUint := func(v uint64) {
		h.Write(binary.AppendUvarint(scratch[:0], v))
	}
	writeUint(uint64(len(path)))
	h.Write(path)
	if n.isDir() {
		writeUint(1)
	} else {
		writeUint(0)
		writeUint(uint64(len(n.value)))
		h.Write([]byte(n.value))
	}
	writeUint(n.createdIndex)
	writeUint(n.modifiedIndex)
	if n.expiry() != nil {
		writeUint(1)
		writeUint(uint64(n.expiry().at))
	} else {
		writeUint(0)
	}
	return mix64(h.Sum64())
}

// mix64 is the SplitMix64 finaliser: it spreads every input bit over the
// output, so that a sum of node hashes keeps its discriminating power.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
