package rpc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// HTTP on the peer port. etcd serves a few HTTP endpoints on its peer URLs
// (GET /members above all, from which a new member learns the cluster's
// ID and its own); raftkv's peer port speaks its own stream protocol, but
// a connection that opens with an HTTP request is handed to
// PeerTransportOptions.HTTPHandler for that one request.

// errServedHTTP ends a connection that carried an HTTP request.
var errServedHTTP = errors.New("served an HTTP request on the peer port")

// peerHTTPBodyMax bounds what a peer-port handler may answer.
const peerHTTPBodyMax = 4 << 20

// looksLikeHTTP reports whether a stream opening with first is an HTTP
// request (the methods a client of the peer port sends).
func looksLikeHTTP(first []byte) bool {
	for _, m := range []string{"GET ", "HEAD", "POST", "PUT "} {
		if bytes.HasPrefix(first, []byte(m)) {
			return true
		}
	}
	return false
}

// servePeerHTTP reads one request from br and answers it on conn with
// the handler, closing the connection after the answer.
func servePeerHTTP(conn net.Conn, br *bufio.Reader, h http.Handler) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return fmt.Errorf("read HTTP request on the peer port: %w", err)
	}
	req.RemoteAddr = conn.RemoteAddr().String()
	w := &peerResponse{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(w, req)
	var out bytes.Buffer
	fmt.Fprintf(&out, "HTTP/1.1 %d %s\r\n", w.status, http.StatusText(w.status))
	w.header.Set("Content-Length", strconv.Itoa(w.body.Len()))
	w.header.Set("Connection", "close")
	if err := w.header.Write(&out); err != nil {
		return err
	}
	out.WriteString("\r\n")
	if req.Method != http.MethodHead {
		out.Write(w.body.Bytes())
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		return fmt.Errorf("write HTTP answer on the peer port: %w", err)
	}
	return errServedHTTP
}

// peerResponse collects a handler's answer to send it in one write.
type peerResponse struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (w *peerResponse) Header() http.Header { return w.header }

func (w *peerResponse) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
}

func (w *peerResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.body.Len()+len(p) > peerHTTPBodyMax {
		return 0, io.ErrShortWrite
	}
	return w.body.Write(p)
}
