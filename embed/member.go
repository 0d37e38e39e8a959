package embed

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/raft"
	"github.com/raftkv/raftkv/rpc"
	"github.com/raftkv/raftkv/server"
)

// Member is a running raftkv member.
type Member struct {
	cfg       Config
	id        uint64
	runtime   *server.Runtime
	transport *rpc.PeerTransport
	api       *rpc.API
	metrics   *rpc.ServerMetrics
	// messages measures the raft messages (heartbeat round trips, append
	// requests) for /v2/stats and the etcd metrics.
	messages *rpc.MessageStats
	// identity is what every log line says of the member (logattrs.go).
	identity *logIdentity

	clientListeners []net.Listener
	// clientURLs and peerURLs are the URLs actually listened at.
	clientURLs, peerURLs []string

	serveErrs chan error
	// stopPolling ends pollPeerStats.
	stopPolling chan struct{}
	// leader is the last leader seen, on the runtime's loop goroutine.
	leader   uint64
	stopOnce sync.Once
	stopErr  error
}

// Start starts a member and returns once it listens; it then runs until
// Stop (or a fatal error: see Done and Err).
func Start(cfg Config) (*Member, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	identity := &logIdentity{name: cfg.Name, dataDir: cfg.DataDir}
	cfg.Logger = withIdentity(cfg.Logger, identity)
	m := &Member{cfg: cfg, serveErrs: make(chan error, 8), identity: identity,
		messages: rpc.NewMessageStats(cfg.HeartbeatInterval)}
	if err := m.start(); err != nil {
		m.closeListeners()
		if m.transport != nil {
			m.transport.Stop()
		}
		return nil, err
	}
	return m, nil
}

