package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftkv/raftkv/simulator"
	"github.com/spf13/cobra"
)

// The viewer: `raftkv view` serves a simulated run (a version-2 trace, see
// the simulator's package doc) to a browser on 127.0.0.1, where a page
// replays it — members, logs, messages in flight, a timeline — and, when
// the run is a Script, lets a student drive it (the lab). The page is plain
// JavaScript modules and SVG embedded in the binary (viewer/); the server
// only hands out the trace and reruns the simulator for the lab, so every
// picture comes from the real code and every lab run replays from its
// Script.

//go:embed viewer
var viewerFiles embed.FS

// viewModules are the page's JavaScript modules in dependency order: the
// order --out concatenates them in.
var viewModules = []string{"format.js", "model.js", "index.js", "draw.js", "timeline.js", "main.js"}

// viewSource is what the view server starts with: a trace, porcupine's
// page of its clients' history (optional) and, for a lab, the Script the
// trace is the run of.
type viewSource struct {
	Trace   []byte
	History []byte
	Script  *simulator.Script
	// Name names the trace where an error must (a file name).
	Name string
}

// viewFlags are the flags of raftkv view.
type viewFlags struct {
	addr, out, tour, history string
	lab                      bool
	seed                     uint64
	members                  int
}

func init() {
	var f viewFlags
	cmd := &cobra.Command{
		Use:   "view [FILE.jsonl]",
		Short: "Watch a simulated run in a browser: replay a trace, take a guided tour, or drive a lab",
		Long: `Serve a simulated run to a browser on 127.0.0.1 and print its URL. The page
shows the members, their logs and the messages between them, with a timeline
to scrub; it needs no network. The run is a trace file written by
raftkv sim --trace (version 2), a guided tour, or a lab: a cluster a student
drives from the page (crash a member, cut links, write a key), whose run is a
Script that raftkv sim --replay replays to the same bytes.

Examples:
  raftkv view run.jsonl                       # replay a trace (run.history.html beside it links porcupine's page)
  raftkv view --tour figure8                  # a guided tour (the page lists all of them)
  raftkv view --lab --seed 3 --members 5      # a lab: drive a cluster of 5 from the page
  raftkv view run.jsonl --out run.html        # one self-contained HTML file to mail or publish
  raftkv sim --seed 7 --view                  # run a seed and watch it in one step`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runView(cmd.Context(), cmd.OutOrStdout(), f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:0", "the address to serve on (the default: loopback, a free port)")
	fl.StringVar(&f.out, "out", "", "write one self-contained HTML file (trace included, no lab) instead of serving")
	fl.StringVar(&f.tour, "tour", "", "open a guided tour: "+strings.Join(tourNames(), ", "))
	fl.StringVar(&f.history, "history", "", "porcupine's page of the run's history (default: FILE.history.html when it exists)")
	fl.BoolVar(&f.lab, "lab", false, "start a lab: a cluster driven from the page (with --seed and --members)")
	fl.Uint64Var(&f.seed, "seed", 1, "the lab's seed")
	fl.IntVar(&f.members, "members", 3, "the lab's cluster size (1 to 7)")
	rootCmd.AddCommand(cmd)
}

// tourNames lists the shipped tours.
func tourNames() []string {
	var names []string
	for _, t := range simulator.Tours() {
		names = append(names, t.Name)
	}
	return names
}

// runView is raftkv view.
func runView(ctx context.Context, stdout io.Writer, f viewFlags, args []string) error {
	src, err := viewSourceFor(f, args)
	if err != nil {
		return err
	}
	if f.out != "" {
		page, err := standalonePage(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.out, page, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.out, err)
		}
		fmt.Fprintf(stdout, "wrote %s (%d bytes): open it in a browser, no server needed\n", f.out, len(page))
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	return serveView(ctx, stdout, f.addr, src)
}

// viewSourceFor turns the command line into what to show.
func viewSourceFor(f viewFlags, args []string) (viewSource, error) {
	sources := 0
	for _, given := range []bool{len(args) == 1, f.tour != "", f.lab} {
		if given {
			sources++
		}
	}
	if sources != 1 {
		return viewSource{}, fmt.Errorf("view: give one of a trace file, --tour NAME or --lab (tours: %s)", strings.Join(tourNames(), ", "))
	}
	switch {
	case f.tour != "":
		sc, err := simulator.Tour(f.tour)
		if err != nil {
			return viewSource{}, fmt.Errorf("view: %w", err)
		}
		return runScriptSource(sc)
	case f.lab:
		if f.out != "" {
			return viewSource{}, fmt.Errorf("view: --lab needs the server: a lab cannot be written with --out")
		}
		return runScriptSource(simulator.Script{Version: 1, Seed: f.seed, Members: f.members, Duration: "3s"})
	}
	name := args[0]
	trace, err := os.ReadFile(name)
	if err != nil {
		return viewSource{}, fmt.Errorf("view: %w", err)
	}
	if err := checkTrace(name, trace); err != nil {
		return viewSource{}, err
	}
	src := viewSource{Trace: trace, Name: name}
	historyPath := f.history
	if historyPath == "" {
		historyPath = strings.TrimSuffix(name, filepath.Ext(name)) + ".history.html"
		if _, err := os.Stat(historyPath); err != nil {
			historyPath = ""
		}
	}
	if historyPath != "" {
		if src.History, err = os.ReadFile(historyPath); err != nil {
			return viewSource{}, fmt.Errorf("view: history page: %w", err)
		}
	}
	return src, nil
}

// runScriptSource runs a Script (a tour or a lab) and returns its trace,
// history page and the Script itself, which makes the page a lab.
func runScriptSource(sc simulator.Script) (viewSource, error) {
	trace, history, err := runViewScript(sc)
	if err != nil {
		return viewSource{}, err
	}
	name := sc.Name
	if name == "" {
		name = fmt.Sprintf("lab (seed %d)", sc.Seed)
	}
	return viewSource{Trace: trace, History: history, Script: &sc, Name: name}, nil
}

// runViewScript runs sc and returns its trace and, for key-space members,
// porcupine's page of the clients' history.
func runViewScript(sc simulator.Script) (trace, history []byte, err error) {
	if _, err := sc.Config(); err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "raftkv-view-")
	if err != nil {
		return nil, nil, fmt.Errorf("temporary directory for the history page: %w", err)
	}
	defer os.RemoveAll(dir)
	historyPath := ""
	if sc.Kind == "" || sc.Kind == "kv" {
		historyPath = filepath.Join(dir, "history.html")
	}
	var buf bytes.Buffer
	if _, err := simulator.RunScriptWithHistory(sc, &buf, historyPath); err != nil {
		return nil, nil, err
	}
	if historyPath != "" {
		history, _ = os.ReadFile(historyPath) // absent when the run had no client operation
	}
	return buf.Bytes(), history, nil
}

// fullCheckBytes is the size of trace checkTrace rebuilds in full; beyond
// it (a run of minutes: the Go rebuild takes seconds) it checks only that
// each line is a JSON trace line, and the page reports the rest, naming
// the line as well.
const fullCheckBytes = 32 << 20

// checkTrace reads a trace as the page will, and names the file and line of
// the first thing wrong with it.
func checkTrace(name string, trace []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(trace))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	if !sc.Scan() {
		return fmt.Errorf("%s: empty: not a raftkv trace", name)
	}
	r, err := simulator.NewRebuilder(sc.Bytes())
	if err != nil {
		return fmt.Errorf("%s:1: %w (write one with raftkv sim --trace FILE)", name, err)
	}
	full := len(trace) <= fullCheckBytes
	var peek struct {
		N    *uint64 `json:"n"`
		Kind string  `json:"kind"`
	}
	line := 1
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if !full {
			if !json.Valid(text) || !bytes.HasPrefix(text, []byte(`{"n":`)) || !bytes.Contains(text, []byte(`"kind":"`)) {
				return fmt.Errorf("%s:%d: not a trace line (a JSON object with n and kind): %.80q", name, line, text)
			}
			continue
		}
		peek.N, peek.Kind = nil, ""
		if err := json.Unmarshal(text, &peek); err != nil {
			return fmt.Errorf("%s:%d: not a JSON object: %w", name, line, err)
		}
		if peek.N == nil || peek.Kind == "" {
			return fmt.Errorf("%s:%d: a trace line needs n and kind", name, line)
		}
		if err := r.Apply(text); err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return nil
}

