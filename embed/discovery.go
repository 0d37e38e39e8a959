package embed

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/rpc"
	"github.com/raftkv/raftkv/server"
)

// Discovery: a member with an empty data dir asks the members named in
// --initial-cluster for the cluster they run (GET /members on their peer
// URLs, as etcd's GetClusterFromRemotePeers does). A joining member
// (--initial-cluster-state existing) learns from it the cluster's IDs and
// its own, so it needs neither the cluster's token nor IDs derived from
// it: `raftkv member add` prints all it needs. A founding member (new)
// learns whether it is in fact a member that ran before and lost its data
// (see checkNotBootstrapped).

// Headers of the peer port's GET /members.
const (
	headerClusterID     = "X-Etcd-Cluster-Id"
	headerPeerClusterID = "X-Raftkv-Peer-Cluster-Id"
)

// discoveryTimeout bounds one peer's answer; discoveryAttempts and
// discoveryRetry bound how long a joining member waits for any answer.
const (
	discoveryTimeout  = 2 * time.Second
	discoveryAttempts = 10
	discoveryRetry    = 500 * time.Millisecond
)

// remoteCluster is a peer's view of its cluster.
type remoteCluster struct {
	// from is the peer URL that answered.
	from          string
	clusterID     uint64
	peerClusterID uint64
	members       []remoteMember
}

// remoteMember is one member of a remoteCluster (etcd's JSON of a member).
type remoteMember struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// byPeerURLs returns the member whose peer URLs are urls (in any order).
func (c remoteCluster) byPeerURLs(urls []string) (remoteMember, bool) {
	want := slices.Sorted(slices.Values(urls))
	for _, m := range c.members {
		if slices.Equal(slices.Sorted(slices.Values(m.PeerURLs)), want) {
			return m, true
		}
	}
	return remoteMember{}, false
}

func (c remoteCluster) describe() string {
	var parts []string
	for _, m := range c.members {
		name := m.Name
		if name == "" {
			name = "(unstarted)"
		}
		parts = append(parts, fmt.Sprintf("%s %s=%s", m.ID, name, strings.Join(m.PeerURLs, ",")))
	}
	return strings.Join(parts, "; ")
}

