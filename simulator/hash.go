package simulator

import "encoding/binary"

// The simulator hashes with its own small functions rather than hash/maphash,
// whose seed changes from process to process: a trace hash must be the same
// in every process that replays the seed.

const hashInit uint64 = 0xcbf29ce484222325

// mix folds x into h (a 64-bit multiply-xorshift round).
func mix(h, x uint64) uint64 {
	h ^= x
	h *= 0x9e3779b97f4a7c15
	h ^= h >> 32
	h *= 0xd6e8feb86659fd93
	h ^= h >> 29
	return h
}

// hashBytes folds b into h, eight bytes at a time.
func hashBytes(h uint64, b []byte) uint64 {
	for len(b) >= 8 {
		h = mix(h, binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	var tail uint64
	for i, c := range b {
		tail |= uint64(c) << (8 * i)
	}
	return mix(h, tail^uint64(len(b))<<56)
}
