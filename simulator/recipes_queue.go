package simulator

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/raftkv/raftkv/client/recipe/recipecheck"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/server"
)

// This file runs the queue recipe of client/recipe inside the simulator
// (with Config.LockRecipe, beside the lock): producers enqueue unique items
// as in-order keys; consumers read the queue and take its head with a
// compare-and-delete on the head's modifiedIndex, so that an item goes to
// one consumer only. recipecheck.CheckQueue then requires that no item was
// dequeued twice, none acknowledged was lost, and each producer's items
// left in the order it enqueued them.

// queueDir is the directory the queue lives in.
const queueDir = "/recipe/queue"

// queueRecords is the queue's history as the clients saw it, and the
// queue's content as the members applied it.
type queueRecords struct {
	enqueued []recipecheck.Enqueued
	dequeued []recipecheck.Dequeued
	// items maps a queue key to its item while the key exists; seen marks
	// the log indexes already applied (every member applies each).
	items map[string]string
	seen  map[uint64]bool
	// open are the operations still without an answer, by client: an
	// enqueue or a take whose outcome the run's end leaves unknown.
	open map[int]openQueueOp
}

// openQueueOp is an enqueue (Enqueued set) or a take (Dequeued set)
// waiting for its answer.
type openQueueOp struct {
	enqueued *recipecheck.Enqueued
	dequeued *recipecheck.Dequeued
}

// startQueueClients starts two producers and two consumers.
func (s *Simulation) startQueueClients() {
	if s.lock.clients == 0 {
		return
	}
	s.queue = &queueRecords{items: map[string]string{}, seen: map[uint64]bool{}, open: map[int]openQueueOp{}}
	for p := range 2 {
		seq := 0
		var rc *recipeClient
		rc = s.newRecipeClient(func() { s.produce(rc, p, &seq) })
	}
	for c := range 2 {
		var rc *recipeClient
		rc = s.newRecipeClient(func() { s.consume(rc, c) })
	}
}

// produce enqueues producer p's next item.
func (s *Simulation) produce(rc *recipeClient, p int, seq *int) {
	if rc.busy || s.phase != phaseFaults {
		return
	}
	*seq++
	n := *seq
	item := fmt.Sprintf("p%d.%d", p, n)
	req := server.Request{Kind: server.RequestWrite, Command: kvstore.Command{Op: kvstore.OpCreateInOrder, Path: queueDir, Value: item}}
	s.queue.open[rc.id] = openQueueOp{enqueued: &recipecheck.Enqueued{Producer: fmt.Sprintf("producer %d", p), Seq: n, Item: item}}
	s.recipeSend(rc, req, func(_ time.Duration, r *server.Response, _ bool) time.Duration {
		delete(s.queue.open, rc.id)
		e := recipecheck.Enqueued{Producer: fmt.Sprintf("producer %d", p), Seq: n, Item: item}
		if r != nil && r.Err == nil && r.Event != nil && r.Event.Node != nil {
			e.Acked, e.Index = true, r.Event.Node.CreatedIndex
		}
		s.queue.enqueued = append(s.queue.enqueued, e)
		return time.Duration(10+s.lockRng.IntN(40)) * time.Millisecond
	})
}

// consume reads the queue and tries to take its head.
func (s *Simulation) consume(rc *recipeClient, c int) {
	if rc.busy || s.phase != phaseFaults {
		return
	}
	req := server.Request{Kind: server.RequestRead, Path: queueDir, Get: kvstore.GetOptions{Sorted: true}}
	s.recipeSend(rc, req, func(_ time.Duration, r *server.Response, _ bool) time.Duration {
		if r == nil || r.Err != nil || r.Event == nil || r.Event.Node == nil || len(r.Event.Node.Nodes) == 0 {
			return time.Duration(10+s.lockRng.IntN(30)) * time.Millisecond // empty: look again
		}
		nodes := slices.Clone(r.Event.Node.Nodes)
		slices.SortFunc(nodes, func(a, b *kvstore.Node) int { return int(a.CreatedIndex) - int(b.CreatedIndex) })
		head := nodes[0]
		item := ""
		if head.Value != nil {
			item = *head.Value
		}
		if s.cfg.Bug == BugQueueNoCompare {
			// The bug: the item is handed over as read, and deleted after.
			s.queue.dequeued = append(s.queue.dequeued, recipecheck.Dequeued{Consumer: fmt.Sprintf("consumer %d", c), Item: item, Index: head.ModifiedIndex})
			s.wake(rc, 0)
			s.takeHead(rc, c, head, "", true)
			return 0
		}
		s.takeHead(rc, c, head, item, false)
		return 0
	})
}

// takeHead deletes the queue's head if it is still the version read; a
// consumer that gets it hands item over.
func (s *Simulation) takeHead(rc *recipeClient, c int, head *kvstore.Node, item string, blind bool) {
	req := server.Request{Kind: server.RequestWrite, Command: kvstore.Command{Op: kvstore.OpDelete, Path: head.Key, PrevIndex: head.ModifiedIndex}}
	consumer := fmt.Sprintf("consumer %d", c)
	if !blind {
		s.queue.open[rc.id] = openQueueOp{dequeued: &recipecheck.Dequeued{Consumer: consumer, Item: item, Unknown: true}}
	}
	s.recipeSend(rc, req, func(_ time.Duration, r *server.Response, unknown bool) time.Duration {
		delete(s.queue.open, rc.id)
		if blind {
			return 0
		}
		switch {
		case r != nil && r.Err == nil && r.Event != nil:
			s.queue.dequeued = append(s.queue.dequeued, recipecheck.Dequeued{Consumer: consumer, Item: item, Index: r.Event.EtcdIndex})
		case unknown:
			s.queue.dequeued = append(s.queue.dequeued, recipecheck.Dequeued{Consumer: consumer, Item: item, Unknown: true})
		}
		return 0 // taken, or someone else's (100, 101): read again
	})
}

// queueObserveApply follows the queue's content from the commands the
// members apply.
func (s *Simulation) queueObserveApply(index uint64, cmd *kvstore.Command, res kvstore.Result) {
	if s.queue == nil || s.queue.seen[index] || !strings.HasPrefix(cmd.Path, queueDir) || res.Err != nil || res.Event == nil || res.Event.Node == nil {
		return
	}
	s.queue.seen[index] = true
	switch cmd.Op {
	case kvstore.OpCreateInOrder:
		s.queue.items[res.Event.Node.Key] = cmd.Value
	case kvstore.OpDelete:
		delete(s.queue.items, res.Event.Node.Key)
	}
}

// checkQueue checks the queue's history once the run is over.
func (s *Simulation) checkQueue() {
	var pending []string
	for _, item := range s.queue.items {
		pending = append(pending, item)
	}
	slices.Sort(pending)
	enqueued, dequeued := s.queue.enqueued, s.queue.dequeued
	for id := range len(s.recipeClients) {
		if op, ok := s.queue.open[id]; ok && op.enqueued != nil {
			enqueued = append(enqueued, *op.enqueued) // not acknowledged: outcome unknown
		} else if ok {
			dequeued = append(dequeued, *op.dequeued)
		}
	}
	if err := recipecheck.CheckQueue(enqueued, dequeued, pending); err != nil {
		s.fail(FailSafety, InvQueueOnce, err.Error())
	}
}
