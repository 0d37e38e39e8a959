package rpc

import (
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/kvstore"
)

// keysPrefix is the URL path of the key space; the key follows it.
const keysPrefix = "/v2/keys"

// keyRequest is a /v2/keys request whose parameters passed validation
// (spec §3). Parameters an operation does not use are still parsed and
// validated, as etcd does.
type keyRequest struct {
	method string
	// key is the key path: the URL path after /v2/keys, percent-decoded and
	// cleaned ("/" for the root).
	key   string
	value string

	dir, recursive, sorted bool
	wait, stream, quorum   bool
	// waitIndex is the first index a watch reports; 0 means the next one.
	waitIndex uint64

	// prevValue is non-empty when given (an empty one is refused).
	prevValue string
	// prevIndex is 0 when absent ("don't compare").
	prevIndex uint64
	prevExist kvstore.PrevExist

	// hasTTL says a non-empty ttl was given.
	hasTTL bool
	ttl    uint64
	// refresh is refresh=true; validation guarantees hasTTL and an empty
	// value then.
	refresh bool

	noValueOnSuccess bool
}

// parseKeyRequest reads and validates r's parameters in exactly the order
// etcd checks them (spec §3.3): the first failure wins, and every failure is
// an etcd error with index 0. maxBody bounds a form-encoded body; 0 leaves
// Go's own 10 MiB limit, which answers "http: POST too large" as etcd does.
func parseKeyRequest(w http.ResponseWriter, r *http.Request, maxBody int64) (keyRequest, *kvstore.Error) {
	if maxBody > 0 && r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	// ParseForm reads the body only for PUT, POST and PATCH with a
	// form-encoded Content-Type, and puts body values before query values:
	// every parameter below reads the first value, so the body wins.
	if err := r.ParseForm(); err != nil {
		return keyRequest{}, requestError(kvstore.CodeInvalidForm, err.Error())
	}
	if !strings.HasPrefix(r.URL.Path, keysPrefix) {
		return keyRequest{}, requestError(kvstore.CodeInvalidForm, "incorrect key prefix")
	}
	form := r.Form
	kr := keyRequest{
		method: r.Method,
		key:    path.Join("/", r.URL.Path[len(keysPrefix):]),
		value:  form.Get("value"),
	}
	var err *kvstore.Error
	if kr.prevIndex, err = formUint(form, "prevIndex", kvstore.CodeIndexNaN, `invalid value for "prevIndex"`); err != nil {
		return keyRequest{}, err
	}
	if kr.waitIndex, err = formUint(form, "waitIndex", kvstore.CodeIndexNaN, `invalid value for "waitIndex"`); err != nil {
		return keyRequest{}, err
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"recursive", &kr.recursive}, {"sorted", &kr.sorted}, {"wait", &kr.wait},
		{"dir", &kr.dir}, {"quorum", &kr.quorum}, {"stream", &kr.stream},
	} {
		if *b.dst, err = formBool(form, b.name, `invalid value for "`+b.name+`"`); err != nil {
			return keyRequest{}, err
		}
	}
	if kr.wait && r.Method != http.MethodGet {
		return keyRequest{}, requestError(kvstore.CodeInvalidField, `"wait" can only be used with GET requests`)
	}
	if err := kr.parseWriteParams(form); err != nil {
		return keyRequest{}, err
	}
	return kr, nil
}

// parseWriteParams validates the parameters of writes: checks 12 to 18 of
// spec §3.3.
func (kr *keyRequest) parseWriteParams(form url.Values) *kvstore.Error {
	kr.prevValue = form.Get("prevValue")
	if _, ok := form["prevValue"]; ok && kr.prevValue == "" {
		return requestError(kvstore.CodePrevValueRequired, `"prevValue" cannot be empty`)
	}
	var err *kvstore.Error
	if kr.noValueOnSuccess, err = formBool(form, "noValueOnSuccess", `invalid value for "noValueOnSuccess"`); err != nil {
		return err
	}
	// An empty ttl is no ttl at all. Only the first value counts, so a
	// body "ttl=" hides a query "ttl=5".
	if form.Get("ttl") != "" {
		if kr.ttl, err = formUint(form, "ttl", kvstore.CodeTTLNaN, `invalid value for "ttl"`); err != nil {
			return err
		}
		kr.hasTTL = true
	}
	if _, ok := form["prevExist"]; ok {
		exist, err := formBool(form, "prevExist", "invalid value for prevExist")
		if err != nil {
			return err
		}
		kr.prevExist = kvstore.PrevExistFalse
		if exist {
			kr.prevExist = kvstore.PrevExistTrue
		}
	}
	if _, ok := form["refresh"]; ok {
		refresh, err := formBool(form, "refresh", "invalid value for refresh")
		if err != nil {
			return err
		}
		if refresh && kr.value != "" {
			return requestError(kvstore.CodeRefreshValue, "A value was provided on a refresh")
		}
		if refresh && !kr.hasTTL {
			return requestError(kvstore.CodeRefreshTTLRequired, "No TTL value set")
		}
		kr.refresh = refresh
	}
	return nil
}

// formUint reads an unsigned base-10 integer; absent means 0. Anything
// strconv.ParseUint refuses, the empty string included, is the error.
func formUint(form url.Values, name string, code int, cause string) (uint64, *kvstore.Error) {
	vals, ok := form[name]
	if !ok {
		return 0, nil
	}
	v, err := strconv.ParseUint(vals[0], 10, 64)
	if err != nil {
		return 0, requestError(code, cause)
	}
	return v, nil
}

// formBool reads a boolean as strconv.ParseBool does; absent means false,
// and an empty value ("?recursive") is an error.
func formBool(form url.Values, name, cause string) (bool, *kvstore.Error) {
	vals, ok := form[name]
	if !ok {
		return false, nil
	}
	v, err := strconv.ParseBool(vals[0])
	if err != nil {
		return false, requestError(kvstore.CodeInvalidField, cause)
	}
	return v, nil
}

// requestError is an error in the request itself: index 0 (spec §4.6).
func requestError(code int, cause string) *kvstore.Error {
	return kvstore.NewError(code, cause, 0)
}
