package recipe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/client"
)

// DefaultTTL is a session's TTL when none is given.
const DefaultTTL = 10 * time.Second

// ErrSessionLost is wrapped by every error that says a session — and with
// it every lock, leadership and registration it kept alive — was lost.
var ErrSessionLost = errors.New("recipe: session lost")

// ErrSessionClosed is the error of a recipe call on a closed session.
var ErrSessionClosed = errors.New("recipe: session closed")

// SessionOptions configures a Session.
type SessionOptions struct {
	// TTL is the time to live of the session's keys, in whole seconds (a
	// fraction is rounded up; at least one second). 0 means DefaultTTL.
	TTL time.Duration
}

// Session keeps TTL keys alive for one participant of the recipes (a lock
// waiter, a candidate, a registered instance): every TTL/3 it refreshes
// each key with refresh=true (the TTL only: no value change, no event for
// watchers). It is the v2 API's counterpart of an etcd v3 lease.
//
// A session is lost when a refresh finds its key gone (error 100: it
// expired or was deleted), or when no refresh succeeded in time: the
// session believes a key alive only until the send time of its last
// successful refresh plus the TTL, less a guard of TTL/10 for clock rate
// differences. Then Done is closed, Context is cancelled and Err says why;
// the keys are no longer refreshed. A lost session stays lost: start a new
// one to take part again.
//
// A Session is safe for concurrent use.
type Session struct {
	client *client.Client
	// ttl is the keys' TTL. Invariant: a whole number of seconds, >= 1s.
	ttl time.Duration
	// guard is how long before a key's earliest possible expiry the
	// session stops believing in it. Invariant: 0 < guard < ttl.
	guard time.Duration
	// id is a random value unique to this session, the base of the
	// values its keys hold.
	id string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// stopped is closed by Close to end the goroutines.
	stopped  chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu sync.Mutex
	// keys are the keys kept alive; guarded by mu.
	keys map[string]*sessionKey
	// err says why the session ended (lost or closed); guarded by mu.
	// Invariant: err != nil iff done is closed.
	err error
	// nonce numbers the values handed out by newValue.
	nonce atomic.Uint64

	hooks sessionHooks
}

// sessionKey is one key a session keeps alive.
type sessionKey struct {
	// value is what the key holds; Close deletes the key only if it still
	// holds it. Empty: delete whatever it holds.
	value string
	// validUntil is when the session stops believing the key alive:
	// min(last successful refresh's send time, uncertain) + TTL - guard.
	validUntil time.Time
	// uncertain is the send time of the first write that gives the key a
	// TTL and whose outcome is unknown (zero if none). Such a write may
	// still apply, late, with the expiry it was given when it was
	// received, earlier than a later refresh's: from then on the session
	// cannot count on the key beyond uncertain + TTL, whatever later
	// refreshes answer.
	uncertain time.Time
}

// sessionHooks let tests stand for faults and plant bugs; shipped code
// never sets them.
type sessionHooks struct {
	// pauseKeepAlive stops the refreshes, as if the client were paused.
	pauseKeepAlive atomic.Bool
	// bugIgnoreDeadline (a planted bug) never declares the session lost
	// when its keys' TTL runs out: the holder keeps believing.
	bugIgnoreDeadline bool
}

// NewSession starts a session of c. Close it when done with it.
func NewSession(c *client.Client, opts *SessionOptions) (*Session, error) {
	ttl := DefaultTTL
	if opts != nil && opts.TTL != 0 {
		ttl = opts.TTL
	}
	if ttl < 0 {
		return nil, fmt.Errorf("recipe: session TTL %v is negative", ttl)
	}
	ttl = (ttl + time.Second - 1).Truncate(time.Second)
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("recipe: session id: %w", err)
	}
	s := &Session{
		client: c, ttl: ttl, guard: ttl / 10, id: hex.EncodeToString(b[:]),
		done: make(chan struct{}), stopped: make(chan struct{}), keys: map[string]*sessionKey{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go s.keepAlive()
	go s.watchdog()
	return s, nil
}

// Client returns the session's client.
func (s *Session) Client() *client.Client { return s.client }

// TTL returns the TTL of the session's keys.
func (s *Session) TTL() time.Duration { return s.ttl }

// ID returns the session's random identity.
func (s *Session) ID() string { return s.id }

// Done is closed when the session is lost or closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Context is cancelled when the session is lost or closed: the context to
// run work in that must stop when the lock or the leadership goes.
func (s *Session) Context() context.Context { return s.ctx }

// Err says why the session ended: an error wrapping ErrSessionLost or
// ErrSessionClosed; nil while it lives.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// newValue returns a value unique to this session and call, for a key
// the session creates: it finds the key again after a create whose answer
// was lost, and guards its deletion.
func (s *Session) newValue() string {
	return fmt.Sprintf("%s.%d", s.id, s.nonce.Add(1))
}

// keep starts keeping key alive; sent is when the write that gave it its
// TTL was sent. value, if not empty, is what the key holds.
func (s *Session) keep(key, value string, sent time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.keys[key] = &sessionKey{value: value, validUntil: sent.Add(s.ttl - s.guard)}
	return nil
}

// uncertainWrite records that a write giving key its TTL, sent at sent,
// has an unknown outcome: it may still apply and set an expiry as early as
// sent + TTL, so the key is never again believed alive past that.
func (s *Session) uncertainWrite(key string, sent time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.keys[key]
	if !ok {
		return
	}
	if v.uncertain.IsZero() || sent.Before(v.uncertain) {
		v.uncertain = sent
	}
	if limit := v.uncertain.Add(s.ttl - s.guard); limit.Before(v.validUntil) {
		v.validUntil = limit
	}
}

// forget stops keeping key alive.
func (s *Session) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
}

