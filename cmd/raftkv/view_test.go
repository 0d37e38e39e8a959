package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/simulator"
)

// viewTestScript is a short lab run: three members, two clients.
func viewTestScript() simulator.Script {
	return simulator.Script{Version: 1, Seed: 7, Members: 3, Clients: 2, Duration: "1s"}
}

// scriptTrace runs sc and returns its trace.
func scriptTrace(t testing.TB, sc simulator.Script) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := simulator.RunScript(sc, &buf); err != nil {
		t.Fatalf("RunScript: %v", err)
	}
	return buf.Bytes()
}

// startView serves src on an httptest server.
func startView(t *testing.T, src viewSource) *httptest.Server {
	t.Helper()
	vs, err := newViewServer(src)
	if err != nil {
		t.Fatalf("newViewServer: %v", err)
	}
	srv := httptest.NewServer(vs)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), body
}

func postJSON(t *testing.T, url string, body any) (int, []byte) {
	t.Helper()
	var in io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		in = bytes.NewReader(b)
	}
	res, err := http.Post(url, "application/json", in)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

func TestViewServesPageTraceAndAssets(t *testing.T) {
	trace := scriptTrace(t, viewTestScript())
	srv := startView(t, viewSource{Trace: trace, Name: "run.jsonl"})
	for _, c := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html", `<svg id="cluster"`},
		{"/viewer/main.js", "javascript", "window.raftkvView"},
		{"/viewer/model.js", "javascript", "export function applyLine"},
		{"/viewer/view.css", "text/css", ".member"},
		{"/api/info", "application/json", `"lab":false`},
		{"/api/tours", "application/json", `"name":"figure8"`},
	} {
		code, ct, body := get(t, srv.URL+c.path)
		if code != http.StatusOK || !strings.Contains(ct, c.contentType) || !strings.Contains(string(body), c.contains) {
			t.Errorf("GET %s: %d %s, want 200 %s containing %q", c.path, code, ct, c.contentType, c.contains)
		}
	}
	code, _, body := get(t, srv.URL+"/trace")
	if code != http.StatusOK || !bytes.Equal(body, trace) {
		t.Errorf("GET /trace: %d, %d bytes; want the %d bytes of the trace", code, len(body), len(trace))
	}
	if code, _, _ := get(t, srv.URL+"/history.html"); code != http.StatusNotFound {
		t.Errorf("GET /history.html without a history: %d, want 404", code)
	}
	if code, _ := postJSON(t, srv.URL+"/api/lab/action", simulator.Action{Do: "crash", Member: 1}); code != http.StatusConflict {
		t.Errorf("a lab action on a trace file: %d, want 409", code)
	}
	if code, _, _ := get(t, srv.URL+"/nothing"); code != http.StatusNotFound {
		t.Errorf("GET /nothing: %d, want 404", code)
	}
}

func TestViewServesALongTraceCompressed(t *testing.T) {
	defer func(old int) { gzipMinBytes = old }(gzipMinBytes)
	gzipMinBytes = 0
	trace := scriptTrace(t, viewTestScript())
	srv := startView(t, viewSource{Trace: trace})
	res, err := http.Get(srv.URL + "/trace")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	// Go's client asked for gzip and undid it.
	if !res.Uncompressed || !bytes.Equal(body, trace) || res.Header.Get("X-Trace-Bytes") != strconv.Itoa(len(trace)) {
		t.Errorf("GET /trace: uncompressed %v, %d bytes (X-Trace-Bytes %s); want the %d bytes of the trace, gzipped on the wire",
			res.Uncompressed, len(body), res.Header.Get("X-Trace-Bytes"), len(trace))
	}
}

func TestViewRefusesOtherHosts(t *testing.T) {
	vs, err := newViewServer(viewSource{Trace: scriptTrace(t, viewTestScript())})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{"127.0.0.1:8080": 200, "localhost:1": 200, "[::1]:9": 200, "evil.example:80": 403, "10.0.0.1": 403} {
		req := httptest.NewRequest(http.MethodGet, "/api/info", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		vs.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: %d, want %d", host, rec.Code, want)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/api/lab/reset", nil)
	req.Host = "127.0.0.1:8080"
	req.Header.Set("Origin", "http://evil.example")
	rec := httptest.NewRecorder()
	vs.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("a cross-origin POST: %d, want 403", rec.Code)
	}
}

