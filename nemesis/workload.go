package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/linearizability"
)

// The workload. Each client is bound to one member (a client of the
// client package with that member's URL alone, as Jepsen binds a client
// to a node), so that a member cut off keeps being asked, and so that no
// write is ever re-sent to another member after a lost answer.
//
// Keys come in generations: every GenerationLength the clients move to a
// fresh set of top-level keys (/k<gen>-<i>) and a fresh queue directory
// (/q<gen>). The linearizability check works key by key, and an operation
// whose outcome is unknown stays open to the end of its key's history;
// keys that go quiet keep each such operation's cost to its generation.

// GenerationLength is how long the clients use one generation of keys.
const GenerationLength = 8 * time.Second

// keysPerGeneration is the keys of one generation (besides its queue).
const keysPerGeneration = 5

// SerialRead is a serializable read (a plain GET, answered from the
// member's copy), kept apart from the history: it may be stale by design.
type SerialRead struct {
	Client, Member, Incarnation int
	Key                         string
	// Found says the key existed; Value and ModifiedIndex are its node.
	Found         bool
	Value         string
	ModifiedIndex uint64
	// Index is X-Etcd-Index: the member's index when it answered.
	Index        uint64
	Call, Return int64
}

// pendingWrite is a write whose outcome its client never learned.
type pendingWrite struct {
	id  int
	cmd kvstore.Command
}

// Ack is an acknowledged write: what its answer said happened.
type Ack struct {
	Client int
	Change
}

// workload runs the clients and keeps what they saw.
type workload struct {
	cluster *Cluster
	rec     *linearizability.Recorder
	now     func() int64
	start   time.Time
	// perMember is the number of clients bound to each member.
	perMember int
	think     time.Duration

	mu     sync.Mutex
	serial []SerialRead
	acks   []Ack
	// values maps every value a client sent to the key it went to.
	values map[string]string
	// keys are every key and queue directory used, in first-use order.
	keys    []string
	keySeen map[string]bool
	// okWrites marks the seconds (since start) in which a write succeeded.
	okWrites map[int64]bool

	// pending are the writes whose outcome the client never learned; the
	// checks settle what they can from what the cluster applied (see
	// settlePending) and record the rest as unknown.
	pending []pendingWrite

	// ops counts the operations; unknown those whose outcome is unknown;
	// refused those that never left (no connection could be made).
	ops, unknown, refused atomic.Int64
}

func newWorkload(c *Cluster, rec *linearizability.Recorder, now func() int64, start time.Time) *workload {
	return &workload{cluster: c, rec: rec, now: now, start: start, perMember: 2, think: 15 * time.Millisecond,
		values: map[string]string{}, keySeen: map[string]bool{}, okWrites: map[int64]bool{}}
}

// generation is the key generation of the moment.
func (w *workload) generation() int { return int(time.Since(w.start) / GenerationLength) }

func (w *workload) useKey(k string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.keySeen[k] {
		w.keySeen[k] = true
		w.keys = append(w.keys, k)
	}
}

// run runs the clients until stop is closed.
func (w *workload) run(stop <-chan struct{}, seed uint64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range len(w.cluster.Members) * w.perMember {
		m := w.cluster.Members[i%len(w.cluster.Members)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := client.New(client.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: time.Second,
				HeaderTimeoutPerRequest: 1500 * time.Millisecond})
			if err != nil {
				panic(err) // the URL is ours
			}
			defer cl.Close()
			c := &worker{w: w, id: i, member: m, cl: cl, rng: rand.New(rand.NewPCG(seed, uint64(i))), last: map[string]string{}}
			for {
				select {
				case <-stop:
					return
				case <-time.After(w.think):
				}
				c.step()
			}
		}()
	}
	return &wg
}

// worker is one client.
type worker struct {
	w      *workload
	id     int
	member *Member
	cl     *client.Client
	rng    *rand.Rand
	seq    int
	// last is the last value this client saw per key, for its
	// compare-and-swaps and compare-and-deletes.
	last map[string]string
}

func (c *worker) step() {
	gen := c.w.generation()
	key := fmt.Sprintf("/k%d-%d", gen, c.rng.IntN(keysPerGeneration))
	queue := fmt.Sprintf("/q%d", gen)
	c.seq++
	value := fmt.Sprintf("c%d-%d", c.id, c.seq)
	prev := c.last[key]
	if prev == "" {
		prev = "none"
	}
	switch r := c.rng.IntN(100); {
	case r < 30:
		c.read(key, false)
	case r < 40:
		c.serialRead(key)
	case r < 58:
		c.write(kvstore.Command{Op: kvstore.OpSet, Path: key, Value: value}, func(ctx context.Context) (*client.Response, error) {
			return c.cl.Set(ctx, key, value, nil)
		})
	case r < 68:
		c.write(kvstore.Command{Op: kvstore.OpSet, Path: key, Value: value, PrevExist: kvstore.PrevExistFalse}, func(ctx context.Context) (*client.Response, error) {
			return c.cl.Create(ctx, key, value, nil)
		})
	case r < 80:
		c.write(kvstore.Command{Op: kvstore.OpSet, Path: key, Value: value, PrevValue: prev}, func(ctx context.Context) (*client.Response, error) {
			return c.cl.Set(ctx, key, value, &client.SetOptions{PrevValue: prev})
		})
	case r < 86:
		c.write(kvstore.Command{Op: kvstore.OpDelete, Path: key, PrevValue: prev}, func(ctx context.Context) (*client.Response, error) {
			return c.cl.Delete(ctx, key, &client.DeleteOptions{PrevValue: prev})
		})
	case r < 96:
		key = queue
		c.write(kvstore.Command{Op: kvstore.OpCreateInOrder, Path: queue, Value: value}, func(ctx context.Context) (*client.Response, error) {
			return c.cl.CreateInOrder(ctx, queue, value, nil)
		})
	default:
		key = queue
		c.read(queue, true)
	}
	c.w.useKey(key)
}

