package rpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/internal/lifetrace"
)

// The client API's fast path: a small HTTP/1.1 loop for the requests that
// make up nearly all of the load — keep-alive GETs (not watches) and form
// PUTs of /v2/keys on plain-text connections — that reads a request with
// one system call, answers through the very same handler (API.ServeHTTP),
// and writes the whole answer with one system call, without net/http's
// per-request goroutine, deadlines and buffers. The first request that is
// anything else (TLS never comes here; a watch, another path, a chunked or
// large body, Expect, Upgrade, Connection: close, HTTP/1.0, a malformed
// head) hands the connection, with the bytes already read, to net/http for
// good, so that everything net/http does — chunked watch streams, CORS
// preflights, pprof, /metrics, errors for bad requests — stays as it was.

// Bounds of the fast path.
const (
	// fastHeadMax bounds a request's line and headers; a longer head goes
	// to net/http.
	fastHeadMax = 4096
	// fastBodyMax bounds a PUT's body; a larger one goes to net/http.
	fastBodyMax = 64 << 10
	// fastHeadersMax bounds the header lines.
	fastHeadersMax = 32
	// fastIdleTimeout is how long a connection may wait for its next
	// request (net/http's IdleTimeout in Serve).
	fastIdleTimeout = 2 * time.Minute
)

// handoffListener gives net/http the connections the fast path hands over.
// Closing it closes the real listener too.
type handoffListener struct {
	l      net.Listener
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoffListener(l net.Listener) *handoffListener {
	return &handoffListener{l: l, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.closed:
		return nil, net.ErrClosed
	}
}

func (h *handoffListener) Close() error {
	var err error
	h.once.Do(func() {
		close(h.closed)
		err = h.l.Close()
	})
	return err
}

func (h *handoffListener) Addr() net.Addr { return h.l.Addr() }

// push hands c to net/http, or closes it when the server is closing.
func (h *handoffListener) push(c net.Conn) {
	select {
	case h.conns <- c:
	case <-h.closed:
		c.Close()
	}
}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// fastServer runs the fast path on one listener.
type fastServer struct {
	api      *API
	handoff  *handoffListener
	mu       sync.Mutex
	conns    map[*fastConn]struct{}
	shutdown atomic.Bool
}

// serveFast accepts on l: every connection starts on the fast path;
// srv serves those handed over. It returns http.ErrServerClosed after
// Shutdown.
func (a *API) serveFast(l net.Listener, srv *http.Server) error {
	fs := &fastServer{api: a, handoff: newHandoffListener(l), conns: map[*fastConn]struct{}{}}
	a.mu.Lock()
	select {
	case <-a.closing: // Shutdown came first
		a.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	default:
	}
	a.fastServers = append(a.fastServers, fs)
	a.mu.Unlock()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(fs.handoff) }()
	for {
		c, err := l.Accept()
		if err != nil {
			fs.handoff.Close()
			if fs.shutdown.Load() || errors.Is(<-served, http.ErrServerClosed) {
				return http.ErrServerClosed
			}
			return err
		}
		fc := &fastConn{fs: fs, conn: c}
		if !fs.track(fc) {
			c.Close()
			continue
		}
		go fc.serve()
	}
}

func (fs *fastServer) track(fc *fastConn) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.shutdown.Load() {
		return false
	}
	fs.conns[fc] = struct{}{}
	return true
}

func (fs *fastServer) untrack(fc *fastConn) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.conns, fc)
}

