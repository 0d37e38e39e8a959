package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftkv/raftkv/kvstore"
)

// APIOptions configures the client API. The zero value serves etcd's API
// with linearizable reads and etcd's limits.
type APIOptions struct {
	// SerializableReads answers plain GETs from the member's local copy,
	// as etcd does by default, instead of after a ReadIndex round. quorum=true
	// still makes a GET linearizable. (raftkv serve: a flag.)
	SerializableReads bool
	// Clock is the wall clock: the base of TTLs (spec §6.1) and of the
	// remaining ttl in read responses. nil means time.Now.
	Clock func() time.Time
	// RequestTimeout bounds how long a request waits for the member before
	// it fails with error 300 "etcdserver: request timed out". The member has
	// a timeout of its own; this is a backstop. 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds a form-encoded request body. 0 keeps Go's (and
	// etcd's) 10 MiB form limit, refused as error 210 "http: POST too
	// large"; a smaller limit is refused as "http: request body too large".
	MaxBodyBytes int64
	// MaxValueSize bounds a value; a larger one is refused (error 209)
	// before it is proposed. It should equal the key space's own limit
	// (kvstore.Config.MaxValueSize); 0 means kvstore.DefaultMaxValueSize.
	MaxValueSize int
	// CORSOrigins lists the origins allowed cross-origin access, as etcd's
	// --cors; empty or "*" allows every origin (etcd's default).
	CORSOrigins []string
	// ServerVersion and ClusterVersion are what /version reports. The
	// defaults are the etcd versions whose v2 API raftkv serves, so that
	// clients which check versions treat raftkv as that etcd.
	ServerVersion, ClusterVersion string
	// Logger receives the HTTP servers' own errors (failed TLS handshakes,
	// malformed requests) at debug level; nil means none are logged.
	Logger *slog.Logger
	// EnablePprof serves Go's profiler under /debug/pprof/ (etcd's
	// --enable-pprof).
	EnablePprof bool
	// DisableFastPath serves every connection with net/http alone,
	// without the fast path for keep-alive key GETs and PUTs (fastpath.go).
	DisableFastPath bool
	// Messages, when set, supplies the peers' figures of /v2/stats/self and
	// /v2/stats/leader (the server wiring feeds it); nil leaves them 0.
	Messages *MessageStats
	// Registry receives the API's metrics and is served on /metrics; nil
	// means a new registry of the API's own (one per API, so that several
	// members may run in one process).
	Registry *prometheus.Registry
}

// Defaults of APIOptions.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultServerVersion  = "3.5.33"
	DefaultClusterVersion = "3.5.0"
)