func TestViewRejectsBadTraceNamingFileAndLine(t *testing.T) {
	good := scriptTrace(t, viewTestScript())
	lines := strings.SplitAfter(string(good), "\n")
	header := lines[0]
	dir := t.TempDir()
	for _, c := range []struct {
		name, content, want string
	}{
		{"empty", "", "empty.jsonl: empty"},
		{"not-json", "hello\n", "not-json.jsonl:1: trace header"},
		{"version1", `{"kind":"header","format":"raftkv-trace","version":1,"seed":1,"members":3,"slots":3}` + "\n", "version1.jsonl:1: trace header: version 1"},
		{"other", `{"event":"x"}` + "\n", "other.jsonl:1: trace header: not a raftkv trace"},
		{"broken-line", header + lines[1] + "{\"n\":1,\n", "broken-line.jsonl:3: not a JSON object"},
		{"no-kind", header + `{"n":1}` + "\n", "no-kind.jsonl:2: a trace line needs n and kind"},
		{"deliver-unsent", header + lines[1] + `{"n":1,"t_us":5,"kind":"deliver","id":999,"from":1,"to":2,"msg":"MsgApp"}` + "\n", "deliver-unsent.jsonl:3: event 1: deliver of message 999, which is not in flight"},
	} {
		path := filepath.Join(dir, c.name+".jsonl")
		if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err := runView(context.Background(), &out, viewFlags{addr: "127.0.0.1:0"}, []string{path})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	var out bytes.Buffer
	if err := runView(context.Background(), &out, viewFlags{}, nil); err == nil || !strings.Contains(err.Error(), "--tour") {
		t.Errorf("no source: %v, want a hint at the sources", err)
	}
	if err := runView(context.Background(), &out, viewFlags{tour: "nope"}, nil); err == nil || !strings.Contains(err.Error(), "figure8") {
		t.Errorf("unknown tour: %v, want the list of tours", err)
	}
}

// externalURL finds URLs in a page; the SVG namespace is a name, not a
// request.
var externalURL = regexp.MustCompile(`https?://[^\s"'<>)]+`)

func TestViewOutWritesOneSelfContainedFile(t *testing.T) {
	dir := t.TempDir()
	tracePath := filepath.Join(dir, "run.jsonl")
	trace := scriptTrace(t, viewTestScript())
	if err := os.WriteFile(tracePath, trace, 0o644); err != nil {
		t.Fatal(err)
	}
	// porcupine's page beside the trace is embedded too.
	if err := os.WriteFile(filepath.Join(dir, "run.history.html"), []byte("<html><script>alert(1)</script></html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run.html")
	var stdout bytes.Buffer
	if err := runView(context.Background(), &stdout, viewFlags{out: out}, []string{tracePath}); err != nil {
		t.Fatalf("view --out: %v", err)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, u := range externalURL.FindAllString(html, -1) {
		if u != "http://www.w3.org/2000/svg" {
			t.Errorf("--out page refers to %s", u)
		}
	}
	// The page's icon is a data: URL, which loads nothing (and keeps the
	// browser from asking for /favicon.ico).
	bare := strings.Replace(html, `<link rel="icon" href="data:,">`, "", 1)
	for _, attr := range []string{` src=`, ` href=`, `import `} {
		if strings.Contains(bare, attr) {
			t.Errorf("--out page has %q: it must load nothing", attr)
		}
	}
	for _, want := range []string{`id="raftkv-trace"`, `id="raftkv-info"`, `id="raftkv-history"`, `"standalone":true`, "class ClusterView", "function applyLine", ".member"} {
		if !strings.Contains(html, want) {
			t.Errorf("--out page lacks %q", want)
		}
	}
	if n := strings.Count(strings.ToLower(html), "</script>"); n != 4 {
		t.Errorf("--out page has %d script ends, want 4 (trace, info, history, the code)", n)
	}
	if err := runView(context.Background(), &stdout, viewFlags{out: out, lab: true}, nil); err == nil {
		t.Errorf("--out with --lab: no error")
	}
}

func TestViewLabActionAppendsAndReplaysDeterministically(t *testing.T) {
	sc := viewTestScript()
	src, err := runScriptSource(sc)
	if err != nil {
		t.Fatal(err)
	}
	srv := startView(t, src)
	if code, body := postJSON(t, srv.URL+"/api/lab/action", map[string]any{"do": "crash", "member": 1, "t_us": 400000}); code != http.StatusOK {
		t.Fatalf("lab action: %d %s", code, body)
	}
	// An action before the last one is clamped to its time.
	if code, body := postJSON(t, srv.URL+"/api/lab/action", map[string]any{"do": "restart", "member": 1, "t_us": 100}); code != http.StatusOK {
		t.Fatalf("lab action: %d %s", code, body)
	}
	if code, body := postJSON(t, srv.URL+"/api/lab/action", map[string]any{"do": "explode", "member": 1}); code != http.StatusBadRequest || !strings.Contains(string(body), "unknown action") {
		t.Errorf("a bad action: %d %s, want 400 naming it", code, body)
	}
	if code, body := postJSON(t, srv.URL+"/api/lab/action", map[string]any{"do": "crash", "member": 1, "bogus": 1}); code != http.StatusBadRequest {
		t.Errorf("an action with an unknown field: %d %s, want 400", code, body)
	}
	_, _, saved := get(t, srv.URL+"/api/lab/script")
	got, err := simulator.ParseScript(saved)
	if err != nil {
		t.Fatalf("saved lab run: %v\n%s", err, saved)
	}
	want := []simulator.Action{{AtUs: 400000, Do: "crash", Member: 1}, {AtUs: 400000, Do: "restart", Member: 1}}
	if !reflect.DeepEqual(got.Actions, want) {
		t.Errorf("saved actions %+v, want %+v", got.Actions, want)
	}
	if got.Duration != "3.4s" {
		t.Errorf("duration %q, want 3.4s (the last action and 3 s)", got.Duration)
	}
	// The trace served is the saved Script's run, byte for byte.
	_, _, served := get(t, srv.URL+"/trace")
	if replay := scriptTrace(t, got); !bytes.Equal(served, replay) {
		t.Errorf("the saved lab run replays to %d bytes, the page was served %d", len(replay), len(served))
	}
	if !bytes.Contains(served, []byte(`"kind":"action"`)) {
		t.Errorf("the lab's trace has no action line")
	}
	// Run further, then reset.
	postJSON(t, srv.URL+"/api/lab/further", nil)
	_, _, saved = get(t, srv.URL+"/api/lab/script")
	if got, _ := simulator.ParseScript(saved); got.Duration != "6.4s" {
		t.Errorf("after running further: duration %q, want 6.4s", got.Duration)
	}
	postJSON(t, srv.URL+"/api/lab/reset", nil)
	_, _, served = get(t, srv.URL+"/trace")
	if !bytes.Equal(served, src.Trace) {
		t.Errorf("after a reset the trace is not the first run's")
	}
}

func TestViewLabActionsInARowAllLand(t *testing.T) {
	src, err := runScriptSource(viewTestScript())
	if err != nil {
		t.Fatal(err)
	}
	srv := startView(t, src)
	var wg sync.WaitGroup
	for k := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			postJSON(t, srv.URL+"/api/lab/action", map[string]any{"do": "write", "member": 1, "key": "/k", "value": string(rune('a' + k)), "t_us": 200000})
		}()
	}
	wg.Wait()
	_, _, saved := get(t, srv.URL+"/api/lab/script")
	if got, err := simulator.ParseScript(saved); err != nil || len(got.Actions) != 4 {
		t.Errorf("four actions at once: %d kept (%v)", len(got.Actions), err)
	}
}

func TestViewOpensTour(t *testing.T) {
	srv := startView(t, viewSource{Trace: scriptTrace(t, viewTestScript())})
	code, body := postJSON(t, srv.URL+"/api/tour?name=election", nil)
	if code != http.StatusOK {
		t.Fatalf("open tour: %d %s", code, body)
	}
	var info viewInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if !info.Lab || info.Script == nil || info.Script.Name != "election" || len(info.Script.Captions) == 0 {
		t.Errorf("after opening a tour: %+v", info)
	}
	tour, _ := simulator.Tour("election")
	_, _, served := get(t, srv.URL+"/trace")
	if !bytes.Equal(served, scriptTrace(t, tour)) {
		t.Errorf("the tour's trace is not its Script's run")
	}
	if code, _ := postJSON(t, srv.URL+"/api/tour?name=nope", nil); code != http.StatusBadRequest {
		t.Errorf("an unknown tour: %d, want 400", code)
	}
}

func TestServeViewPrintsURLAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- serveView(ctx, out, "127.0.0.1:0", viewSource{Trace: scriptTrace(t, viewTestScript())})
	}()
	url := ""
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		url = regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(out.String())
	}
	if url == "" {
		t.Fatalf("no URL printed: %q", out.String())
	}
	if code, _, _ := get(t, url+"api/info"); code != http.StatusOK {
		t.Errorf("GET api/info: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serveView: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serveView did not return after its context ended")
	}
}
