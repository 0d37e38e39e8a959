package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrLocked is TryLock's answer when another participant holds the lock.
var ErrLocked = errors.New("recipe: the lock is held by another participant")

// ErrNotLocked is Unlock's answer when this Mutex does not hold the lock.
var ErrNotLocked = errors.New("recipe: this mutex does not hold the lock")

// ErrAlreadyLocking is the answer of Lock or TryLock on a Mutex that holds
// the lock or is waiting for it already.
var ErrAlreadyLocking = errors.New("recipe: this mutex holds or is waiting for the lock already")

// Mutex is a distributed lock: one participant (one Mutex of one Session)
// holds it at a time, for as long as its session lives. See the package
// documentation for the algorithm and what it guarantees. A Mutex is safe
// for concurrent use, but it is one participant: a second Lock while the
// first is held or waiting fails with ErrAlreadyLocking.
type Mutex struct {
	s    *Session
	dir  string
	name string

	mu sync.Mutex
	// t is the ticket while waiting or holding; nil otherwise. Guarded by
	// mu. Invariant: held implies t != nil.
	t    *ticket
	held bool

	bugs ticketBugs
}

// NewMutex returns the lock called name (its waiters' keys live in
// /_recipes/locks/NAME, or in NAME itself when it starts with "/"), for
// the participant whose keys s keeps alive.
func NewMutex(s *Session, name string) (*Mutex, error) {
	dir, err := dirOf("locks", name)
	if err != nil {
		return nil, err
	}
	return &Mutex{s: s, dir: dir, name: name}, nil
}

// Lock waits until it holds the lock, ctx ends (the error is then ctx's)
// or the session is lost (an error wrapping ErrSessionLost, also when
// the waiter's own key expired while it waited).
func (m *Mutex) Lock(ctx context.Context) error {
	t, err := m.enter(ctx)
	if err != nil {
		return err
	}
	if err := t.wait(ctx); err != nil {
		m.leave()
		t.abandon()
		return fmt.Errorf("lock %s: %w", m.name, err)
	}
	m.mu.Lock()
	m.held = true
	m.mu.Unlock()
	return nil
}

// TryLock takes the lock if nobody holds it or waits for it, and returns
// ErrLocked otherwise (leaving nothing behind).
func (m *Mutex) TryLock(ctx context.Context) error {
	t, err := m.enter(ctx)
	if err != nil {
		return err
	}
	before, _, err := t.position(ctx)
	if err == nil && len(before) > 0 {
		err = ErrLocked
	}
	if err != nil {
		m.leave()
		t.abandon()
		if errors.Is(err, ErrLocked) {
			return err
		}
		return fmt.Errorf("lock %s: %w", m.name, err)
	}
	m.mu.Lock()
	m.held = true
	m.mu.Unlock()
	return nil
}

// enter creates the waiter's key.
func (m *Mutex) enter(ctx context.Context) (*ticket, error) {
	m.mu.Lock()
	if m.t != nil {
		m.mu.Unlock()
		return nil, ErrAlreadyLocking
	}
	// A placeholder keeps a concurrent Lock out while the key is created.
	m.t = &ticket{}
	m.mu.Unlock()
	t, err := newTicket(ctx, m.s, m.dir, m.s.newValue(), true, &m.bugs)
	if err != nil {
		m.leave()
		return nil, fmt.Errorf("lock %s: %w", m.name, err)
	}
	m.mu.Lock()
	m.t = t
	m.mu.Unlock()
	return t, nil
}

func (m *Mutex) leave() {
	m.mu.Lock()
	m.t, m.held = nil, false
	m.mu.Unlock()
}

// Unlock releases the lock by deleting the holder's key (compare-and-
// delete on the key's unique value). If the session had been lost before,
// the lock may have passed to another holder meanwhile: Unlock then
// returns an error wrapping ErrSessionLost, so that the caller learns its
// critical section was not protected to the end.
func (m *Mutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	t, held := m.t, m.held
	m.mu.Unlock()
	if !held {
		return ErrNotLocked
	}
	lost := m.s.alive(t.key)
	err := t.release(ctx)
	m.leave()
	if lost != nil {
		return fmt.Errorf("unlock %s: %w", m.name, lost)
	}
	if err != nil {
		return fmt.Errorf("unlock %s: %w", m.name, err)
	}
	return nil
}

// Token returns the fencing token of the current hold: the createdIndex
// of the holder's key, which strictly increases from holder to holder. A
// resource that remembers the highest token it has seen and refuses a
// lower one is safe even from a holder that was paused past its TTL.
// 0 when the lock is not held.
func (m *Mutex) Token() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.held {
		return 0
	}
	return m.t.token
}

// Key returns the holder's key ("" when the lock is not held).
func (m *Mutex) Key() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.held {
		return ""
	}
	return m.t.key
}

// CheckHeld returns nil if the lock is held and the session still
// believes its key alive, and otherwise says why not. Call it before each
// step that needs the lock; pass Token to the resource as well.
func (m *Mutex) CheckHeld() error {
	m.mu.Lock()
	t, held := m.t, m.held
	m.mu.Unlock()
	if !held {
		return ErrNotLocked
	}
	return m.s.alive(t.key)
}

// Lost is closed when the session is lost (or closed): from then on the
// lock must be taken as lost. It is the session's Done.
func (m *Mutex) Lost() <-chan struct{} { return m.s.Done() }