func (m *Member) start() error {
	cfg := m.cfg
	clientTLS, peerServerTLS, peerClientTLS, err := tlsConfigs(cfg)
	if err != nil {
		return err
	}
	// Bind first, so that port 0 in a URL becomes a real port before the
	// URLs are advertised and the member's ID is derived from them.
	peerListeners, peerURLs, err := listenAll(cfg.ListenPeerURLs)
	if err != nil {
		return fmt.Errorf("--listen-peer-urls: %w", err)
	}
	m.peerURLs = peerURLs
	m.clientListeners, m.clientURLs, err = listenAll(cfg.ListenClientURLs)
	if err != nil {
		closeAll(peerListeners)
		return fmt.Errorf("--listen-client-urls: %w", err)
	}
	advertisePeer := cfg.InitialAdvertisePeerURLs
	if slices.Equal(advertisePeer, cfg.ListenPeerURLs) {
		advertisePeer = peerURLs
	}
	advertiseClient := cfg.AdvertiseClientURLs
	if len(advertiseClient) == 0 {
		advertiseClient = m.clientURLs
	}
	m.identity.peerURLs.Store(&advertisePeer)
	m.identity.clientURLs.Store(&advertiseClient)
	initialCluster := cfg.InitialCluster
	if initialCluster == strings0(cfg) {
		// The default single-member cluster follows the bound address.
		initialCluster = joinCluster(cfg.Name, advertisePeer)
	}
	founders, err := parseInitialCluster(initialCluster, cfg.InitialClusterToken)
	if err != nil {
		closeAll(peerListeners)
		return err
	}
	joining := cfg.InitialClusterState == ClusterStateExisting
	ident, peers, err := m.resolveIdentity(founders, initialCluster, advertisePeer, advertiseClient, peerClientTLS)
	if err != nil {
		closeAll(peerListeners)
		return err
	}
	m.id = uint64(ident.MemberID)
	m.identity.memberID.Store(m.id)
	m.identity.clusterID.Store(uint64(ident.ClusterID))
	if !slices.ContainsFunc(founders, func(f server.MemberInfo) bool { return f.ID == m.id }) {
		// Not a founder named in --initial-cluster: a member that joined
		// (or a restored one), whatever --initial-cluster-state says now.
		joining = true
	}

	var rt atomic.Pointer[server.Runtime]
	var backend atomic.Pointer[rpc.Backend]
	m.transport, err = rpc.NewPeerTransport(rpc.PeerTransportOptions{
		ID: m.id, ClusterID: uint64(ident.PeerClusterID),
		HTTPHandler: peerMembersHandler(&backend, uint64(ident.PeerClusterID)),
		Deliver: func(msg raft.Message) {
			if r := rt.Load(); r != nil {
				m.messages.Received(msg)
				r.Receive(msg)
			}
		},
		ReportUnreachable: func(id uint64) {
			if r := rt.Load(); r != nil {
				r.ReportUnreachable(id)
			}
		},
		ServerTLS: peerServerTLS, ClientTLS: peerClientTLS,
		Logger: cfg.Logger,
	})
	if err != nil {
		closeAll(peerListeners)
		return err
	}
	for _, ln := range peerListeners {
		if peerServerTLS != nil {
			ln = tls.NewListener(ln, peerServerTLS)
		}
		if err := m.transport.Serve(ln); err != nil {
			return err
		}
	}
	// Until the member table says otherwise, the peers are those named in
	// --initial-cluster (or learned from them).
	for _, f := range peers {
		if f.ID != m.id {
			if err := m.transport.AddPeer(f.ID, f.PeerURLs); err != nil {
				return err
			}
		}
	}

	seed := randomSeed()
	var initial []server.MemberInfo
	if !joining {
		initial = founders
	}
	member, err := server.New(server.Config{
		ID: m.id, Name: cfg.Name, InitialCluster: initial, Joining: joining, ClusterID: uint64(ident.ClusterID),
		ClusterToken: cfg.InitialClusterToken, PeerURLs: advertisePeer, ClientURLs: advertiseClient,
		FS: timedFS(cfg.FS, m), Dir: cfg.DataDir,
		Rand:          mrand.New(mrand.NewPCG(seed, m.id)),
		TickMillis:    int(cfg.HeartbeatInterval / time.Millisecond),
		ElectionTicks: int(cfg.ElectionTimeout / cfg.HeartbeatInterval), HeartbeatTicks: 1,
		SnapshotEvery: cfg.SnapshotCount, LeaseReads: cfg.LeaseReads, TuneRaft: cfg.TuneRaft,
		MaxInflightMsgs: cfg.MaxInflightAppends,
	})
	if err != nil {
		return fmt.Errorf("start member %s: %w", cfg.Name, err)
	}
	m.identity.clusterID.Store(member.ClusterID())
	for _, note := range member.RecoveryLog {
		cfg.Logger.Warn("recovery", "member", cfg.Name, "action", note)
	}
	runtime := server.NewRuntime(member, m.messages.WrapTransport(m.transport), server.RuntimeOptions{
		Tick:    cfg.HeartbeatInterval,
		OnRound: m.onRound,
		OnApply: func(_ int, took time.Duration) {
			if m.metrics != nil {
				m.metrics.ObserveApply(took)
			}
		},
		OnMembersChanged: m.onMembersChanged,
	})
	m.runtime = runtime
	rt.Store(runtime)
	runtimeBackend := rpc.NewRuntimeBackend(runtime)
	backend.Store(&runtimeBackend)
	m.api, err = rpc.NewAPI(runtimeBackend, rpc.APIOptions{
		SerializableReads: cfg.SerializableReads, MaxBodyBytes: cfg.MaxRequestBytes,
		Logger: cfg.Logger, EnablePprof: cfg.EnablePprof, CORSOrigins: cfg.CORSOrigins, Messages: m.messages,
	})
	if err != nil {
		member.Close()
		return err
	}
	m.metrics, err = rpc.NewServerMetrics(m.api.Registry())
	if err == nil {
		err = m.registerEtcdMetrics()
	}
	if err != nil {
		member.Close()
		return err
	}
	runtime.Start()
	m.stopPolling = make(chan struct{})
	go m.pollPeerStats(m.stopPolling)
	for _, ln := range m.clientListeners {
		go func() { m.serveErrs <- m.api.Serve(ln, clientTLS) }()
	}
	cfg.Logger.Info("member started", "name", cfg.Name, "id", fmt.Sprintf("%x", m.id),
		"client-urls", advertiseClient, "peer-urls", advertisePeer, "data-dir", cfg.DataDir, "joining", joining)
	return nil
}

// ID returns the member's ID.
func (m *Member) ID() uint64 { return m.id }

// Logger returns the member's logger: Config.Logger with the member's
// identity on every line (logattrs.go).
func (m *Member) Logger() *slog.Logger { return m.cfg.Logger }

// ClientURLs returns the URLs the HTTP API listens at (with real ports).
func (m *Member) ClientURLs() []string { return slices.Clone(m.clientURLs) }

// PeerURLs returns the URLs the peer transport listens at.
func (m *Member) PeerURLs() []string { return slices.Clone(m.peerURLs) }

// Runtime returns the member's event loop.
func (m *Member) Runtime() *server.Runtime { return m.runtime }

// Done is closed when the member stops (Stop, or a fatal storage error).
func (m *Member) Done() <-chan struct{} { return m.runtime.Done() }

// Err returns the fatal error that stopped the member, if any.
func (m *Member) Err() error { return m.runtime.Err() }

// Stop stops serving clients, stops the member (pending requests get
// "server stopped") and closes its connections and storage.
func (m *Member) Stop() error {
	m.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var errs []error
		if m.api != nil {
			errs = append(errs, m.api.Shutdown(ctx))
		}
		if m.stopPolling != nil {
			close(m.stopPolling)
		}
		if m.runtime != nil {
			errs = append(errs, m.runtime.Stop())
		}
		if m.transport != nil {
			m.transport.Stop()
		}
		m.stopErr = errors.Join(errs...)
	})
	return m.stopErr
}

