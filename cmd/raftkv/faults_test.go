package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/linearizability"
)

// TestKillLeaderUnderWrites runs a 3-member cluster as processes, has
// clients read and write a few keys through every member, SIGKILLs the
// leader in the middle (no chance to flush anything), restarts it, and
// checks the whole recorded history with porcupine: every acknowledged
// write survives, and every read is linearizable.
func TestKillLeaderUnderWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := startProcCluster(t, 3)
	lead := c.leader()
	now, epoch := linearizability.WallClock()
	rec := linearizability.NewRecorder()
	keys := []string{"/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h"}
	const clients = 6
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &faultWorker{id: i, rec: rec, now: now, endpoints: c.endpoints(),
				rng: rand.New(rand.NewPCG(uint64(i), 99)), keys: keys,
				http: &http.Client{Timeout: 3 * time.Second}}
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				w.step()
			}
		}()
	}
	time.Sleep(2 * time.Second)
	killAt := now()
	c.kill(lead)
	rec.Annotate(linearizability.Annotation{Tag: "faults", Start: killAt, End: killAt, Description: "SIGKILL " + lead.name + " (leader)", Color: "#f4cccc"})
	time.Sleep(1500 * time.Millisecond)
	restartAt := now()
	c.start(lead)
	rec.Annotate(linearizability.Annotation{Tag: "faults", Start: restartAt, End: restartAt, Description: "restart " + lead.name, Color: "#d9ead3"})
	time.Sleep(2500 * time.Millisecond)
	close(stop)
	wg.Wait()
	// Final reads through the restarted member: it must hold every
	// acknowledged write.
	final := &faultWorker{id: clients, rec: rec, now: now, endpoints: []string{lead.clientURL},
		http: &http.Client{Timeout: 5 * time.Second}, keys: keys}
	for _, k := range keys {
		final.do(linearizability.Read(k, false), http.MethodGet, k, nil)
	}
	h := rec.History()
	t.Logf("history: %d operations; checking", len(h.Operations))
	checkStart := time.Now()
	res := linearizability.Check(h, linearizability.Options{Epoch: epoch})
	t.Logf("check took %v", time.Since(checkStart))
	t.Logf("checked %d operations in %d partitions", res.Operations, res.Partitions)
	if !res.Ok {
		t.Fatalf("history is not linearizable: %s (visualisation: %s)", res, res.Visualization)
	}
	if res.Operations < 200 {
		t.Fatalf("only %d operations: the workload did not run", res.Operations)
	}
}

// faultWorker is one client of the fault test.
type faultWorker struct {
	id        int
	rec       *linearizability.Recorder
	now       func() int64
	endpoints []string
	rng       *rand.Rand
	keys      []string
	http      *http.Client
	seq       int
	// last is the last value this client saw per key, for compare-and-swap.
	last map[string]string
}

func (w *faultWorker) step() {
	if w.last == nil {
		w.last = map[string]string{}
	}
	key := w.keys[w.rng.IntN(len(w.keys))]
	w.seq++
	value := fmt.Sprintf("c%d-%d", w.id, w.seq)
	switch r := w.rng.IntN(100); {
	case r < 40:
		w.do(linearizability.Read(key, false), http.MethodGet, key, nil)
	case r < 70:
		cmd := kvstore.Command{Op: kvstore.OpSet, Path: key, Value: value}
		w.do(linearizability.Write(cmd), http.MethodPut, key, url.Values{"value": {value}})
	case r < 85:
		prev := w.last[key]
		if prev == "" {
			prev = "none"
		}
		cmd := kvstore.Command{Op: kvstore.OpSet, Path: key, Value: value, PrevValue: prev}
		w.do(linearizability.Write(cmd), http.MethodPut, key+"?prevValue="+url.QueryEscape(prev), url.Values{"value": {value}})
	case r < 95:
		cmd := kvstore.Command{Op: kvstore.OpSet, Path: key, Value: value, PrevExist: kvstore.PrevExistFalse}
		w.do(linearizability.Write(cmd), http.MethodPut, key+"?prevExist=false", url.Values{"value": {value}})
	default:
		cmd := kvstore.Command{Op: kvstore.OpDelete, Path: key}
		w.do(linearizability.Write(cmd), http.MethodDelete, key, nil)
	}
}

// do runs one operation at a random endpoint and records it. A network
// failure or a 5xx answer (a timeout) leaves the outcome unknown.
func (w *faultWorker) do(in linearizability.Input, method, path string, form url.Values) {
	ep := w.endpoints[0]
	if w.rng != nil {
		ep = w.endpoints[w.rng.IntN(len(w.endpoints))]
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, ep+"/v2/keys"+path, body)
	if err != nil {
		panic(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	id := w.rec.Call(w.id, in, w.now())
	resp, err := w.http.Do(req)
	if err != nil {
		w.rec.Unknown(id)
		return
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	at := w.now()
	if err != nil || resp.StatusCode >= 500 {
		w.rec.Unknown(id)
		return
	}
	index, _ := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	if resp.StatusCode >= 300 {
		var e kvstore.Error
		if json.Unmarshal(data, &e) != nil {
			w.rec.Unknown(id)
			return
		}
		w.rec.Return(id, linearizability.Output{Err: e.Code, Index: e.Index}, at)
		return
	}
	var ev kvstore.Event
	if json.Unmarshal(data, &ev) != nil {
		w.rec.Unknown(id)
		return
	}
	if ev.Node != nil && ev.Node.Value != nil && w.last != nil {
		w.last[in.Key] = *ev.Node.Value
	}
	w.rec.Return(id, linearizability.Output{Index: index, Node: ev.Node, Prev: ev.PrevNode}, at)
}
