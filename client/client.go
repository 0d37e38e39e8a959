package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Config configures a Client.
type Config struct {
	// Endpoints are the client URLs of the cluster's members
	// ("http://127.0.0.1:2379"); a URL without a scheme is taken as http.
	Endpoints []string
	// TLS secures https endpoints: the CA to trust and the client
	// certificate to present (NewTLSConfig reads them from files). nil
	// means the system's roots and no client certificate.
	TLS *tls.Config
	// Transport, if set, carries every request instead of the client's own
	// keep-alive transport (TLS, DialTimeout and MaxIdleConnsPerHost are
	// then ignored).
	Transport http.RoundTripper
	// DialTimeout bounds a connection attempt, so that an endpoint that
	// does not answer is given up for the next one. 0 means 5 seconds.
	DialTimeout time.Duration
	// HeaderTimeoutPerRequest bounds each attempt at one endpoint, from
	// sending the request to reading the answer; when it passes, the next
	// endpoint is tried. Watches are exempt. 0 means no bound but the
	// context's.
	HeaderTimeoutPerRequest time.Duration
	// MaxIdleConnsPerHost is how many keep-alive connections the client
	// keeps to each endpoint for reuse. 0 means 64.
	MaxIdleConnsPerHost int
	// Username and Password, if Username is set, go with every request as
	// HTTP basic authentication (etcd v2 auth).
	Username, Password string
}

// Defaults of Config.
const (
	DefaultDialTimeout         = 5 * time.Second
	DefaultMaxIdleConnsPerHost = 64
)

// Client talks to an etcd-v2-compatible cluster over HTTP: raftkv or etcd.
// It tries the endpoints in turn, starting from the last one that answered
// ("pinned"), and moves on when one fails with a network error or a 5xx
// answer — except for requests that must not run twice (see the package
// documentation). A Client is safe for concurrent use; its connections are
// kept alive and reused.
type Client struct {
	http      *http.Client
	transport http.RoundTripper
	cfg       Config

	mu sync.Mutex
	// endpoints are the parsed Config.Endpoints (or those of the last
	// Sync); guarded by mu. Invariant: len(endpoints) > 0.
	endpoints []*url.URL
	// pinned is the index of the endpoint tried first; guarded by mu.
	// Invariant: pinned < len(endpoints).
	pinned int
}

// New returns a client of the cluster at cfg.Endpoints.
func New(cfg Config) (*Client, error) {
	eps, err := parseEndpoints(cfg.Endpoints)
	if err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxIdleConnsPerHost <= 0 {
		cfg.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	tr := cfg.Transport
	if tr == nil {
		tr = NewTransport(cfg.TLS, cfg.DialTimeout, cfg.MaxIdleConnsPerHost)
	}
	c := &Client{cfg: cfg, transport: tr, endpoints: eps}
	// Redirects (etcd answers 307 to an unclean path) are followed as
	// net/http does, re-sending the body, at most 10 times.
	c.http = &http.Client{Transport: tr}
	return c, nil
}

// NewTransport returns the keep-alive HTTP/1.1 transport a Client uses by
// default: connections set up within dialTimeout, up to maxIdlePerHost idle
// connections kept per endpoint, tlsConfig for https endpoints.
func NewTransport(tlsConfig *tls.Config, dialTimeout time.Duration, maxIdlePerHost int) *http.Transport {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   dialTimeout,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// NewTLSConfig builds the TLS configuration of a client: trust the CAs in
// caFile (empty: the system's), present the certificate in certFile and
// keyFile (both empty: none).
func NewTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both a certificate file and a key file")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func parseEndpoints(eps []string) ([]*url.URL, error) {
	if len(eps) == 0 {
		return nil, ErrNoEndpoints
	}
	out := make([]*url.URL, 0, len(eps))
	for _, ep := range eps {
		ep = strings.TrimSpace(ep)
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		u, err := url.Parse(ep)
		if err != nil {
			return nil, fmt.Errorf("client: endpoint %q: %w", ep, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("client: endpoint %q: want http://host:port or https://host:port", ep)
		}
		u.Path = strings.TrimRight(u.Path, "/")
		out = append(out, u)
	}
	return out, nil
}

// Endpoints returns the endpoints, the pinned one first.
func (c *Client) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.endpoints))
	for i := range c.endpoints {
		out = append(out, c.endpoints[(c.pinned+i)%len(c.endpoints)].String())
	}
	return out
}

