package rpc

import (
	"net/http"
	"strconv"

	"github.com/raftkv/raftkv/server"
)

// serveWatch streams a registered watch (spec §8.2). The headers go out at
// once, so the client knows the watch is in place; then each event is
// written as one JSON line. A one-shot watch ends after its event; a stream
// stays open until the client leaves, the watcher is dropped (its 100-event
// buffer overflowed: the channel closes and the response simply ends, as in
// etcd), the member stops, or the API closes. Whatever ends it, the watcher
// is removed.
func (a *API) serveWatch(w http.ResponseWriter, r *http.Request, resp server.Response, stream bool) {
	wa := resp.Watcher
	defer wa.Remove()
	markWatch(w)
	a.stats.watchers.Add(1)
	defer a.stats.watchers.Add(-1)

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Etcd-Index", strconv.FormatUint(wa.StartIndex(), 10))
	h.Set("X-Raft-Index", strconv.FormatUint(resp.RaftIndex, 10))
	h.Set("X-Raft-Term", strconv.FormatUint(resp.RaftTerm, 10))
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	events := wa.EventChan()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.closing:
			return
		case <-a.backend.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if _, err := w.Write(eventJSON(ev)); err != nil || !stream {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			if ev.Index() <= wa.StartIndex() {
				// A stream watch answered from the history: etcd sends that
				// one event and keeps the response open with nothing more
				// to come (spec §8.2). The key space has already closed the
				// channel, so wait for the end of the connection here.
				a.holdOpen(r)
				return
			}
		}
	}
}

// holdOpen waits until the client leaves, the member stops or the API
// closes.
func (a *API) holdOpen(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-a.closing:
	case <-a.backend.Done():
	}
}
