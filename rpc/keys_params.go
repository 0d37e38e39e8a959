package rpc

import (
	"net/http"
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
	var form keyForm
	if !form.decodeFast(r, maxBody) {
		if kerr := form.decodeSlow(w, r, maxBody); kerr != nil {
			return keyRequest{}, kerr
		}
	}
	if !strings.HasPrefix(r.URL.Path, keysPrefix) {
		return keyRequest{}, requestError(kvstore.CodeInvalidForm, "incorrect key prefix")
	}
	kr := keyRequest{
		method: r.Method,
		key:    keyPath(r.URL.Path[len(keysPrefix):]),
		value:  form.vals[paramValue],
	}
	var err *kvstore.Error
	if kr.prevIndex, err = formUint(&form, paramPrevIndex, kvstore.CodeIndexNaN, `invalid value for "prevIndex"`); err != nil {
		return keyRequest{}, err
	}
	if kr.waitIndex, err = formUint(&form, paramWaitIndex, kvstore.CodeIndexNaN, `invalid value for "waitIndex"`); err != nil {
		return keyRequest{}, err
	}
	for _, b := range [...]struct {
		param formParam
		dst   *bool
	}{
		{paramRecursive, &kr.recursive}, {paramSorted, &kr.sorted}, {paramWait, &kr.wait},
		{paramDir, &kr.dir}, {paramQuorum, &kr.quorum}, {paramStream, &kr.stream},
	} {
		if *b.dst, err = formBool(&form, b.param, boolCauses[b.param]); err != nil {
			return keyRequest{}, err
		}
	}
	if kr.wait && r.Method != http.MethodGet {
		return keyRequest{}, requestError(kvstore.CodeInvalidField, `"wait" can only be used with GET requests`)
	}
	if err := kr.parseWriteParams(&form); err != nil {
		return keyRequest{}, err
	}
	return kr, nil
}

// keyPath is the key named by the URL path after /v2/keys: cleaned, "/"
// for the root. path.Join("/", p) would do, but allocates even when p is
// already clean, which it nearly always is.
func keyPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return path.Clean(p)
	}
	return path.Join("/", p)
}

// boolCauses are the causes of the boolean parameters' errors, built once.
var boolCauses = func() (c [paramCount]string) {
	for p := range paramCount {
		c[p] = `invalid value for "` + paramNames[p] + `"`
	}
	return c
}()

// parseWriteParams validates the parameters of writes: checks 12 to 18 of
// spec §3.3.
func (kr *keyRequest) parseWriteParams(form *keyForm) *kvstore.Error {
	kr.prevValue = form.vals[paramPrevValue]
	if form.has[paramPrevValue] && kr.prevValue == "" {
		return requestError(kvstore.CodePrevValueRequired, `"prevValue" cannot be empty`)
	}
	var err *kvstore.Error
	if kr.noValueOnSuccess, err = formBool(form, paramNoValueOnSuccess, boolCauses[paramNoValueOnSuccess]); err != nil {
		return err
	}
	// An empty ttl is no ttl at all. Only the first value counts, so a
	// body "ttl=" hides a query "ttl=5".
	if form.vals[paramTTL] != "" {
		if kr.ttl, err = formUint(form, paramTTL, kvstore.CodeTTLNaN, `invalid value for "ttl"`); err != nil {
			return err
		}
		kr.hasTTL = true
	}
	if form.has[paramPrevExist] {
		exist, err := formBool(form, paramPrevExist, "invalid value for prevExist")
		if err != nil {
			return err
		}
		kr.prevExist = kvstore.PrevExistFalse
		if exist {
			kr.prevExist = kvstore.PrevExistTrue
		}
	}
	if form.has[paramRefresh] {
		refresh, err := formBool(form, paramRefresh, "invalid value for refresh")
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
func formUint(form *keyForm, p formParam, code int, cause string) (uint64, *kvstore.Error) {
	if !form.has[p] {
		return 0, nil
	}
	v, err := strconv.ParseUint(form.vals[p], 10, 64)
	if err != nil {
		return 0, requestError(code, cause)
	}
	return v, nil
}

// formBool reads a boolean as strconv.ParseBool does; absent means false,
// and an empty value ("?recursive") is an error.
func formBool(form *keyForm, p formParam, cause string) (bool, *kvstore.Error) {
	if !form.has[p] {
		return false, nil
	}
	v, err := strconv.ParseBool(form.vals[p])
	if err != nil {
		return false, requestError(kvstore.CodeInvalidField, cause)
	}
	return v, nil
}

// requestError is an error in the request itself: index 0 (spec §4.6).
func requestError(code int, cause string) *kvstore.Error {
	return kvstore.NewError(code, cause, 0)
}
