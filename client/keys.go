package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"
)

// Response is the answer to a key request: etcd's event object (spec §4.1)
// and the headers that go with it (§4.5).
type Response struct {
	// Action is what happened: get, set, create, update, delete,
	// compareAndSwap, compareAndDelete or expire.
	Action string `json:"action"`
	// Node is the node after the action (nil with NoValueOnSuccess).
	Node *Node `json:"node,omitempty"`
	// PrevNode is the node before the action, when there was one.
	PrevNode *Node `json:"prevNode,omitempty"`
	// Index is the X-Etcd-Index header: for reads the index the answer
	// reflects, for writes the index they made, for a watch the index when
	// it was registered.
	Index uint64 `json:"-"`
	// ClusterID is the X-Etcd-Cluster-Id header.
	ClusterID string `json:"-"`
	// RaftIndex and RaftTerm are the X-Raft-Index and X-Raft-Term headers
	// (0 when absent).
	RaftIndex, RaftTerm uint64 `json:"-"`
}

// Node is a key or a directory (spec §4.2). Its JSON is the server's.
type Node struct {
	// Key is the full path; empty for the root directory.
	Key string `json:"key,omitempty"`
	// Value is a file's value; empty for directories.
	Value string `json:"value,omitempty"`
	// Dir is true for a directory.
	Dir bool `json:"dir,omitempty"`
	// Expiration is when a node with a TTL expires; nil without one.
	Expiration *time.Time `json:"expiration,omitempty"`
	// TTL is the seconds left before Expiration, rounded up, when the
	// server answered.
	TTL int64 `json:"ttl,omitempty"`
	// Nodes are a directory's children, when listed.
	Nodes Nodes `json:"nodes,omitempty"`
	// ModifiedIndex and CreatedIndex are the indexes of the node's last
	// change and of its creation.
	ModifiedIndex uint64 `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64 `json:"createdIndex,omitempty"`
}

// Nodes is a list of nodes.
type Nodes []*Node

// TTLDuration returns the node's TTL as a duration.
func (n *Node) TTLDuration() time.Duration { return time.Duration(n.TTL) * time.Second }

// PrevExistType is a condition on a key's existence for Set.
type PrevExistType string

// Existence conditions.
const (
	// PrevIgnore sets the key whether or not it exists.
	PrevIgnore PrevExistType = ""
	// PrevExist sets the key only if it exists (an update).
	PrevExist PrevExistType = "true"
	// PrevNoExist sets the key only if it does not exist (a create).
	PrevNoExist PrevExistType = "false"
)

// GetOptions are the options of Get.
type GetOptions struct {
	// Recursive lists a directory's whole subtree, not only its children.
	Recursive bool
	// Sort sorts children by key.
	Sort bool
	// Quorum makes the read linearizable on etcd (raftkv's reads are by
	// default).
	Quorum bool
}

// SetOptions are the options of Set, Create and Update.
type SetOptions struct {
	// PrevValue, if not empty, makes the write a compare-and-swap on the
	// current value.
	PrevValue string
	// PrevIndex, if not 0, makes the write a compare-and-swap on the
	// current modifiedIndex.
	PrevIndex uint64
	// PrevExist conditions the write on the key's existence.
	PrevExist PrevExistType
	// TTL gives the key a time to live, sent in whole seconds rounded up;
	// 0 makes it permanent (and removes an existing TTL).
	TTL time.Duration
	// Refresh changes only the TTL of an existing key, keeping its value
	// and waking no watcher; the value must be empty and TTL set.
	Refresh bool
	// Dir makes the node a directory (the value is then not sent).
	Dir bool
	// NoValueOnSuccess asks the server to leave Node and PrevNode out of a
	// successful answer.
	NoValueOnSuccess bool
}

// DeleteOptions are the options of Delete.
type DeleteOptions struct {
	// PrevValue, if not empty, makes the delete a compare-and-delete on
	// the current value.
	PrevValue string
	// PrevIndex, if not 0, makes the delete a compare-and-delete on the
	// current modifiedIndex.
	PrevIndex uint64
	// Recursive deletes a directory and everything below it.
	Recursive bool
	// Dir allows deleting an empty directory.
	Dir bool
}

// CreateInOrderOptions are the options of CreateInOrder.
type CreateInOrderOptions struct {
	// TTL gives the new key a time to live (whole seconds, rounded up).
	TTL time.Duration
}

// keysPath is the URL path of a key: /v2/keys and the cleaned key, so that
// the server has no redirect to answer ("a/../b" is "/b", "/" the root).
func keysPath(key string) string { return path.Join("/v2/keys", "/"+key) }

// ttlSeconds is a TTL in whole seconds, rounded up: the official client
// truncates, which turns a TTL under a second into "expire now".
func ttlSeconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// Get reads a key or lists a directory (nil opts: a plain GET).
func (c *Client) Get(ctx context.Context, key string, opts *GetOptions) (*Response, error) {
	if opts == nil {
		opts = &GetOptions{}
	}
	q := url.Values{}
	q.Set("quorum", strconv.FormatBool(opts.Quorum))
	q.Set("recursive", strconv.FormatBool(opts.Recursive))
	q.Set("sorted", strconv.FormatBool(opts.Sort))
	return c.keys(ctx, &request{method: http.MethodGet, path: keysPath(key), query: q.Encode()})
}

// Set writes a key (nil opts: an unconditional set of a permanent key).
// A conditional write (PrevValue, PrevIndex or PrevExist false) is tried at
// one endpoint only: see the package documentation.
func (c *Client) Set(ctx context.Context, key, value string, opts *SetOptions) (*Response, error) {
	if opts == nil {
		opts = &SetOptions{}
	}
	q, form := url.Values{}, url.Values{}
	if opts.Dir {
		q.Set("dir", "true")
	} else {
		form.Set("value", value)
	}
	if opts.PrevValue != "" {
		q.Set("prevValue", opts.PrevValue)
	}
	if opts.PrevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(opts.PrevIndex, 10))
	}
	if opts.PrevExist != PrevIgnore {
		q.Set("prevExist", string(opts.PrevExist))
	}
	if opts.NoValueOnSuccess {
		q.Set("noValueOnSuccess", "true")
	}
	if opts.TTL > 0 {
		form.Set("ttl", ttlSeconds(opts.TTL))
	}
	if opts.Refresh {
		form.Set("refresh", "true")
	}
	oneShot := opts.PrevExist == PrevNoExist || opts.PrevValue != "" || opts.PrevIndex != 0
	return c.keys(ctx, &request{
		method: http.MethodPut, path: keysPath(key), query: q.Encode(),
		body: []byte(form.Encode()), contentType: formContentType, oneShot: oneShot,
	})
}

const formContentType = "application/x-www-form-urlencoded"

// Create writes a key that must not exist yet (error 105 otherwise). It is
// tried at one endpoint only.
func (c *Client) Create(ctx context.Context, key, value string, opts *SetOptions) (*Response, error) {
	o := SetOptions{}
	if opts != nil {
		o = *opts
	}
	o.PrevExist = PrevNoExist
	return c.Set(ctx, key, value, &o)
}

// Update writes a key that must exist already (error 100 otherwise).
func (c *Client) Update(ctx context.Context, key, value string, opts *SetOptions) (*Response, error) {
	o := SetOptions{}
	if opts != nil {
		o = *opts
	}
	o.PrevExist = PrevExist
	return c.Set(ctx, key, value, &o)
}

// CreateInOrder creates a key with a unique, increasing name in directory
// dir (POST, spec §6.6). It is tried at one endpoint only.
func (c *Client) CreateInOrder(ctx context.Context, dir, value string, opts *CreateInOrderOptions) (*Response, error) {
	form := url.Values{}
	form.Set("value", value)
	if opts != nil && opts.TTL > 0 {
		form.Set("ttl", ttlSeconds(opts.TTL))
	}
	return c.keys(ctx, &request{
		method: http.MethodPost, path: keysPath(dir),
		body: []byte(form.Encode()), contentType: formContentType, oneShot: true,
	})
}

// Delete removes a key or a directory (nil opts: a file only). It is tried
// at one endpoint only.
func (c *Client) Delete(ctx context.Context, key string, opts *DeleteOptions) (*Response, error) {
	if opts == nil {
		opts = &DeleteOptions{}
	}
	q := url.Values{}
	if opts.PrevValue != "" {
		q.Set("prevValue", opts.PrevValue)
	}
	if opts.PrevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(opts.PrevIndex, 10))
	}
	if opts.Dir {
		q.Set("dir", "true")
	}
	if opts.Recursive {
		q.Set("recursive", "true")
	}
	return c.keys(ctx, &request{method: http.MethodDelete, path: keysPath(key), query: q.Encode(), oneShot: true})
}

// keys sends a key request and decodes the event or the error.
func (c *Client) keys(ctx context.Context, r *request) (*Response, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return decodeKeysResponse(resp)
}

func decodeKeysResponse(resp *response) (*Response, error) {
	if resp.status != http.StatusOK && resp.status != http.StatusCreated {
		e, _ := decodeError(resp)
		return nil, e
	}
	if len(resp.body) == 0 {
		return nil, ErrEmptyBody
	}
	out := &Response{}
	if err := json.Unmarshal(resp.body, out); err != nil || out.Action == "" {
		return nil, ErrInvalidJSON
	}
	h := resp.header
	out.Index = headerUint(h, "X-Etcd-Index")
	out.ClusterID = h.Get("X-Etcd-Cluster-Id")
	out.RaftIndex = headerUint(h, "X-Raft-Index")
	out.RaftTerm = headerUint(h, "X-Raft-Term")
	return out, nil
}

func headerUint(h http.Header, name string) uint64 {
	v, err := strconv.ParseUint(h.Get(name), 10, 64)
	if err != nil {
		return 0
	}
	return v
}
