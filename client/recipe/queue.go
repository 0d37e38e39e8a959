package recipe

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/raftkv/raftkv/client"
)

// Item is an item of a queue.
type Item struct {
	// Key is the item's in-order key; Value what was enqueued.
	Key, Value string
	// CreatedIndex is when it was enqueued (its key's createdIndex).
	CreatedIndex uint64
	// Index is the index of the compare-and-delete that dequeued it (0
	// before it is dequeued).
	Index uint64
}

// UnknownOutcomeError is Dequeue's answer when it tried to take Item, the
// answer to its delete was lost in a failover, and the item is gone: this
// consumer's delete or another's took it, and the v2 API cannot tell
// which. Process the item to have every item at least once, drop it to
// have every item at most once.
type UnknownOutcomeError struct {
	Item Item
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("recipe: dequeue of %s: unknown outcome (the answer was lost and the item is gone; this or another consumer took it)", e.Item.Key)
}

// Queue is a FIFO queue: items are in-order keys of its directory, and a
// dequeue removes the first with a compare-and-delete, so that each item
// goes to exactly one consumer. A Queue is safe for concurrent use.
type Queue struct {
	c    *client.Client
	dir  string
	name string
	// priority makes items live one level down, in a directory per
	// priority (PriorityQueue).
	priority bool

	bugs queueBugs
}

// queueBugs are bugs a test can plant; shipped code never sets them.
type queueBugs struct {
	// noCompare hands out the head it read after a plain delete whose
	// outcome it ignores, instead of a compare-and-delete it checks.
	noCompare bool
}

// NewQueue returns the queue called name (items in /_recipes/queues/NAME,
// or NAME itself when it starts with "/").
func NewQueue(c *client.Client, name string) (*Queue, error) {
	dir, err := dirOf("queues", name)
	if err != nil {
		return nil, err
	}
	return &Queue{c: c, dir: dir, name: name}, nil
}

// Dir returns the queue's directory.
func (q *Queue) Dir() string { return q.dir }

// Enqueue appends value (a POST, which names the item by the index that
// created it). A failure whose outcome is unknown (no answer) may or may
// not have appended it: the client sends it to one member only.
func (q *Queue) Enqueue(ctx context.Context, value string) (Item, error) {
	if q.priority {
		return Item{}, errors.New("recipe: a priority queue takes EnqueuePriority")
	}
	return q.enqueue(ctx, q.dir, value)
}

func (q *Queue) enqueue(ctx context.Context, dir, value string) (Item, error) {
	resp, err := q.c.CreateInOrder(ctx, dir, value, nil)
	if err != nil {
		return Item{}, fmt.Errorf("enqueue in %s: %w", q.name, err)
	}
	return Item{Key: resp.Node.Key, Value: value, CreatedIndex: resp.Node.CreatedIndex}, nil
}

// Dequeue removes the first item and returns it, waiting (with a watch)
// while the queue is empty, until ctx ends. It reads the queue, then
// compare-and-deletes the head on its modifiedIndex; when another consumer
// was faster (error 100 or 101) it reads again. A delete whose answer was
// lost is sent again until it is answered; if the item is then gone the
// error is an *UnknownOutcomeError carrying it.
func (q *Queue) Dequeue(ctx context.Context) (Item, error) {
	for attempt := 0; ; {
		nodes, index, err := listDir(ctx, q.c, q.dir)
		if err != nil {
			if ctx.Err() != nil {
				return Item{}, fmt.Errorf("dequeue from %s: %w", q.name, ctx.Err())
			}
			attempt++
			_ = sleep(ctx, retryBackoff(attempt))
			continue
		}
		attempt = 0
		if len(nodes) == 0 {
			if err := q.waitItem(ctx, index); err != nil {
				return Item{}, fmt.Errorf("dequeue from %s: %w", q.name, err)
			}
			continue
		}
		head := nodes[0]
		item := Item{Key: head.Key, Value: head.Value, CreatedIndex: head.CreatedIndex}
		if q.bugs.noCompare {
			resp, _ := q.c.Delete(ctx, head.Key, nil)
			if resp != nil {
				item.Index = resp.Node.ModifiedIndex
			}
			return item, nil
		}
		taken, index, err := q.take(ctx, head)
		if err != nil {
			if errors.Is(err, errGone) {
				return Item{}, &UnknownOutcomeError{Item: item}
			}
			return Item{}, fmt.Errorf("dequeue from %s: %w", q.name, err)
		}
		if taken {
			item.Index = index
			return item, nil
		}
	}
}

// errGone says a delete's outcome was lost and its key is gone.
var errGone = errors.New("gone")

// take compare-and-deletes head: true if this call removed it, false if
// another consumer did first. A delete whose outcome is unknown is sent
// again until answered (a second delete cannot succeed after the first
// did); if the retry finds the key gone, errGone.
func (q *Queue) take(ctx context.Context, head *client.Node) (bool, uint64, error) {
	unknown := false
	for attempt := 0; ; attempt++ {
		resp, err := q.c.Delete(ctx, head.Key, &client.DeleteOptions{PrevIndex: head.ModifiedIndex})
		switch {
		case err == nil:
			return true, resp.Node.ModifiedIndex, nil
		case (client.IsKeyNotFound(err) || client.HasCode(err, client.ErrorCodeTestFailed)) && unknown:
			return false, 0, errGone
		case client.IsKeyNotFound(err) || client.HasCode(err, client.ErrorCodeTestFailed):
			return false, 0, nil
		case definite(err) || ctx.Err() != nil:
			return false, 0, err
		}
		unknown = true
		if err := sleep(ctx, retryBackoff(attempt)); err != nil {
			return false, 0, err
		}
	}
}

// waitItem waits for a change in the queue's directory after index (or a
// while, in case the member watched is cut off).
func (q *Queue) waitItem(ctx context.Context, index uint64) error {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := q.c.Watcher(q.dir, &client.WatcherOptions{AfterIndex: index, Recursive: true}).Next(wctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !client.IsIndexCleared(err) && wctx.Err() == nil {
		_ = sleep(ctx, retryBackoff(2))
	}
	return nil
}

// Len returns the number of items in the queue.
func (q *Queue) Len(ctx context.Context) (int, error) {
	nodes, _, err := listDir(ctx, q.c, q.dir)
	return len(nodes), err
}

// PriorityQueue is a Queue whose items carry a priority: lower numbers
// are dequeued first, FIFO within a priority. Each priority is a
// directory (its number zero-padded to five digits) of in-order keys.
type PriorityQueue struct {
	Queue
}

// NewPriorityQueue returns the priority queue called name.
func NewPriorityQueue(c *client.Client, name string) (*PriorityQueue, error) {
	q, err := NewQueue(c, name)
	if err != nil {
		return nil, err
	}
	q.priority = true
	return &PriorityQueue{Queue: *q}, nil
}

// EnqueuePriority appends value at priority (0 first).
func (q *PriorityQueue) EnqueuePriority(ctx context.Context, value string, priority uint16) (Item, error) {
	return q.enqueue(ctx, path.Join(q.dir, fmt.Sprintf("%05d", priority)), value)
}
