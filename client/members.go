package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Member is a member of the cluster as /v2/members shows it (spec §11.1).
type Member struct {
	// ID is the member's ID in lowercase hex.
	ID string `json:"id"`
	// Name is the member's name; empty until an added member has started.
	Name string `json:"name"`
	// PeerURLs are where the other members reach it.
	PeerURLs []string `json:"peerURLs"`
	// ClientURLs are where clients reach it; empty until it has started.
	ClientURLs []string `json:"clientURLs"`
}

// Members is the members API of a client: c.Members().List(ctx).
type Members struct {
	client *Client
}

// Members returns the client's members API.
func (c *Client) Members() Members { return Members{client: c} }

const membersPath = "/v2/members"

// List returns the cluster's members, sorted by ID.
func (m Members) List(ctx context.Context) ([]Member, error) {
	resp, err := m.client.do(ctx, &request{method: http.MethodGet, path: membersPath})
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, membersError(resp)
	}
	var body struct {
		Members []Member `json:"members"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		return nil, ErrInvalidJSON
	}
	return body.Members, nil
}

// Leader returns the member the endpoint that answers takes for the
// leader.
func (m Members) Leader(ctx context.Context) (*Member, error) {
	resp, err := m.client.do(ctx, &request{method: http.MethodGet, path: membersPath + "/leader"})
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, membersError(resp)
	}
	var leader Member
	if err := json.Unmarshal(resp.body, &leader); err != nil {
		return nil, ErrInvalidJSON
	}
	return &leader, nil
}

// Add adds a member that will be reached at peerURLs and returns it (with
// its ID, no name yet). It is tried at one endpoint only. raftkv adds it as
// a learner and makes it a voter once it has caught up with the leader.
func (m Members) Add(ctx context.Context, peerURLs ...string) (*Member, error) {
	body, err := peerURLsBody(peerURLs)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.do(ctx, &request{
		method: http.MethodPost, path: membersPath, body: body, contentType: "application/json", oneShot: true,
	})
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusCreated {
		return nil, membersError(resp)
	}
	var added Member
	if err := json.Unmarshal(resp.body, &added); err != nil {
		return nil, ErrInvalidJSON
	}
	return &added, nil
}

// Remove removes the member with ID id (hex). It is tried at one endpoint
// only.
func (m Members) Remove(ctx context.Context, id string) error {
	if err := checkMemberID(id); err != nil {
		return err
	}
	resp, err := m.client.do(ctx, &request{method: http.MethodDelete, path: membersPath + "/" + id, oneShot: true})
	if err != nil {
		return err
	}
	if resp.status != http.StatusNoContent {
		return membersError(resp)
	}
	return nil
}

// Update changes the peer URLs of the member with ID id (hex).
func (m Members) Update(ctx context.Context, id string, peerURLs []string) error {
	if err := checkMemberID(id); err != nil {
		return err
	}
	body, err := peerURLsBody(peerURLs)
	if err != nil {
		return err
	}
	resp, err := m.client.do(ctx, &request{
		method: http.MethodPut, path: membersPath + "/" + id, body: body, contentType: "application/json",
	})
	if err != nil {
		return err
	}
	if resp.status != http.StatusNoContent {
		return membersError(resp)
	}
	return nil
}

// ErrPromoteUnsupported is the error of Promote against a server without
// learners (etcd's v2 API has none).
var ErrPromoteUnsupported = errors.New("client: the server cannot promote members (promote is raftkv's own: POST /v2/members/<id>/promote)")

// Promote makes the learner with ID id (hex) a voter at once, without
// waiting for it to catch up (raftkv only). It is tried at one endpoint
// only.
func (m Members) Promote(ctx context.Context, id string) error {
	if err := checkMemberID(id); err != nil {
		return err
	}
	// No body and no Content-Type: etcd, which reads any POST to
	// /v2/members/... as a member add, refuses it (415) instead of adding
	// anything.
	resp, err := m.client.do(ctx, &request{method: http.MethodPost, path: membersPath + "/" + id + "/promote", oneShot: true})
	if err != nil {
		return err
	}
	switch resp.status {
	case http.StatusNoContent:
		return nil
	case http.StatusUnsupportedMediaType, http.StatusMethodNotAllowed:
		return ErrPromoteUnsupported
	}
	return membersError(resp)
}

func checkMemberID(id string) error {
	if _, err := strconv.ParseUint(id, 16, 64); err != nil || strings.HasPrefix(id, "+") {
		return fmt.Errorf("client: member ID %q is not a hex number", id)
	}
	return nil
}

func peerURLsBody(peerURLs []string) ([]byte, error) {
	if len(peerURLs) == 0 {
		return nil, errors.New("client: a member needs at least one peer URL")
	}
	return json.Marshal(struct {
		PeerURLs []string `json:"peerURLs"`
	}{peerURLs})
}

// membersError turns a members API refusal into an *Error.
func membersError(resp *response) error {
	e, _ := decodeError(resp)
	return e
}
