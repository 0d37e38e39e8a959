package rpc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/server"
)

// fakeBackend is a one-member "cluster" that applies every request to a
// real kvstore.Store at once, in-process: the key-space answers are the real
// ones, without raft. Raft's commit index is faked as raftIndexBase plus the
// number of applied writes, and the term is fakeTerm.
type fakeBackend struct {
	mu    sync.Mutex
	store *kvstore.Store
	// applied counts the writes applied (the fake raft index).
	applied uint64

	clusterID uint64
	self      uint64
	leader    uint64
	state     raft.StateType
	members   []server.MemberInfo

	// noSpace, storeStats and leaderSince are what Status reports of the
	// member.
	noSpace     bool
	storeStats  server.StoreStats
	leaderSince time.Time

	// doErr, when set, is returned by the next Do instead of an answer.
	doErr error
	done  chan struct{}
	// requests records every request Do was given.
	requests []server.Request
}

const (
	fakeClusterID = 0xcafe0123
	fakeSelf      = 0x1a2b
	raftIndexBase = 100
	fakeTerm      = 2
)

func newFakeBackend(t testing.TB) *fakeBackend {
	store, err := kvstore.New(kvstore.Config{})
	require.NoError(t, err)
	return &fakeBackend{
		store:     store,
		clusterID: fakeClusterID,
		self:      fakeSelf,
		leader:    fakeSelf,
		state:     raft.StateLeader,
		members: []server.MemberInfo{
			{ID: fakeSelf, Name: "one", PeerURLs: []string{"http://127.0.0.1:2380"}, ClientURLs: []string{"http://127.0.0.1:2379"}},
		},
		done: make(chan struct{}),
	}
}

func (f *fakeBackend) Do(ctx context.Context, req server.Request) (server.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if err := f.doErr; err != nil {
		f.doErr = nil
		return server.Response{}, err
	}
	resp := server.Response{RaftTerm: fakeTerm}
	switch req.Kind {
	case server.RequestWrite:
		cmd := req.Command
		cmd.Now = req.Now
		res := f.store.Apply(raftIndexBase+f.applied+1, cmd)
		f.applied++
		f.storeStats.CountApplied(&cmd, res)
		resp.Event = res.Event
		if res.Err != nil {
			resp.Err = res.Err
		}
	case server.RequestRead:
		opts := req.Get
		opts.Now = req.Now
		ev, err := f.store.Get(req.Path, opts)
		f.storeStats.CountGet(err == nil)
		resp.Event, resp.Err = ev, err
	case server.RequestWatch:
		w, err := f.store.Watch(req.Path, req.Watch)
		resp.Watcher, resp.Err = w, err
	}
	if resp.Err != nil {
		resp.Event = nil
	}
	resp.RaftIndex = raftIndexBase + f.applied
	return resp, nil
}

// expire applies an expiry sweep at now, as a leader would propose it.
func (f *fakeBackend) expire(now time.Time) []*kvstore.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd := kvstore.Command{Op: kvstore.OpExpire, Now: now}
	res := f.store.Apply(raftIndexBase+f.applied+1, cmd)
	f.applied++
	f.storeStats.CountApplied(&cmd, res)
	return res.Expired
}

func (f *fakeBackend) watcherCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.store.WatcherCount()
}

func (f *fakeBackend) lastRequest() server.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func (f *fakeBackend) Cluster(ctx context.Context) (ClusterView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return ClusterView{ID: f.clusterID, Self: f.self, Leader: f.leader, Members: f.members}, nil
}

func (f *fakeBackend) ClusterID() uint64 { return f.clusterID }

func (f *fakeBackend) Status() server.RuntimeStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return server.RuntimeStatus{ID: f.self, Leader: f.leader, Term: fakeTerm, Commit: raftIndexBase + f.applied, State: f.state,
		LeaderSince: f.leaderSince, NoSpace: f.noSpace, Store: f.storeStats}
}

func (f *fakeBackend) Done() <-chan struct{} { return f.done }

// fakeClock is a settable clock for the API.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// fakeEpoch is the fake clock's start: nanoseconds included, so that
// expirations show RFC 3339 with fractional seconds.
var fakeEpoch = time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
