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
// RAFTKV_CHROMIUM names one elsewhere (a Chrome on a Mac), or "none".
func findChromium() (string, string) {
	if p := os.Getenv("RAFTKV_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("RAFTKV_CHROMIUM=%s: no such browser", p)
		}
		return p, ""
	}
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
		chromedp.WindowSize(1400, 1000),
	}
	b := &browser{}
	// Chromium now and then fails to start on a loaded machine; try again
	// before giving up.
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		profile := chromedp.UserDataDir(t.TempDir())
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, profile)...)
		ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(b.event))
		// The first Run starts the browser (the network domain is on).
		if err = chromedp.Do(ctx, chromedp.Navigate("about:blank")); err == nil {
			t.Cleanup(func() {
				cancelCtx()
				cancelAlloc()
			})
			b.ctx = ctx
			break
		}
		cancelCtx()
		cancelAlloc()
		t.Logf("start chromium %s (attempt %d): %v", path, attempt, err)
	}
	if err != nil {
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

// open navigates to url (allowed as an origin, with every page this
// browser opened before: a late request of the last page, such as its
// icon, is not foreign) and waits for the page to show its trace.
func (b *browser) open(t testing.TB, url string) {
	t.Helper()
	b.mu.Lock()
	b.allowed = append(b.allowed, url)
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
	// The open time and how far entries leaving have faded differ from
	// run to run: leave them out of the picture.
	b.eval(t, `(() => {
	  const s = document.getElementById("load-status");
	  s.textContent = s.textContent.replace(/, opened in .*$/, "");
	  document.querySelectorAll(".entry.leaving").forEach((e) => e.remove());
	})()`, nil)
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
			// Click the leader: the details panel shows its whole state.
			if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`g.member[data-id="%d"]`, leaderIn(st))))); err != nil {
				t.Fatal(err)
			}
			var details string
			b.eval(t, `document.getElementById("details-body").textContent`, &details)
			if !strings.Contains(details, fmt.Sprintf("member S%d", leaderIn(st))) || !strings.Contains(details, "currentTerm") {
				t.Errorf("clicking the leader shows %q", details)
			}
			break
		}
	}
	// The step buttons: each lands on a later line of its kind.
	for _, c := range []struct {
		step  string
		kinds []string
	}{{"event", nil}, {"message", []string{"send", "deliver", "drop"}}, {"commit", []string{"commit"}},
		{"fault", []string{"fault", "heal", "crash", "restart"}}, {"leader", []string{"member"}}} {
		var from, to struct {
			Line int `json:"line"`
		}
		b.eval(t, fmt.Sprintf("window.raftkvView.seek(%d)", samples[1]), &from)
		if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-step=%q][data-dir="1"]`, c.step)))); err != nil {
			t.Fatal(err)
		}
		b.eval(t, "window.raftkvView.position()", &to)
		var kind string
		b.eval(t, fmt.Sprintf("window.raftkvView.line(%d).kind", to.Line), &kind)
		if to.Line <= from.Line || (c.kinds != nil && !slices.Contains(c.kinds, kind)) {
			t.Errorf("step to the next %s: from line %d to line %d (%s)", c.step, from.Line, to.Line, kind)
		}
	}
	var pageEvents []uint64
	b.eval(t, "window.raftkvView.events()", &pageEvents)
	if !slices.Equal(pageEvents, events) {
		t.Errorf("the page has %d events, the trace %d", len(pageEvents), len(events))
	}
	b.check(t)
}

// TestViewerComparisonCatchesAWrongReplay is the test of the test: the
// page is fed a trace with one line altered (a leader made a follower)
// while Go rebuilds from the original, and the comparison must report it.
func TestViewerComparisonCatchesAWrongReplay(t *testing.T) {
	b := newBrowser(t)
	trace := recordTrace(t, 7, 3, 3*time.Second)
	lines := bytes.SplitAfter(trace, []byte("\n"))
	altered := -1
	for k := len(lines) / 3; k < len(lines); k++ {
		if bytes.Contains(lines[k], []byte(`"kind":"member"`)) && bytes.Contains(lines[k], []byte(`"role":"leader"`)) {
			altered = k
			break
		}
	}
	if altered < 0 {
		t.Fatal("the trace has no leader to alter")
	}
	var n struct {
		N uint64 `json:"n"`
	}
	if err := json.Unmarshal(lines[altered], &n); err != nil {
		t.Fatal(err)
	}
	wrong := slices.Clone(lines)
	wrong[altered] = bytes.Replace(lines[altered], []byte(`"role":"leader"`), []byte(`"role":"follower"`), 1)
	b.open(t, serveViewTest(t, viewSource{Trace: bytes.Join(wrong, nil)}))
	_, states, err := simulator.RebuildAt(bytes.NewReader(trace), []uint64{n.N})
	if err != nil {
		t.Fatal(err)
	}
	diffs := compareAt(t, b, n.N, states[n.N])
	var model, shownLeader bool
	for _, d := range diffs {
		model = model || strings.Contains(d, "the page's model has member")
		shownLeader = shownLeader || strings.Contains(d, "the page shows leader")
	}
	if !model || !shownLeader {
		t.Errorf("line %d altered (a leader made a follower): the comparison reported %q; want the model's member and the leader shown", altered+1, diffs)
	} else {
		t.Logf("a wrong replay is reported: %s", strings.Join(diffs, "; "))
	}
	b.check(t)
}

// waitLoad waits until the page has loaded a trace after loads of them.
func waitLoad(t testing.TB, b *browser, loads int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var now struct {
			Loads  int    `json:"loads"`
			Status string `json:"status"`
		}
		b.eval(t, `({loads: window.raftkvView.loads(), status: document.getElementById("lab-status").textContent})`, &now)
		if now.Loads > loads {
			return
		}
		if strings.Contains(now.Status, ": ") && !strings.HasSuffix(now.Status, "running…") && !strings.HasSuffix(now.Status, ": done") {
			t.Fatalf("the lab refused: %s", now.Status)
		}
	}
	var status string
	b.eval(t, `document.getElementById("lab-status").textContent + " / " + document.getElementById("load-status").textContent`, &status)
	t.Fatalf("the page did not reload the run: %s", status)
}

// labClick carries out a lab action on member (and to the next member,
// for the actions on a link) through the page's buttons.
func labClick(t testing.TB, b *browser, action string, member uint64) {
	t.Helper()
	var loads int
	b.eval(t, "window.raftkvView.loads()", &loads)
	if err := chromedp.Do(b.ctx,
		chromedp.SetValue(chromedp.ID("lab-member"), fmt.Sprint(member)),
		chromedp.SetValue(chromedp.ID("lab-to"), fmt.Sprint(member%3+1)),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-lab=%q]`, action))),
	); err != nil {
		t.Fatalf("lab %s %d: %v", action, member, err)
	}
	waitLoad(t, b, loads)
}

