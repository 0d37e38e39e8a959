package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// The bench's own HTTP/1.1 client (--http-client raw, the default): one
// connection per client, the request written with one system call from a
// reused buffer, the answer read through a reused bufio.Reader, no
// goroutine per connection and no allocation per request. net/http's
// transport costs the load generator about 100 µs of CPU per request on a
// 2-core machine, which the servers under test then lack; this client
// takes a fraction of it. It speaks only what the bench needs: keep-alive
// requests with Content-Length bodies, answers framed by Content-Length or
// chunked, "Connection: close" honoured.

// rawConn is a worker's connection and its buffers.
type rawConn struct {
	// host is host:port to dial; tlsConfig is non-nil for https.
	host      string
	tlsConfig *tls.Config
	timeout   time.Duration
	conn      net.Conn
	r         *bufio.Reader
	// body frames a Content-Length body; reused.
	body io.LimitedReader
	// request is the request being sent, rebuilt in place each time.
	request []byte
}

// errMalformedAnswer is an answer this client cannot read.
var errMalformedAnswer = errors.New("malformed HTTP answer")

func newRawConn(host string, tlsConfig *tls.Config, timeout time.Duration) *rawConn {
	return &rawConn{host: host, tlsConfig: tlsConfig, timeout: timeout, request: make([]byte, 0, 512)}
}

func (c *rawConn) dial() error {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.Dial("tcp", c.host)
	if err != nil {
		return err
	}
	if c.tlsConfig != nil {
		cfg := c.tlsConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(c.host)
		}
		tc := tls.Client(conn, cfg)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return err
		}
		conn = tc
	}
	c.conn = conn
	if c.r == nil {
		c.r = bufio.NewReaderSize(conn, 4096)
	} else {
		c.r.Reset(conn)
	}
	return nil
}

func (c *rawConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// roundTrip sends method path?query with body (a form, for PUT) and reads
// the answer's status and body, keeping up to len(buf)/2 bytes of the body
// in buf. It returns the status and the bytes kept.
func (c *rawConn) roundTrip(method, path, query string, body []byte, buf []byte) (status, n int, err error) {
	if c.conn == nil {
		if err := c.dial(); err != nil {
			return 0, 0, err
		}
	}
	b := append(c.request[:0], method...)
	b = append(b, ' ')
	b = append(b, path...)
	if query != "" {
		b = append(b, '?')
		b = append(b, query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nUser-Agent: raftkv-bench\r\n"...)
	if method == http.MethodPut || method == http.MethodPost {
		b = append(b, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	c.request = b
	if c.timeout > 0 {
		c.conn.SetDeadline(time.Now().Add(c.timeout))
	}
	if _, err := c.conn.Write(b); err != nil {
		c.close()
		return 0, 0, err
	}
	status, n, keepAlive, err := c.readAnswer(method, buf)
	if err != nil || !keepAlive {
		c.close()
	}
	return status, n, err
}

// readAnswer reads one answer: status line, headers, body.
func (c *rawConn) readAnswer(method string, buf []byte) (status, n int, keepAlive bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, 0, false, errMalformedAnswer
	}
	status, ok := parseDigits(line[9:12])
	if !ok {
		return 0, 0, false, errMalformedAnswer
	}
	keepAlive = line[7] == '1'
	length, chunked := -1, false
	for headers := 0; ; headers++ {
		if headers > 100 {
			return 0, 0, false, errMalformedAnswer
		}
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			return 0, 0, false, errMalformedAnswer
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, ok = parseDigits(value); !ok {
				return 0, 0, false, errMalformedAnswer
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keepAlive = false
			}
		}
	}
	switch {
	case method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified:
		return status, 0, keepAlive, nil
	case chunked:
		n, err = c.readChunked(buf)
	case length >= 0:
		c.body = io.LimitedReader{R: c.r, N: int64(length)}
		n, err = readAll(&c.body, buf)
	default: // until the connection closes
		n, err = readAll(c.r, buf)
		keepAlive = false
	}
	return status, n, keepAlive, err
}

// readChunked reads a chunked body and its trailer.
func (c *rawConn) readChunked(buf []byte) (int, error) {
	keep := len(buf) / 2
	n := 0
	for chunks := 0; ; chunks++ {
		if chunks > 1<<20 {
			return n, errMalformedAnswer
		}
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return n, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseUint(string(line), 16, 31)
		if err != nil {
			return n, errMalformedAnswer
		}
		if size == 0 {
			for { // trailer
				line, err := c.r.ReadSlice('\n')
				if err != nil {
					return n, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return n, nil
				}
			}
		}
		for size > 0 {
			dst := buf[keep:]
			if n < keep {
				dst = buf[n:keep]
			}
			m, err := c.r.Read(dst[:min(uint64(len(dst)), size)])
			if n < keep {
				n += m
			}
			size -= uint64(m)
			if err != nil {
				return n, err
			}
		}
		if _, err := c.r.Discard(2); err != nil { // CRLF
			return n, err
		}
	}
}

// parseDigits reads a non-negative decimal number.
func parseDigits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	v := 0
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		v = v*10 + int(ch-'0')
	}
	return v, true
}

// sendRaw is send over the bench's own client.
func (w *benchWorker) sendRaw(method string, k int) (kind string, ok bool) {
	var body []byte
	if method == http.MethodPut {
		body = w.plan.putBody
	}
	status, n, err := w.raw.roundTrip(method, w.plan.paths[k], w.plan.query, body, w.buf)
	if err != nil {
		time.Sleep(benchErrorPause)
		if errors.Is(err, errMalformedAnswer) {
			return fmt.Sprintf("network: %v", err), false
		}
		return networkErrorKind(err), false
	}
	if status == http.StatusOK || (status == http.StatusCreated && method == http.MethodPut) {
		return "", true
	}
	return httpErrorKind(status, w.buf[:n]), false
}
