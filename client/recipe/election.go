package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/raftkv/raftkv/client"
)

// ErrNoLeader is Leader's answer when nobody campaigns.
var ErrNoLeader = errors.New("recipe: the election has no leader")

// ErrNotLeader is the answer of Proclaim or Resign from a participant that
// does not lead.
var ErrNotLeader = errors.New("recipe: not the leader")

// Leader is the leader of an election as observers see it.
type Leader struct {
	// Key is the leader's key; Value what it proclaims.
	Key, Value string
	// Token is the createdIndex of the leader's key: it strictly increases
	// from leader to leader (a fencing token, as a Mutex's).
	Token uint64
	// Index is the modifiedIndex of the key when it was read.
	Index uint64
}

// Election is leader election: campaigners queue as in-order keys and the
// lowest key leads, exactly as a Mutex is held; the leader's key holds the
// value it proclaims, for observers to read. An Election is one
// participant; it is safe for concurrent use.
type Election struct {
	s    *Session
	dir  string
	name string

	mu sync.Mutex
	// t is the campaign's ticket (nil when not campaigning); leading says
	// the campaign won. Guarded by mu. Invariant: leading implies t != nil.
	t       *ticket
	leading bool

	bugs ticketBugs
}

// NewElection returns the election called name (its candidates' keys live
// in /_recipes/elections/NAME, or NAME itself when it starts with "/").
func NewElection(s *Session, name string) (*Election, error) {
	dir, err := dirOf("elections", name)
	if err != nil {
		return nil, err
	}
	return &Election{s: s, dir: dir, name: name}, nil
}

// Campaign puts the participant up with value and waits until it leads,
// ctx ends, or the session is lost (an error wrapping ErrSessionLost).
func (e *Election) Campaign(ctx context.Context, value string) error {
	e.mu.Lock()
	if e.t != nil {
		e.mu.Unlock()
		return fmt.Errorf("campaign %s: already campaigning", e.name)
	}
	e.t = &ticket{}
	e.mu.Unlock()
	t, err := newTicket(ctx, e.s, e.dir, value, false, &e.bugs)
	if err == nil {
		e.mu.Lock()
		e.t = t
		e.mu.Unlock()
		err = t.wait(ctx)
		if err != nil {
			t.abandon()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.t = nil
		return fmt.Errorf("campaign %s: %w", e.name, err)
	}
	e.leading = true
	return nil
}

// Proclaim changes the leader's value without giving up leadership (an
// update of its own key that must exist: a leader whose key is gone learns
// it lost).
func (e *Election) Proclaim(ctx context.Context, value string) error {
	e.mu.Lock()
	t, leading := e.t, e.leading
	e.mu.Unlock()
	if !leading {
		return ErrNotLeader
	}
	if err := e.s.alive(t.key); err != nil {
		return fmt.Errorf("proclaim %s: %w", e.name, err)
	}
	sent := time.Now()
	_, err := e.s.client.Update(ctx, t.key, value, &client.SetOptions{TTL: e.s.ttl})
	if err != nil && !definite(err) {
		// It gives the key a TTL and may still apply, late.
		e.s.uncertainWrite(t.key, sent)
	}
	if client.IsKeyNotFound(err) {
		err = fmt.Errorf("%w: the leader's key %s is gone", ErrSessionLost, t.key)
	}
	if err != nil {
		return fmt.Errorf("proclaim %s: %w", e.name, err)
	}
	return nil
}

// Resign gives up leadership (or a campaign in progress is ended by its
// ctx instead) by deleting the leader's key; the next candidate leads.
func (e *Election) Resign(ctx context.Context) error {
	e.mu.Lock()
	t, leading := e.t, e.leading
	e.mu.Unlock()
	if !leading {
		return ErrNotLeader
	}
	lost := e.s.alive(t.key)
	err := t.release(ctx)
	e.mu.Lock()
	e.t, e.leading = nil, false
	e.mu.Unlock()
	if lost != nil {
		return fmt.Errorf("resign %s: %w", e.name, lost)
	}
	if err != nil {
		return fmt.Errorf("resign %s: %w", e.name, err)
	}
	return nil
}

// Token returns the fencing token of this participant's leadership (0 when
// it does not lead).
func (e *Election) Token() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading {
		return 0
	}
	return e.t.token
}

// Key returns the leader's key while this participant leads ("" otherwise).
func (e *Election) Key() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading {
		return ""
	}
	return e.t.key
}

// Lost is closed when the session is lost (or closed): a leader must then
// stop acting as one. It is the session's Done.
func (e *Election) Lost() <-chan struct{} { return e.s.Done() }

// Leader returns the current leader, or ErrNoLeader.
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	return leaderOf(ctx, e.s.client, e.dir)
}

func leaderOf(ctx context.Context, c *client.Client, dir string) (Leader, error) {
	nodes, _, err := listDir(ctx, c, dir)
	if err != nil {
		return Leader{}, err
	}
	if len(nodes) == 0 {
		return Leader{}, ErrNoLeader
	}
	n := nodes[0]
	return Leader{Key: n.Key, Value: n.Value, Token: n.CreatedIndex, Index: n.ModifiedIndex}, nil
}

// Observe reports the leader and each change of leader or of its value,
// until ctx ends (then the channel is closed). It needs no session.
func (e *Election) Observe(ctx context.Context) <-chan Leader {
	return Observe(ctx, e.s.client, e.name)
}

// Observe follows the election called name without taking part in it.
func Observe(ctx context.Context, c *client.Client, name string) <-chan Leader {
	out := make(chan Leader)
	dir, err := dirOf("elections", name)
	if err != nil {
		close(out)
		return out
	}
	go func() {
		defer close(out)
		var last Leader
		for attempt := 0; ctx.Err() == nil; {
			nodes, index, err := listDir(ctx, c, dir)
			if err != nil {
				attempt++
				_ = sleep(ctx, retryBackoff(attempt))
				continue
			}
			attempt = 0
			if len(nodes) > 0 {
				n := nodes[0]
				l := Leader{Key: n.Key, Value: n.Value, Token: n.CreatedIndex, Index: n.ModifiedIndex}
				if l.Key != last.Key || l.Value != last.Value {
					select {
					case out <- l:
					case <-ctx.Done():
						return
					}
					last = l
				}
			}
			// Any change in the directory may change the leader: wait for
			// one (or a while, in case this member is cut off), then look.
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = c.Watcher(dir, &client.WatcherOptions{AfterIndex: index, Recursive: true}).Next(wctx)
			cancel()
			if err != nil && !client.IsIndexCleared(err) && ctx.Err() == nil {
				_ = sleep(ctx, retryBackoff(1))
			}
		}
	}()
	return out
}
