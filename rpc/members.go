package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/server"
)

const membersPrefix = "/v2/members"

// maxMemberBody bounds the JSON body of a members request (a list of peer
// URLs).
const maxMemberBody = 1 << 20

// memberJSON is a member as /v2/members shows it (spec §11.1).
type memberJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

func newMemberJSON(m server.MemberInfo) memberJSON {
	// Empty lists are [] in the JSON, never null.
	return memberJSON{
		ID:         formatID(m.ID),
		Name:       m.Name,
		PeerURLs:   append(make([]string, 0, len(m.PeerURLs)), m.PeerURLs...),
		ClientURLs: append(make([]string, 0, len(m.ClientURLs)), m.ClientURLs...),
	}
}

// serveMembers answers /v2/members and /v2/members/<id> (spec §11.1).
func (a *API) serveMembers(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET", "POST", "DELETE", "PUT") {
		return
	}
	w.Header().Set("X-Etcd-Cluster-Id", formatID(a.backend.ClusterID()))
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.RequestTimeout)
	defer cancel()
	switch r.Method {
	case http.MethodGet:
		a.serveMembersGet(ctx, w, r)
	case http.MethodPost:
		if strings.HasSuffix(r.URL.Path, promoteSuffix) {
			a.serveMemberPromote(ctx, w, r)
			return
		}
		a.serveMemberAdd(ctx, w, r)
	case http.MethodDelete:
		a.serveMemberRemove(ctx, w, r)
	case http.MethodPut:
		a.serveMemberUpdate(ctx, w, r)
	}
}

func (a *API) serveMembersGet(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	sub := trimPrefix(r.URL.Path, membersPrefix)
	if sub != "" && sub != "leader" {
		writeMessage(w, http.StatusNotFound, "Not found")
		return
	}
	view, err := a.backend.Cluster(ctx)
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if sub == "" {
		list := make([]memberJSON, 0, len(view.Members))
		for _, m := range view.Members {
			list = append(list, newMemberJSON(m))
		}
		writeJSONLine(w, http.StatusOK, struct {
			Members []memberJSON `json:"members"`
		}{list})
		return
	}
	i := slices.IndexFunc(view.Members, func(m server.MemberInfo) bool { return m.ID == view.Leader })
	if view.Leader == 0 || i < 0 {
		writeMessage(w, http.StatusServiceUnavailable, "During election")
		return
	}
	writeJSONLine(w, http.StatusOK, newMemberJSON(view.Members[i]))
}

func (a *API) serveMemberAdd(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	peerURLs, ok := readPeerURLs(w, r)
	if !ok {
		return
	}
	changer, ok := a.backend.(MembershipChanger)
	if !ok {
		writeMessage(w, http.StatusNotImplemented, errNoMembershipChanges)
		return
	}
	m, err := changer.AddMember(ctx, peerURLs)
	switch {
	case errors.Is(err, ErrMemberExists) || errors.Is(err, ErrPeerURLExists):
		writeMessage(w, http.StatusConflict, membershipMessage(err))
	case err != nil:
		writeMessage(w, http.StatusInternalServerError, internalMessage(err))
	default:
		writeJSONLine(w, http.StatusCreated, newMemberJSON(m))
	}
}

// promoteSuffix ends raftkv's own POST /v2/members/<id>/promote, which makes
// a learner a voter at once (etcd v2 has no learners).
const promoteSuffix = "/promote"

