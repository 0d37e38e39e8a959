package nemesis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/kvstore"
)

// Change is one change of the key space at one index, as a watch event or
// a write's answer tells it.
type Change struct {
	Index  uint64
	Key    string
	Action string
	// Value is the node's value after the change; HasValue is false for
	// removals (delete, compareAndDelete, expire).
	Value    string
	HasValue bool
}

func (c Change) String() string {
	if c.HasValue {
		return fmt.Sprintf("%d %s %s=%q", c.Index, c.Action, c.Key, c.Value)
	}
	return fmt.Sprintf("%d %s %s", c.Index, c.Action, c.Key)
}

// changeOf is the change a write's answer (or a watch event) reports.
func changeOf(r *client.Response) Change {
	ch := Change{Index: r.Index, Action: r.Action}
	if r.Node != nil {
		ch.Key = r.Node.Key
		ch.Index = r.Node.ModifiedIndex
		switch r.Action {
		case kvstore.ActionDelete, kvstore.ActionCompareAndDelete, kvstore.ActionExpire:
		default:
			ch.Value, ch.HasValue = r.Node.Value, !r.Node.Dir
		}
	}
	return ch
}

// Gap is a stretch of indexes a watcher was told it can no longer see
// (error 401: the member's history of 1000 events has moved past them).
type Gap struct{ From, To uint64 }

// WatchStream is what one watcher of the whole key space saw through one
// member: every change in index order, from After on.
type WatchStream struct {
	Member int
	// After is the index the watch started after.
	After  uint64
	Events []Change
	Gaps   []Gap
	// Errors counts the failed watch requests (the member was cut off,
	// killed, paused, removed).
	Errors int
}

// Last is the last index the stream has seen or skipped.
func (s *WatchStream) Last() uint64 {
	last := s.After
	if n := len(s.Events); n > 0 {
		last = max(last, s.Events[n-1].Index)
	}
	if n := len(s.Gaps); n > 0 {
		last = max(last, s.Gaps[n-1].To)
	}
	return last
}

// watcher watches / recursively through one member until stopped.
type watcher struct {
	mu     sync.Mutex
	stream WatchStream
}

func (w *watcher) snapshot() WatchStream {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stream
	s.Events = append([]Change(nil), s.Events...)
	s.Gaps = append([]Gap(nil), s.Gaps...)
	return s
}

func (w *watcher) last() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stream.Last()
}

// startWatcher watches the key space through member m from after index
// after, until ctx ends.
func startWatcher(ctx context.Context, m *Member, after uint64, wg *sync.WaitGroup) *watcher {
	w := &watcher{stream: WatchStream{Member: m.Index, After: after}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl, err := client.New(client.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: time.Second})
		if err != nil {
			panic(err) // the URL is ours
		}
		defer cl.Close()
		wt := cl.Watcher("/", &client.WatcherOptions{Recursive: true, AfterIndex: after})
		for ctx.Err() == nil {
			// A watch through a member cut off hangs: ask again now and
			// then, resuming where the last event left off.
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			ev, err := wt.Next(wctx)
			cancel()
			w.mu.Lock()
			switch {
			case err == nil:
				w.stream.Events = append(w.stream.Events, changeOf(ev))
			case client.IsIndexCleared(err):
				var e *client.Error
				errors.As(err, &e)
				from := w.stream.Last() + 1
				w.stream.Gaps = append(w.stream.Gaps, Gap{From: from, To: e.Index})
				wt = cl.Watcher("/", &client.WatcherOptions{Recursive: true, AfterIndex: e.Index})
			case errors.Is(err, context.DeadlineExceeded):
			default:
				w.stream.Errors++
			}
			w.mu.Unlock()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !client.IsIndexCleared(err) {
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}()
	return w
}

// AppliedHistory is what the cluster applied, pieced together from every
// watch stream and every acknowledged write: the change at each index.
type AppliedHistory map[uint64]Change

// buildApplied merges the streams and the acknowledged writes, and names
// every disagreement: two different changes at one index, a stream out of
// order.
func buildApplied(streams []WatchStream, acks []Ack) (AppliedHistory, []string) {
	applied := AppliedHistory{}
	var problems []string
	add := func(ch Change, from string) {
		if have, ok := applied[ch.Index]; ok && have != ch {
			problems = append(problems, fmt.Sprintf("two changes at index %d: %s (%s) and %s", ch.Index, have, "seen before", ch)+" from "+from)
			return
		}
		applied[ch.Index] = ch
	}
	for _, s := range streams {
		var prev uint64 = s.After
		for _, ev := range s.Events {
			if ev.Index <= prev {
				problems = append(problems, fmt.Sprintf("watch through m%d: event %s after index %d: out of order", s.Member+1, ev, prev))
			}
			prev = ev.Index
			add(ev, fmt.Sprintf("the watch through m%d", s.Member+1))
		}
	}
	for _, a := range acks {
		add(a.Change, fmt.Sprintf("the answer to client %d", a.Client))
	}
	return applied, problems
}

// checkStreams checks that every stream saw every change of the applied
// history in the indexes it covers (After to its last index, without its
// gaps).
func checkStreams(streams []WatchStream, applied AppliedHistory) []string {
	indexes := make([]uint64, 0, len(applied))
	for x := range applied {
		indexes = append(indexes, x)
	}
	sort.Slice(indexes, func(i, j int) bool { return indexes[i] < indexes[j] })
	var problems []string
	for _, s := range streams {
		seen := map[uint64]bool{}
		for _, ev := range s.Events {
			seen[ev.Index] = true
		}
		last := s.Last()
		missed := 0
		for _, x := range indexes {
			if x <= s.After || x > last || seen[x] || inGaps(s.Gaps, x) {
				continue
			}
			if missed < 5 {
				problems = append(problems, fmt.Sprintf("the watch through m%d missed %s (it saw indexes %d to %d)", s.Member+1, applied[x], s.After+1, last))
			}
			missed++
		}
		if missed > 5 {
			problems = append(problems, fmt.Sprintf("the watch through m%d missed %d changes in all", s.Member+1, missed))
		}
	}
	return problems
}

func inGaps(gaps []Gap, x uint64) bool {
	for _, g := range gaps {
		if x >= g.From && x <= g.To {
			return true
		}
	}
	return false
}

// checkValues checks that every change carries a value some client wrote
// to that key (or, for the queue, to its directory).
func checkValues(applied AppliedHistory, values map[string]string) []string {
	var problems []string
	for _, ch := range applied {
		if !ch.HasValue {
			continue
		}
		key, ok := values[ch.Value]
		if !ok {
			problems = append(problems, fmt.Sprintf("change %s carries a value no client wrote", ch))
			continue
		}
		if key != ch.Key && key != parentDir(ch.Key) {
			problems = append(problems, fmt.Sprintf("change %s carries a value written to %s", ch, key))
		}
	}
	return problems
}

func parentDir(key string) string {
	for i := len(key) - 1; i > 0; i-- {
		if key[i] == '/' {
			return key[:i]
		}
	}
	return "/"
}
