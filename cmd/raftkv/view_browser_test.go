package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/raftkv/raftkv/simulator"
)

// The viewer in a real browser: headless Chromium driven over the DevTools
// protocol (chromedp). The page's replay model and what the page shows are
// compared with simulator.RebuildAt, the Go reference, at sampled events;
// the lab is driven through the page's buttons; every tour is opened; the
// page must not request anything outside its own origin.

var updateViewImages = flag.Bool("update", false, "write the viewer's screenshots to docs/images/")

// findChromium returns a headless-capable Chromium, or "" and why not.
func findChromium() (string, string) {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-headless-shell", "/usr/lib/chromium/chromium"} {
		if _, err := os.Stat(p); err == nil {
			return p, ""
		}
	}
	for _, name := range []string{"chromium", "chromium-headless-shell", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, ""
		}
	}
	return "", "no Chromium (/usr/bin/chromium or chromium-headless-shell): .ci/run installs Debian's chromium; apt-get install chromium to run this test"
}

// browser is one headless Chromium for a test, with the page's errors and
// the requests it made outside the origins allowed.
type browser struct {
	ctx context.Context
	mu  sync.Mutex
	// allowed are the URL prefixes the page may request.
	allowed  []string
	foreign  []string
	problems []string
}

// newBrowser starts Chromium; it stops with the test.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	path, why := findChromium()
	if path == "" {
		t.Skip(why)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{}
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(b.event))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	b.ctx = ctx
	// The first Run starts the browser (the network domain is on).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return b
}

// event notes the page's requests, exceptions and console errors; it
// runs on chromedp's reading goroutine and must return at once.
func (b *browser) event(ev any) {
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.noteRequest(e.Request.URL)
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		b.note(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, text))
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range e.Args {
				if a.Description != "" {
					parts = append(parts, a.Description)
				} else {
					parts = append(parts, string(a.Value))
				}
			}
			b.note("console.error: " + strings.Join(parts, " "))
		}
	}
}

func (b *browser) noteRequest(url string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if strings.HasPrefix(url, "data:") || strings.HasPrefix(url, "blob:") || url == "about:blank" {
		return
	}
	for _, a := range b.allowed {
		if strings.HasPrefix(url, a) {
			return
		}
	}
	b.foreign = append(b.foreign, url)
}

func (b *browser) note(problem string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, problem)
}

// check fails the test for the page's errors and foreign requests so far.
func (b *browser) check(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range b.foreign {
		t.Errorf("the page requested %s, outside its origin", u)
	}
	for _, p := range b.problems {
		t.Errorf("the page: %s", p)
	}
	b.foreign, b.problems = nil, nil
}

// open navigates to url (allowed as the origin) and waits for the page to
// show its trace.
func (b *browser) open(t testing.TB, url string) {
	t.Helper()
	b.mu.Lock()
	b.allowed = []string{url}
	b.mu.Unlock()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	b.eval(t, `window.raftkvView.ready.then(() => true)`, nil)
}

// eval evaluates a JavaScript expression (awaiting a promise) into out.
func (b *browser) eval(t testing.TB, expr string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.120s: %v", expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("evaluate %.120s: %v (%s)", expr, err, raw)
		}
	}
}

// shown is what the page shows, read back from the data attributes of the
// picture.
type shown struct {
	Leader   uint64         `json:"leader"`
	Commit   uint64         `json:"commit"`
	InFlight int            `json:"inFlight"`
	Members  []shownMember  `json:"members"`
	Logs     []shownLog     `json:"logs"`
	Messages []shownMessage `json:"messages"`
}

type shownMember struct {
	ID     uint64 `json:"id"`
	Status string `json:"status"`
	Role   string `json:"role"`
	Term   uint64 `json:"term"`
	Vote   uint64 `json:"vote"`
	Commit uint64 `json:"commit"`
}

type shownLog struct {
	ID     uint64 `json:"id"`
	Last   uint64 `json:"last"`
	Commit uint64 `json:"commit"`
	// Mark is the commit mark drawn (-1: none).
	Mark  int64 `json:"mark"`
	Boxes int   `json:"boxes"`
}

type shownMessage struct {
	ID    uint64 `json:"id"`
	Msg   string `json:"msg"`
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
	State string `json:"state"`
}

