package server

import (
	"errors"
	"time"

	"github.com/raftkv/raftkv/kvstore"
)

// RequestKind says what a Request asks for.
type RequestKind uint8

const (
	// RequestWrite applies Command through the log: any PUT, POST or DELETE.
	RequestWrite RequestKind = iota + 1
	// RequestRead reads Path. It is linearizable unless Serializable is set.
	RequestRead
	// RequestWatch registers a watcher on the member's own key space.
	RequestWatch
	// RequestMembership changes the cluster's membership.
	RequestMembership
)

// Request is one client operation handed to a member.
type Request struct {
	Kind RequestKind
	// Command is the write (RequestWrite). Its Now is set by the member from
	// the request's Now.
	Command kvstore.Command
	// Path and Get are the read (RequestRead).
	Path string
	Get  kvstore.GetOptions
	// Serializable answers a read from the local copy at once, without
	// confirming that it is current (etcd's plain GET, quorum=false).
	Serializable bool
	// Watch is the watch (RequestWatch), on Path.
	Watch kvstore.WatchOptions
	// Membership is the change (RequestMembership).
	Membership *MembershipChange
	// Now is when the request arrived, by the clock of the shell that
	// received it: the base of TTLs (spec §6.1) and of remaining ttls in
	// reads.
	Now time.Time
}

// Response is a member's answer to a Request.
type Response struct {
	// Event is the outcome of a successful write or read.
	Event *kvstore.Event
	// Watcher is the registered watcher of a RequestWatch.
	Watcher *kvstore.Watcher
	// Members is the member table after a membership change; Member is the
	// member it added or changed.
	Members []MemberInfo
	Member  *MemberInfo
	// Err is the failure: a *kvstore.Error for everything the etcd API can
	// say (key errors, and code 300 for internal failures such as a timeout).
	Err error
	// RaftIndex and RaftTerm are the member's commit index and term when it
	// answered (X-Raft-Index, X-Raft-Term).
	RaftIndex, RaftTerm uint64
}

// ErrTimeout is the cause of a request that got no answer in time: its
// outcome is unknown (a write may still be applied later).
var ErrTimeout = errors.New("etcdserver: request timed out")

// ErrStopped is the cause of requests pending when a member stops: their
// outcome is unknown.
var ErrStopped = errors.New("etcdserver: server stopped")

// ErrNoSpace is the cause of writes refused because the disk is full:
// they were not applied.
var ErrNoSpace = errors.New("etcdserver: no space left on the data disk")

// internalError wraps a server-side failure as etcd's error 300 ("Raft
// Internal Error", HTTP 500) with the cause's text, as etcd reports them.
func internalError(cause error) *kvstore.Error {
	return kvstore.NewError(kvstore.CodeRaftInternal, cause.Error(), 0)
}