// peerMembersHandler answers GET /members on the peer port from the
// member's own table.
// backend is set once the member runs; until then the answer is 503.
func peerMembersHandler(backendRef *atomic.Pointer[rpc.Backend], peerClusterID uint64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/members", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		ref := backendRef.Load()
		if ref == nil {
			http.Error(w, "the member is starting", http.StatusServiceUnavailable)
			return
		}
		backend := *ref
		ctx, cancel := context.WithTimeout(r.Context(), discoveryTimeout)
		defer cancel()
		view, err := backend.Cluster(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		list := make([]remoteMember, 0, len(view.Members))
		for _, m := range view.Members {
			list = append(list, remoteMember{ID: strconv.FormatUint(m.ID, 16), Name: m.Name,
				PeerURLs: nonNil(m.PeerURLs), ClientURLs: nonNil(m.ClientURLs), IsLearner: m.IsLearner})
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(headerClusterID, strconv.FormatUint(backend.ClusterID(), 16))
		w.Header().Set(headerPeerClusterID, strconv.FormatUint(peerClusterID, 16))
		_ = json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "This is a raftkv peer port; the client API listens at the client URLs.", http.StatusNotFound)
	})
	return mux
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// fetchCluster asks one peer URL for its cluster.
func fetchCluster(ctx context.Context, hc *http.Client, peerURL string) (remoteCluster, error) {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(peerURL, "/")+"/members", nil)
	if err != nil {
		return remoteCluster{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return remoteCluster{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return remoteCluster{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return remoteCluster{}, fmt.Errorf("GET %s/members: %s: %s", peerURL, resp.Status, strings.TrimSpace(string(body)))
	}
	c := remoteCluster{from: peerURL}
	if err := json.Unmarshal(body, &c.members); err != nil {
		return remoteCluster{}, fmt.Errorf("GET %s/members: not a member list: %w", peerURL, err)
	}
	for _, h := range []struct {
		name string
		dst  *uint64
	}{{headerClusterID, &c.clusterID}, {headerPeerClusterID, &c.peerClusterID}} {
		if *h.dst, err = strconv.ParseUint(resp.Header.Get(h.name), 16, 64); err != nil {
			return remoteCluster{}, fmt.Errorf("GET %s/members: header %s %q: not a raftkv member", peerURL, h.name, resp.Header.Get(h.name))
		}
	}
	return c, nil
}

// peerHTTPClient reaches peer URLs (with the peer TLS client configuration
// for https ones).
func peerHTTPClient(peerClientTLS *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = peerClientTLS
	return &http.Client{Transport: tr, Timeout: discoveryTimeout}
}

// otherPeerURLs lists the peer URLs of --initial-cluster that are not own.
func otherPeerURLs(members []server.MemberInfo, own []string) []string {
	var out []string
	for _, m := range members {
		for _, u := range m.PeerURLs {
			if !slices.Contains(own, u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// discoverJoin learns, for a joining member with peer URLs own, the
// cluster's IDs and its own ID from the peers in --initial-cluster.
func discoverJoin(ctx context.Context, hc *http.Client, name string, founders []server.MemberInfo, own []string) (identity, remoteCluster, error) {
	peers := otherPeerURLs(founders, own)
	if len(peers) == 0 {
		return identity{}, remoteCluster{}, fmt.Errorf("--initial-cluster-state existing: --initial-cluster names no member but this one to learn the cluster from")
	}
	// A member answers from its own table, which may lag behind the
	// leader's for a moment after 'member add': ask every peer, and again
	// a little later, before concluding that this member was never added.
	var c remoteCluster
	var self remoteMember
	found := false
	var errs []error
	for attempt := 0; attempt < discoveryAttempts && !found; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return identity{}, remoteCluster{}, ctx.Err()
			case <-time.After(discoveryRetry):
			}
		}
		errs = errs[:0]
		for _, u := range peers {
			rc, err := fetchCluster(ctx, hc, u)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			c = rc
			if self, found = rc.byPeerURLs(own); found {
				break
			}
		}
	}
	if c.from == "" {
		return identity{}, remoteCluster{}, fmt.Errorf("--initial-cluster-state existing: cannot learn the cluster from any member in --initial-cluster (%s): %w",
			strings.Join(peers, ", "), errors.Join(errs...))
	}
	if !found {
		return identity{}, remoteCluster{}, fmt.Errorf("the cluster %x that %s belongs to has no member with peer URLs %s (--initial-advertise-peer-urls); "+
			"add it first with 'raftkv member add %s %s' (members: %s)",
			c.clusterID, c.from, strings.Join(own, ","), name, strings.Join(own, ","), c.describe())
	}
	id, err := strconv.ParseUint(self.ID, 16, 64)
	if err != nil || id == 0 {
		return identity{}, remoteCluster{}, fmt.Errorf("%s/members: bad member ID %q", c.from, self.ID)
	}
	if len(self.ClientURLs) > 0 {
		return identity{}, remoteCluster{}, lostDataError(name, id, c)
	}
	return identity{Name: name, MemberID: hexID(id), ClusterID: hexID(c.clusterID), PeerClusterID: hexID(c.peerClusterID)}, c, nil
}

// checkNotBootstrapped refuses to found a cluster with an empty data dir
// when the other founders already run one in which this member (id) has
// run — it published its name and client URLs: it lost its data. Coming
// back with an empty log under its old identity it could vote for a
// candidate that lacks acknowledged writes and so lose them. etcd makes
// the same check (isMemberBootstrapped). Founders that cannot be reached,
// or that have not heard of this member running, are no objection: a new
// cluster's members start at about the same time and know nothing yet.
func checkNotBootstrapped(ctx context.Context, hc *http.Client, name string, id uint64, founders []server.MemberInfo, own []string) error {
	for _, u := range otherPeerURLs(founders, own) {
		c, err := fetchCluster(ctx, hc, u)
		if err != nil {
			continue
		}
		for _, m := range c.members {
			if mid, _ := strconv.ParseUint(m.ID, 16, 64); mid == id && len(m.ClientURLs) > 0 {
				return lostDataError(name, id, c)
			}
		}
	}
	return nil
}

// lostDataError says that member id ran in cluster c and has lost its
// data, and what the operator must do.
func lostDataError(name string, id uint64, c remoteCluster) error {
	return fmt.Errorf("member %s (ID %x) has already been started in cluster %x (so says the member at %s) but its data dir is empty: "+
		"it lost its data, and must not come back under its old identity with an empty log (it could help lose acknowledged writes). "+
		"Remove it (raftkv member remove %x), add it back (raftkv member add %s <peer URLs>), "+
		"and start it with an empty data dir and --initial-cluster-state existing",
		name, id, c.clusterID, c.from, id, name)
}

// resolveIdentity decides who this member is (see identity.go) and which
// peers to reach until its member table says otherwise.
func (m *Member) resolveIdentity(founders []server.MemberInfo, initialCluster string, peerURLs, clientURLs []string,
	peerClientTLS *tls.Config) (identity, []server.MemberInfo, error) {
	cfg := m.cfg
	if cfg.ForceNewCluster {
		id, _, err := forceNewCluster(cfg, peerURLs, clientURLs)
		return id, nil, err
	}
	data, err := hasData(cfg.FS, cfg.DataDir)
	if err != nil {
		return identity{}, nil, err
	}
	if data {
		id, ok, err := readIdentity(cfg.FS, cfg.DataDir)
		if err != nil || ok {
			return id, founders, err
		}
		// A data dir written before identity files: derive, as then.
		id = identity{Name: cfg.Name, MemberID: hexID(server.DeriveMemberID(peerURLs, cfg.InitialClusterToken)),
			PeerClusterID: hexID(tokenID(cfg.InitialClusterToken))}
		return id, founders, writeIdentity(cfg.FS, cfg.DataDir, id)
	}
	hc := peerHTTPClient(peerClientTLS)
	defer hc.CloseIdleConnections()
	ctx := context.Background()
	if cfg.InitialClusterState == ClusterStateExisting {
		id, c, err := discoverJoin(ctx, hc, cfg.Name, founders, peerURLs)
		if err != nil {
			return identity{}, nil, err
		}
		var peers []server.MemberInfo
		for _, rm := range c.members {
			if rid, err := strconv.ParseUint(rm.ID, 16, 64); err == nil && rid != uint64(id.MemberID) {
				peers = append(peers, server.MemberInfo{ID: rid, PeerURLs: rm.PeerURLs})
			}
		}
		return id, peers, writeIdentity(cfg.FS, cfg.DataDir, id)
	}
	self := server.DeriveMemberID(peerURLs, cfg.InitialClusterToken)
	if !slices.ContainsFunc(founders, func(f server.MemberInfo) bool { return f.ID == self }) {
		return identity{}, nil, fmt.Errorf("--initial-cluster %q has no member named %q with peer URLs %v (--initial-advertise-peer-urls)",
			initialCluster, cfg.Name, peerURLs)
	}
	if err := checkNotBootstrapped(ctx, hc, cfg.Name, self, founders, peerURLs); err != nil {
		return identity{}, nil, err
	}
	id := identity{Name: cfg.Name, MemberID: hexID(self),
		ClusterID:     hexID(server.DeriveClusterID(cfg.InitialClusterToken, founders)),
		PeerClusterID: hexID(tokenID(cfg.InitialClusterToken))}
	return id, founders, writeIdentity(cfg.FS, cfg.DataDir, id)
}
