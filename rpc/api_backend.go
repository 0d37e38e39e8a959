package rpc

import (
	"context"

	"github.com/raftkv/raftkv/server"
)

// Backend is the member the client API serves: the handler turns every
// HTTP request into calls on it.
//
// All methods may be called from any number of goroutines at once (one per
// HTTP request). Do and Cluster may block until ctx ends; Status, ClusterID
// and Done must be cheap and never block, since they run on every request.
// The production Backend wraps a *server.Runtime (NewRuntimeBackend); tests
// use a fake that applies commands to a kvstore.Store in-process.
type Backend interface {
	// Do runs one key-space request and waits for its answer or ctx's end.
	// A key-space failure comes back in Response.Err (a *kvstore.Error); the
	// returned error is for a request that got no answer at all (ctx ended,
	// member stopped).
	Do(ctx context.Context, req server.Request) (server.Response, error)
	// Cluster returns the member table as this member knows it.
	Cluster(ctx context.Context) (ClusterView, error)
	// ClusterID identifies the cluster (X-Etcd-Cluster-Id); 0 if not known
	// yet.
	ClusterID() uint64
	// Status returns the member's raft state as of its last round.
	Status() server.RuntimeStatus
	// Done is closed when the member has stopped: open watches then end.
	Done() <-chan struct{}
}

// ClusterView is a member's view of its cluster.
type ClusterView struct {
	// ID is the cluster's ID.
	ID uint64
	// Self is the ID of the member answering.
	Self uint64
	// Leader is the ID of the leader the member knows of, or 0.
	Leader uint64
	// Members is the member table, in increasing order of ID.
	Members []server.MemberInfo
}

// MembershipChanger is implemented by a Backend that can change the
// cluster's membership (POST, PUT and DELETE on /v2/members). A Backend
// without it answers those requests with 501 Not Implemented after the
// request itself has been validated.
//
// Errors: ErrMemberExists and ErrPeerURLExists (409), ErrMemberNotFound
// (404), ErrMemberRemoved (410); anything else is a 500.
type MembershipChanger interface {
	// AddMember adds a member reachable at peerURLs and returns it (with
	// no name and no client URLs until it starts).
	AddMember(ctx context.Context, peerURLs []string) (server.MemberInfo, error)
	// RemoveMember removes member id.
	RemoveMember(ctx context.Context, id uint64) error
	// UpdateMember changes member id's peer URLs.
	UpdateMember(ctx context.Context, id uint64, peerURLs []string) error
	// PromoteMember makes learner id a voter now (raftkv's own
	// POST /v2/members/<id>/promote; members added through the API are
	// promoted on their own once they have caught up).
	PromoteMember(ctx context.Context, id uint64) error
}

// Errors a MembershipChanger returns; the members handler turns them into
// etcd's statuses and messages.
var (
	// ErrMemberExists: the new member's ID is taken (409).
	ErrMemberExists = server.ErrIDExists
	// ErrPeerURLExists: another member uses that peer URL (409).
	ErrPeerURLExists = server.ErrPeerURLExists
	// ErrMemberNotFound: no member has that ID (404).
	ErrMemberNotFound = server.ErrMemberNotFound
	// ErrMemberRemoved: the member was removed earlier (410).
	ErrMemberRemoved = server.ErrMemberRemoved
)