// shownAtEnd moves the page to the end of the run and reads the picture.
func shownAtEnd(t testing.TB, b *browser) shown {
	t.Helper()
	var got shown
	b.eval(t, fmt.Sprintf("(window.raftkvView.seekTime(1e12), %s)", readShown), &got)
	return got
}

func memberShown(s shown, id uint64) (shownMember, shownLog) {
	var m shownMember
	var l shownLog
	for _, x := range s.Members {
		if x.ID == id {
			m = x
		}
	}
	for _, x := range s.Logs {
		if x.ID == id {
			l = x
		}
	}
	return m, l
}

func TestViewerLabCrashAndRestartTheLeader(t *testing.T) {
	b := newBrowser(t)
	src, err := runScriptSource(simulator.Script{Version: 1, Seed: 11, Members: 3, Duration: "3s"})
	if err != nil {
		t.Fatal(err)
	}
	url := serveViewTest(t, src)
	b.open(t, url)
	var before shown
	b.eval(t, fmt.Sprintf("(window.raftkvView.seekTime(1500000), %s)", readShown), &before)
	old := before.Leader
	if old == 0 {
		t.Fatalf("no leader at 1.5 s: %+v", before)
	}
	labClick(t, b, "crash", old)
	after := shownAtEnd(t, b)
	if m, _ := memberShown(after, old); m.Status != "down" {
		t.Errorf("S%d crashed: shown %+v", old, m)
	}
	if after.Leader == 0 || after.Leader == old {
		t.Fatalf("after S%d crashed the page shows leader %d, want a new one", old, after.Leader)
	}
	screenshot(t, b, "viewer-lab")
	// Restart it 1.5 s later: it comes back a follower and catches up.
	b.eval(t, "window.raftkvView.seekTime(3000000)", nil)
	labClick(t, b, "restart", old)
	end := shownAtEnd(t, b)
	m, l := memberShown(end, old)
	_, leaderLog := memberShown(end, end.Leader)
	if m.Status != "up" || m.Role != "follower" || end.Leader == old {
		t.Errorf("S%d restarted: shown %+v, leader %d", old, m, end.Leader)
	}
	if l.Last != leaderLog.Last || l.Commit != leaderLog.Commit || l.Last == 0 {
		t.Errorf("S%d did not catch up: log to %d commit %d, the leader's to %d commit %d", old, l.Last, l.Commit, leaderLog.Last, leaderLog.Commit)
	}
	// Save the lab run as the page's link does, and replay it.
	var href string
	b.eval(t, `document.getElementById("lab-save").href`, &href)
	_, _, saved := get(t, href)
	sc, err := simulator.ParseScript(saved)
	if err != nil {
		t.Fatalf("the saved lab run: %v\n%s", err, saved)
	}
	if len(sc.Actions) != 2 || sc.Actions[0].Do != "crash" || sc.Actions[1].Do != "restart" || sc.Actions[0].Member != old {
		t.Errorf("the saved lab run's actions: %+v", sc.Actions)
	}
	_, _, served := get(t, strings.TrimSuffix(url, "/")+"/trace")
	var replay bytes.Buffer
	res, err := simulator.RunScript(sc, &replay)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(replay.Bytes(), served) {
		t.Errorf("the saved lab run replays to %d bytes, unlike the %d the page showed", replay.Len(), len(served))
	}
	again, _ := simulator.RunScript(sc, nil)
	if again.TraceHash != res.TraceHash {
		t.Errorf("the saved lab run's trace hash %x, then %x", res.TraceHash, again.TraceHash)
	}
	b.check(t)
}

