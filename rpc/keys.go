package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/server"
)

// serveKeys answers /v2/keys: parse and validate (spec §3), turn the
// request into a member request (§6.1), and write the event, the watch or
// the error (§4, §8).
func (a *API) serveKeys(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "HEAD", "GET", "PUT", "POST", "DELETE") {
		return
	}
	w.Header()["X-Etcd-Cluster-Id"] = a.clusterIDValue()
	kr, kerr := parseKeyRequest(w, r, a.opts.MaxBodyBytes)
	if kerr != nil {
		writeKeyError(w, kerr)
		return
	}
	req := a.memberRequest(kr)
	if req.Kind == server.RequestWrite && len(req.Command.Value) > a.opts.MaxValueSize {
		// The same error the key space would give, without a log entry.
		writeKeyError(w, requestError(kvstore.CodeInvalidField,
			fmt.Sprintf("value is %d bytes long, the limit is %d", len(req.Command.Value), a.opts.MaxValueSize)))
		return
	}
	ctx := r.Context()
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > a.opts.RequestTimeout {
		// The fast path's requests carry the backstop already
		// (requestDeadline).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.opts.RequestTimeout)
		defer cancel()
	}
	resp, err := a.backend.Do(ctx, req)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		writeKeyError(w, toKeyError(err))
		return
	}
	switch {
	case resp.Watcher != nil:
		a.serveWatch(w, r, resp, kr.stream)
	case resp.Event != nil:
		writeKeyEvent(w, resp, kr.noValueOnSuccess)
	default:
		writeKeyError(w, toKeyError(errors.New("received response with no Event/Watcher")))
	}
}

// clusterIDValue is the X-Etcd-Cluster-Id header's value, cached once the
// cluster ID is known.
func (a *API) clusterIDValue() []string {
	if v := a.clusterIDHeader.Load(); v != nil {
		return *v
	}
	id := a.backend.ClusterID()
	v := []string{formatID(id)}
	if id != 0 {
		a.clusterIDHeader.Store(&v)
	}
	return v
}

// memberRequest dispatches a validated request (spec §6.1). Writes carry the
// request's parameters as they came: the key space turns a generic set or
// delete into create, update, compare-and-swap or compare-and-delete from
// PrevExist, PrevValue and PrevIndex, as etcd's apply does.
func (a *API) memberRequest(kr keyRequest) server.Request {
	req := server.Request{Now: a.opts.Clock(), Path: kr.key}
	switch {
	case kr.method == http.MethodGet && kr.quorum:
		req.Kind = server.RequestRead
		req.Get = kvstore.GetOptions{Recursive: kr.recursive, Sorted: kr.sorted}
	case kr.method == http.MethodGet && kr.wait:
		req.Kind = server.RequestWatch
		req.Watch = kvstore.WatchOptions{Recursive: kr.recursive, Stream: kr.stream, SinceIndex: kr.waitIndex}
	case kr.method == http.MethodGet || kr.method == http.MethodHead:
		req.Kind = server.RequestRead
		req.Get = kvstore.GetOptions{Recursive: kr.recursive, Sorted: kr.sorted}
		// HEAD is always local, as in etcd; a plain GET is linearizable
		// unless the API was asked to serve them as etcd does.
		req.Serializable = kr.method == http.MethodHead || a.opts.SerializableReads
	case kr.method == http.MethodPost:
		req.Kind = server.RequestWrite
		req.Command = kvstore.Command{
			Op: kvstore.OpCreateInOrder, Path: kr.key, Value: kr.value, Dir: kr.dir,
			HasTTL: kr.hasTTL, TTL: kr.ttl,
		}
	case kr.method == http.MethodPut:
		req.Kind = server.RequestWrite
		req.Command = kvstore.Command{
			Op: kvstore.OpSet, Path: kr.key, Value: kr.value, Dir: kr.dir,
			PrevValue: kr.prevValue, PrevIndex: kr.prevIndex, PrevExist: kr.prevExist,
			HasTTL: kr.hasTTL, TTL: kr.ttl, Refresh: kr.refresh,
		}
	default: // DELETE; allowMethod let nothing else through.
		req.Kind = server.RequestWrite
		req.Command = kvstore.Command{
			Op: kvstore.OpDelete, Path: kr.key, Dir: kr.dir, Recursive: kr.recursive,
			PrevValue: kr.prevValue, PrevIndex: kr.prevIndex,
		}
	}
	return req
}

