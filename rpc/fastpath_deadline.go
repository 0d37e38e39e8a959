package rpc

import (
	"context"
	"sync"
	"time"
)

// requestDeadline is the context of a fast-path connection's requests: the
// API's backstop deadline (APIOptions.RequestTimeout), which the keys
// handler would otherwise set with a context.WithTimeout per request — a
// cancel context, a timer and a registration with the connection's
// context each time. A connection answers one request at a time, so one
// context and one timer serve them all: arm starts a request's deadline,
// disarm ends it.
type requestDeadline struct {
	parent  context.Context
	timeout time.Duration
	timer   *time.Timer

	mu       sync.Mutex
	deadline time.Time
	// done is closed once the deadline passes (then err is set); arm
	// replaces it for the next request.
	done chan struct{}
	err  error
}

func newRequestDeadline(parent context.Context, timeout time.Duration) *requestDeadline {
	d := &requestDeadline{parent: parent, timeout: timeout, done: make(chan struct{})}
	d.timer = time.AfterFunc(time.Hour, d.expire)
	d.timer.Stop()
	return d
}

// arm starts a request's deadline, timeout from now.
func (d *requestDeadline) arm(now time.Time) {
	d.mu.Lock()
	if d.err != nil {
		d.done, d.err = make(chan struct{}), nil
	}
	d.deadline = now.Add(d.timeout)
	d.mu.Unlock()
	d.timer.Reset(d.timeout)
}

// disarm ends the request's deadline.
func (d *requestDeadline) disarm() { d.timer.Stop() }

// expire runs when the timer fires. A timer that fired as the request it
// was set for ended finds the next request's deadline still ahead, and
// leaves it.
func (d *requestDeadline) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil || time.Now().Before(d.deadline) {
		return
	}
	d.err = context.DeadlineExceeded
	close(d.done)
}

func (d *requestDeadline) Deadline() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadline, true
}

func (d *requestDeadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

func (d *requestDeadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *requestDeadline) Value(key any) any { return d.parent.Value(key) }
