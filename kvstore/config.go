package kvstore

import "fmt"

// Defaults for the zero fields of Config. etcd itself has no such limits;
// these are generous enough that etcd clients never meet them, and small
// enough that one request cannot exhaust a member.
const (
	// DefaultMaxKeyLength bounds a cleaned key path, in bytes.
	DefaultMaxKeyLength = 4096
	// DefaultMaxValueSize bounds a value, in bytes. etcd refuses request
	// bodies over 10 MiB, so no etcd client can send a larger value.
	DefaultMaxValueSize = 10 << 20
	// DefaultMaxDepth bounds the number of segments in a key.
	DefaultMaxDepth = 128
	// DefaultMaxListNodes bounds the number of nodes one Get may return.
	DefaultMaxListNodes = 1 << 20
	// DefaultWatchBuffer is the per-stream-watcher event buffer; etcd uses 100.
	DefaultWatchBuffer = 100
)

// Upper bounds on the Config fields, so a typo cannot disable a limit.
const (
	maxMaxKeyLength = 1 << 20
	maxMaxValueSize = 1 << 30
	maxMaxDepth     = 4096
	maxMaxListNodes = 1 << 30
	maxWatchBuffer  = 1 << 20
)

// historyCapacity is the number of events kept for watches from a past
// index. etcd keeps exactly 1000 and clients see it through error 401.
const historyCapacity = 1000

// Config holds the store's limits. A zero field means its default. Every
// member of a cluster must use the same Config: the limits decide whether a
// command succeeds, and members must agree on that.
type Config struct {
	// MaxKeyLength is the longest key accepted, in bytes, after cleaning.
	MaxKeyLength int
	// MaxValueSize is the largest value accepted, in bytes.
	MaxValueSize int
	// MaxDepth is the largest number of path segments in a key.
	MaxDepth int
	// MaxListNodes is the largest number of nodes one Get may return,
	// counting every listed node at every level of a recursive get.
	MaxListNodes int
	// WatchBuffer is the number of undelivered events a stream watcher may
	// hold; a watcher whose buffer is full when an event arrives is dropped.
	// (A one-shot watcher needs, and gets, room for its one event.)
	WatchBuffer int
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	if c.MaxKeyLength == 0 {
		c.MaxKeyLength = DefaultMaxKeyLength
	}
	if c.MaxValueSize == 0 {
		c.MaxValueSize = DefaultMaxValueSize
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.MaxListNodes == 0 {
		c.MaxListNodes = DefaultMaxListNodes
	}
	if c.WatchBuffer == 0 {
		c.WatchBuffer = DefaultWatchBuffer
	}
	return c
}

// validate checks every limit is within its range (after defaults).
func (c Config) validate() error {
	limits := []struct {
		name       string
		value, max int
	}{
		{"MaxKeyLength", c.MaxKeyLength, maxMaxKeyLength},
		{"MaxValueSize", c.MaxValueSize, maxMaxValueSize},
		{"MaxDepth", c.MaxDepth, maxMaxDepth},
		{"MaxListNodes", c.MaxListNodes, maxMaxListNodes},
		{"WatchBuffer", c.WatchBuffer, maxWatchBuffer},
	}
	for _, limit := range limits {
		if limit.value < 0 || limit.value > limit.max {
			return fmt.Errorf("kvstore: config %s is %d, want 1..%d (or 0 for the default)",
				limit.name, limit.value, limit.max)
		}
	}
	if c.MaxKeyLength < 2 {
		return fmt.Errorf("kvstore: config MaxKeyLength is %d, want at least 2 (\"/a\")", c.MaxKeyLength)
	}
	return nil
}