// SetEndpoints replaces the endpoints.
func (c *Client) SetEndpoints(eps []string) error {
	parsed, err := parseEndpoints(eps)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endpoints, c.pinned = parsed, 0
	return nil
}

// Sync replaces the endpoints with the client URLs of the cluster's
// members, as the official client's Sync does.
func (c *Client) Sync(ctx context.Context) error {
	members, err := c.Members().List(ctx)
	if err != nil {
		return err
	}
	var eps []string
	for _, m := range members {
		eps = append(eps, m.ClientURLs...)
	}
	return c.SetEndpoints(eps)
}

// Close closes the client's idle connections.
func (c *Client) Close() {
	if t, ok := c.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// request is one HTTP request as the client sends it to any endpoint.
type request struct {
	method string
	// path is the unescaped path below the endpoint ("/v2/keys/a b").
	path string
	// query is the encoded query string.
	query string
	// body and contentType are the request body, if any.
	body        []byte
	contentType string
	// oneShot marks a request that must not run twice: after a failure
	// that may have reached the server it is not tried at another
	// endpoint.
	oneShot bool
	// wait marks a watch: exempt from HeaderTimeoutPerRequest.
	wait bool
}

// response is an endpoint's complete answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends r to the endpoints in turn, from the pinned one, until one
// answers with a status below 500. A one-shot request moves on only when
// the connection could not even be set up.
func (c *Client) do(ctx context.Context, r *request) (*response, error) {
	c.mu.Lock()
	eps, pinned := c.endpoints, c.pinned
	c.mu.Unlock()
	var errs []error
	for i := range eps {
		k := (pinned + i) % len(eps)
		resp, err := c.try(ctx, eps[k], r)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil && resp.status < 500 {
			c.pin(eps, k)
			return resp, nil
		}
		if err == nil {
			me := &memberError{endpoint: eps[k].String(), status: resp.status}
			if e, derr := decodeError(resp); derr == nil {
				me.err = e
			}
			if r.oneShot && me.err != nil {
				// The server's own answer: the write may or may not have
				// happened, and only the caller can find out.
				c.pin(eps, (k+1)%len(eps))
				return nil, me.err
			}
			err = me
		}
		errs = append(errs, err)
		if r.oneShot && !neverSent(err) {
			c.pin(eps, (k+1)%len(eps))
			return nil, &ClusterError{Errors: errs}
		}
	}
	return nil, &ClusterError{Errors: errs}
}

// pin makes endpoint k of eps the first one tried, unless the endpoints
// were replaced meanwhile.
func (c *Client) pin(eps []*url.URL, k int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.endpoints) == len(eps) && &c.endpoints[0] == &eps[0] {
		c.pinned = k
	}
}

// neverSent reports whether err happened before the request could reach
// the server: the connection was refused or could not be set up.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// try sends r to one endpoint and reads the whole answer.
func (c *Client) try(ctx context.Context, ep *url.URL, r *request) (*response, error) {
	if c.cfg.HeaderTimeoutPerRequest > 0 && !r.wait {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.HeaderTimeoutPerRequest)
		defer cancel()
	}
	u := *ep
	u.Path = ep.Path + r.path
	u.RawPath = ""
	u.RawQuery = r.query
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if c.cfg.Username != "" {
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The transport's error says what went wrong ("dial tcp ...:
		// connection refused"); the request is in the attempt's context.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// decodeError reads an error answer: etcd's key error object, or the
// members API's {"message": ...}.
func decodeError(resp *response) (*Error, error) {
	e := &Error{StatusCode: resp.status}
	if err := json.Unmarshal(resp.body, e); err != nil || (e.Code == 0 && e.Message == "") {
		text := strings.TrimSpace(string(resp.body))
		if text == "" {
			text = http.StatusText(resp.status)
		}
		return &Error{StatusCode: resp.status, Message: fmt.Sprintf("client: unexpected answer %d: %s", resp.status, text)}, ErrInvalidJSON
	}
	return e, nil
}
