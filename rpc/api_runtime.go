package rpc

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/server"
)

// NewRuntimeBackend returns the Backend that serves the client API from a
// running member. Requests go through rt.Do; the member table is read on
// the member's event loop (rt.Query).
func NewRuntimeBackend(rt *server.Runtime) Backend {
	return &runtimeBackend{rt: rt}
}

type runtimeBackend struct {
	rt *server.Runtime
	// clusterID caches the member's cluster ID, which never changes; 0
	// until it has been read once.
	clusterID atomic.Uint64
}

func (b *runtimeBackend) Do(ctx context.Context, req server.Request) (server.Response, error) {
	if req.Kind != server.RequestWatch {
		return b.rt.Do(ctx, req)
	}
	// A watch is registered on the event loop. If the client leaves after
	// the request was queued, rt.Do returns without the watcher, which
	// would stay registered for good: wait for it here and remove it.
	type result struct {
		resp server.Response
		err  error
	}
	answer := make(chan result, 1)
	go func() {
		resp, err := b.rt.Do(context.WithoutCancel(ctx), req)
		answer <- result{resp, err}
	}()
	select {
	case r := <-answer:
		return r.resp, r.err
	case <-ctx.Done():
		go func() {
			if r := <-answer; r.resp.Watcher != nil {
				r.resp.Watcher.Remove()
			}
		}()
		return server.Response{}, ctx.Err()
	}
}

func (b *runtimeBackend) Cluster(ctx context.Context) (ClusterView, error) {
	var view ClusterView
	err := b.rt.Query(ctx, func(m *server.Member) {
		view = ClusterView{ID: m.ClusterID(), Self: m.ID(), Leader: m.Leader(), Members: m.Members()}
	})
	if err != nil {
		return ClusterView{}, err
	}
	b.clusterID.Store(view.ID)
	return view, nil
}

// clusterIDWait bounds how long the first request waits to learn the
// cluster ID from the event loop.
const clusterIDWait = time.Second

func (b *runtimeBackend) ClusterID() uint64 {
	if id := b.clusterID.Load(); id != 0 {
		return id
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterIDWait)
	defer cancel()
	var id uint64
	if err := b.rt.Query(ctx, func(m *server.Member) { id = m.ClusterID() }); err != nil {
		return 0
	}
	b.clusterID.Store(id)
	return id
}

func (b *runtimeBackend) Status() server.RuntimeStatus { return b.rt.Status() }

func (b *runtimeBackend) Done() <-chan struct{} { return b.rt.Done() }

// AddMember, RemoveMember, UpdateMember and PromoteMember change the
// cluster's membership through the member's log (server/membership.go).
// A member added here starts as a learner and is promoted once it has
// caught up with the leader's log.
func (b *runtimeBackend) AddMember(ctx context.Context, peerURLs []string) (server.MemberInfo, error) {
	resp, err := b.membership(ctx, server.MembershipChange{Op: server.MemberAdd, Member: server.MemberInfo{PeerURLs: peerURLs}})
	if err != nil {
		return server.MemberInfo{}, err
	}
	if resp.Member == nil {
		return server.MemberInfo{}, errors.New("membership: the member did not say whom it added")
	}
	return *resp.Member, nil
}

func (b *runtimeBackend) RemoveMember(ctx context.Context, id uint64) error {
	_, err := b.membership(ctx, server.MembershipChange{Op: server.MemberRemove, Member: server.MemberInfo{ID: id}})
	return err
}

func (b *runtimeBackend) UpdateMember(ctx context.Context, id uint64, peerURLs []string) error {
	_, err := b.membership(ctx, server.MembershipChange{Op: server.MemberUpdate, Member: server.MemberInfo{ID: id, PeerURLs: peerURLs}})
	return err
}

func (b *runtimeBackend) PromoteMember(ctx context.Context, id uint64) error {
	_, err := b.membership(ctx, server.MembershipChange{Op: server.MemberPromote, Member: server.MemberInfo{ID: id}})
	return err
}

func (b *runtimeBackend) membership(ctx context.Context, ch server.MembershipChange) (server.Response, error) {
	resp, err := b.rt.Do(ctx, server.Request{Kind: server.RequestMembership, Membership: &ch})
	if err != nil {
		return resp, err
	}
	return resp, resp.Err
}