func (m *Member) onRound(out server.Output) {
	if m.metrics != nil {
		m.metrics.ObserveRound(out)
		if out.FailedRequests > 0 {
			m.metrics.ProposalsFailed(out.FailedRequests)
		}
	}
	if lead := out.SoftState.Lead; lead != m.leader {
		m.leader = lead
		m.messages.LeaderChanged()
		if lead == 0 {
			m.cfg.Logger.Info("leader lost", "member", m.cfg.Name, "term", out.HardState.Term)
		} else {
			m.cfg.Logger.Info("leader changed", "member", m.cfg.Name, "leader", fmt.Sprintf("%x", lead), "term", out.HardState.Term)
		}
	}
	if out.Err != nil {
		m.cfg.Logger.Error("member stopped: storage failed", "name", m.cfg.Name, "err", out.Err)
	}
}

// onMembersChanged keeps the transport's peers equal to the member table
// (but for this member). An empty table (a joining member that has not
// heard from the cluster yet) leaves the peers from --initial-cluster.
func (m *Member) onMembersChanged(members []server.MemberInfo) {
	if len(members) == 0 {
		return
	}
	known := map[uint64]bool{}
	for _, p := range m.transport.Stats().Peers {
		known[p.ID] = true
	}
	for _, mi := range members {
		if mi.ID == m.id || len(mi.PeerURLs) == 0 {
			continue
		}
		var err error
		if known[mi.ID] {
			err = m.transport.UpdatePeer(mi.ID, mi.PeerURLs)
		} else {
			err = m.transport.AddPeer(mi.ID, mi.PeerURLs)
		}
		if err != nil {
			m.cfg.Logger.Warn("cannot reach member", "id", fmt.Sprintf("%x", mi.ID), "peer-urls", mi.PeerURLs, "err", err)
		}
		delete(known, mi.ID)
	}
	for id := range known {
		m.transport.RemovePeer(id)
	}
}

// pollPeerStats feeds the transport's counts of messages it could not
// deliver (dropped from full queues, lost with failed streams) into the
// peer send failure metric, once a second.
func (m *Member) pollPeerStats(stop <-chan struct{}) {
	last := map[uint64]uint64{}
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		for _, p := range m.transport.Stats().Peers {
			total, n := p.Dropped, uint64(0)
			if total > last[p.ID] {
				n = total - last[p.ID]
			}
			// Even 0: the peer's failure series exist from the start.
			m.metrics.PeerSendFailures(p.ID, n)
			m.messages.Failed(p.ID, n)
			last[p.ID] = total
		}
	}
}

func (m *Member) closeListeners() { closeAll(m.clientListeners) }

// tokenID is what the peer handshake compares: members of the same cluster
// share the token; the cluster ID proper is only known once a member has
// read its log.
func tokenID(token string) uint64 {
	sum := sha256.Sum256([]byte("raftkv peer token\x00" + token))
	return binary.BigEndian.Uint64(sum[:8])
}

func randomSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano())
	}
	return binary.BigEndian.Uint64(b[:])
}

// listenAll listens at every URL and returns the listeners and the URLs
// with their real ports.
func listenAll(urls []string) ([]net.Listener, []string, error) {
	var lns []net.Listener
	var bound []string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			closeAll(lns)
			return nil, nil, fmt.Errorf("bad URL %q: %w", raw, err)
		}
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			closeAll(lns)
			return nil, nil, fmt.Errorf("listen at %s: %w", raw, err)
		}
		lns = append(lns, ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		u.Host = net.JoinHostPort(u.Hostname(), port)
		bound = append(bound, u.String())
	}
	return lns, bound, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

func joinCluster(name string, urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += name + "=" + u
	}
	return s
}

// strings0 is the --initial-cluster default computed from cfg's own
// advertise URLs before they were bound.
func strings0(cfg Config) string { return joinCluster(cfg.Name, cfg.InitialAdvertisePeerURLs) }

func tlsConfigs(cfg Config) (client, peerServer, peerClient *tls.Config, err error) {
	if !cfg.ClientTLS.Empty() {
		if client, err = cfg.ClientTLS.ServerConfig(); err != nil {
			return nil, nil, nil, fmt.Errorf("client TLS: %w", err)
		}
	}
	if !cfg.PeerTLS.Empty() {
		if peerServer, err = cfg.PeerTLS.ServerConfig(); err != nil {
			return nil, nil, nil, fmt.Errorf("peer TLS: %w", err)
		}
		if peerClient, err = cfg.PeerTLS.ClientConfig(); err != nil {
			return nil, nil, nil, fmt.Errorf("peer TLS: %w", err)
		}
	}
	return client, peerServer, peerClient, nil
}