// contentTypeJSON is the Content-Type header value of JSON answers (never
// modified: net/http only reads it).
var contentTypeJSON = []string{"application/json"}

// writeKeyEvent writes a read's or a write's event (spec §4.1–4.5).
func writeKeyEvent(w http.ResponseWriter, resp server.Response, noValueOnSuccess bool) {
	ev := resp.Event
	// Header keys in their canonical form, set directly: this runs for
	// every answer.
	// The three numbers share one string and one slice: two allocations
	// instead of six.
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	var digits [3 * 20]byte
	b := strconv.AppendUint(digits[:0], ev.EtcdIndex, 10)
	etcdEnd := len(b)
	b = strconv.AppendUint(b, resp.RaftIndex, 10)
	raftEnd := len(b)
	b = strconv.AppendUint(b, resp.RaftTerm, 10)
	all := string(b)
	vals := [3]string{all[:etcdEnd], all[etcdEnd:raftEnd], all[raftEnd:]}
	shared := vals[:]
	h["X-Etcd-Index"] = shared[0:1:1]
	h["X-Raft-Index"] = shared[1:2:2]
	h["X-Raft-Term"] = shared[2:3:3]
	if ev.IsCreated() {
		w.WriteHeader(http.StatusCreated)
	}
	if noValueOnSuccess {
		switch ev.Action {
		case kvstore.ActionSet, kvstore.ActionCreate, kvstore.ActionUpdate, kvstore.ActionCompareAndSwap:
			ev = &kvstore.Event{Action: ev.Action}
		}
	}
	buf := eventBuffers.Get().(*[]byte)
	*buf = append(appendEvent((*buf)[:0], ev), '\n')
	w.Write(*buf)
	if cap(*buf) <= maxPooledEventBuffer {
		eventBuffers.Put(buf)
	}
}

// eventBuffers hold encoded answers between the encoding and the write,
// which copies them.
var eventBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledEventBuffer keeps large answers (a recursive listing) out of
// the pool.
const maxPooledEventBuffer = 16 << 10

// eventJSON is an event's body: its JSON and a newline, as Go's
// json.Encoder writes it for etcd.
func eventJSON(ev *kvstore.Event) []byte {
	return append(appendEvent(make([]byte, 0, 256), ev), '\n')
}

// writeKeyError writes an etcd error body (spec §4.6) with its status.
func writeKeyError(w http.ResponseWriter, e *kvstore.Error) {
	h := w.Header()
	h.Set("X-Etcd-Index", strconv.FormatUint(e.Index, 10))
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.StatusCode())
	b, err := json.Marshal(e)
	if err != nil {
		panic("rpc: marshal error: " + err.Error())
	}
	w.Write(append(b, '\n'))
}

// toKeyError turns any failure into the etcd error the client sees. Key
// errors pass through; anything else is error 300 "Raft Internal Error"
// (HTTP 500, which etcd clients take for "try another member"), with the
// cause etcd would give.
func toKeyError(err error) *kvstore.Error {
	var kerr *kvstore.Error
	switch {
	case errors.As(err, &kerr):
		return kerr
	case errors.Is(err, context.DeadlineExceeded):
		return kvstore.NewError(kvstore.CodeRaftInternal, server.ErrTimeout.Error(), 0)
	case errors.Is(err, server.ErrRuntimeStopped):
		return kvstore.NewError(kvstore.CodeRaftInternal, server.ErrStopped.Error(), 0)
	default:
		return kvstore.NewError(kvstore.CodeRaftInternal, err.Error(), 0)
	}
}

// formatID renders a member or cluster ID as etcd does: lowercase hex
// without leading zeros.
func formatID(id uint64) string { return strconv.FormatUint(id, 16) }