func (a *API) serveMemberPromote(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	s := strings.TrimSuffix(trimPrefix(r.URL.Path, membersPrefix), promoteSuffix)
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		writeMessage(w, http.StatusNotFound, "No such member: "+s)
		return
	}
	changer, ok := a.backend.(MembershipChanger)
	if !ok {
		a.refuseMembershipChange(ctx, w, id)
		return
	}
	err = changer.PromoteMember(ctx, id)
	switch {
	case errors.Is(err, ErrMemberRemoved):
		writeMessage(w, http.StatusGone, "Member permanently removed: "+formatID(id))
	case errors.Is(err, ErrMemberNotFound):
		writeMessage(w, http.StatusNotFound, "No such member: "+formatID(id))
	case errors.Is(err, server.ErrNotLearner):
		writeMessage(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeMessage(w, http.StatusInternalServerError, internalMessage(err))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *API) serveMemberRemove(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	id, ok := memberID(w, r)
	if !ok {
		return
	}
	changer, ok := a.backend.(MembershipChanger)
	if !ok {
		a.refuseMembershipChange(ctx, w, id)
		return
	}
	err := changer.RemoveMember(ctx, id)
	switch {
	case errors.Is(err, ErrMemberRemoved):
		writeMessage(w, http.StatusGone, "Member permanently removed: "+formatID(id))
	case errors.Is(err, ErrMemberNotFound):
		writeMessage(w, http.StatusNotFound, "No such member: "+formatID(id))
	case err != nil:
		writeMessage(w, http.StatusInternalServerError, internalMessage(err))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *API) serveMemberUpdate(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	id, ok := memberID(w, r)
	if !ok {
		return
	}
	peerURLs, ok := readPeerURLs(w, r)
	if !ok {
		return
	}
	changer, ok := a.backend.(MembershipChanger)
	if !ok {
		a.refuseMembershipChange(ctx, w, id)
		return
	}
	err := changer.UpdateMember(ctx, id, peerURLs)
	switch {
	case errors.Is(err, ErrPeerURLExists):
		writeMessage(w, http.StatusConflict, membershipMessage(err))
	case errors.Is(err, ErrMemberNotFound):
		writeMessage(w, http.StatusNotFound, "No such member: "+formatID(id))
	case err != nil:
		writeMessage(w, http.StatusInternalServerError, internalMessage(err))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// errNoMembershipChanges is the answer to membership changes while the
// backend cannot make them. 501 tells etcd clients that the server, not the
// cluster's health, is the reason.
const errNoMembershipChanges = "membership changes are not supported by this server yet"

// refuseMembershipChange answers a change to member id when the backend
// cannot change membership: an unknown member is still 404, as etcd says.
func (a *API) refuseMembershipChange(ctx context.Context, w http.ResponseWriter, id uint64) {
	if view, err := a.backend.Cluster(ctx); err == nil &&
		!slices.ContainsFunc(view.Members, func(m server.MemberInfo) bool { return m.ID == id }) {
		writeMessage(w, http.StatusNotFound, "No such member: "+formatID(id))
		return
	}
	writeMessage(w, http.StatusNotImplemented, errNoMembershipChanges)
}

// internalMessage is the message of a 500 answer to a membership change:
// etcd's "Internal Server Error", or what went wrong when the member says
// so (another change under way, too few voters left, no leader), so that
// a client can tell the user.
func internalMessage(err error) string {
	for _, known := range []error{server.ErrChangeInProgress, server.ErrTooFewVoters, server.ErrNoLeader, server.ErrNotLearner} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return "Internal Server Error"
}

// membershipMessage is the text etcd gives for a conflict.
func membershipMessage(err error) string {
	switch {
	case errors.Is(err, ErrPeerURLExists):
		return ErrPeerURLExists.Error()
	case errors.Is(err, ErrMemberExists):
		return ErrMemberExists.Error()
	}
	return err.Error()
}

// memberID reads the member ID after /v2/members/. A missing ID is 405
// without an Allow header, a malformed one 404, as in etcd.
func memberID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	s := trimPrefix(r.URL.Path, membersPrefix)
	if s == "" {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return 0, false
	}
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		writeMessage(w, http.StatusNotFound, "No such member: "+s)
		return 0, false
	}
	return id, true
}

// readPeerURLs reads a {"peerURLs":[...]} body (etcd's member create and
// update requests): 415 unless the Content-Type is application/json, 400
// for bad JSON or URLs.
func readPeerURLs(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	ctype := r.Header.Get("Content-Type")
	if i := strings.Index(ctype, ";"); i != -1 {
		ctype = strings.TrimSpace(strings.ToLower(ctype[:i]))
	}
	if ctype != "application/json" {
		writeMessage(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Bad Content-Type %s, accept application/json", ctype))
		return nil, false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMemberBody))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	s := struct {
		PeerURLs []string `json:"peerURLs"`
	}{}
	if err := json.Unmarshal(b, &s); err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	urls, err := parsePeerURLs(s.PeerURLs)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return urls, true
}

// parsePeerURLs checks peer URLs as etcd does and returns them in their
// canonical form, sorted.
func parsePeerURLs(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("no valid URLs given")
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		switch u.Scheme {
		case "http", "https":
			if _, _, err := net.SplitHostPort(u.Host); err != nil {
				return nil, fmt.Errorf(`URL address does not have the form "host:port": %s`, s)
			}
			if u.Path != "" {
				return nil, fmt.Errorf("URL must not contain a path: %s", s)
			}
		case "unix", "unixs":
		default:
			return nil, fmt.Errorf("URL scheme must be http, https, unix, or unixs: %s", s)
		}
		out = append(out, u.String())
	}
	slices.Sort(out)
	return out, nil
}

// serveMachines answers /v2/machines: every member's client URLs, sorted,
// joined by ", ", as plain text (spec §11.2).
func (a *API) serveMachines(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET", "HEAD") {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.RequestTimeout)
	defer cancel()
	view, err := a.backend.Cluster(ctx)
	if err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	var urls []string
	for _, m := range view.Members {
		urls = append(urls, m.ClientURLs...)
	}
	slices.Sort(urls)
	w.Write([]byte(strings.Join(urls, ", ")))
}

// writeMessage writes etcd's {"message":"..."} error body, without a
// trailing newline.
func writeMessage(w http.ResponseWriter, status int, message string) {
	b, err := json.Marshal(struct {
		Message string `json:"message"`
	}{message})
	if err != nil {
		panic("rpc: marshal message: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// writeJSONLine writes v as JSON followed by a newline, as etcd's
// json.Encoder does.
func writeJSONLine(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("rpc: marshal response: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	if status != http.StatusOK {
		w.WriteHeader(status)
	}
	w.Write(append(b, '\n'))
}

// trimPrefix removes prefix and one slash after it:
// trimPrefix("/v2/members/", "/v2/members") == "".
func trimPrefix(p, prefix string) string {
	return strings.TrimPrefix(strings.TrimPrefix(p, prefix), "/")
}
