package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// WatcherOptions are the options of Watcher.
type WatcherOptions struct {
	// AfterIndex makes the first event reported the first one after this
	// index (the server's history holds the last 1000 events); 0 means the
	// first event after the watch is registered.
	AfterIndex uint64
	// Recursive reports changes to the key's descendants too (not to
	// hidden ones, whose name starts with "_").
	Recursive bool
}

// Watcher reports the changes to a key one at a time, in index order. It
// is not safe for concurrent use.
type Watcher struct {
	client    *Client
	key       string
	recursive bool
	// nextWait is the waitIndex of the next request: 0 at first (the next
	// event), then the last event's modifiedIndex + 1.
	nextWait uint64
}

// Watcher returns a watcher of key (nil opts: from now on, this key only).
func (c *Client) Watcher(key string, opts *WatcherOptions) *Watcher {
	w := &Watcher{client: c, key: key}
	if opts != nil {
		w.recursive = opts.Recursive
		if opts.AfterIndex > 0 {
			w.nextWait = opts.AfterIndex + 1
		}
	}
	return w
}

// emptyWatchBackoff is the pause before a watch is re-issued after the
// server ended one without an event (it was shutting down, or dropped the
// watcher).
const emptyWatchBackoff = 50 * time.Millisecond

// Next waits for the next event and returns it. Errors leave the watcher
// where it was: calling Next again resumes at the same index. An error with
// code 401 (IsIndexCleared) means the events after the index are gone from
// the server's history: Get the key, and watch again with AfterIndex set
// to that response's Index.
func (w *Watcher) Next(ctx context.Context) (*Response, error) {
	for {
		q := url.Values{}
		q.Set("recursive", strconv.FormatBool(w.recursive))
		q.Set("wait", "true")
		q.Set("waitIndex", strconv.FormatUint(w.nextWait, 10))
		resp, err := w.client.do(ctx, &request{method: http.MethodGet, path: keysPath(w.key), query: q.Encode(), wait: true})
		if err != nil {
			return nil, err
		}
		if resp.status == http.StatusOK && len(resp.body) == 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(emptyWatchBackoff):
			}
			continue
		}
		ev, err := decodeKeysResponse(resp)
		if err != nil {
			return nil, err
		}
		if ev.Node != nil {
			w.nextWait = ev.Node.ModifiedIndex + 1
		}
		return ev, nil
	}
}
