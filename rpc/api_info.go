package rpc

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
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
// §11.2): unhealthy with an alarm (NOSPACE: the disk is full; unless
// ?exclude=NOSPACE), then without a leader (unless ?serializable=true),
// then if a read of the root fails within a second — a linearizable read,
// or with ?serializable=true a local one, so that a probe of the process
// alone passes without a quorum. Every answer counts in
// etcd_server_health_success or etcd_server_health_failures.
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
	query := r.URL.Query()
	serializable := query.Get("serializable") == "true"
	status := a.backend.Status()
	switch {
	case status.NoSpace && !slices.Contains(query["exclude"], "NOSPACE"):
		health.Health, health.Reason = "false", "ALARM NOSPACE"
	case !serializable && status.Leader == raft.None:
		health.Health, health.Reason = "false", "RAFT NO LEADER"
	default:
		ctx, cancel := context.WithTimeout(r.Context(), healthReadTimeout)
		resp, err := a.backend.Do(ctx, server.Request{Kind: server.RequestRead, Path: "/", Serializable: serializable, Now: a.opts.Clock()})
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
		a.metrics.etcd.healthFailures.Inc()
		a.opts.Logger.Warn("/health error", "output", string(b), "status-code", http.StatusServiceUnavailable)
		http.Error(w, string(b), http.StatusServiceUnavailable)
		return
	}
	a.metrics.etcd.healthSuccess.Inc()
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

// apiStats are what /v2/stats needs of the API itself; the key-space
// counts come from the member (server.StoreStats) and the peers' figures
// from APIOptions.Messages.
type apiStats struct {
	// startTime is when the API started.
	startTime time.Time
	// watchers counts open watch responses.
	watchers atomic.Int64
}

// storeStats is the body of /v2/stats/store, etcd's fields in etcd's order.
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
	return &apiStats{startTime: now}
}

func (s *apiStats) storeStats(c server.StoreStats) storeStats {
	return storeStats{
		GetSuccess: c.GetsSuccess, GetFail: c.GetsFail,
		SetSuccess: c.SetsSuccess, SetFail: c.SetsFail,
		DeleteSuccess: c.DeleteSuccess, DeleteFail: c.DeleteFail,
		UpdateSuccess: c.UpdateSuccess, UpdateFail: c.UpdateFail,
		CreateSuccess: c.CreateSuccess, CreateFail: c.CreateFail,
		CompareAndSwapSuccess: c.CompareAndSwapSuccess, CompareAndSwapFail: c.CompareAndSwapFail,
		CompareAndDeleteSuccess: c.CompareAndDeleteSuccess, CompareAndDeleteFail: c.CompareAndDeleteFail,
		ExpireCount: c.ExpireCount,
		Watchers:    uint64(max(0, s.watchers.Load())),
	}
}

func (a *API) serveStoreStats(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	writeJSON(w, a.stats.storeStats(a.backend.Status().Store))
}

// serveSelfStats answers /v2/stats/self with the fields etcd gives: the
// append requests sent (as leader) and received (as follower) count the
// raft MsgApp messages, and their rates are over the latest 200 of them,
// left out when none came in the last second, as etcd does.
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
	leaderSince := status.LeaderSince
	if leaderSince.IsZero() {
		leaderSince = a.stats.startTime
	}
	appends := a.opts.Messages.appends()
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
		RecvPkgRate          float64    `json:"recvPkgRate,omitempty"`
		RecvBandwidthRate    float64    `json:"recvBandwidthRate,omitempty"`
		SendAppendRequestCnt uint64     `json:"sendAppendRequestCnt"`
		SendPkgRate          float64    `json:"sendPkgRate,omitempty"`
		SendBandwidthRate    float64    `json:"sendBandwidthRate,omitempty"`
	}{
		Name: name, ID: formatID(view.Self), State: "State" + status.State.String(),
		StartTime:            a.stats.startTime,
		LeaderInfo:           leaderInfo{Leader: formatID(status.Leader), Uptime: a.opts.Clock().Sub(leaderSince).String(), StartTime: leaderSince},
		RecvAppendRequestCnt: appends.RecvCount, RecvPkgRate: appends.RecvPkgRate, RecvBandwidthRate: appends.RecvBandwidthRate,
		SendAppendRequestCnt: appends.SendCount, SendPkgRate: appends.SendPkgRate, SendBandwidthRate: appends.SendBandwidthRate,
	})
}

// serveLeaderStats answers /v2/stats/leader: on the leader, each
// follower's heartbeat round trips in milliseconds (MessageStats) with the
// count of answered heartbeats (success) and of messages the transport
// could not deliver (fail); elsewhere 403 "not current leader", as etcd.
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
			f := a.opts.Messages.follower(m.ID)
			l := f.Latency
			followers[formatID(m.ID)] = follower{
				Latency: latency{Current: l.Current, Average: l.Average, StandardDeviation: l.StandardDeviation, Minimum: l.Minimum, Maximum: l.Maximum},
				Counts:  counts{Fail: f.Fail, Success: f.Success},
			}
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