// readShown is the JavaScript that reads the picture's data attributes.
const readShown = `(() => {
  const svg = document.getElementById("cluster");
  const num = (e, k) => Number(e.dataset[k] || 0);
  return {
    leader: num(svg, "leader"), commit: num(svg, "commit"), inFlight: num(svg, "inFlight"),
    members: [...svg.querySelectorAll("g.member")].map((g) => ({
      id: num(g, "id"), status: g.dataset.status, role: g.dataset.role, term: num(g, "term"),
      vote: num(g, "vote"), commit: num(g, "commit") })),
    logs: [...svg.querySelectorAll("g.log-row")].map((g) => {
      const mark = g.querySelector(".commit-mark");
      return { id: num(g, "id"), last: num(g, "last"), commit: num(g, "commit"),
        mark: mark ? Number(mark.dataset.commit) : -1, boxes: g.querySelectorAll("rect.entry").length };
    }),
    messages: [...svg.querySelectorAll("g.msg")].map((g) => ({
      id: num(g, "id"), msg: g.dataset.msg, from: num(g, "from"), to: num(g, "to"), state: g.dataset.state })),
  };
})()`

// normalState makes a ClusterState comparable: empty and missing lists
// are the same.
func normalState(s simulator.ClusterState) simulator.ClusterState {
	norm := func(ids []uint64) []uint64 {
		if len(ids) == 0 {
			return nil
		}
		return ids
	}
	s.Members = slices.Clone(s.Members)
	for i := range s.Members {
		m := &s.Members[i]
		m.Terms, m.Voters, m.Learners, m.Outgoing = norm(m.Terms), norm(m.Voters), norm(m.Learners), norm(m.Outgoing)
	}
	s.InFlight = norm(s.InFlight)
	if len(s.Cut) == 0 {
		s.Cut = nil
	}
	return s
}

// leaderIn is the member the page calls the leader: up, leading, in the
// highest term.
func leaderIn(s simulator.ClusterState) uint64 {
	var best *simulator.MemberState
	for i := range s.Members {
		m := &s.Members[i]
		if m.Role == "leader" && m.Status == "up" && (best == nil || m.Term > best.Term) {
			best = m
		}
	}
	if best == nil {
		return 0
	}
	return best.ID
}

// compareAt moves the page to event n and compares its model's state and
// what it shows with want (Go's). It returns the differences.
func compareAt(t testing.TB, b *browser, n uint64, want simulator.ClusterState) []string {
	t.Helper()
	var diffs []string
	var model simulator.ClusterState
	b.eval(t, fmt.Sprintf("window.raftkvView.stateAfter(%d)", n), &model)
	want, model = normalState(want), normalState(model)
	if !reflect.DeepEqual(model, want) {
		for i := range want.Members {
			if i < len(model.Members) && !reflect.DeepEqual(model.Members[i], want.Members[i]) {
				diffs = append(diffs, fmt.Sprintf("event %d: the page's model has member %+v, Go %+v", n, model.Members[i], want.Members[i]))
			}
		}
		if model.Commit != want.Commit || model.N != want.N || model.AtUs != want.AtUs {
			diffs = append(diffs, fmt.Sprintf("event %d: the page's model is at event %d, %dus, commit %d; Go at %d, %dus, commit %d",
				n, model.N, model.AtUs, model.Commit, want.N, want.AtUs, want.Commit))
		}
		if !reflect.DeepEqual(model.InFlight, want.InFlight) || !reflect.DeepEqual(model.Cut, want.Cut) {
			diffs = append(diffs, fmt.Sprintf("event %d: the page's model has in flight %v cut %v; Go %v, %v", n, model.InFlight, model.Cut, want.InFlight, want.Cut))
		}
		if len(diffs) == 0 {
			diffs = append(diffs, fmt.Sprintf("event %d: the page's model %+v, Go %+v", n, model, want))
		}
	}
	var got shown
	b.eval(t, fmt.Sprintf("(window.raftkvView.seek(%d), %s)", n, readShown), &got)
	if l := leaderIn(want); got.Leader != l {
		diffs = append(diffs, fmt.Sprintf("event %d: the page shows leader %d, the trace %d", n, got.Leader, l))
	}
	if got.Commit != want.Commit {
		diffs = append(diffs, fmt.Sprintf("event %d: the page shows commit %d, the trace %d", n, got.Commit, want.Commit))
	}
	byID := map[uint64]simulator.MemberState{}
	started := 0
	for _, m := range want.Members {
		byID[m.ID] = m
		if m.Status != "" {
			started++
		}
	}
	if len(got.Members) != started || len(got.Logs) != started {
		diffs = append(diffs, fmt.Sprintf("event %d: the page shows %d members and %d logs, the trace has %d started", n, len(got.Members), len(got.Logs), started))
	}
	for _, m := range got.Members {
		w := byID[m.ID]
		if m.Status != w.Status || m.Role != w.Role || m.Term != w.Term || m.Vote != w.Vote || m.Commit != w.Commit {
			diffs = append(diffs, fmt.Sprintf("event %d: the page shows S%d %s %s term %d vote %d commit %d; the trace %s %s term %d vote %d commit %d",
				n, m.ID, m.Status, m.Role, m.Term, m.Vote, m.Commit, w.Status, w.Role, w.Term, w.Vote, w.Commit))
		}
	}
	for _, l := range got.Logs {
		w := byID[l.ID]
		if l.Last != w.Last || l.Commit != w.Commit {
			diffs = append(diffs, fmt.Sprintf("event %d: the page shows S%d's log to %d, commit %d; the trace to %d, commit %d", n, l.ID, l.Last, l.Commit, w.Last, w.Commit))
		}
		if l.Mark >= 0 && uint64(l.Mark) != w.Commit {
			diffs = append(diffs, fmt.Sprintf("event %d: S%d's commit mark is at %d, the trace's commit %d", n, l.ID, l.Mark, w.Commit))
		}
		if l.Mark < 0 && w.Commit > 0 && w.Commit+1 >= w.Last && w.Last > 0 {
			diffs = append(diffs, fmt.Sprintf("event %d: S%d has no commit mark (commit %d, last %d)", n, l.ID, w.Commit, w.Last))
		}
	}
	if got.InFlight != len(want.InFlight) {
		diffs = append(diffs, fmt.Sprintf("event %d: the page counts %d messages in flight, the trace %d", n, got.InFlight, len(want.InFlight)))
	}
	flying := 0
	for _, m := range got.Messages {
		if m.State != "flying" {
			continue
		}
		flying++
		if !slices.Contains(want.InFlight, m.ID) {
			diffs = append(diffs, fmt.Sprintf("event %d: the page draws message %d (%s %d→%d) in flight; the trace does not have it in flight", n, m.ID, m.Msg, m.From, m.To))
		}
	}
	if flying != min(len(want.InFlight), 300) {
		diffs = append(diffs, fmt.Sprintf("event %d: the page draws %d messages in flight, the trace has %d", n, flying, len(want.InFlight)))
	}
	return diffs
}

