package rpc

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/raftkv/raftkv/kvstore"
)

// formParam names one of the parameters a /v2/keys request may carry.
type formParam int

const (
	paramValue formParam = iota
	paramPrevIndex
	paramWaitIndex
	paramRecursive
	paramSorted
	paramWait
	paramDir
	paramQuorum
	paramStream
	paramPrevValue
	paramNoValueOnSuccess
	paramTTL
	paramPrevExist
	paramRefresh
	paramCount
)

// paramNames are the parameters' names on the wire.
var paramNames = [paramCount]string{
	"value", "prevIndex", "waitIndex", "recursive", "sorted", "wait", "dir", "quorum", "stream",
	"prevValue", "noValueOnSuccess", "ttl", "prevExist", "refresh",
}

// keyForm holds the first value of each known parameter, as
// url.Values.Get would give it after http.Request.ParseForm: a value in a
// form-encoded body comes before one in the query. Unknown parameters are
// ignored, as etcd ignores them.
type keyForm struct {
	// vals[p] is p's first value; "" when absent.
	vals [paramCount]string
	// has[p] says p was given, with whatever value. Invariant: !has[p]
	// implies vals[p] == "".
	has [paramCount]bool
}

// paramOf is the parameter called name.
func paramOf(name string) (formParam, bool) {
	for p, n := range paramNames {
		if n == name {
			return formParam(p), true
		}
	}
	return 0, false
}

// set records a value of p unless p already has one.
func (f *keyForm) set(p formParam, v string) {
	if !f.has[p] {
		f.vals[p], f.has[p] = v, true
	}
}

// decodeSlow fills f through http.Request.ParseForm: the reference,
// used for every request decodeFast declines, so that odd requests get
// exactly net/http's (and etcd's) behaviour and errors.
func (f *keyForm) decodeSlow(w http.ResponseWriter, r *http.Request, maxBody int64) *kvstore.Error {
	if maxBody > 0 && r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	// ParseForm reads the body only for PUT, POST and PATCH with a
	// form-encoded Content-Type, and puts body values before query values.
	if err := r.ParseForm(); err != nil {
		return requestError(kvstore.CodeInvalidForm, err.Error())
	}
	for name, vals := range r.Form {
		if p, ok := paramOf(name); ok && len(vals) > 0 {
			f.set(p, vals[0])
		}
	}
	return nil
}

// formFastMaxBody bounds the bodies decodeFast reads; larger ones take the
// slow path (and its limits).
const formFastMaxBody = 64 << 10

// formFastMaxParams bounds the parameters decodeFast reads in a query or
// a body; more take the slow path.
const formFastMaxParams = 64

// formContentType is the Content-Type of a form body, exactly.
const formContentType = "application/x-www-form-urlencoded"

// decodeFast fills f from the query and, for PUT and POST, a
// form-encoded body of known length, without building url.Values. It
// declines (returns false, having consumed nothing it cannot give back)
// anything unusual — another or a parameterised Content-Type, a chunked or
// large body, a semicolon, a bad escape — so that decodeSlow gives those
// net/http's exact answer.
func (f *keyForm) decodeFast(r *http.Request, maxBody int64) bool {
	var body string
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		ct := r.Header["Content-Type"]
		if len(ct) != 1 || ct[0] != formContentType || r.Body == nil ||
			r.ContentLength < 0 || r.ContentLength > formFastMaxBody || (maxBody > 0 && r.ContentLength > maxBody) {
			return false
		}
		if r.ContentLength > 0 {
			buf := make([]byte, r.ContentLength)
			n, err := io.ReadFull(r.Body, buf)
			if err != nil {
				// Give back what was read: the slow path meets the same
				// error and reports it as net/http would.
				r.Body = readCloser{io.MultiReader(bytes.NewReader(buf[:n]), r.Body), r.Body}
				return false
			}
			body = string(buf)
		}
	}
	var g keyForm
	if !g.decodeQuery(body) || !g.decodeQuery(r.URL.RawQuery) {
		if body != "" {
			r.Body = readCloser{strings.NewReader(body), r.Body}
		}
		return false
	}
	*f = g
	return true
}

// decodeQuery adds the parameters of a form-encoded string, as
// url.ParseQuery reads them; false when it holds anything url.ParseQuery
// would refuse (then f is partly filled).
func (f *keyForm) decodeQuery(q string) bool {
	// url.ParseQuery has a limit on the number of parameters: leave
	// anything near it to url.ParseQuery itself.
	if strings.Count(q, "&") >= formFastMaxParams {
		return false
	}
	for q != "" {
		var piece string
		piece, q, _ = strings.Cut(q, "&")
		if strings.IndexByte(piece, ';') >= 0 {
			return false
		}
		if piece == "" {
			continue
		}
		name, value, _ := strings.Cut(piece, "=")
		var ok bool
		if name, ok = unescapeForm(name); !ok {
			return false
		}
		if value, ok = unescapeForm(value); !ok {
			return false
		}
		if p, known := paramOf(name); known {
			f.set(p, value)
		}
	}
	return true
}

// unescapeForm decodes a form-encoded name or value as url.QueryUnescape
// does; it allocates only when there is something to decode.
func unescapeForm(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// readCloser is a body put back together: reads from Reader, closes the
// original.
type readCloser struct {
	io.Reader
	io.Closer
}
