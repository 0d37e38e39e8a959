package rpc

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The scenario files in testdata/api hold the client API's behaviour as
// data: each case is a command, "----", and the answer it must produce,
// byte for byte (status, headers, body), ending at a blank line. Lines
// starting with '#' are comments. Run with -rewrite to regenerate the
// answers, then read the diff against the spec.
//
// Commands:
//
//	METHOD TARGET [-d FORM] [-j JSON] [-H Name:value]...   one request; -d sends a
//	                                     form body, -j a JSON body
//	watch NAME TARGET                    start a GET in the background; print its
//	                                     status and headers once they arrive
//	next NAME                            print the next line of NAME's body
//	await NAME                           print the rest of NAME's body once it ends
//	close NAME                           the client of NAME goes away
//	watchers N                           wait until the store holds N watchers
//	advance DURATION                     move the clock
//	expire                               apply an expiry sweep at the clock's time
//	repeat N METHOD TARGET [...]         send the request N times; print the last answer
//
// Date, Content-Length of streamed bodies and the CORS headers (tested
// apart) are left out of the printed headers.

var rewrite = flag.Bool("rewrite", false, "rewrite the expected answers of testdata/api")

func TestAPIScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/api/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScenarioFile(t, file)
		})
	}
}

type scenarioCase struct {
	// pre is the text before the command (comments, blank lines).
	pre      string
	command  string
	expected string
	line     int
}

func parseScenarioFile(t *testing.T, file string) []scenarioCase {
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	var cases []scenarioCase
	var pre strings.Builder
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" || strings.HasPrefix(line, "#") {
			pre.WriteString(line + "\n")
			continue
		}
		c := scenarioCase{pre: pre.String(), command: line, line: i + 1}
		pre.Reset()
		i++
		require.Less(t, i, len(lines), "%s:%d: command without ----", file, c.line)
		require.Equal(t, "----", lines[i], "%s:%d: command must be followed by ----", file, c.line)
		var out []string
		for i+1 < len(lines) && lines[i+1] != "" {
			i++
			out = append(out, lines[i])
		}
		if len(out) > 0 {
			c.expected = strings.Join(out, "\n") + "\n"
		}
		cases = append(cases, c)
	}
	// Keep a trailing comment block when rewriting.
	if rest := strings.TrimRight(pre.String(), "\n"); rest != "" {
		cases = append(cases, scenarioCase{pre: rest + "\n"})
	}
	return cases
}

func runScenarioFile(t *testing.T, file string) {
	cases := parseScenarioFile(t, file)
	h := newScenarioHarness(t)
	var rewritten strings.Builder
	for _, c := range cases {
		rewritten.WriteString(c.pre)
		if c.command == "" {
			continue
		}
		got := h.run(c.command)
		rewritten.WriteString(c.command + "\n----\n" + got)
		if !*rewrite && got != c.expected {
			t.Errorf("%s:%d: %s\n--- want\n%s--- got\n%s", file, c.line, c.command, c.expected, got)
		}
	}
	if *rewrite {
		out := strings.TrimRight(rewritten.String(), "\n") + "\n"
		require.NoError(t, os.WriteFile(file, []byte(out), 0o644))
	}
}

// scenarioHarness serves an API on a fake backend over real HTTP, so that
// framing, HEAD handling and redirects are Go's net/http, as in etcd.
type scenarioHarness struct {
	t       *testing.T
	backend *fakeBackend
	clock   *fakeClock
	api     *API
	server  *httptest.Server
	client  *http.Client
	watches map[string]*scenarioWatch
}

type scenarioWatch struct {
	cancel context.CancelFunc
	resp   *http.Response
	body   *bufio.Reader
}

