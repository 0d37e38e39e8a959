package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Version is what /version reports (spec §11.2).
type Version struct {
	// Server is the server's version; raftkv reports the etcd version whose
	// API it serves.
	Server string `json:"etcdserver"`
	// Cluster is the cluster's version, or "not_decided".
	Cluster string `json:"etcdcluster"`
}

// Version asks the first endpoint that answers for its version.
func (c *Client) Version(ctx context.Context) (*Version, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/version"})
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		e, _ := decodeError(resp)
		return nil, e
	}
	var v Version
	if err := json.Unmarshal(resp.body, &v); err != nil {
		return nil, ErrInvalidJSON
	}
	return &v, nil
}

// Health is what /health reports about one member.
type Health struct {
	// Endpoint is the member's URL that answered.
	Endpoint string
	// Healthy is true when the member knows a leader and could read
	// through it.
	Healthy bool
	// Reason says why a member is unhealthy ("RAFT NO LEADER", ...).
	Reason string
}

// Health asks the first endpoint that answers about its own health. An
// unhealthy member's 503 is an answer, not an error.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	// A 503 would send do on to the next endpoint: ask each in turn here.
	var errs []error
	for _, ep := range c.Endpoints() {
		h, err := c.EndpointHealth(ctx, ep)
		if err == nil {
			return h, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, err)
	}
	return nil, &ClusterError{Errors: errs}
}

// EndpointHealth asks the member at endpoint (a client URL, which need not
// be one of the client's endpoints) about its health.
func (c *Client) EndpointHealth(ctx context.Context, endpoint string) (*Health, error) {
	eps, err := parseEndpoints([]string{endpoint})
	if err != nil {
		return nil, err
	}
	resp, err := c.try(ctx, eps[0], &request{method: http.MethodGet, path: "/health"})
	if err != nil {
		return nil, err
	}
	var body struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	// etcd 2 answered {"health": true}; 3.x answers {"health": "true"}.
	var old struct {
		Health bool `json:"health"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		if err := json.Unmarshal(resp.body, &old); err != nil {
			return nil, fmt.Errorf("client: %s/health: %w", eps[0], ErrInvalidJSON)
		}
		body.Health = fmt.Sprint(old.Health)
	}
	h := &Health{Endpoint: eps[0].String(), Healthy: body.Health == "true" && resp.status == http.StatusOK, Reason: body.Reason}
	if !h.Healthy && h.Reason == "" {
		h.Reason = fmt.Sprintf("HTTP %d", resp.status)
	}
	return h, nil
}

// LeaderEndpoint returns the first client URL of the leader, as the
// answering member knows it.
func (c *Client) LeaderEndpoint(ctx context.Context) (string, error) {
	leader, err := c.Members().Leader(ctx)
	if err != nil {
		return "", err
	}
	if len(leader.ClientURLs) == 0 {
		return "", fmt.Errorf("client: the leader %s has no client URLs", leader.ID)
	}
	u, err := url.Parse(leader.ClientURLs[0])
	if err != nil {
		return "", fmt.Errorf("client: the leader's client URL: %w", err)
	}
	return u.String(), nil
}