// serveView serves src on addr (127.0.0.1:0 picks a free port), prints
// the page's URL on stdout and blocks until ctx is done. A source with a
// Script makes the page a lab.
func serveView(ctx context.Context, stdout io.Writer, addr string, src viewSource) error {
	vs, err := newViewServer(src)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("view: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: vs, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "raftkv view: open %s (Ctrl-C stops it)\n", viewURL(ln.Addr()))
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		return nil
	case err := <-done:
		return fmt.Errorf("view: %w", err)
	}
}

// viewURL is the page's URL on a listener's address.
func viewURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// viewServer serves the page, the trace and the lab's API. Its fields
// change only under mu: a lab action replaces the trace.
type viewServer struct {
	mu sync.Mutex
	// trace is the run shown, history porcupine's page of it (nil: none).
	trace, history []byte
	// traceGzip is trace compressed, for a long trace (nil for a short
	// one): a hundred megabytes download in a tenth of the time.
	traceGzip []byte
	// script is the run's Script when the page is a lab (nil: a replay
	// only); initial is the one the lab resets to.
	script, initial *simulator.Script
	// name names the run (a file or a tour).
	name string
	// generation counts the traces served, so that a page knows its
	// trace was replaced.
	generation int
	files      http.Handler
	// runs serialises the reruns of lab actions and tour switches, so
	// that two clicks in a row both land in the Script.
	runs sync.Mutex
}

