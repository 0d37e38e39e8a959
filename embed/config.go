// Package embed starts a complete raftkv member in the calling process: the
// deterministic member (server), its durable storage on disk (storage), the
// TCP transport to its peers and the etcd v2 HTTP API (rpc). `raftkv serve`
// and `raftkv cluster` are thin wrappers around it; tests and benchmarks
// start real members with it.
package embed

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/rpc"
	"github.com/raftkv/raftkv/server"
	"github.com/raftkv/raftkv/storage"
)

// Config is a member's configuration, with etcd's names for what etcd has.
type Config struct {
	// Name is this member's human name (--name).
	Name string
	// DataDir holds the WAL and snapshots (--data-dir).
	DataDir string

	// ListenClientURLs are where the HTTP API listens; AdvertiseClientURLs
	// are what the cluster tells clients (defaults: the listen URLs, with
	// port 0 replaced by the port actually bound).
	ListenClientURLs, AdvertiseClientURLs []string
	// ListenPeerURLs are where peers connect; InitialAdvertisePeerURLs are
	// what this member tells the cluster (default: the listen URLs).
	ListenPeerURLs, InitialAdvertisePeerURLs []string

	// InitialCluster is "name=peerURL,name=peerURL,...", a name repeated
	// for several URLs (--initial-cluster). Default: this member alone.
	InitialCluster string
	// InitialClusterState is "new" (found a cluster) or "existing" (join
	// one after `raftkv member add`).
	InitialClusterState string
	// InitialClusterToken distinguishes clusters built from the same
	// addresses; it goes into member and cluster IDs.
	InitialClusterToken string

	// ForceNewCluster makes the data dir (a member's, or a backup put in
	// its place) a new one-member cluster with new IDs: the key space and
	// its indexes stay, the old membership goes (etcd's --force-new-cluster;
	// see force.go). Every start with it set does it again.
	ForceNewCluster bool

	// HeartbeatInterval and ElectionTimeout are raft's timing (etcd's
	// defaults: 100ms and 1000ms).
	HeartbeatInterval, ElectionTimeout time.Duration
	// SnapshotCount takes a snapshot every that many applied entries.
	SnapshotCount uint64
	// SerializableReads answers plain GETs from the local copy (etcd's
	// default); otherwise every GET is linearizable.
	SerializableReads bool
	// LeaseReads confirms linearizable reads with a leader lease instead of
	// a round of heartbeats when the leader holds one.
	LeaseReads bool
	// MaxRequestBytes bounds a request body (0: etcd's 10 MiB form limit).
	MaxRequestBytes int64
	// MaxInflightAppends bounds the appends a leader has in flight to one
	// follower (0: the server's default, 4 — enough to keep a follower's
	// disk busy on a LAN). Links whose round trip is longer than a few
	// fsyncs want more.
	MaxInflightAppends int
	// CORSOrigins lists the origins allowed cross-origin requests (empty:
	// every origin, as etcd's default).
	CORSOrigins []string
	// EnablePprof serves Go's profiler under /debug/pprof/ on the client
	// listeners.
	EnablePprof bool
	// TuneRaft, if set, adjusts raft's configuration before the member
	// starts. Tests of the tests only: `raftkv serve --planted-bug` (a
	// hidden flag) plants a known bug this way, to show that the nemesis
	// catches it (nemesis.TestNemesisCatchesPlantedBug).
	TuneRaft func(*raft.Config)

	// ClientTLS and PeerTLS secure the listeners (empty: plain HTTP/TCP).
	ClientTLS rpc.ClientTLSInfo
	PeerTLS   rpc.PeerTLSInfo

	// Logger receives the member's logs (nil: discarded).
	Logger *slog.Logger
	// FS is the file system (nil: the real disk). Tests pass a MemFS.
	FS storage.FS
}

// Defaults for Config.
const (
	DefaultName               = "default"
	DefaultClientURL          = "http://127.0.0.1:2379"
	DefaultPeerURL            = "http://127.0.0.1:2380"
	DefaultClusterToken       = "raftkv-cluster"
	DefaultHeartbeatInterval  = 100 * time.Millisecond
	DefaultElectionTimeout    = 1000 * time.Millisecond
	ClusterStateNew           = "new"
	ClusterStateExisting      = "existing"
	defaultDataDirSuffixStyle = "raftkv.data"

	// DefaultSnapshotCount is etcd's (since 3.2). A snapshot is written
	// and fsynced on the event loop, ~90 MB at a million keys: one every
	// 10,000 entries made filling a million keys write a hundred of them
	// (benchmarks/RESULTS.md, "Memory: a million keys").
	DefaultSnapshotCount = 100000
)

