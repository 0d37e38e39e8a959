package recipe

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/raftkv/raftkv/client"
)

// Registry is service discovery: each instance of a service registers a
// key /_recipes/registry/SERVICE/INSTANCE holding its address, with a TTL
// that a session refreshes in the background (refresh=true: no events for
// watchers); the key goes when the instance closes its registration or
// stops refreshing. Clients list the instances, or follow them.
type Registry struct {
	c *client.Client
	// dir is the directory of all services.
	dir string
}

// NewRegistry returns the registry at /_recipes/registry, or at dir if
// it is not empty.
func NewRegistry(c *client.Client, dir string) *Registry {
	if dir == "" {
		dir = path.Join(Prefix, "registry")
	}
	return &Registry{c: c, dir: "/" + strings.Trim(dir, "/")}
}

// Instance is one registered instance of a service.
type Instance struct {
	// Name is the instance's name; Addr the address it registered.
	Name, Addr string
}

func (r *Registry) serviceDir(service string) (string, error) {
	if strings.Trim(service, "/") == "" {
		return "", errors.New("recipe: a service name is required")
	}
	return path.Join(r.dir, service), nil
}

// Registration is an instance's registration, kept alive until Close. When
// its session is lost (the instance was paused past the TTL, or the
// cluster was unreachable that long) it registers again with a new
// session, as long as it is not closed.
type Registration struct {
	r        *Registry
	key      string
	addr     string
	ttl      time.Duration
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu sync.Mutex
	// s is the current session; guarded by mu.
	s *Session
}

// Register registers instance of service at addr with a TTL (0:
// DefaultTTL). A stale registration of the same instance is replaced.
func (r *Registry) Register(ctx context.Context, service, instance, addr string, ttl time.Duration) (*Registration, error) {
	dir, err := r.serviceDir(service)
	if err != nil {
		return nil, err
	}
	if instance == "" || strings.Contains(instance, "/") {
		return nil, fmt.Errorf("recipe: instance name %q: want a non-empty name without '/'", instance)
	}
	g := &Registration{r: r, key: path.Join(dir, instance), addr: addr, ttl: ttl, stop: make(chan struct{})}
	s, err := g.register(ctx)
	if err != nil {
		return nil, err
	}
	g.s = s
	g.wg.Add(1)
	go g.keep()
	return g, nil
}

// register writes the key with a new session's TTL and has it kept alive.
func (g *Registration) register(ctx context.Context) (*Session, error) {
	s, err := NewSession(g.r.c, &SessionOptions{TTL: g.ttl})
	if err != nil {
		return nil, err
	}
	sent := time.Now()
	if _, err := g.r.c.Set(ctx, g.key, g.addr, &client.SetOptions{TTL: s.TTL()}); err != nil {
		if !definite(err) {
			// The write may have landed with its answer lost or no longer
			// awaited (ctx ended): take back what may be ours rather than
			// leave it listed until its TTL runs out.
			cctx, cancel := context.WithTimeout(context.Background(), s.TTL())
			_ = deleteOwn(cctx, g.r.c, g.key, g.addr)
			cancel()
		}
		_ = s.Close(ctx)
		return nil, fmt.Errorf("register %s: %w", g.key, err)
	}
	if err := s.keep(g.key, g.addr, sent); err != nil {
		return nil, err
	}
	return s, nil
}

// keep registers again each time the session is lost, until Close.
func (g *Registration) keep() {
	defer g.wg.Done()
	for {
		g.mu.Lock()
		s := g.s
		g.mu.Unlock()
		select {
		case <-g.stop:
			return
		case <-s.Done():
		}
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), g.ttl+time.Second)
			next, err := g.register(ctx)
			cancel()
			if err == nil {
				g.mu.Lock()
				g.s = next
				g.mu.Unlock()
				break
			}
			select {
			case <-g.stop:
				return
			case <-time.After(retryBackoff(attempt)):
			}
		}
	}
}

// Key returns the registration's key.
func (g *Registration) Key() string { return g.key }

// Close deregisters the instance: it stops the refreshes and deletes the
// key (if it still holds this registration's address).
func (g *Registration) Close(ctx context.Context) error {
	g.stopOnce.Do(func() { close(g.stop) })
	g.wg.Wait()
	g.mu.Lock()
	s := g.s
	g.mu.Unlock()
	return s.Close(ctx)
}

// List returns the instances of service, sorted by name.
func (r *Registry) List(ctx context.Context, service string) ([]Instance, error) {
	dir, err := r.serviceDir(service)
	if err != nil {
		return nil, err
	}
	nodes, _, err := listDir(ctx, r.c, dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", service, err)
	}
	out := make([]Instance, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, Instance{Name: path.Base(n.Key), Addr: n.Value})
	}
	return out, nil
}

// Discovery follows the instances of a service (a ConfigWatcher on its
// directory) and picks among them round-robin. It is safe for concurrent
// use.
type Discovery struct {
	service string
	ready   chan struct{}
	done    chan struct{}

	mu sync.Mutex
	// instances are the current instances by name; next the round-robin
	// position; err why following stopped. Guarded by mu.
	instances map[string]string
	next      int
	err       error
}

// Discover follows the instances of service until ctx ends. onChange, if
// not nil, is called with every change (in the order of the key space,
// from the ConfigWatcher's goroutine) after the instances are updated.
func (r *Registry) Discover(ctx context.Context, service string, onChange func(Change)) (*Discovery, error) {
	dir, err := r.serviceDir(service)
	if err != nil {
		return nil, err
	}
	d := &Discovery{service: service, ready: make(chan struct{}), done: make(chan struct{}), instances: map[string]string{}}
	w := NewConfigWatcher(r.c, dir)
	readyOnce := sync.Once{}
	w.afterResync = func() { readyOnce.Do(func() { close(d.ready) }) }
	go func() {
		defer close(d.done)
		err := w.Run(ctx, func(ch Change) error {
			d.mu.Lock()
			name := strings.TrimPrefix(strings.TrimPrefix(ch.Key, dir), "/")
			switch {
			case ch.Action == ActionSnapshot:
			case ch.Removed() && ch.Key == dir:
				clear(d.instances)
			case ch.Removed():
				delete(d.instances, name)
			case !ch.Dir && !strings.Contains(name, "/"):
				d.instances[name] = ch.Value
			}
			d.mu.Unlock()
			if ch.Action != ActionSnapshot && onChange != nil {
				onChange(ch)
			}
			return nil
		})
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		readyOnce.Do(func() { close(d.ready) })
	}()
	return d, nil
}

// Wait waits until the first read of the service's instances is in (or
// ctx ends).
func (d *Discovery) Wait(ctx context.Context) error {
	select {
	case <-d.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Instances returns the current instances, sorted by name.
func (d *Discovery) Instances() []Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Instance, 0, len(d.instances))
	for name, addr := range d.instances {
		out = append(out, Instance{Name: name, Addr: addr})
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ErrNoInstance is Pick's answer when the service has no instance.
var ErrNoInstance = errors.New("recipe: the service has no registered instance")

// Pick returns the instances in turn (round-robin over the current set).
func (d *Discovery) Pick() (Instance, error) {
	all := d.Instances()
	if len(all) == 0 {
		return Instance{}, fmt.Errorf("%w: %s", ErrNoInstance, d.service)
	}
	d.mu.Lock()
	i := d.next % len(all)
	d.next++
	d.mu.Unlock()
	return all[i], nil
}