func TestViewerOpensEveryTour(t *testing.T) {
	b := newBrowser(t)
	b.open(t, serveViewTest(t, viewSource{Trace: recordTrace(t, 5, 3, time.Second)}))
	withHistory := 0
	defer func() {
		if withHistory == 0 {
			t.Errorf("no tour linked porcupine's page of its clients' history")
		}
	}()
	for _, tour := range simulator.Tours() {
		var loads int
		b.eval(t, "window.raftkvView.loads()", &loads)
		if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-tour=%q]`, tour.Name)))); err != nil {
			t.Fatalf("tour %s: %v", tour.Name, err)
		}
		waitLoad(t, b, loads)
		var name string
		b.eval(t, "window.raftkvView.info().script.name", &name)
		if name != tour.Name {
			t.Errorf("opened tour %s, the page shows %q", tour.Name, name)
		}
		// A tour's clients' history is in porcupine's page, linked from the
		// client lane.
		var history struct {
			Has    bool   `json:"has"`
			Hidden bool   `json:"hidden"`
			Href   string `json:"href"`
		}
		b.eval(t, `(() => { const a = document.getElementById("history-link-clients");
		  return {has: window.raftkvView.info().history, hidden: a.hidden, href: a.href}; })()`, &history)
		switch {
		case !history.Has && !history.Hidden:
			t.Errorf("tour %s has no history, yet the client lane links one", tour.Name)
		case history.Has && (history.Hidden || !strings.HasSuffix(history.Href, "/history.html")):
			t.Errorf("tour %s: the client lane's link to porcupine's page: %+v", tour.Name, history)
		case history.Has:
			withHistory++
			if code, _, page := get(t, history.Href); code != 200 || !bytes.Contains(page, []byte("<html")) {
				t.Errorf("tour %s: %s: %d", tour.Name, history.Href, code)
			}
		}
		for k, c := range tour.Captions {
			var text string
			b.eval(t, fmt.Sprintf(`(window.raftkvView.seekTime(%d), document.getElementById("caption-text").textContent)`, c.AtUs), &text)
			if text != c.Text && (k+1 == len(tour.Captions) || tour.Captions[k+1].AtUs != c.AtUs) {
				t.Errorf("tour %s at %dus shows caption %q, want %q", tour.Name, c.AtUs, text, c.Text)
			}
			if k == len(tour.Captions)/2 {
				screenshot(t, b, "viewer-tour-"+tour.Name)
			}
		}
		b.check(t)
	}
}

func TestViewerOutPageWorksOffline(t *testing.T) {
	b := newBrowser(t)
	trace := recordTrace(t, 9, 5, 2*time.Second)
	page, err := standalonePage(viewSource{Trace: trace, Name: "seed9.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "run.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	b.open(t, "file://"+path)
	samples := sampleEvents(traceEvents(t, trace), 12)
	_, states, err := simulator.RebuildAt(bytes.NewReader(trace), samples)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range samples {
		for _, d := range compareAt(t, b, n, states[n]) {
			t.Error(d)
		}
	}
	var labHidden bool
	b.eval(t, `document.getElementById("lab").hidden && document.getElementById("tours").hidden`, &labHidden)
	if !labHidden {
		t.Errorf("the --out page shows the lab or the tours, which need the server")
	}
	b.check(t)
}

// largeTrace runs a seed for 185 s of virtual time with five members and
// no faults: 1.21 M simulator events, of which 1.03 M leave trace lines
// (the rest are ticks that change nothing): 1.31 M lines, 134 MB.
func largeTrace(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	simulator.Run(simulator.Config{Seed: 3, Members: 5, Duration: 185 * time.Second, NoFaults: true, Trace: &buf})
	return buf.Bytes()
}

// openLarge opens a large trace in the page and returns how long the page
// took (fetch, index, first picture), its event count and the slowest of a
// few seeks across it.
func openLarge(t testing.TB, b *browser, url string) (openMs float64, events int, seekMs float64) {
	t.Helper()
	// Leave the last page first, so that its trace is not in memory.
	if err := chromedp.Do(b.ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	b.open(t, url)
	b.eval(t, "window.raftkvView.openMs()", &openMs)
	var r struct {
		Events int     `json:"events"`
		SeekMs float64 `json:"seekMs"`
	}
	b.eval(t, `(() => {
	  const v = window.raftkvView, ev = v.events();
	  let worst = 0;
	  for (let k = 0; k < 40; k++) {
	    const n = ev[Math.floor((k * 7919 % 40) / 40 * ev.length)];
	    const t0 = performance.now();
	    v.seek(n);
	    worst = Math.max(worst, performance.now() - t0);
	  }
	  return { events: ev.length, seekMs: worst };
	})()`, &r)
	return openMs, r.Events, r.SeekMs
}

func TestViewerOpensAMillionEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a million-event trace takes 18 s to simulate")
	}
	b := newBrowser(t)
	start := time.Now()
	trace := largeTrace(t)
	simulated := time.Since(start)
	url := serveViewTest(t, viewSource{Trace: trace})
	openMs, events, seekMs := openLarge(t, b, url)
	if events < 1_000_000 {
		t.Errorf("the page indexed %d events with lines, want a million or more", events)
	}
	t.Logf("a trace of %d events (%d MB, simulated in %v) opens in %.0f ms; the slowest of 40 seeks across it took %.1f ms",
		events, len(trace)>>20, simulated.Round(time.Second), openMs, seekMs)
	b.check(t)
}

// BenchmarkViewerOpen reports how long the page takes to open a trace of
// about a million events: fetch it, index it (checkpoints every 2048
// lines) and draw the first picture.
func BenchmarkViewerOpen(b *testing.B) {
	br := newBrowser(b)
	url := serveViewTest(b, viewSource{Trace: largeTrace(b)})
	var total, worstSeek float64
	var events int
	b.ResetTimer()
	for range b.N {
		openMs, n, seekMs := openLarge(b, br, url)
		total += openMs
		worstSeek = max(worstSeek, seekMs)
		events = n
	}
	b.ReportMetric(total/float64(b.N), "open-ms")
	b.ReportMetric(worstSeek, "seek-ms")
	b.ReportMetric(float64(events), "events-with-lines")
}

// TestViewerLabButtons presses every lab button once: each must reach the
// simulator as a valid action and come back as a new run.
func TestViewerLabButtons(t *testing.T) {
	b := newBrowser(t)
	src, err := runScriptSource(simulator.Script{Version: 1, Seed: 11, Members: 3, Duration: "2s"})
	if err != nil {
		t.Fatal(err)
	}
	url := serveViewTest(t, src)
	b.open(t, url)
	b.eval(t, "window.raftkvView.seekTime(1000000)", nil)
	var leader uint64
	b.eval(t, `Number(document.getElementById("cluster").dataset.leader)`, &leader)
	follower := leader%3 + 1
	for _, c := range []struct {
		button string
		member uint64
	}{
		{"write", leader}, {"read", follower}, {"read-local", follower}, {"pause", follower}, {"resume", follower},
		{"isolate", follower}, {"heal", 0}, {"cut", follower}, {"drop-next", leader}, {"partition", 0}, {"heal", 0},
		{"timeout", follower}, {"transfer", follower}, {"add", 0}, {"remove", leader},
	} {
		labClick(t, b, c.button, max(c.member, 1))
		var status string
		b.eval(t, `document.getElementById("lab-status").textContent`, &status)
		if !strings.HasSuffix(status, ": done") {
			t.Errorf("lab %s: %s", c.button, status)
		}
	}
	for _, id := range []string{"lab-further", "lab-reset"} {
		var loads int
		b.eval(t, "window.raftkvView.loads()", &loads)
		if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.ID(id))); err != nil {
			t.Fatal(err)
		}
		waitLoad(t, b, loads)
	}
	_, _, saved := get(t, strings.TrimSuffix(url, "/")+"/api/lab/script")
	if sc, err := simulator.ParseScript(saved); err != nil || len(sc.Actions) != 0 {
		t.Errorf("after a reset the lab run has actions %+v (%v)", sc.Actions, err)
	}
	b.check(t)
}

// TestViewerModelMatchesRebuildOnManyRuns compares the page's replay model
// alone with simulator.RebuildAt on more runs: seeds with crashes, torn
// writes, snapshots sent and logs compacted, membership changes (seed 2 of
// five members), and every tour.
func TestViewerModelMatchesRebuildOnManyRuns(t *testing.T) {
	b := newBrowser(t)
	runs := map[string][]byte{
		"seed 1": recordTrace(t, 1, 5, 8*time.Second),
		"seed 2": recordTrace(t, 2, 5, 8*time.Second),
		"seed 3": recordTrace(t, 3, 3, 8*time.Second),
	}
	for _, tour := range simulator.Tours() {
		runs["tour "+tour.Name] = scriptTrace(t, tour)
	}
	compacted := false
	for name, trace := range runs {
		samples := sampleEvents(traceEvents(t, trace), 150)
		_, want, err := simulator.RebuildAt(bytes.NewReader(trace), samples)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b.open(t, serveViewTest(t, viewSource{Trace: trace}))
		list, _ := json.Marshal(samples)
		var got []simulator.ClusterState
		b.eval(t, fmt.Sprintf("%s.map((n) => window.raftkvView.stateAfter(n))", list), &got)
		if len(got) != len(samples) {
			t.Fatalf("%s: %d states for %d events", name, len(got), len(samples))
		}
		for k, n := range samples {
			w, g := normalState(want[n]), normalState(got[k])
			if !reflect.DeepEqual(w, g) {
				t.Errorf("%s, event %d: the page's model\n  %+v\nGo\n  %+v", name, n, g, w)
				break
			}
			for _, m := range w.Members {
				compacted = compacted || m.First > 1
			}
		}
		b.check(t)
	}
	if !compacted {
		t.Errorf("no sampled state had a compacted log: the runs check too little")
	}
}