func (o APIOptions) withDefaults() APIOptions {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxValueSize <= 0 {
		o.MaxValueSize = kvstore.DefaultMaxValueSize
	}
	if o.ServerVersion == "" {
		o.ServerVersion = DefaultServerVersion
	}
	if o.ClusterVersion == "" {
		o.ClusterVersion = DefaultClusterVersion
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// API is the client-facing HTTP+JSON API of one member: etcd's v2 API, as
// ../shared/spec/etcd-v2-api.md specifies it byte for byte, plus /metrics.
// It is an http.Handler; Serve runs it on a listener.
//
// A request to /v2/keys goes through three steps, one file each:
//
//   - keys_params.go validates the parameters in exactly etcd's order (spec
//     §3.3), so that a bad request fails with the error etcd gives;
//   - keys.go turns it into one server.Request (spec §6.1) — a write carrying
//     a kvstore.Command, a read, or a watch — and hands it to the Backend;
//   - keys.go writes the answer, or watch.go streams the watch (spec §8).
//
// The key space itself (kvstore) already renders events and errors as etcd's
// JSON, so this layer adds only the HTTP framing: statuses, the X-Etcd-* and
// X-Raft-* headers, noValueOnSuccess, and Go's own net/http behaviour for
// routing, redirects, HEAD and chunking, which is also etcd's.
//
// Reads differ from etcd on purpose: a plain GET is linearizable (the member
// confirms it is current with a batched ReadIndex round) unless
// APIOptions.SerializableReads restores etcd's local reads.
type API struct {
	backend Backend
	opts    APIOptions
	mux     *http.ServeMux
	metrics *httpMetrics
	stats   *apiStats
	// allowAllOrigins is set when CORSOrigins allows every origin.
	allowAllOrigins bool
	origins         map[string]bool

	// keysHandler is the instrumented /v2/keys handler, which ServeHTTP
	// calls directly for clean key paths (the router would pick it anyway).
	keysHandler http.HandlerFunc
	// clusterIDHeader caches the X-Etcd-Cluster-Id value once the backend
	// knows the cluster ID (it never changes then). Shared by every answer:
	// never modified.
	clusterIDHeader atomic.Pointer[[]string]

	// closing is closed by Close: open watches end.
	closing   chan struct{}
	closeOnce sync.Once

	mu sync.Mutex
	// servers are the HTTP servers Serve started; guarded by mu.
	servers []*http.Server
	// fastServers are the fast paths Serve started; guarded by mu.
	fastServers []*fastServer
}

// NewAPI returns the client API serving backend.
func NewAPI(backend Backend, opts APIOptions) (*API, error) {
	if backend == nil {
		return nil, errors.New("rpc: NewAPI needs a backend")
	}
	if opts.MaxBodyBytes < 0 || opts.MaxValueSize < 0 {
		return nil, fmt.Errorf("rpc: negative limit (MaxBodyBytes %d, MaxValueSize %d)", opts.MaxBodyBytes, opts.MaxValueSize)
	}
	opts = opts.withDefaults()
	a := &API{
		backend: backend,
		opts:    opts,
		closing: make(chan struct{}),
		origins: map[string]bool{},
	}
	a.allowAllOrigins = len(opts.CORSOrigins) == 0 || slices.Contains(opts.CORSOrigins, "*")
	for _, o := range opts.CORSOrigins {
		a.origins[o] = true
	}
	a.stats = newAPIStats(opts.Clock())
	metrics, err := newHTTPMetrics(opts.Registry, func() float64 { return float64(a.stats.watchers.Load()) })
	if err != nil {
		return nil, err
	}
	a.metrics = metrics
	a.mux = a.routes()
	return a, nil
}

// routes builds the router. Like etcd, it is a plain http.ServeMux: an
// unclean path is redirected (307) to its clean form, and anything not
// listed is 404 "404 page not found".
func (a *API) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", http.NotFound)
	a.keysHandler = a.metrics.instrument("keys", a.serveKeys)
	mux.Handle(keysPrefix, a.keysHandler)
	mux.Handle(keysPrefix+"/", a.keysHandler)
	a.handle(mux, "members", membersPrefix, a.serveMembers)
	a.handle(mux, "members", membersPrefix+"/", a.serveMembers)
	a.handle(mux, "machines", "/v2/machines", a.serveMachines)
	a.handle(mux, "stats", "/v2/stats/store", a.serveStoreStats)
	a.handle(mux, "stats", "/v2/stats/self", a.serveSelfStats)
	a.handle(mux, "stats", "/v2/stats/leader", a.serveLeaderStats)
	a.handle(mux, "version", "/version", a.serveVersion)
	a.handle(mux, "health", "/health", a.serveHealth)
	metrics := promhttp.HandlerFor(a.opts.Registry, promhttp.HandlerOpts{Registry: a.opts.Registry})
	a.handle(mux, "metrics", "/metrics", metrics.ServeHTTP)
	if a.opts.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (a *API) handle(mux *http.ServeMux, name, pattern string, h http.HandlerFunc) {
	mux.Handle(pattern, a.metrics.instrument(name, h))
}

// ServeHTTP answers one request. As in etcd, the CORS layer comes first:
// it adds the CORS headers and answers every OPTIONS request with an empty
// 200 before any routing.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.allowAllOrigins {
		addCORSHeaders(w, "*")
	} else if origin := r.Header.Get("Origin"); a.origins[origin] {
		addCORSHeaders(w, origin)
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		return
	}
	if isCleanKeyPath(r) {
		a.keysHandler(w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// isCleanKeyPath says r is for a key (/v2/keys/...) by a path the router
// would neither redirect nor send elsewhere, so that ServeHTTP may skip
// the router, whose matching allocates, for the most frequent requests.
func isCleanKeyPath(r *http.Request) bool {
	if r.Method == http.MethodConnect || r.URL.RawPath != "" || !strings.HasPrefix(r.URL.Path, keysPrefix+"/") {
		return false
	}
	p := r.URL.Path
	if strings.HasSuffix(p, "/") {
		return path.Clean(p) == p[:len(p)-1]
	}
	return path.Clean(p) == p
}

// The CORS headers' values, shared by every answer: most members allow
// every origin (etcd's default), so every answer carries them, and a
// slice of one made per answer was three allocations. Header.Add on one
// of these keys appends to a full slice, so it copies and never writes
// into them.
var (
	corsMethods    = []string{"POST, GET, OPTIONS, PUT, DELETE"}
	corsAnyOrigin  = []string{"*"}
	corsAllHeaders = []string{"accept, content-type, authorization"}
)

func addCORSHeaders(w http.ResponseWriter, origin string) {
	h := w.Header()
	h["Access-Control-Allow-Methods"] = corsMethods
	if origin == "*" {
		h["Access-Control-Allow-Origin"] = corsAnyOrigin
	} else {
		h["Access-Control-Allow-Origin"] = []string{origin}
	}
	h["Access-Control-Allow-Headers"] = corsAllHeaders
}

// Registry is the registry /metrics serves. The server wiring registers its
// own collectors on it (see NewServerMetrics).
func (a *API) Registry() *prometheus.Registry { return a.opts.Registry }

// Serve accepts connections on l and serves the API on them until Shutdown
// or Close; it returns http.ErrServerClosed then. With tlsConfig the
// connections are TLS (see ClientTLSInfo.ServerConfig). Serve may run on
// several listeners at once.
func (a *API) Serve(l net.Listener, tlsConfig *tls.Config) error {
	srv := &http.Server{
		Handler: a,
		// Headers must come promptly; bodies and responses may take long
		// (a watch waits as long as it needs), so only idle connections
		// and header reads are bounded.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(a.opts.Logger.Handler(), slog.LevelDebug),
	}
	a.mu.Lock()
	select {
	case <-a.closing:
		a.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	default:
	}
	a.servers = append(a.servers, srv)
	a.mu.Unlock()
	if tlsConfig != nil {
		return srv.Serve(tls.NewListener(l, tlsConfig))
	}
	if a.opts.DisableFastPath {
		return srv.Serve(l)
	}
	return a.serveFast(l, srv)
}

// Close ends every open watch at once (their clients see the response end,
// and etcd clients watch again elsewhere) and makes later watches end as
// soon as they start. Shutdown calls it.
func (a *API) Close() {
	a.closeOnce.Do(func() { close(a.closing) })
}

// Shutdown stops the API: it ends open watches, stops accepting
// connections, and waits until the requests in progress are answered or ctx
// ends.
func (a *API) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.Close()
	servers, fast := a.servers, a.fastServers
	a.servers, a.fastServers = nil, nil
	a.mu.Unlock()
	var errs []error
	for _, fs := range fast {
		if err := fs.stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// allowMethod checks r's method against the allowed ones; if it is not one
// of them it answers 405 with an Allow header listing them, as etcd does.
func allowMethod(w http.ResponseWriter, method string, allowed ...string) bool {
	if slices.Contains(allowed, method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(allowed, ","))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}
