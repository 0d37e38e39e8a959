package client

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes of the etcd v2 API (spec §5). Only those a server sends are
// listed.
const (
	ErrorCodeKeyNotFound       = 100
	ErrorCodeTestFailed        = 101
	ErrorCodeNotFile           = 102
	ErrorCodeNotDir            = 104
	ErrorCodeNodeExist         = 105
	ErrorCodeRootROnly         = 107
	ErrorCodeDirNotEmpty       = 108
	ErrorCodeUnauthorized      = 110
	ErrorCodePrevValueRequired = 201
	ErrorCodeTTLNaN            = 202
	ErrorCodeIndexNaN          = 203
	ErrorCodeInvalidField      = 209
	ErrorCodeInvalidForm       = 210
	ErrorCodeRefreshValue      = 211
	ErrorCodeRefreshTTLMissing = 212
	ErrorCodeRaftInternal      = 300
	ErrorCodeLeaderElect       = 301
	ErrorCodeWatcherCleared    = 400
	ErrorCodeEventIndexCleared = 401
)

// Error is an answer of the server that refuses a request: for the keys API
// etcd's error object (spec §4.6), for the members API its
// {"message": "..."} body, with Code 0.
type Error struct {
	// Code is etcd's errorCode; 0 for a members API error.
	Code int `json:"errorCode"`
	// Message is the text that goes with Code (or the members API message).
	Message string `json:"message"`
	// Cause says what the error is about: usually a key, or the detail of a
	// compare or an internal failure.
	Cause string `json:"cause,omitempty"`
	// Index is the server's etcd index when the request failed (0 for
	// parameter and internal errors).
	Index uint64 `json:"index"`
	// StatusCode is the HTTP status of the answer.
	StatusCode int `json:"-"`
}

// Error formats the error as etcd's client does: "100: Key not found (/foo)
// [12]"; a members API error is its message alone.
func (e *Error) Error() string {
	if e.Code == 0 {
		return e.Message
	}
	return fmt.Sprintf("%v: %v (%v) [%v]", e.Code, e.Message, e.Cause, e.Index)
}

// HasCode reports whether err is, or wraps, an *Error with that code.
func HasCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// IsKeyNotFound reports whether err says that the key does not exist (100).
func IsKeyNotFound(err error) bool { return HasCode(err, ErrorCodeKeyNotFound) }

// IsIndexCleared reports whether err says that a watch asked for an index
// older than the server's event history (401). The documented recovery: Get
// the key, then watch with AfterIndex set to that response's Index.
func IsIndexCleared(err error) bool { return HasCode(err, ErrorCodeEventIndexCleared) }

// ErrClusterUnavailable is what a ClusterError says first.
var ErrClusterUnavailable = errors.New("client: etcd cluster is unavailable or misconfigured")

// ErrEmptyBody is the error for a 200 or 201 answer without a body.
var ErrEmptyBody = errors.New("client: response body is empty")

// ErrInvalidJSON is the error for an answer that is not the JSON expected.
var ErrInvalidJSON = errors.New("client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint")

// ErrNoEndpoints is the error of a client without endpoints.
var ErrNoEndpoints = errors.New("client: no endpoints available")

// ClusterError is the failure of a request that every endpoint it was
// tried at failed (network errors or 5xx answers), one error per attempt
// in order. errors.Is and errors.As look into each attempt's error.
type ClusterError struct {
	Errors []error
}

// Error formats the error as etcd's client does.
func (ce *ClusterError) Error() string {
	var b strings.Builder
	b.WriteString(ErrClusterUnavailable.Error())
	for i, e := range ce.Errors {
		fmt.Fprintf(&b, "; error #%d: %s", i, e)
	}
	return b.String()
}

// Detail lists the attempts' errors, one a line, as etcdctl prints them.
func (ce *ClusterError) Detail() string {
	var b strings.Builder
	for i, e := range ce.Errors {
		fmt.Fprintf(&b, "error #%d: %s\n", i, e)
	}
	return b.String()
}

// Unwrap returns the attempts' errors.
func (ce *ClusterError) Unwrap() []error { return ce.Errors }

// memberError is a 5xx answer of one endpoint, as the error recorded for
// that attempt.
type memberError struct {
	endpoint string
	status   int
	// err is the server's error body, if it sent one.
	err *Error
}

func (e *memberError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("client: etcd member %s: %v", e.endpoint, e.err)
	}
	if e.status == 500 || e.status == 503 {
		return fmt.Sprintf("client: etcd member %s has no leader", e.endpoint)
	}
	return fmt.Sprintf("client: etcd member %s returns server error [%d]", e.endpoint, e.status)
}

func (e *memberError) Unwrap() error {
	if e.err == nil {
		return nil
	}
	return e.err
}
