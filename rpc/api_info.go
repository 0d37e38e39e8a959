package rpc

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/server"
)

// serveVersion answers /version (spec §11.2): etcd's two version fields,
// no trailing newline.
func (a *API) serveVersion(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	b, err := json.Marshal(struct {
		Server  string `json:"etcdserver"`
		Cluster string `json:"etcdcluster"`
	}{a.opts.ServerVersion, a.opts.ClusterVersion})
	if err != nil {
		panic("rpc: marshal version: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// healthReadTimeout bounds the linearizable read /health makes, as etcd's
// one-second QGET.
const healthReadTimeout = time.Second

// serveHealth answers /health as etcd 3.5 with the v2 API does (spec
// §11.2): healthy when the member knows a leader (unless
// ?serializable=true) and a linearizable read of the root succeeds within
// a second.
func (a *API) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	health := struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}{Health: "true"}
	status := a.backend.Status()
	if r.URL.Query().Get("serializable") != "true" && status.Leader == raft.None {
		health.Health, health.Reason = "false", "RAFT NO LEADER"
	} else if status.NoSpace && r.URL.Query().Get("exclude") != "NOSPACE" {
		health.Health, health.Reason = "false", "ALARM NOSPACE"
	}
	if health.Health == "true" {
		ctx, cancel := context.WithTimeout(r.Context(), healthReadTimeout)
		resp, err := a.backend.Do(ctx, server.Request{Kind: server.RequestRead, Path: "/", Now: a.opts.Clock()})
		cancel()
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			health.Health, health.Reason = "false", "QGET ERROR:"+errorText(err)
		}
	}
	b, _ := json.Marshal(health)
	if health.Health != "true" {
		http.Error(w, string(b), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// errorText is the text of a failure as etcd's server reports it: the
// cause of an internal error (code 300), else the error itself.
func errorText(err error) string {
	if kerr := toKeyError(err); kerr.Code == kvstore.CodeRaftInternal {
		return kerr.Cause
	}
	return err.Error()
}

// apiStats are the member-local counters of /v2/stats. raftkv counts the
// key-space operations this member's API served (etcd counts writes on every
// member as it applies them). The counters are atomic: every request
// touches one, and a lock would serialise them.
type apiStats struct {
	// startTime is when the API started.
	startTime time.Time
	// watchers counts open watch responses.
	watchers atomic.Int64
	// ops counts operations served: ops[op][0] successes, ops[op][1]
	// failures.
	ops [numStoreOps][2]atomic.Uint64

	mu sync.Mutex
	// leader and leaderSince remember the leader last seen by
	// /v2/stats/self and since when; guarded by mu.
	leader      uint64
	leaderSince time.Time
}

// storeOp is an operation as /v2/stats/store counts it.
type storeOp int

const (
	opGet storeOp = iota
	opSet
	opDelete
	opUpdate
	opCreate
	opCompareAndSwap
	opCompareAndDelete
	numStoreOps
)

// storeStats is the body of /v2/stats/store.
type storeStats struct {
	GetSuccess              uint64 `json:"getsSuccess"`
	GetFail                 uint64 `json:"getsFail"`
	SetSuccess              uint64 `json:"setsSuccess"`
	SetFail                 uint64 `json:"setsFail"`
	DeleteSuccess           uint64 `json:"deleteSuccess"`
	DeleteFail              uint64 `json:"deleteFail"`
	UpdateSuccess           uint64 `json:"updateSuccess"`
	UpdateFail              uint64 `json:"updateFail"`
	CreateSuccess           uint64 `json:"createSuccess"`
	CreateFail              uint64 `json:"createFail"`
	CompareAndSwapSuccess   uint64 `json:"compareAndSwapSuccess"`
	CompareAndSwapFail      uint64 `json:"compareAndSwapFail"`
	CompareAndDeleteSuccess uint64 `json:"compareAndDeleteSuccess"`
	CompareAndDeleteFail    uint64 `json:"compareAndDeleteFail"`
	ExpireCount             uint64 `json:"expireCount"`
	Watchers                uint64 `json:"watchers"`
}

func newAPIStats(now time.Time) *apiStats {
	return &apiStats{startTime: now, leaderSince: now}
}

// storeOpOf is the operation etcd would count for a request (spec §6.1);
// false for requests it does not count (watches).
func storeOpOf(req server.Request, method string) (storeOp, bool) {
	cmd := req.Command
	compares := cmd.PrevValue != "" || cmd.PrevIndex > 0
	switch {
	case req.Kind == server.RequestRead:
		return opGet, true
	case req.Kind != server.RequestWrite:
		return 0, false
	case method == http.MethodPost:
		return opCreate, true
	case method == http.MethodDelete && compares:
		return opCompareAndDelete, true
	case method == http.MethodDelete:
		return opDelete, true
	case cmd.PrevExist == kvstore.PrevExistFalse:
		return opCreate, true
	case cmd.PrevExist == kvstore.PrevExistTrue && !compares:
		return opUpdate, true
	case compares:
		return opCompareAndSwap, true
	default:
		return opSet, true
	}
}

// record counts one served key-space request.
func (s *apiStats) record(req server.Request, method string, ok bool) {
	op, counted := storeOpOf(req, method)
	if !counted {
		return
	}
	outcome := 0
	if !ok {
		outcome = 1
	}
	s.ops[op][outcome].Add(1)
}

func (s *apiStats) storeStats() storeStats {
	count := func(op storeOp, outcome int) uint64 { return s.ops[op][outcome].Load() }
	return storeStats{
		GetSuccess: count(opGet, 0), GetFail: count(opGet, 1),
		SetSuccess: count(opSet, 0), SetFail: count(opSet, 1),
		DeleteSuccess: count(opDelete, 0), DeleteFail: count(opDelete, 1),
		UpdateSuccess: count(opUpdate, 0), UpdateFail: count(opUpdate, 1),
		CreateSuccess: count(opCreate, 0), CreateFail: count(opCreate, 1),
		CompareAndSwapSuccess: count(opCompareAndSwap, 0), CompareAndSwapFail: count(opCompareAndSwap, 1),
		CompareAndDeleteSuccess: count(opCompareAndDelete, 0), CompareAndDeleteFail: count(opCompareAndDelete, 1),
		Watchers: uint64(max(0, s.watchers.Load())),
	}
}

func (a *API) serveStoreStats(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	writeJSON(w, a.stats.storeStats())
}

// serveSelfStats answers /v2/stats/self with the fields etcd gives; the
// message counters stay 0, as raftkv's transport does not count them here.
func (a *API) serveSelfStats(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.RequestTimeout)
	defer cancel()
	view, err := a.backend.Cluster(ctx)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	status := a.backend.Status()
	now := a.opts.Clock()
	a.stats.mu.Lock()
	if status.Leader != a.stats.leader {
		a.stats.leader, a.stats.leaderSince = status.Leader, now
	}
	leaderSince := a.stats.leaderSince
	a.stats.mu.Unlock()
	name := ""
	for _, m := range view.Members {
		if m.ID == view.Self {
			name = m.Name
		}
	}
	type leaderInfo struct {
		Leader    string    `json:"leader"`
		Uptime    string    `json:"uptime"`
		StartTime time.Time `json:"startTime"`
	}
	writeJSON(w, struct {
		Name                 string     `json:"name"`
		ID                   string     `json:"id"`
		State                string     `json:"state"`
		StartTime            time.Time  `json:"startTime"`
		LeaderInfo           leaderInfo `json:"leaderInfo"`
		RecvAppendRequestCnt uint64     `json:"recvAppendRequestCnt"`
		SendAppendRequestCnt uint64     `json:"sendAppendRequestCnt"`
	}{
		Name: name, ID: formatID(view.Self), State: "State" + status.State.String(),
		StartTime:  a.stats.startTime,
		LeaderInfo: leaderInfo{Leader: formatID(status.Leader), Uptime: now.Sub(leaderSince).String(), StartTime: leaderSince},
	})
}

// serveLeaderStats answers /v2/stats/leader: on the leader, the followers
// (latency figures are not measured and stay 0); elsewhere 403.
func (a *API) serveLeaderStats(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	status := a.backend.Status()
	if status.State != raft.StateLeader {
		writeMessage(w, http.StatusForbidden, "not current leader")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.RequestTimeout)
	defer cancel()
	view, err := a.backend.Cluster(ctx)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	type latency struct {
		Current           float64 `json:"current"`
		Average           float64 `json:"average"`
		StandardDeviation float64 `json:"standardDeviation"`
		Minimum           float64 `json:"minimum"`
		Maximum           float64 `json:"maximum"`
	}
	type counts struct {
		Fail    uint64 `json:"fail"`
		Success uint64 `json:"success"`
	}
	type follower struct {
		Latency latency `json:"latency"`
		Counts  counts  `json:"counts"`
	}
	followers := map[string]follower{}
	for _, m := range view.Members {
		if m.ID != view.Self {
			followers[formatID(m.ID)] = follower{}
		}
	}
	writeJSON(w, struct {
		Leader    string              `json:"leader"`
		Followers map[string]follower `json:"followers"`
	}{formatID(view.Self), followers})
}

// writeJSON writes v as JSON without a trailing newline (etcd's stats).
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("rpc: marshal response: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