func newScenarioHarness(t *testing.T) *scenarioHarness {
	backend := newFakeBackend(t)
	clock := &fakeClock{now: fakeEpoch}
	api, err := NewAPI(backend, APIOptions{Clock: clock.Now})
	require.NoError(t, err)
	srv := httptest.NewServer(api)
	h := &scenarioHarness{
		t: t, backend: backend, clock: clock, api: api, server: srv,
		client: &http.Client{
			// Show redirects instead of following them.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		},
		watches: map[string]*scenarioWatch{},
	}
	t.Cleanup(func() {
		for _, w := range h.watches {
			w.cancel()
		}
		api.Close()
		srv.Close()
	})
	return h
}

func (h *scenarioHarness) run(command string) string {
	fields := strings.Fields(command)
	switch fields[0] {
	case "watch":
		return h.startWatch(fields[1], fields[2:])
	case "next":
		return h.nextLine(fields[1])
	case "await":
		return h.await(fields[1])
	case "close":
		h.watches[fields[1]].cancel()
		delete(h.watches, fields[1])
		return ""
	case "watchers":
		return h.waitWatchers(fields[1])
	case "advance":
		d, err := time.ParseDuration(fields[1])
		require.NoError(h.t, err)
		h.clock.Advance(d)
		return ""
	case "expire":
		var out strings.Builder
		for _, ev := range h.backend.expire(h.clock.Now()) {
			fmt.Fprintf(&out, "expired %s at %d\n", ev.Node.Key, ev.Index())
		}
		return out.String()
	case "repeat":
		n, err := strconv.Atoi(fields[1])
		require.NoError(h.t, err)
		var out string
		for range n {
			out = h.request(fields[2:])
		}
		return out
	default:
		return h.request(fields)
	}
}

// newRequest builds the request of a command's fields.
func (h *scenarioHarness) newRequest(ctx context.Context, fields []string) *http.Request {
	method, target := fields[0], fields[1]
	var body io.Reader
	headers := http.Header{}
	for i := 2; i+1 < len(fields); i += 2 {
		switch fields[i] {
		case "-d":
			body = strings.NewReader(fields[i+1])
			headers.Set("Content-Type", "application/x-www-form-urlencoded")
		case "-j":
			body = strings.NewReader(fields[i+1])
			headers.Set("Content-Type", "application/json")
		case "-H":
			name, value, _ := strings.Cut(fields[i+1], ":")
			headers.Set(name, value)
		default:
			h.t.Fatalf("unknown option %q", fields[i])
		}
	}
	// Build the URL by hand: the target is sent exactly as written, unclean
	// paths and bad escapes included.
	req, err := http.NewRequestWithContext(ctx, method, h.server.URL, body)
	require.NoError(h.t, err)
	path, query, _ := strings.Cut(target, "?")
	req.URL.Path, req.URL.RawPath = "", ""
	req.URL.Opaque, req.URL.RawQuery = path, query
	for name, values := range headers {
		req.Header[name] = values
	}
	return req
}

func (h *scenarioHarness) request(fields []string) string {
	req := h.newRequest(context.Background(), fields)
	resp, err := h.client.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return renderHead(resp, true) + renderBody(string(body))
}

func (h *scenarioHarness) startWatch(name string, fields []string) string {
	ctx, cancel := context.WithCancel(context.Background())
	req := h.newRequest(ctx, fields)
	resp, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(h.t, err)
	h.watches[name] = &scenarioWatch{cancel: cancel, resp: resp, body: bufio.NewReader(resp.Body)}
	return renderHead(resp, false)
}

// readTimeout bounds how long a scenario waits for a watch's body: the
// fake member answers at once, so a body still open after it stays open.
const readTimeout = 2 * time.Second

func (h *scenarioHarness) nextLine(name string) string {
	w := h.watches[name]
	line := make(chan string, 1)
	go func() {
		s, _ := w.body.ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		return renderBody(s)
	case <-time.After(readTimeout):
		return "(no event)\n"
	}
}

func (h *scenarioHarness) await(name string) string {
	w := h.watches[name]
	delete(h.watches, name)
	defer w.cancel()
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(w.body)
		rest <- string(b)
	}()
	select {
	case s := <-rest:
		if s == "" {
			return "(empty body)\n"
		}
		return renderBody(s)
	case <-time.After(readTimeout):
		return "(still open)\n"
	}
}

func (h *scenarioHarness) waitWatchers(want string) string {
	n, err := strconv.Atoi(want)
	require.NoError(h.t, err)
	deadline := time.Now().Add(readTimeout)
	for h.backend.watcherCount() != n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return fmt.Sprintf("watchers: %d\n", h.backend.watcherCount())
}

// renderHead prints the status line and the headers, sorted.
func renderHead(resp *http.Response, complete bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", resp.Status)
	var names []string
	for name := range resp.Header {
		switch {
		case name == "Date", strings.HasPrefix(name, "Access-Control-"):
		default:
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range resp.Header[name] {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	if complete && slices.Contains(resp.TransferEncoding, "chunked") {
		b.WriteString("Transfer-Encoding: chunked\n")
	}
	if !complete && resp.ContentLength >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\n", resp.ContentLength)
	}
	return b.String()
}

// renderBody prints a body line by line after "| ", marking a missing
// final newline.
func renderBody(body string) string {
	if body == "" {
		return ""
	}
	var b strings.Builder
	lines := strings.SplitAfter(body, "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		b.WriteString("| " + strings.TrimSuffix(l, "\n") + "\n")
	}
	if !strings.HasSuffix(body, "\n") {
		b.WriteString("(no newline at end of body)\n")
	}
	return b.String()
}
