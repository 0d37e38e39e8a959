package kvstore

import (
	"fmt"
	"time"
)

// Op names a modifying operation.
type Op uint8

// The operations a Command can carry. OpSet and OpDelete are also the
// generic forms of an HTTP PUT and DELETE: Apply turns them into the
// specific operation etcd would run, from PrevExist, PrevValue and PrevIndex
// (spec §6.1), so the HTTP layer can pass the request's parameters through.
const (
	// OpSet creates or replaces a file, or (Dir) makes a directory.
	OpSet Op = iota + 1
	// OpCreate creates a node that must not exist yet.
	OpCreate
	// OpUpdate changes an existing node's value and TTL.
	OpUpdate
	// OpCompareAndSwap updates a file if PrevValue and PrevIndex match.
	OpCompareAndSwap
	// OpDelete removes a file, or a directory with Dir or Recursive.
	OpDelete
	// OpCompareAndDelete removes a file if PrevValue and PrevIndex match.
	OpCompareAndDelete
	// OpCreateInOrder creates a node under the directory Path, named by the
	// new index zero-padded to 20 digits.
	OpCreateInOrder
	// OpExpire removes every node whose expiration is at or before Now.
	OpExpire
)

// opNames are the names Op.String reports.
var opNames = [...]string{
	OpSet:              "set",
	OpCreate:           "create",
	OpUpdate:           "update",
	OpCompareAndSwap:   "compareAndSwap",
	OpDelete:           "delete",
	OpCompareAndDelete: "compareAndDelete",
	OpCreateInOrder:    "createInOrder",
	OpExpire:           "expire",
}

// valid reports whether op is one of the defined operations.
func (op Op) valid() bool {
	return op >= OpSet && op <= OpExpire
}

// String returns the operation's name.
func (op Op) String() string {
	if !op.valid() {
		return fmt.Sprintf("Op(%d)", uint8(op))
	}
	return opNames[op]
}

// PrevExist is etcd's tri-state prevExist parameter.
type PrevExist uint8

const (
	// PrevExistUnset means the parameter was not given.
	PrevExistUnset PrevExist = iota
	// PrevExistTrue means the node must exist (an update).
	PrevExistTrue
	// PrevExistFalse means the node must not exist (a create).
	PrevExistFalse
)

// Command is one modifying operation as data: what travels in a Raft log
// entry and what every member applies in the same order.
type Command struct {
	// Op is the operation.
	Op Op
	// Path is the key, as given by the client; Apply cleans it (a missing
	// leading slash is added, "//", "." and ".." are resolved, a trailing
	// slash is dropped).
	Path string
	// Value is the new value for files. Ignored for directories.
	Value string
	// Dir asks for a directory (set, create, in-order create) or allows a
	// directory to be deleted (delete).
	Dir bool
	// Recursive allows a non-empty directory to be deleted; implies Dir.
	Recursive bool
	// PrevValue, when non-empty, must equal the current value
	// (compare-and-swap, compare-and-delete).
	PrevValue string
	// PrevIndex, when non-zero, must equal the current modifiedIndex.
	PrevIndex uint64
	// PrevExist selects create or update for OpSet (spec §6.1).
	PrevExist PrevExist
	// HasTTL says a ttl was given. Without one a set, create, update or
	// compare-and-swap leaves the node permanent, clearing any TTL it had:
	// etcd treats an absent ttl and an empty "ttl=" alike (spec §9).
	HasTTL bool
	// TTL is the time to live in seconds, counted from Now. It is converted
	// to an expiration exactly as etcd does, wrap-around of huge values
	// included (spec §6.1).
	TTL uint64
	// Refresh changes only the TTL: the value is kept and watchers are not
	// woken. Requires HasTTL and an empty Value.
	Refresh bool
	// Now is the proposer's clock: the base of TTL expirations, the cutoff
	// of OpExpire, and the time remaining TTLs in the result are computed
	// at. The store never reads a clock of its own.
	Now time.Time
}

// EffectiveOp returns the operation Apply runs for c: OpSet and OpDelete
// are dispatched on PrevExist, PrevValue and PrevIndex as etcd's HTTP layer
// does (spec §6.1); every other operation is taken as it is. Callers that
// count successes and failures per operation (etcd's store statistics) use
// it to name the operation of a failed command.
func (c Command) EffectiveOp() Op {
	compare := c.PrevValue != "" || c.PrevIndex > 0
	switch c.Op {
	case OpSet:
		switch {
		case c.PrevExist == PrevExistTrue && compare:
			return OpCompareAndSwap
		case c.PrevExist == PrevExistTrue:
			return OpUpdate
		case c.PrevExist == PrevExistFalse:
			return OpCreate
		case compare:
			return OpCompareAndSwap
		}
	case OpDelete:
		if compare {
			return OpCompareAndDelete
		}
	}
	return c.Op
}

// minExpiration is the earliest expiration a set or create keeps: etcd
// treats anything before 2000-01-01 as "no TTL" (spec §6.1).
var minExpiration = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// expiration returns the absolute expiration c asks for, in Unix
// nanoseconds, and whether there is one. It reproduces etcd's arithmetic:
// the ttl is converted to a time.Duration with signed wrap-around, added to
// Now, and taken as Unix nanoseconds (which wraps for times after 2262); a
// result of exactly 0 means "no TTL", as in etcd's request encoding.
func (c Command) expiration() (int64, bool) {
	if !c.HasTTL {
		return 0, false
	}
	nanos := c.Now.Add(time.Duration(c.TTL) * time.Second).UnixNano()
	return nanos, nanos != 0
}
