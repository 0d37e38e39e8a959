package recipe

import (
	"context"
	"fmt"
	"time"

	"github.com/raftkv/raftkv/client"
)

// ticket is a participant's in-order key in a directory where the lowest
// key holds: a lock's waiters, an election's candidates. It is the one
// algorithm under Mutex and Election.
type ticket struct {
	s   *Session
	dir string
	// key is the ticket's in-order key; token its createdIndex, the
	// fencing token. Invariant: key is kept alive by s until release.
	key   string
	token uint64
	// value is what the key was created with; unique says it is unique to
	// this ticket (s.newValue), so it finds the key after a lost answer
	// and guards its deletion.
	value  string
	unique bool
	bugs   *ticketBugs
}

// ticketBugs are bugs a test can plant (a test of the tests); shipped
// code never sets them.
type ticketBugs struct {
	// watchHolder waits for the holder's key, not the predecessor's, and
	// takes the lock when it goes without looking again.
	watchHolder bool
}

// newTicket creates the ticket's key in dir with the session's TTL and
// hands it to the session to keep alive. A create whose answer was lost is
// looked for (by its unique value) before it is tried again.
func newTicket(ctx context.Context, s *Session, dir, value string, unique bool, bugs *ticketBugs) (*ticket, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	c := s.client
	// first is the send time of the first create: a key found after a lost
	// answer may be that one's, whose TTL started then.
	first := time.Now()
	for attempt := 0; ; attempt++ {
		sent := time.Now()
		resp, err := c.CreateInOrder(ctx, dir, value, &client.CreateInOrderOptions{TTL: s.ttl})
		var found *client.Node
		switch {
		case err == nil:
			found = resp.Node
		case definite(err):
			return nil, fmt.Errorf("create a key in %s: %w", dir, err)
		case ctx.Err() != nil:
			// Given up with the create's outcome unknown: a key it made
			// would stand in the queue until its TTL ran out.
			if unique {
				takeBack(c, s.ttl, dir, value)
			}
			return nil, fmt.Errorf("create a key in %s: %w", dir, err)
		case unique:
			found, err = findValue(ctx, c, dir, value)
			if err != nil {
				return nil, fmt.Errorf("create a key in %s: %w", dir, err)
			}
			sent = first
		}
		if found != nil {
			t := &ticket{s: s, dir: dir, key: found.Key, token: found.CreatedIndex, value: value, unique: unique, bugs: bugs}
			if err := s.keep(t.key, t.guardValue(), sent); err != nil {
				_ = deleteOwn(ctx, c, t.key, t.guardValue())
				return nil, err
			}
			return t, nil
		}
		if err := sleep(ctx, retryBackoff(attempt)); err != nil {
			return nil, fmt.Errorf("create a key in %s: %w", dir, err)
		}
	}
}

// takeBack deletes the key in dir holding value, if there is one, on its
// own clock (the caller's context has ended): at most ttl.
func takeBack(c *client.Client, ttl time.Duration, dir, value string) {
	ctx, cancel := context.WithTimeout(context.Background(), ttl)
	defer cancel()
	if n, err := findValue(ctx, c, dir, value); err == nil && n != nil {
		_ = deleteOwn(ctx, c, n.Key, value)
	}
}

// findValue looks in dir for the key holding value, retrying the read
// until it answers; nil if there is none.
func findValue(ctx context.Context, c *client.Client, dir, value string) (*client.Node, error) {
	for attempt := 0; ; attempt++ {
		nodes, _, err := listDir(ctx, c, dir)
		if err == nil {
			for _, n := range nodes {
				if n.Value == value {
					return n, nil
				}
			}
			return nil, nil
		}
		if err := sleep(ctx, retryBackoff(attempt)); err != nil {
			return nil, err
		}
	}
}

// guardValue is the value deletions compare against: the unique value,
// or none (the in-order name is unique enough).
func (t *ticket) guardValue() string {
	if t.unique {
		return t.value
	}
	return ""
}

// position reads the directory and returns the nodes before the ticket's
// key (the first is the holder) and the index of the read. The key being
// absent is an error: it expired or was deleted.
func (t *ticket) position(ctx context.Context) ([]*client.Node, uint64, error) {
	for attempt := 0; ; attempt++ {
		if err := t.s.alive(t.key); err != nil {
			return nil, 0, err
		}
		nodes, index, err := listDir(ctx, t.s.client, t.dir)
		if err == nil {
			for i, n := range nodes {
				if n.Key == t.key {
					return nodes[:i], index, nil
				}
			}
			return nil, 0, fmt.Errorf("%w: key %s vanished while waiting (its TTL ran out or it was deleted)", ErrSessionLost, t.key)
		}
		if err := sleep(ctx, retryBackoff(attempt)); err != nil {
			return nil, 0, err
		}
	}
}

// wait returns once the ticket's key is the lowest in the directory (and
// the session still believes it alive). Each round it watches only its
// predecessor, from the index of the read on, for its removal.
func (t *ticket) wait(ctx context.Context) error {
	for {
		before, index, err := t.position(ctx)
		if err != nil {
			return err
		}
		if len(before) == 0 {
			return t.s.alive(t.key)
		}
		target := before[len(before)-1]
		if t.bugs != nil && t.bugs.watchHolder {
			target = before[0]
		}
		removed, err := t.waitGone(ctx, target.Key, index)
		if err != nil {
			return err
		}
		if removed && t.bugs != nil && t.bugs.watchHolder {
			return nil
		}
	}
}

// waitGone watches key from index+1 until it is removed (true), or a
// while passes, or the watch fails (false: look again). It returns an
// error only when ctx ends or the session is lost.
func (t *ticket) waitGone(ctx context.Context, key string, index uint64) (bool, error) {
	wctx, cancel := linked(ctx, t.s.ctx)
	defer cancel()
	// Look again now and then: a watch served by a member cut off from the
	// others would otherwise wait for ever.
	wctx, cancelTimeout := context.WithTimeout(wctx, t.s.ttl)
	defer cancelTimeout()
	w := t.s.client.Watcher(key, &client.WatcherOptions{AfterIndex: index})
	for {
		ev, err := w.Next(wctx)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err := t.s.Err(); err != nil {
			return false, err
		}
		if err != nil {
			if !client.IsIndexCleared(err) && wctx.Err() == nil {
				_ = sleep(ctx, retryBackoff(1))
			}
			return false, nil
		}
		if isRemoval(ev.Action) {
			return true, nil
		}
	}
}

// release stops keeping the key alive and deletes it.
func (t *ticket) release(ctx context.Context) error {
	t.s.forget(t.key)
	return deleteOwn(ctx, t.s.client, t.key, t.guardValue())
}

// abandon releases the key after a failed wait, within the session's TTL
// whatever ctx says (the key would expire by then anyway).
func (t *ticket) abandon() {
	ctx, cancel := context.WithTimeout(context.Background(), t.s.ttl)
	defer cancel()
	_ = t.release(ctx)
}