// newViewServer checks src and makes its server.
func newViewServer(src viewSource) (*viewServer, error) {
	name := src.Name
	if name == "" {
		name = "trace"
	}
	if err := checkTrace(name, src.Trace); err != nil {
		return nil, err
	}
	if src.Name == "" {
		// A run handed over by raftkv sim --view: name it by its seed.
		var h simulator.TraceHeader
		first, _, _ := bytes.Cut(src.Trace, []byte("\n"))
		if json.Unmarshal(first, &h) == nil {
			name = fmt.Sprintf("seed %d", h.Seed)
		}
	}
	assets, err := fs.Sub(viewerFiles, "viewer")
	if err != nil {
		panic(err) // embedded at build time
	}
	vs := &viewServer{trace: src.Trace, traceGzip: gzipTrace(src.Trace), history: src.History, name: name,
		files: http.StripPrefix("/viewer/", http.FileServer(http.FS(assets)))}
	if src.Script != nil {
		sc := cloneScript(*src.Script)
		initial := cloneScript(sc)
		vs.script, vs.initial = &sc, &initial
	}
	return vs, nil
}

// cloneScript copies a Script deeply enough that appending to one's
// actions leaves the other alone.
func cloneScript(sc simulator.Script) simulator.Script {
	sc.Actions = append([]simulator.Action(nil), sc.Actions...)
	sc.Captions = append([]simulator.Caption(nil), sc.Captions...)
	return sc
}

