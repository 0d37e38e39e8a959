package linearizability

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftkv/raftkv/kvstore"
)

// epoch is the instant recorded time 0 stands for in the tests.
var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// builder writes histories by hand: one line per operation.
type builder struct {
	rec *Recorder
}

func newBuilder() *builder { return &builder{rec: NewRecorder()} }

// op records a completed operation.
func (b *builder) op(client int, in Input, out Output, call, ret int64) *builder {
	b.rec.Return(b.rec.Call(client, in, call), out, ret)
	return b
}

// unknown records an operation whose outcome was never learned.
func (b *builder) unknown(client int, in Input, call int64) *builder {
	b.rec.Unknown(b.rec.Call(client, in, call))
	return b
}

func (b *builder) history() History { return b.rec.History() }

// check checks the history quietly, writing any visualisation under t's
// temporary directory.
func (b *builder) check(t *testing.T) Result {
	t.Helper()
	return Check(b.history(), quiet(t))
}

func quiet(t *testing.T) Options {
	return Options{
		Epoch:             epoch,
		Log:               io.Discard,
		VisualizationPath: filepath.Join(t.TempDir(), "history.html"),
	}
}

// Inputs.

func set(key, value string) Input    { return Input{Kind: KindSet, Key: key, Value: value} }
func create(key, value string) Input { return Input{Kind: KindCreate, Key: key, Value: value} }
func get(key string) Input           { return Read(key, false) }
func post(dir, value string) Input   { return Input{Kind: KindCreateInOrder, Key: dir, Value: value} }
func del(key string) Input           { return Input{Kind: KindDelete, Key: key} }

func setTTL(key, value string, seconds uint64) Input {
	in := set(key, value)
	in.HasTTL, in.TTL = true, seconds
	return in
}

func cas(key, prevValue string, prevIndex uint64, value string) Input {
	return Input{Kind: KindCompareAndSwap, Key: key, PrevValue: prevValue, PrevIndex: prevIndex, Value: value}
}

// Outputs.

func file(key, value string, index uint64) *kvstore.Node {
	return &kvstore.Node{Key: key, Value: &value, ModifiedIndex: index, CreatedIndex: index}
}

func dir(key string, index uint64, children ...*kvstore.Node) *kvstore.Node {
	return &kvstore.Node{Key: key, Dir: true, Nodes: children, ModifiedIndex: index, CreatedIndex: index}
}

// wrote is a write's answer without a body: only its index.
func wrote(index uint64) Output { return Output{Index: index} }

// wroteOver is a write's answer with its node and prevNode.
func wroteOver(index uint64, node, prev *kvstore.Node) Output {
	return Output{Index: index, Node: node, Prev: prev}
}

// read is a read's answer: the node, served at index x.
func read(node *kvstore.Node, x uint64) Output { return Output{Index: x, Node: node} }

// failed is an error answer at index x.
func failed(code int, x uint64) Output { return Output{Err: code, Index: x} }

// expiring is the node of a write with a TTL that expires at recorded
// time at.
func expiring(n *kvstore.Node, at time.Duration) *kvstore.Node {
	e := epoch.Add(at)
	n.Expiration = &e
	return n
}

const ms = int64(time.Millisecond)
