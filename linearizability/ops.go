package linearizability

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/raftkv/raftkv/kvstore"
)

// Kind is the key-space operation a client asked for, after etcd's dispatch
// of PUT and DELETE on prevExist, prevValue and prevIndex (spec §6.1).
type Kind uint8

// The operations the model knows.
const (
	// KindGet is a linearizable read of a key: a file, a directory listing
	// (recursive or not), or an error. Serializable reads (quorum=false) are
	// not linearizable and must not be recorded.
	KindGet Kind = iota + 1
	// KindSet creates or replaces a file, or makes a directory.
	KindSet
	// KindCreate creates a node that must not exist (prevExist=false).
	KindCreate
	// KindUpdate changes an existing node (prevExist=true).
	KindUpdate
	// KindCompareAndSwap updates a file if PrevValue and PrevIndex match.
	KindCompareAndSwap
	// KindDelete removes a file, or a directory with Dir or Recursive.
	KindDelete
	// KindCompareAndDelete removes a file if PrevValue and PrevIndex match.
	KindCompareAndDelete
	// KindCreateInOrder creates a node under the directory Key named by the
	// index it produces (POST).
	KindCreateInOrder
)

var kindNames = [...]string{
	KindGet:              "get",
	KindSet:              "set",
	KindCreate:           "create",
	KindUpdate:           "update",
	KindCompareAndSwap:   "cas",
	KindDelete:           "delete",
	KindCompareAndDelete: "cad",
	KindCreateInOrder:    "post",
}

// String returns the operation's short name, as the visualisation shows it.
func (k Kind) String() string {
	if k < KindGet || k > KindCreateInOrder {
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
	return kindNames[k]
}

// Input is one client operation as the model sees it.
type Input struct {
	// Kind is the operation.
	Kind Kind
	// Key is the path operated on (for KindCreateInOrder, the directory).
	// Check cleans it as the store does.
	Key string
	// Value is the new value of a file.
	Value string
	// Dir asks for a directory (set, create, in-order create) or allows a
	// directory to be deleted (delete).
	Dir bool
	// Recursive lists a directory's whole subtree (get) or allows a
	// non-empty directory to be deleted (delete).
	Recursive bool
	// PrevValue and PrevIndex are the comparisons of compare-and-swap and
	// compare-and-delete; empty and 0 mean "no comparison".
	PrevValue string
	PrevIndex uint64
	// HasTTL and TTL are the time to live, in seconds, that a write gives
	// the node it writes. Without one the node is permanent.
	HasTTL bool
	TTL    uint64
	// Refresh keeps the value and changes only the TTL.
	Refresh bool
}

// Read returns the input of a linearizable read of key.
func Read(key string, recursive bool) Input {
	return Input{Kind: KindGet, Key: key, Recursive: recursive}
}

// Write returns the input of the write cmd, dispatched as the store
// dispatches it: OpSet becomes a create, update or compare-and-swap and
// OpDelete a compare-and-delete when prevExist, prevValue or prevIndex say
// so. OpExpire is not a client operation and panics.
func Write(cmd kvstore.Command) Input {
	in := Input{
		Key:       cmd.Path,
		Value:     cmd.Value,
		Dir:       cmd.Dir,
		Recursive: cmd.Recursive,
		PrevValue: cmd.PrevValue,
		PrevIndex: cmd.PrevIndex,
		HasTTL:    cmd.HasTTL,
		TTL:       cmd.TTL,
		Refresh:   cmd.Refresh,
	}
	compare := cmd.PrevValue != "" || cmd.PrevIndex > 0
	switch cmd.Op {
	case kvstore.OpSet:
		switch {
		case cmd.PrevExist == kvstore.PrevExistTrue && compare:
			in.Kind = KindCompareAndSwap
		case cmd.PrevExist == kvstore.PrevExistTrue:
			in.Kind = KindUpdate
		case cmd.PrevExist == kvstore.PrevExistFalse:
			in.Kind = KindCreate
		case compare:
			in.Kind = KindCompareAndSwap
		default:
			in.Kind = KindSet
		}
	case kvstore.OpCreate:
		in.Kind = KindCreate
	case kvstore.OpUpdate:
		in.Kind = KindUpdate
	case kvstore.OpCompareAndSwap:
		in.Kind = KindCompareAndSwap
	case kvstore.OpDelete:
		in.Kind = KindDelete
		if compare {
			in.Kind = KindCompareAndDelete
		}
	case kvstore.OpCompareAndDelete:
		in.Kind = KindCompareAndDelete
	case kvstore.OpCreateInOrder:
		in.Kind = KindCreateInOrder
	default:
		panic(fmt.Sprintf("linearizability: %v is not a client operation", cmd.Op))
	}
	return in
}

// isWrite reports whether the operation may change the key space.
func (in Input) isWrite() bool { return in.Kind != KindGet }

// Output is what a client learned of a completed operation.
type Output struct {
	// Err is the etcd error code of a failed operation (kvstore.Code*), 0
	// on success. The model checks the codes the key space itself returns
	// (100, 101, 102, 104, 105, 107, 108). Code 300 (an internal failure:
	// a timeout, a stopped member) says nothing of the outcome, so Check
	// takes such an operation as unknown, as if recorded with
	// Recorder.Unknown. Every other code (2xx for a bad request) means the
	// operation never reached the key space. A write known to have had no
	// effect (refused for a full disk) can simply be left out.
	Err int
	// Index is X-Etcd-Index: for a successful write the index it produced,
	// for a read the store's index it was served at, for an error the
	// error's index. 0 means not known.
	Index uint64
	// Node is the event's node: for a read the node read (with Nodes for a
	// directory), for a write the node written. nil on error, and for a
	// write answered without a body (noValueOnSuccess), in which case Prev
	// is not checked either.
	Node *kvstore.Node
	// Prev is a write's prevNode; nil when there was none.
	Prev *kvstore.Node
}

// OutputOf converts a store or member answer into an Output: a successful
// event, or an error (a *kvstore.Error, possibly wrapped). Any other error
// becomes code 300 with index 0, an unknown outcome (see Output.Err).
func OutputOf(ev *kvstore.Event, err error) Output {
	if err != nil {
		var kerr *kvstore.Error
		if errors.As(err, &kerr) {
			return Output{Err: kerr.Code, Index: kerr.Index}
		}
		return Output{Err: kvstore.CodeRaftInternal}
	}
	if ev == nil {
		panic("linearizability: OutputOf without an event or an error")
	}
	return Output{Index: ev.EtcdIndex, Node: ev.Node, Prev: ev.PrevNode}
}

// cleanKey turns a key into the store's canonical path, as kvstore does.
func cleanKey(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

// modelledError reports whether code is an error the key space itself
// returns for a well-formed operation, which the model predicts.
func modelledError(code int) bool {
	switch code {
	case kvstore.CodeKeyNotFound, kvstore.CodeCompareFailed, kvstore.CodeNotFile,
		kvstore.CodeNotDir, kvstore.CodeNodeExist, kvstore.CodeRootReadOnly, kvstore.CodeDirNotEmpty:
		return true
	}
	return false
}
