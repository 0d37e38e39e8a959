package rpc

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// formCases are bodies and queries the fast form decoder must read as
// ParseForm does (or decline); they seed FuzzKeyForm.
var formCases = []struct{ method, contentType, body, query string }{
	{"PUT", formContentType, "value=abc", ""},
	{"PUT", formContentType, "value=a+b%20c&ttl=5", "ttl=7&prevExist=false"},
	{"PUT", formContentType, "", "value=q&dir=true"},
	{"PUT", formContentType, "value=1&value=2", "value=3"},
	{"PUT", formContentType, "value=%zz", ""},
	{"PUT", formContentType, "value=a;b", ""},
	{"PUT", formContentType, "=x&&value&prevValue=", "prevIndex=12&waitIndex="},
	{"PUT", formContentType + "; charset=utf-8", "value=x", ""},
	{"PUT", "text/plain", "value=x", "value=y"},
	{"POST", formContentType, "value=job&ttl=", "ttl=9"},
	{"GET", "", "", "recursive=true&sorted=true&quorum=true"},
	{"GET", "", "", "wait=true&waitIndex=7&stream=1"},
	{"GET", "", "", "recursive"},
	{"DELETE", formContentType, "dir=true", "dir=false&recursive=true&prevValue=%E2%82%AC"},
	{"PUT", formContentType, "refresh=true&ttl=5&noValueOnSuccess=true", ""},
	{"PUT", formContentType, "v%61lue=decoded+name", ""},
}

// decodeBoth decodes one request with the fast decoder and a copy with
// ParseForm; fast says whether the fast decoder took it.
func decodeBoth(t *testing.T, method, contentType, body, query string) (fast bool, got, want keyForm, slowErr bool) {
	newRequest := func() *http.Request {
		r := httptest.NewRequest(method, "/v2/keys/a", strings.NewReader(body))
		r.URL.RawQuery = query
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		return r
	}
	r := newRequest()
	fast = got.decodeFast(r, 0)
	if !fast {
		// A declined request must still decode as if untouched.
		got = keyForm{}
		gotErr := got.decodeSlow(httptest.NewRecorder(), r, 0)
		wantErr := want.decodeSlow(httptest.NewRecorder(), newRequest(), 0)
		require.Equal(t, wantErr, gotErr)
		return fast, got, want, wantErr != nil
	}
	slowErr = want.decodeSlow(httptest.NewRecorder(), newRequest(), 0) != nil
	return fast, got, want, slowErr
}

func TestKeyFormFastMatchesParseForm(t *testing.T) {
	tookFast := 0
	for _, c := range formCases {
		fast, got, want, slowErr := decodeBoth(t, c.method, c.contentType, c.body, c.query)
		if fast {
			tookFast++
			require.False(t, slowErr, "fast decoder accepted what ParseForm refuses: %+v", c)
		}
		require.Equal(t, want, got, "%+v", c)
	}
	require.GreaterOrEqual(t, tookFast, 10, "the common requests take the fast path")
}

// FuzzKeyForm checks the fast form decoder against net/http's ParseForm
// on arbitrary bodies and queries: whatever it accepts, it must read
// exactly as ParseForm does, and what it declines must reach ParseForm
// intact.
func FuzzKeyForm(f *testing.F) {
	for _, c := range formCases {
		f.Add(c.method == "PUT", c.contentType == formContentType, c.body, c.query)
	}
	f.Fuzz(func(t *testing.T, put, formType bool, body, query string) {
		method, ct := "GET", "text/plain"
		if put {
			method = "PUT"
		}
		if formType {
			ct = formContentType
		}
		if strings.ContainsAny(query, " #\r\n\x00") || len(body) > formFastMaxBody {
			t.Skip("not a query a request line can carry")
		}
		fast, got, want, slowErr := decodeBoth(t, method, ct, body, query)
		if fast && slowErr {
			t.Fatalf("fast decoder accepted what ParseForm refuses: body %q query %q", body, query)
		}
		if got != want {
			t.Fatalf("body %q query %q: fast %v\n got %+v\nwant %+v", body, query, fast, got, want)
		}
	})
}