// ServeHTTP routes the page's requests. Only requests naming a loopback
// host are served, so that a web site cannot reach a lab through DNS
// rebinding.
func (vs *viewServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackHost(r.Host) {
		http.Error(w, "raftkv view serves 127.0.0.1 only", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodPost {
		if origin := r.Header.Get("Origin"); origin != "" && origin != "http://"+r.Host {
			http.Error(w, "cross-origin request", http.StatusForbidden)
			return
		}
	}
	switch r.URL.Path {
	case "/", "/index.html":
		vs.servePage(w, r)
	case "/trace":
		vs.mu.Lock()
		trace, gz := vs.trace, vs.traceGzip
		vs.mu.Unlock()
		h := w.Header()
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Trace-Bytes", strconv.Itoa(len(trace)))
		if gz != nil && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.Set("Content-Encoding", "gzip")
			h.Set("Content-Length", strconv.Itoa(len(gz)))
			_, _ = w.Write(gz)
			return
		}
		h.Set("Content-Length", strconv.Itoa(len(trace)))
		_, _ = w.Write(trace)
	case "/history.html":
		vs.mu.Lock()
		history := vs.history
		vs.mu.Unlock()
		if history == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(history)
	case "/api/info":
		writeJSON(w, vs.info())
	case "/api/tours":
		writeJSON(w, tourList())
	case "/api/tour":
		vs.post(w, r, vs.openTour)
	case "/api/lab/action":
		vs.post(w, r, vs.labAction)
	case "/api/lab/further":
		vs.post(w, r, vs.labFurther)
	case "/api/lab/reset":
		vs.post(w, r, vs.labReset)
	case "/api/lab/script":
		vs.mu.Lock()
		sc := vs.script
		vs.mu.Unlock()
		if sc == nil {
			http.Error(w, "no lab: this run is not a Script", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="lab-run.json"`)
		_, _ = w.Write(sc.Marshal())
	default:
		if strings.HasPrefix(r.URL.Path, "/viewer/") {
			vs.files.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (vs *viewServer) servePage(w http.ResponseWriter, _ *http.Request) {
	page, err := viewerFiles.ReadFile("viewer/index.html")
	if err != nil {
		panic(err) // embedded at build time
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(page)
}

// viewInfo is /api/info: what the page shows besides the trace.
type viewInfo struct {
	Name       string          `json:"name"`
	Lab        bool            `json:"lab"`
	Standalone bool            `json:"standalone"`
	History    bool            `json:"history"`
	Generation int             `json:"generation"`
	Script     *viewScriptInfo `json:"script,omitempty"`
	Tours      []viewTour      `json:"tours"`
}

// viewScriptInfo is what the page needs of a Script: its words and
// actions (the trace holds the rest).
type viewScriptInfo struct {
	Name     string              `json:"name,omitempty"`
	Title    string              `json:"title,omitempty"`
	Summary  string              `json:"summary,omitempty"`
	Seed     uint64              `json:"seed"`
	Members  int                 `json:"members"`
	Duration string              `json:"duration"`
	Actions  []simulator.Action  `json:"actions"`
	Captions []simulator.Caption `json:"captions"`
}

// viewTour is one tour in the page's list.
type viewTour struct {
	Name    string `json:"name"`
	Title   string `json:"title"`
	Summary string `json:"summary"`
}

func tourList() []viewTour {
	tours := []viewTour{}
	for _, t := range simulator.Tours() {
		tours = append(tours, viewTour{Name: t.Name, Title: t.Title, Summary: t.Summary})
	}
	return tours
}

func (vs *viewServer) info() viewInfo {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	info := viewInfo{Name: vs.name, Lab: vs.script != nil, History: vs.history != nil,
		Generation: vs.generation, Tours: tourList()}
	if vs.script != nil {
		info.Script = scriptInfo(*vs.script)
	}
	return info
}

func scriptInfo(sc simulator.Script) *viewScriptInfo {
	members := sc.Members
	if members == 0 {
		members = 3
	}
	si := &viewScriptInfo{Name: sc.Name, Title: sc.Title, Summary: sc.Summary, Seed: sc.Seed, Members: members,
		Duration: sc.Duration, Actions: sc.Actions, Captions: sc.Captions}
	if si.Actions == nil {
		si.Actions = []simulator.Action{}
	}
	if si.Captions == nil {
		si.Captions = []simulator.Caption{}
	}
	return si
}

// post runs a POST endpoint: do changes the run; its error is the user's
// (400) unless it says otherwise. The answer is the new /api/info.
func (vs *viewServer) post(w http.ResponseWriter, r *http.Request, do func(r *http.Request) error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if err := do(r); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errNoLab) {
			status = http.StatusConflict
		}
		http.Error(w, err.Error(), status)
		return
	}
	writeJSON(w, vs.info())
}

var errNoLab = errors.New("no lab: this run is a trace file, not a Script (open a tour, or start raftkv view --lab)")

// openTour switches the run to a tour (?name=).
func (vs *viewServer) openTour(r *http.Request) error {
	sc, err := simulator.Tour(r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	vs.runs.Lock()
	defer vs.runs.Unlock()
	trace, history, err := runViewScript(sc)
	if err != nil {
		return fmt.Errorf("tour %s: %w", sc.Name, err)
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	initial := cloneScript(sc)
	vs.script, vs.initial = &sc, &initial
	vs.name = sc.Name
	vs.replace(trace, history)
	return nil
}

// labStep is how far a lab run goes past its last action.
const labStep = 3 * time.Second

// labAction appends the Action in the request's body to the lab's Script
// and reruns it from the start (the simulator is deterministic: the run up
// to the action is the one the student saw). Its time is clamped to the
// last action's, as actions go in time order.
func (vs *viewServer) labAction(r *http.Request) error {
	var a simulator.Action
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return fmt.Errorf("lab action: %w", err)
	}
	return vs.changeLab(func(sc *simulator.Script) error {
		if a.AtUs < 0 {
			a.AtUs = 0
		}
		if n := len(sc.Actions); n > 0 && a.AtUs < sc.Actions[n-1].AtUs {
			a.AtUs = sc.Actions[n-1].AtUs
		}
		sc.Actions = append(sc.Actions, a)
		return extendScript(sc, time.Duration(a.AtUs)*time.Microsecond+labStep)
	})
}

// labFurther runs the lab on: 3 s more of virtual time.
func (vs *viewServer) labFurther(*http.Request) error {
	return vs.changeLab(func(sc *simulator.Script) error {
		d, err := time.ParseDuration(sc.Duration)
		if err != nil {
			return fmt.Errorf("lab: duration %q: %w", sc.Duration, err)
		}
		return extendScript(sc, d+labStep)
	})
}

// labReset goes back to the Script the lab started from.
func (vs *viewServer) labReset(*http.Request) error {
	return vs.changeLab(func(sc *simulator.Script) error {
		vs.mu.Lock()
		defer vs.mu.Unlock()
		*sc = cloneScript(*vs.initial)
		return nil
	})
}

// extendScript makes sc last at least until d.
func extendScript(sc *simulator.Script, d time.Duration) error {
	cur, err := time.ParseDuration(sc.Duration)
	if err != nil {
		return fmt.Errorf("lab: duration %q: %w", sc.Duration, err)
	}
	if d > cur {
		sc.Duration = d.String()
	}
	return nil
}

// changeLab applies change to a copy of the lab's Script, reruns it and,
// if that worked, makes it the lab's run. Runs are serialised.
func (vs *viewServer) changeLab(change func(*simulator.Script) error) error {
	vs.runs.Lock()
	defer vs.runs.Unlock()
	vs.mu.Lock()
	if vs.script == nil {
		vs.mu.Unlock()
		return errNoLab
	}
	sc := cloneScript(*vs.script)
	vs.mu.Unlock()
	if err := change(&sc); err != nil {
		return err
	}
	trace, history, err := runViewScript(sc)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.script = &sc
	vs.replace(trace, history)
	return nil
}

// replace makes trace the run shown. Callers hold mu.
func (vs *viewServer) replace(trace, history []byte) {
	vs.trace, vs.traceGzip, vs.history = trace, gzipTrace(trace), history
	vs.generation++
}

// gzipMinBytes is the size from which the trace is served compressed (a
// variable for the tests).
var gzipMinBytes = 4 << 20

// gzipTrace compresses a long trace (nil for a short one), fast rather
// than small: traces compress eight to one at level 2.
func gzipTrace(trace []byte) []byte {
	if len(trace) < gzipMinBytes {
		return nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, 2)
	if err != nil {
		panic(err) // a valid level
	}
	_, _ = zw.Write(trace)
	if err := zw.Close(); err != nil {
		panic(err) // writes to memory
	}
	return buf.Bytes()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// The page's two references to its assets, which standalonePage replaces
// with the assets themselves.
const (
	pageStyleRef  = `<link rel="stylesheet" href="viewer/view.css">`
	pageScriptRef = `<script type="module" src="viewer/main.js"></script>`
)

// standalonePage is the page as one HTML file (raftkv view --out): the
// style and the modules inlined, the trace and the run's info embedded in
// data script tags, porcupine's page (if any) base64-encoded for the page
// to open as a blob. It makes no request at all; the lab is off.
//
// The modules are concatenated in viewModules order, without their
// imports of each other and their export keywords: they share one module
// scope, so their top-level names are unique across files.
func standalonePage(src viewSource) ([]byte, error) {
	name := src.Name
	if name == "" {
		name = "trace"
	}
	if err := checkTrace(name, src.Trace); err != nil {
		return nil, err
	}
	page := readViewerFile("index.html")
	style := readViewerFile("view.css")
	var script strings.Builder
	for _, m := range viewModules {
		for line := range strings.Lines(readViewerFile(m)) {
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, "import ") && strings.Contains(trimmed, `from "./`) {
				continue
			}
			script.WriteString(strings.TrimPrefix(line, "export "))
		}
		script.WriteString("\n")
	}
	if strings.Contains(strings.ToLower(script.String()), "</script") {
		panic("viewer modules contain </script") // they are ours: keep them free of it
	}
	info := viewInfo{Name: filepath.Base(name), Standalone: true, History: src.History != nil, Tours: []viewTour{}}
	if src.Script != nil {
		info.Script = scriptInfo(*src.Script)
	}
	infoJSON, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	var data strings.Builder
	data.WriteString(`<script type="application/x-ndjson" id="raftkv-trace">`)
	// Inside a JSON line '<' is in a string, where \u003c means the same:
	// the trace cannot end the script tag early.
	data.WriteString(strings.ReplaceAll(string(src.Trace), "<", `\u003c`))
	data.WriteString("</script>\n")
	data.WriteString(`<script type="application/json" id="raftkv-info">`)
	data.WriteString(strings.ReplaceAll(string(infoJSON), "<", `\u003c`))
	data.WriteString("</script>\n")
	if src.History != nil {
		data.WriteString(`<script type="application/base64" id="raftkv-history">`)
		data.WriteString(base64.StdEncoding.EncodeToString(src.History))
		data.WriteString("</script>\n")
	}
	if !strings.Contains(page, pageStyleRef) || !strings.Contains(page, pageScriptRef) {
		panic("viewer/index.html lost its asset references") // tested by TestViewOut
	}
	page = strings.Replace(page, pageStyleRef, "<style>\n"+style+"</style>", 1)
	page = strings.Replace(page, pageScriptRef, data.String()+"<script type=\"module\">\n"+script.String()+"</script>", 1)
	return []byte(page), nil
}

// readViewerFile returns one of the page's embedded files.
func readViewerFile(name string) string {
	b, err := viewerFiles.ReadFile("viewer/" + name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return string(b)
}