// opTimeout bounds one operation; past it, its outcome is unknown.
const opTimeout = 2 * time.Second

// read does a linearizable read (quorum=true) and records it.
func (c *worker) read(key string, recursive bool) {
	id := c.w.rec.Call(c.id, linearizability.Read(key, recursive), c.w.now())
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	resp, err := c.cl.Get(ctx, key, &client.GetOptions{Quorum: true, Recursive: recursive, Sort: true})
	cancel()
	c.finish(id, key, resp, err, nil)
}

// write runs a write and records it.
func (c *worker) write(cmd kvstore.Command, do func(context.Context) (*client.Response, error)) {
	if cmd.Value != "" {
		c.w.mu.Lock()
		c.w.values[cmd.Value] = cmd.Path
		c.w.mu.Unlock()
	}
	id := c.w.rec.Call(c.id, linearizability.Write(cmd), c.w.now())
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	resp, err := do(ctx)
	cancel()
	c.finish(id, cmd.Path, resp, err, &cmd)
}

// finish records the answer of operation id: a read, or the write cmd.
func (c *worker) finish(id int, key string, resp *client.Response, err error, cmd *kvstore.Command) {
	write := cmd != nil
	at := c.w.now()
	c.w.ops.Add(1)
	if err != nil {
		if neverSent(err) {
			// The request never left: it cannot have taken effect.
			c.w.refused.Add(1)
			c.w.rec.NoEffect(id)
			return
		}
		out, known := errorOutput(err)
		if !known {
			c.w.unknown.Add(1)
			if write {
				c.w.mu.Lock()
				c.w.pending = append(c.w.pending, pendingWrite{id: id, cmd: *cmd})
				c.w.mu.Unlock()
				return
			}
			c.w.rec.Unknown(id)
			return
		}
		c.w.rec.Return(id, out, at)
		return
	}
	node := toNode(resp.Node, resp.Action)
	c.w.rec.Return(id, linearizability.Output{Index: resp.Index, Node: node, Prev: toNode(resp.PrevNode, "")}, at)
	if resp.Node != nil && !resp.Node.Dir && node.Value != nil {
		c.last[key] = *node.Value
	}
	if write {
		c.w.mu.Lock()
		c.w.acks = append(c.w.acks, Ack{Client: c.id, Change: changeOf(resp)})
		c.w.okWrites[int64(time.Since(c.w.start)/time.Second)] = true
		c.w.mu.Unlock()
	}
}

// serialRead does a serializable read (a plain GET) and keeps it apart.
func (c *worker) serialRead(key string) {
	inc := c.member.Incarnation()
	r := SerialRead{Client: c.id, Member: c.member.Index, Incarnation: inc, Key: key, Call: c.w.now()}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	resp, err := c.cl.Get(ctx, key, nil)
	cancel()
	r.Return = c.w.now()
	c.w.ops.Add(1)
	if c.member.Incarnation() != inc {
		return // the member restarted meanwhile: which one answered?
	}
	switch {
	case err == nil && resp.Node != nil:
		r.Found, r.Value, r.ModifiedIndex, r.Index = true, resp.Node.Value, resp.Node.ModifiedIndex, resp.Index
	case client.IsKeyNotFound(err):
		var e *client.Error
		errors.As(err, &e)
		r.Index = e.Index
	default:
		return
	}
	c.w.mu.Lock()
	c.w.serial = append(c.w.serial, r)
	c.w.mu.Unlock()
}

// neverSent reports whether a request failed before it could reach the
// member: its connection was refused or could not be set up.
func neverSent(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// errorOutput turns a client error into the operation's output: a refusal
// of the key space is a known outcome; anything else (a timeout, a lost
// connection, error 300 or another 5xx) leaves the outcome unknown.
func errorOutput(err error) (linearizability.Output, bool) {
	var e *client.Error
	if errors.As(err, &e) && e.Code != 0 && e.StatusCode < 500 && e.Code != kvstore.CodeRaftInternal {
		return linearizability.Output{Err: e.Code, Index: e.Index}, true
	}
	return linearizability.Output{}, false
}

// toNode converts the client's node to the key space's, as the history
// wants it. The client leaves a value out where the server sent none
// (directories, deleted nodes); raftkv never writes an empty value here.
func toNode(n *client.Node, action string) *kvstore.Node {
	if n == nil {
		return nil
	}
	out := &kvstore.Node{Key: n.Key, Dir: n.Dir, Expiration: n.Expiration, TTL: n.TTL,
		ModifiedIndex: n.ModifiedIndex, CreatedIndex: n.CreatedIndex}
	deleted := action == kvstore.ActionDelete || action == kvstore.ActionCompareAndDelete || action == kvstore.ActionExpire
	if !n.Dir && !deleted {
		v := n.Value
		out.Value = &v
	}
	for _, child := range n.Nodes {
		out.Nodes = append(out.Nodes, toNode(child, ""))
	}
	return out
}