// stop closes the idle fast connections and waits for the busy ones to
// finish their request, or for ctx's end (then closes them).
func (fs *fastServer) stop(ctx context.Context) error {
	fs.shutdown.Store(true)
	fs.handoff.Close()
	for {
		fs.mu.Lock()
		for fc := range fs.conns {
			if !fc.busy.Load() {
				fc.conn.Close()
			}
		}
		left := len(fs.conns)
		fs.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			fs.mu.Lock()
			for fc := range fs.conns {
				fc.conn.Close()
			}
			fs.mu.Unlock()
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// fastConn is one connection on the fast path.
type fastConn struct {
	fs   *fastServer
	conn net.Conn
	r    *bufio.Reader
	// busy is set while a request is being answered.
	busy atomic.Bool
	// req and resp are reused for every request of the connection.
	req  http.Request
	url  url.URL
	resp fastResponse
	body bytes.Reader
	// bodyBuf holds a PUT's body.
	bodyBuf []byte
	// What does not change between a connection's requests, made once:
	// the remote address, the body's ReadCloser around body, and the
	// last Host header's value (clients send the same one every time).
	remoteAddr string
	bodyCloser io.ReadCloser
	host       string
}

// serve answers requests until the connection closes or is handed over.
func (fc *fastConn) serve() {
	handedOver := false
	defer func() {
		if p := recover(); p != nil {
			fc.fs.api.opts.Logger.Error("http: panic serving a request", "remote", fc.conn.RemoteAddr().String(), "panic", fmt.Sprint(p))
		}
		fc.fs.untrack(fc)
		if !handedOver {
			fc.conn.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	deadline := newRequestDeadline(ctx, fc.fs.api.opts.RequestTimeout)
	defer deadline.disarm()
	fc.r = bufio.NewReaderSize(fc.conn, fastHeadMax)
	fc.req = *(&http.Request{}).WithContext(deadline)
	fc.req.Header = http.Header{}
	fc.resp.header = http.Header{}
	fc.remoteAddr = fc.conn.RemoteAddr().String()
	fc.bodyCloser = io.NopCloser(&fc.body)
	var idleUntil time.Time
	for !fc.fs.shutdown.Load() {
		// The idle deadline moves on at most once a second: setting it
		// is a timer update in the network poller, every request.
		if now := time.Now(); idleUntil.Sub(now) < fastIdleTimeout-time.Second {
			idleUntil = now.Add(fastIdleTimeout)
			fc.conn.SetReadDeadline(idleUntil)
		}
		head, ok, err := fc.readHead()
		if err != nil {
			return
		}
		if !ok || !fc.parse(head) {
			handedOver = true
			fc.conn.SetReadDeadline(time.Time{})
			fc.fs.handoff.push(&bufferedConn{Conn: fc.conn, r: fc.r})
			return
		}
		lifetrace.Mark(0, 0, 0, lifetrace.RequestRead)
		fc.r.Discard(len(head))
		if !fc.readBody() {
			return
		}
		fc.busy.Store(true)
		fc.resp.reset()
		deadline.arm(time.Now())
		fc.fs.api.ServeHTTP(&fc.resp, &fc.req)
		deadline.disarm()
		lifetrace.Mark(0, 0, 0, lifetrace.HandlerDone)
		err = fc.resp.writeTo(fc.conn)
		lifetrace.Mark(0, 0, 0, lifetrace.ResponseWritten)
		fc.busy.Store(false)
		if err != nil {
			return
		}
	}
}

var headEnd = []byte("\r\n\r\n")

// readHead waits for a whole request head in the buffer and returns it
// without consuming it; ok is false when it does not fit.
func (fc *fastConn) readHead() (head []byte, ok bool, err error) {
	want := 1
	for {
		b, err := fc.r.Peek(want)
		if err != nil && len(b) < want {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, false, nil
			}
			if len(b) > 0 && !errors.Is(err, io.EOF) {
				return nil, false, nil
			}
			return nil, false, err
		}
		b, _ = fc.r.Peek(fc.r.Buffered())
		if i := bytes.Index(b, headEnd); i >= 0 {
			return b[:i+len(headEnd)], true, nil
		}
		if len(b) >= fastHeadMax {
			return nil, false, nil
		}
		want = len(b) + 1
	}
}

// parse fills fc.req from a request head; false when the request is not
// one for the fast path (nothing is consumed then).
func (fc *fastConn) parse(head []byte) bool {
	if !plainHead(head) {
		return false
	}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	method, line, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(line, []byte(" "))
	if !ok1 || !ok2 || !bytes.Equal(proto, []byte("HTTP/1.1")) {
		return false
	}
	r := &fc.req
	switch string(method) {
	case http.MethodGet:
		r.Method = http.MethodGet
	case http.MethodPut:
		r.Method = http.MethodPut
	default:
		return false
	}
	if !bytes.HasPrefix(target, []byte(keysPrefix+"/")) || bytes.Contains(target, []byte("wait=")) ||
		bytes.ContainsAny(target, "%#\\ ") || bytes.Contains(target, []byte("//")) {
		return false
	}
	clear(r.Header)
	r.Host, r.ContentLength = "", 0
	hostSeen, lengthSeen := false, false
	for headers := 0; len(rest) > 2; headers++ {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || headers >= fastHeadersMax || !isToken(name) {
			return false
		}
		value = bytes.Trim(value, " \t")
		key := headerName(name)
		switch key {
		case "Host":
			if hostSeen { // net/http refuses a second Host, even after an empty one
				return false
			}
			hostSeen = true
			if string(value) != fc.host {
				fc.host = string(value)
			}
			r.Host = fc.host
			continue
		case "Content-Length":
			// A second one, even equal (which net/http merges), goes to
			// net/http.
			n, ok := parseDigitsBytes(value)
			if !ok || n > fastBodyMax || (r.Method == http.MethodGet && n > 0) || lengthSeen {
				return false
			}
			lengthSeen = true
			r.ContentLength = int64(n)
		case "Transfer-Encoding", "Expect", "Upgrade", "Connection", "Trailer", "Te":
			return false
		}
		r.Header[key] = append(r.Header[key], headerValue(value))
	}
	if r.Host == "" {
		return false
	}
	uri := string(target)
	path, query, _ := strings.Cut(uri, "?")
	if !plainPath(path) {
		return false
	}
	fc.url = url.URL{Path: path, RawQuery: query}
	r.URL = &fc.url
	r.RequestURI = uri
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.RemoteAddr = fc.remoteAddr
	r.Form, r.PostForm, r.MultipartForm, r.Close = nil, nil, nil, false
	return true
}

// plainHead says a head has no control bytes but its CRLFs and tabs, and
// nothing outside ASCII: anything else goes to net/http's stricter reading.
func plainHead(head []byte) bool {
	body := head[:len(head)-len(headEnd)]
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\r' && i+1 < len(body) && body[i+1] == '\n':
			i++
		case c == '\t':
		case c < ' ' || c >= 0x7f:
			return false
		}
	}
	return true
}

// plainPath says url.URL would keep path as it is, without a RawPath (no
// byte it would escape).
func plainPath(path string) bool {
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.~/$&+,:;=@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isToken says b is an HTTP token (RFC 9110 §5.6.2), as header names are.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// readBody reads a PUT's body (its length was checked by parse).
func (fc *fastConn) readBody() bool {
	r := &fc.req
	if r.ContentLength == 0 {
		r.Body = http.NoBody
		return true
	}
	if cap(fc.bodyBuf) < int(r.ContentLength) {
		fc.bodyBuf = make([]byte, r.ContentLength)
	}
	b := fc.bodyBuf[:r.ContentLength]
	if _, err := io.ReadFull(fc.r, b); err != nil {
		return false
	}
	fc.body.Reset(b)
	r.Body = fc.bodyCloser
	return true
}

// headerName is the canonical form of a header name, without allocating
// for the usual ones.
func headerName(b []byte) string {
	for _, known := range knownHeaders {
		if len(b) == len(known) && bytes.EqualFold(b, []byte(known)) {
			return known
		}
	}
	return textproto.CanonicalMIMEHeaderKey(string(b))
}

var knownHeaders = []string{
	"Host", "Content-Type", "Content-Length", "User-Agent", "Accept-Encoding", "Accept", "Origin",
	"Connection", "Transfer-Encoding", "Expect", "Upgrade", "Trailer", "Te",
}

// headerValue is a header value as a string, shared for the usual ones.
func headerValue(b []byte) string {
	switch string(b) {
	case formContentType:
		return formContentType
	case "gzip":
		return "gzip"
	case "Go-http-client/1.1":
		return "Go-http-client/1.1"
	case "raftkv-bench":
		return "raftkv-bench"
	}
	return string(b)
}

func parseDigitsBytes(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// fastResponse is the http.ResponseWriter of the fast path: it gathers
// the status, headers and body, and writeTo sends them in one write, as
// net/http would frame a short answer (Content-Length, Date).
type fastResponse struct {
	header      http.Header
	status      int
	wroteHeader bool
	// out is the whole answer: the head is written in front of the body
	// at the end, so the body starts at fastHeadRoom.
	out []byte
}

// fastHeadRoom is the space kept in front of the body for the head.
const fastHeadRoom = 512

func (w *fastResponse) reset() {
	clear(w.header)
	w.status, w.wroteHeader = 0, false
	if cap(w.out) < fastHeadRoom+1024 {
		w.out = make([]byte, fastHeadRoom, fastHeadRoom+1024)
	}
	w.out = w.out[:fastHeadRoom]
}

func (w *fastResponse) Header() http.Header { return w.header }

func (w *fastResponse) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.status, w.wroteHeader = code, true
}

func (w *fastResponse) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.out = append(w.out, b...)
	return len(b), nil
}

// writeTo frames the answer and writes it.
func (w *fastResponse) writeTo(c net.Conn) error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	body := w.out[fastHeadRoom:]
	var headBuf [fastHeadRoom]byte
	head := append(headBuf[:0], "HTTP/1.1 "...)
	head = strconv.AppendInt(head, int64(w.status), 10)
	head = append(head, ' ')
	head = append(head, http.StatusText(w.status)...)
	head = append(head, "\r\n"...)
	if _, ok := w.header["Content-Type"]; !ok && len(body) > 0 {
		w.header["Content-Type"] = []string{http.DetectContentType(body)}
	}
	keys := make([]string, 0, 16)
	for k := range w.header {
		if k != "Content-Length" && k != "Date" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	extra := []byte(nil)
	for _, k := range keys {
		for _, v := range w.header[k] {
			line := len(k) + len(v) + 4
			if len(head)+line > fastHeadRoom-80 {
				extra = append(extra, k...)
				extra = append(extra, ": "...)
				extra = append(extra, v...)
				extra = append(extra, "\r\n"...)
				continue
			}
			head = append(head, k...)
			head = append(head, ": "...)
			head = append(head, v...)
			head = append(head, "\r\n"...)
		}
	}
	if extra != nil { // a head too large for the room: write it apart
		head = append(head, extra...)
	}
	head = append(head, "Date: "...)
	head = appendHTTPDate(head)
	head = append(head, "\r\nContent-Length: "...)
	head = strconv.AppendInt(head, int64(len(body)), 10)
	head = append(head, "\r\n\r\n"...)
	if len(head) <= fastHeadRoom {
		start := fastHeadRoom - len(head)
		copy(w.out[start:], head)
		_, err := c.Write(w.out[start:])
		return err
	}
	_, err := c.Write(append(head, body...))
	return err
}

// httpDate caches the Date header's value for the current second.
var httpDate atomic.Pointer[cachedDate]

type cachedDate struct {
	unix int64
	text []byte
}

func appendHTTPDate(b []byte) []byte {
	now := time.Now()
	if d := httpDate.Load(); d != nil && d.unix == now.Unix() {
		return append(b, d.text...)
	}
	d := &cachedDate{unix: now.Unix(), text: now.UTC().AppendFormat(nil, http.TimeFormat)}
	httpDate.Store(d)
	return append(b, d.text...)
}