// withDefaults fills in defaults and checks the configuration; every error
// names the setting at fault.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.DataDir == "" {
		c.DataDir = defaultDataDirSuffixStyle
	}
	if len(c.ListenClientURLs) == 0 {
		c.ListenClientURLs = []string{DefaultClientURL}
	}
	if len(c.ListenPeerURLs) == 0 {
		c.ListenPeerURLs = []string{DefaultPeerURL}
	}
	if len(c.InitialAdvertisePeerURLs) == 0 {
		c.InitialAdvertisePeerURLs = c.ListenPeerURLs
	}
	if c.InitialClusterState == "" {
		c.InitialClusterState = ClusterStateNew
	}
	if c.InitialClusterToken == "" {
		c.InitialClusterToken = DefaultClusterToken
	}
	if c.InitialCluster == "" {
		var parts []string
		for _, u := range c.InitialAdvertisePeerURLs {
			parts = append(parts, c.Name+"="+u)
		}
		c.InitialCluster = strings.Join(parts, ",")
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = DefaultSnapshotCount
	}
	if c.FS == nil {
		c.FS = storage.OSFS{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.InitialClusterState != ClusterStateNew && c.InitialClusterState != ClusterStateExisting:
		return c, fmt.Errorf("--initial-cluster-state must be %q or %q, not %q", ClusterStateNew, ClusterStateExisting, c.InitialClusterState)
	case c.HeartbeatInterval < time.Millisecond:
		return c, fmt.Errorf("--heartbeat-interval %v is too short", c.HeartbeatInterval)
	case c.ElectionTimeout < 5*c.HeartbeatInterval:
		return c, fmt.Errorf("--election-timeout (%v) must be at least 5 times --heartbeat-interval (%v)", c.ElectionTimeout, c.HeartbeatInterval)
	case c.MaxInflightAppends < 0:
		return c, fmt.Errorf("--max-inflight-appends %d: want at least 1 (or 0 for the default)", c.MaxInflightAppends)
	}
	for _, list := range []struct {
		flag string
		urls []string
	}{
		{"--listen-client-urls", c.ListenClientURLs}, {"--advertise-client-urls", c.AdvertiseClientURLs},
		{"--listen-peer-urls", c.ListenPeerURLs}, {"--initial-advertise-peer-urls", c.InitialAdvertisePeerURLs},
	} {
		for _, u := range list.urls {
			if err := checkURL(u); err != nil {
				return c, fmt.Errorf("%s: %w", list.flag, err)
			}
		}
	}
	return c, nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bad URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q must start with http:// or https://", raw)
	}
	if u.Host == "" || u.Port() == "" {
		return fmt.Errorf("URL %q needs a host and a port", raw)
	}
	return nil
}

// parseInitialCluster turns "a=u1,a=u2,b=u3" into members with IDs derived
// from their peer URLs and the token.
func parseInitialCluster(s, token string) ([]server.MemberInfo, error) {
	byName := map[string][]string{}
	var names []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, u, ok := strings.Cut(part, "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("--initial-cluster: %q is not name=peerURL", part)
		}
		if err := checkURL(u); err != nil {
			return nil, fmt.Errorf("--initial-cluster: member %s: %w", name, err)
		}
		if _, seen := byName[name]; !seen {
			names = append(names, name)
		}
		byName[name] = append(byName[name], u)
	}
	if len(names) == 0 {
		return nil, errors.New("--initial-cluster is empty")
	}
	var members []server.MemberInfo
	seenURL := map[string]string{}
	for _, name := range names {
		urls := byName[name]
		for _, u := range urls {
			if other, dup := seenURL[u]; dup {
				return nil, fmt.Errorf("--initial-cluster: peer URL %s is given to both %s and %s", u, other, name)
			}
			seenURL[u] = name
		}
		members = append(members, server.MemberInfo{ID: server.DeriveMemberID(urls, token), Name: name, PeerURLs: urls})
	}
	slices.SortFunc(members, func(a, b server.MemberInfo) int { return compareIDs(a.ID, b.ID) })
	return members, nil
}

func compareIDs(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