// alive reports whether key is kept alive and believed to exist now.
func (s *Session) alive(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	k, ok := s.keys[key]
	if !ok {
		return fmt.Errorf("%w: key %s is not kept alive by this session", ErrSessionLost, key)
	}
	if !s.hooks.bugIgnoreDeadline && !time.Now().Before(k.validUntil) {
		return fmt.Errorf("%w: the TTL of %s ran out", ErrSessionLost, key)
	}
	return nil
}

// end ends the session with err, once.
func (s *Session) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	close(s.done)
	s.cancel()
}

// keepAlive refreshes every key each TTL/3 until the session ends.
func (s *Session) keepAlive() {
	defer s.wg.Done()
	interval := s.ttl / 3
	for {
		select {
		case <-s.done:
			return
		case <-s.stopped:
			return
		case <-time.After(interval):
		}
		if s.hooks.pauseKeepAlive.Load() {
			continue
		}
		s.refreshAll()
	}
}

// refreshAll refreshes every key once. A transient failure leaves the key
// to the watchdog; the next round tries again.
func (s *Session) refreshAll() {
	s.mu.Lock()
	type todo struct {
		key        string
		validUntil time.Time
	}
	var keys []todo
	for k, v := range s.keys {
		keys = append(keys, todo{k, v.validUntil})
	}
	s.mu.Unlock()
	for _, k := range keys {
		// A refresh that cannot answer before the key's deadline is of no
		// use: the watchdog declares the session lost then.
		ctx, cancel := context.WithDeadline(s.ctx, k.validUntil)
		sent := time.Now()
		_, err := s.client.Set(ctx, k.key, "", &client.SetOptions{Refresh: true, PrevExist: client.PrevExist, TTL: s.ttl})
		cancel()
		switch {
		case err == nil:
			s.mu.Lock()
			if v, ok := s.keys[k.key]; ok {
				from := sent
				if !v.uncertain.IsZero() && v.uncertain.Before(from) {
					from = v.uncertain
				}
				v.validUntil = from.Add(s.ttl - s.guard)
			}
			s.mu.Unlock()
		case !definite(err):
			s.uncertainWrite(k.key, sent)
		case client.IsKeyNotFound(err):
			s.mu.Lock()
			_, kept := s.keys[k.key]
			s.mu.Unlock()
			if kept {
				s.end(fmt.Errorf("%w: key %s is gone (its TTL ran out or it was deleted)", ErrSessionLost, k.key))
				return
			}
		}
	}
}

// watchdog ends the session when a key's deadline passes without a
// successful refresh.
func (s *Session) watchdog() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		var first time.Time
		var key string
		for k, v := range s.keys {
			if first.IsZero() || v.validUntil.Before(first) {
				first, key = v.validUntil, k
			}
		}
		s.mu.Unlock()
		wait := s.ttl / 3
		if !first.IsZero() {
			wait = time.Until(first)
			if wait <= 0 && !s.hooks.bugIgnoreDeadline {
				s.end(fmt.Errorf("%w: no refresh of %s succeeded before its TTL ran out at %s",
					ErrSessionLost, key, first.Format("15:04:05.000")))
				return
			}
			wait = max(wait, time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-s.done:
			t.Stop()
			return
		case <-s.stopped:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Close ends the session: it stops the refreshes and deletes the keys it
// kept alive (those whose value is still the session's), so that locks
// and leaderships pass on at once rather than at the TTL's end. A lost
// session's keys are deleted too: they may not have expired yet.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	keys := s.keys
	s.keys = map[string]*sessionKey{}
	s.mu.Unlock()
	s.end(ErrSessionClosed)
	s.stopOnce.Do(func() { close(s.stopped) })
	s.wg.Wait()
	var errs []error
	for key, k := range keys {
		if err := deleteOwn(ctx, s.client, key, k.value); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteOwn deletes key if it still holds value (any value if empty),
// retrying a delete whose outcome is unknown; a key already gone is fine.
func deleteOwn(ctx context.Context, c *client.Client, key, value string) error {
	for attempt := 0; ; attempt++ {
		_, err := c.Delete(ctx, key, &client.DeleteOptions{PrevValue: value})
		switch {
		case err == nil, client.IsKeyNotFound(err):
			return nil
		case client.HasCode(err, client.ErrorCodeTestFailed):
			return nil // no longer ours
		case definite(err) || ctx.Err() != nil:
			return fmt.Errorf("recipe: delete %s: %w", key, err)
		}
		if err := sleep(ctx, retryBackoff(attempt)); err != nil {
			return fmt.Errorf("recipe: delete %s: %w", key, err)
		}
	}
}