// sampleEvents picks up to count events of a trace, spread evenly, with
// the first and the last.
func sampleEvents(events []uint64, count int) []uint64 {
	if len(events) <= count {
		return events
	}
	var out []uint64
	for k := range count {
		out = append(out, events[k*(len(events)-1)/(count-1)])
	}
	return slices.Compact(out)
}

// recordTrace runs a seed with faults and returns its trace.
func recordTrace(t testing.TB, seed uint64, members int, d time.Duration) []byte {
	t.Helper()
	faults, err := simulator.ParseFaults("all")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	simulator.Run(simulator.Config{Seed: seed, Members: members, Duration: d, Faults: faults, Trace: &buf})
	return buf.Bytes()
}

// traceEvents lists the event numbers of a trace's lines.
func traceEvents(t testing.TB, trace []byte) []uint64 {
	t.Helper()
	var events []uint64
	for k, line := range bytes.Split(bytes.TrimSpace(trace), []byte("\n")) {
		if k == 0 {
			continue
		}
		var l struct {
			N uint64 `json:"n"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 || events[len(events)-1] != l.N {
			events = append(events, l.N)
		}
	}
	return events
}

// serveViewTest serves src to the browser on 127.0.0.1.
func serveViewTest(t testing.TB, src viewSource) string {
	t.Helper()
	vs, err := newViewServer(src)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(vs)
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// screenshot writes the page to docs/images/name.png with -update.
func screenshot(t testing.TB, b *browser, name string) {
	t.Helper()
	if !*updateViewImages {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join("..", "..", "docs", "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestViewerReplayMatchesRebuild(t *testing.T) {
	b := newBrowser(t)
	trace := recordTrace(t, 7, 3, 3*time.Second)
	b.open(t, serveViewTest(t, viewSource{Trace: trace, Name: "seed7.jsonl"}))
	events := traceEvents(t, trace)
	samples := sampleEvents(events, 60)
	_, states, err := simulator.RebuildAt(bytes.NewReader(trace), samples)
	if err != nil {
		t.Fatal(err)
	}
	inFlight := 0
	for _, n := range samples {
		if len(states[n].InFlight) > 0 {
			inFlight++
		}
		for _, d := range compareAt(t, b, n, states[n]) {
			t.Error(d)
		}
	}
	if inFlight == 0 {
		t.Errorf("no sampled event had a message in flight: the test checks too little")
	}
	// The picture for the docs: a moment with a leader and messages on
	// their way.
	for _, n := range samples[len(samples)/3:] {
		if st := states[n]; leaderIn(st) != 0 && len(st.InFlight) >= 3 {
			b.eval(t, fmt.Sprintf("window.raftkvView.seek(%d)", n), nil)
			screenshot(t, b, "viewer-replay")
			break
		}
	}
	var pageEvents []uint64
	b.eval(t, "window.raftkvView.events()", &pageEvents)
	if !slices.Equal(pageEvents, events) {
		t.Errorf("the page has %d events, the trace %d", len(pageEvents), len(events))
	}
	b.check(t)
}
