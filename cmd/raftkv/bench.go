package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkv/raftkv/client"
)

// benchFlags are the flags of raftkv bench.
type benchFlags struct {
	endpoints      string
	cacert         string
	cert, key      string
	clients        int
	duration       time.Duration
	warmup         time.Duration
	requestTimeout time.Duration
	valueSize      int
	keySpace       int
	keyPrefix      string
	op             string
	quorum         bool
	leaderOnly     bool
	noPrefill      bool
	seed           uint64
	output         string
	cpuProfile     string
	// sweep, when set, runs the bench once per client count in it
	// (--clients is then ignored).
	httpClient string
	sweep      string
	report     string
	name       string
	from       []string
}

// Bounds of the bench flags.
const (
	benchMaxClients   = 10000
	benchMaxValueSize = 1 << 20
	benchMaxKeySpace  = 10_000_000
)

func init() {
	rootCmd.AddCommand(newBenchCommand())
}

func newBenchCommand() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load an etcd-v2-compatible cluster with PUTs (or GETs) and report rate and latency",
		Long: `Send PUTs of fixed-size values (or GETs, with --op get) to random keys from
--clients concurrent clients for --duration, and report the rate, the latency
percentiles and a latency histogram, and the errors by kind. Each client has
its own keep-alive connection and sends one request at a time; the clients are
spread over the endpoints in turn (or all sent to the leader, --leader-only).
Works against raftkv and etcd alike.

A GET run first writes every key of the key space once (--no-prefill skips it).

--sweep 1,16,64,256 runs the bench once per client count and prints one table
(or, with --output json, the runs as {"name", "runs": [...]}). --report out.html
writes a self-contained HTML report (no script, nothing fetched from the
network): throughput against clients, latency percentiles, percentile curves
and histograms, every target side by side. --from name=file.json adds the saved
JSON of another run or sweep (of raftkv, etcd, ...) to the report as a target;
with --from and no --endpoints, nothing is run.`,
		Example: `  raftkv bench --endpoints http://127.0.0.1:2379,http://127.0.0.1:22379,http://127.0.0.1:32379 --clients 64 --duration 10s
  raftkv bench --op get --quorum --clients 16 --output json
  raftkv bench --sweep 1,16,64,256 --name raftkv --output json > raftkv.json
  raftkv bench --report out.html --from raftkv=raftkv.json --from etcd=etcd.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyBenchEnv(cmd); err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := untilInterrupted(ctx)
			defer stop()
			run := !cmd.Flags().Changed("from") || cmd.Flags().Changed("endpoints") || os.Getenv("RAFTKV_ENDPOINTS") != ""
			return runBenchCommand(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), f, run)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.endpoints, "endpoints", "http://127.0.0.1:2379", "comma-separated client URLs (env RAFTKV_ENDPOINTS)")
	fl.StringVar(&f.cacert, "cacert", "", "verify https endpoints with this CA bundle")
	fl.StringVar(&f.cert, "cert", "", "client certificate for https endpoints")
	fl.StringVar(&f.key, "key", "", "key of the client certificate")
	fl.IntVar(&f.clients, "clients", 16, "concurrent clients, each with its own connection")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to measure")
	fl.DurationVar(&f.warmup, "warmup", time.Second, "load before measuring (not counted)")
	fl.DurationVar(&f.requestTimeout, "request-timeout", 10*time.Second, "time a request may wait for its answer")
	fl.IntVar(&f.valueSize, "value-size", 256, "bytes per value")
	fl.IntVar(&f.keySpace, "key-space", 10000, "number of distinct keys, drawn at random")
	fl.StringVar(&f.keyPrefix, "key-prefix", "/bench", "directory of the keys")
	fl.StringVar(&f.op, "op", "put", "put or get")
	fl.BoolVar(&f.quorum, "quorum", false, "GETs with quorum=true (linearizable on etcd; raftkv's GETs are by default)")
	fl.BoolVar(&f.leaderOnly, "leader-only", false, "send every request to the leader's client URL")
	fl.BoolVar(&f.noPrefill, "no-prefill", false, "for --op get: do not write the keys first")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the key choice")
	fl.StringVarP(&f.output, "output", "o", "text", "text or json")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process itself to this file")
	fl.StringVar(&f.httpClient, "http-client", "raw", "raw (the bench's own lean HTTP/1.1 client) or net/http (Go's)")
	fl.StringVar(&f.sweep, "sweep", "", "comma-separated client counts: one run each (instead of --clients)")
	fl.StringVar(&f.report, "report", "", "write an HTML report of the run(s) to this file")
	fl.StringVar(&f.name, "name", "raftkv", "name of this target in reports and sweep JSON")
	fl.StringArrayVar(&f.from, "from", nil, "name=file.json: saved bench JSON to add to the report as a target (repeatable)")
	return cmd
}

func applyBenchEnv(cmd *cobra.Command) error {
	f := cmd.Flags().Lookup("endpoints")
	if v, ok := os.LookupEnv("RAFTKV_ENDPOINTS"); ok && !f.Changed {
		return f.Value.Set(v)
	}
	return nil
}

func (f benchFlags) check() error {
	switch {
	case f.clients < 1 || f.clients > benchMaxClients:
		return fmt.Errorf("--clients %d: want 1 to %d", f.clients, benchMaxClients)
	case f.duration <= 0:
		return fmt.Errorf("--duration %v: want a positive duration", f.duration)
	case f.warmup < 0:
		return fmt.Errorf("--warmup %v: want zero or more", f.warmup)
	case f.valueSize < 0 || f.valueSize > benchMaxValueSize:
		return fmt.Errorf("--value-size %d: want 0 to %d", f.valueSize, benchMaxValueSize)
	case f.keySpace < 1 || f.keySpace > benchMaxKeySpace:
		return fmt.Errorf("--key-space %d: want 1 to %d", f.keySpace, benchMaxKeySpace)
	case f.op != "put" && f.op != "get":
		return fmt.Errorf("--op %q: want put or get", f.op)
	case f.httpClient != "raw" && f.httpClient != "net/http":
		return fmt.Errorf("--http-client %q: want raw or net/http", f.httpClient)
	case f.output != "text" && f.output != "json":
		return fmt.Errorf("--output %q: want text or json", f.output)
	case !strings.HasPrefix(f.keyPrefix, "/"):
		return fmt.Errorf("--key-prefix %q must start with /", f.keyPrefix)
	case len(f.from) >= benchMaxSweeps:
		return fmt.Errorf("--from: at most %d targets", benchMaxSweeps-1)
	}
	return nil
}

// runBenchCommand runs a bench or a sweep (unless run is false), and
// writes the text, JSON and HTML report asked for.
func runBenchCommand(ctx context.Context, stdout, stderr io.Writer, f benchFlags, run bool) error {
	if err := f.check(); err != nil {
		return err
	}
	var saved []benchSweep
	for _, spec := range f.from {
		s, err := loadSweep(spec)
		if err != nil {
			return err
		}
		saved = append(saved, s)
	}
	if !run {
		if f.report == "" {
			return errors.New("--from without --endpoints: want --report")
		}
		return writeReport(f.report, saved)
	}
	if f.sweep == "" && f.report == "" {
		return runBench(ctx, stdout, stderr, f)
	}
	counts := []int{f.clients}
	if f.sweep != "" {
		var err error
		if counts, err = parseSweep(f.sweep); err != nil {
			return err
		}
	}
	sweep := benchSweep{Name: f.name}
	for i, c := range counts {
		step := f
		step.clients = c
		step.noPrefill = f.noPrefill || i > 0 // the keys stay written
		if f.output == "text" {
			fmt.Fprintf(stderr, "raftkv bench: %d clients\n", c)
		}
		res, err := benchRun(ctx, stderr, step)
		if err != nil {
			return err
		}
		res.finish()
		sweep.Runs = append(sweep.Runs, res)
	}
	if f.report != "" {
		if err := writeReport(f.report, append([]benchSweep{sweep}, saved...)); err != nil {
			return err
		}
	}
	switch {
	case f.output == "json" && f.sweep != "":
		b, err := json.MarshalIndent(sweep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	case f.output == "json":
		return sweep.Runs[0].writeJSON(stdout)
	case f.sweep != "":
		writeSweepText(stdout, sweep)
	default:
		sweep.Runs[0].writeText(stdout)
	}
	if f.report != "" && f.output == "text" {
		fmt.Fprintf(stdout, "\nreport: %s\n", f.report)
	}
	return nil
}

// runBench runs one benchmark and prints its result.
func runBench(ctx context.Context, stdout, stderr io.Writer, f benchFlags) error {
	res, err := benchRun(ctx, stderr, f)
	if err != nil {
		return err
	}
	if f.output == "json" {
		return res.writeJSON(stdout)
	}
	res.writeText(stdout)
	return nil
}

// benchRun runs the whole benchmark: targets, prefill, warm-up, measure.
func benchRun(ctx context.Context, stderr io.Writer, f benchFlags) (*benchResult, error) {
	var tlsConfig *tls.Config
	if f.cacert != "" || f.cert != "" || f.key != "" {
		var err error
		if tlsConfig, err = client.NewTLSConfig(f.cacert, f.cert, f.key); err != nil {
			return nil, err
		}
	}
	targets, err := benchTargets(ctx, f, tlsConfig)
	if err != nil {
		return nil, err
	}
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	plan := newBenchPlan(f)
	workers := make([]*benchWorker, f.clients)
	for i := range workers {
		workers[i] = newBenchWorker(plan, targets[i%len(targets)], tlsConfig, f, uint64(i))
	}
	defer func() {
		for _, w := range workers {
			w.transport.CloseIdleConnections()
			if w.raw != nil {
				w.raw.close()
			}
		}
	}()
	if f.op == "get" && !f.noPrefill {
		if f.output == "text" {
			fmt.Fprintf(stderr, "raftkv bench: writing the %d keys first\n", f.keySpace)
		}
		if err := prefill(ctx, workers, plan); err != nil {
			return nil, err
		}
	}
	res := measure(ctx, workers, f)
	res.Endpoints = targets
	if ctx.Err() != nil {
		return nil, errors.New("bench: interrupted")
	}
	return res, nil
}

// benchTargets are the endpoints the clients use: the flag's, or the
// leader's client URL alone.
func benchTargets(ctx context.Context, f benchFlags, tlsConfig *tls.Config) ([]string, error) {
	c, err := client.New(client.Config{Endpoints: splitList(f.endpoints), TLS: tlsConfig})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	eps := c.Endpoints()
	if f.leaderOnly {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		leader, err := c.LeaderEndpoint(ctx)
		if err != nil {
			return nil, fmt.Errorf("--leader-only: find the leader: %w", err)
		}
		eps = []string{leader}
	}
	for _, ep := range eps {
		if u, err := url.Parse(ep); err != nil || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("bench: endpoint %s: want scheme://host:port without a path", ep)
		}
	}
	return eps, nil
}

// benchPlan is what every request is made of, built once: the keys' URL
// paths and the form body of a PUT.
type benchPlan struct {
	// paths[k] is the URL path of key k.
	paths []string
	// putBody is "value=" and the value, the same for every PUT.
	putBody []byte
	// query is the GET query string ("quorum=true" or empty).
	query string
	op    string
}

func newBenchPlan(f benchFlags) *benchPlan {
	p := &benchPlan{op: f.op}
	width := len(fmt.Sprint(f.keySpace - 1))
	prefix := "/v2/keys" + strings.TrimRight(f.keyPrefix, "/") + "/"
	p.paths = make([]string, f.keySpace)
	for k := range p.paths {
		p.paths[k] = fmt.Sprintf("%s%0*d", prefix, width, k)
	}
	// Letters and digits need no escaping in a form.
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rng := rand.New(rand.NewPCG(f.seed, 0))
	p.putBody = append(make([]byte, 0, len("value=")+f.valueSize), "value="...)
	for range f.valueSize {
		p.putBody = append(p.putBody, alphabet[rng.IntN(len(alphabet))])
	}
	if f.quorum {
		p.query = "quorum=true"
	}
	return p
}

// prefill writes every key once, the keys dealt out to the workers.
func prefill(ctx context.Context, workers []*benchWorker, plan *benchPlan) error {
	var wg sync.WaitGroup
	var failed atomic.Pointer[string]
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := i; k < len(plan.paths) && ctx.Err() == nil && failed.Load() == nil; k += len(workers) {
				if kind, ok := w.send(http.MethodPut, k); !ok {
					msg := fmt.Sprintf("bench: prefill %s: %s", plan.paths[k], kind)
					failed.CompareAndSwap(nil, &msg)
				}
			}
		}()
	}
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		return errors.New(*msg)
	}
	return ctx.Err()
}

// measure runs the workers through the warm-up and the measured duration
// and gathers their counts.
func measure(ctx context.Context, workers []*benchWorker, f benchFlags) *benchResult {
	res := newBenchResult(f)
	var recording, stopped atomic.Bool
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(&recording, &stopped)
		}()
	}
	select {
	case <-ctx.Done():
	case <-time.After(f.warmup):
	}
	start := time.Now()
	recording.Store(true)
	select {
	case <-ctx.Done():
	case <-time.After(f.duration):
	}
	stopped.Store(true)
	res.elapsed = time.Since(start)
	wg.Wait()
	for _, w := range workers {
		res.add(w)
	}
	return res
}

// benchWorker is one client: its own transport (so its own connection), one
// request object reused for every request, and its own counts.
type benchWorker struct {
	plan      *benchPlan
	transport *http.Transport
	// raw, when set, is the connection of the bench's own client, used
	// instead of transport.
	raw *rawConn
	// req is reused: its URL's path and its body are reset per request.
	req  *http.Request
	body benchBody
	rng  *rand.Rand
	// rewind is w.getBody, bound once.
	rewind func() (io.ReadCloser, error)
	// buf receives answers.
	buf []byte
	// Counts of the measured requests.
	hist   latencyHistogram
	failed uint64
	errors map[string]uint64
}

// benchMaxErrorKinds bounds the error kinds a worker tells apart.
const benchMaxErrorKinds = 32

func newBenchWorker(plan *benchPlan, endpoint string, tlsConfig *tls.Config, f benchFlags, index uint64) *benchWorker {
	u, err := url.Parse(endpoint)
	if err != nil {
		panic("bench: endpoint checked by benchTargets: " + err.Error())
	}
	tr := client.NewTransport(tlsConfig, 5*time.Second, 1)
	tr.DisableCompression = true
	tr.ResponseHeaderTimeout = f.requestTimeout
	w := &benchWorker{
		plan: plan, transport: tr,
		rng:    rand.New(rand.NewPCG(f.seed, index+1)),
		buf:    make([]byte, 4096),
		errors: map[string]uint64{},
	}
	if f.httpClient == "raw" {
		host, rawTLS := u.Host, tlsConfig
		if u.Scheme == "https" && rawTLS == nil {
			rawTLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			host = net.JoinHostPort(u.Hostname(), port)
		}
		w.raw = newRawConn(host, rawTLS, f.requestTimeout)
	}
	w.rewind = w.getBody
	w.req = &http.Request{
		Method: http.MethodPut, URL: &url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: plan.query},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Host: u.Host,
	}
	return w
}

// benchBody is a request body that can be rewound without allocating.
type benchBody struct {
	data []byte
	off  int
}

func (b *benchBody) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

func (b *benchBody) Close() error { return nil }

// run sends requests to random keys until stopped, counting those that
// end while recording.
func (w *benchWorker) run(recording, stopped *atomic.Bool) {
	method := http.MethodPut
	if w.plan.op == "get" {
		method = http.MethodGet
	}
	for !stopped.Load() {
		k := w.rng.IntN(len(w.plan.paths))
		start := time.Now()
		kind, ok := w.send(method, k)
		latency := time.Since(start)
		if !recording.Load() || stopped.Load() {
			continue
		}
		if ok {
			w.hist.record(latency)
			continue
		}
		w.failed++
		if _, known := w.errors[kind]; !known && len(w.errors) >= benchMaxErrorKinds {
			kind = "other"
		}
		w.errors[kind]++
	}
}

// benchErrorPause keeps a client that meets network errors from spinning.
const benchErrorPause = 10 * time.Millisecond

// send sends one request for key k and reads the whole answer; it reports
// whether it succeeded, and else the kind of failure.
func (w *benchWorker) send(method string, k int) (kind string, ok bool) {
	if w.raw != nil {
		return w.sendRaw(method, k)
	}
	req := w.req
	req.Method = method
	req.URL.Path = w.plan.paths[k]
	if method == http.MethodPut {
		w.body = benchBody{data: w.plan.putBody}
		req.Body = &w.body
		req.ContentLength = int64(len(w.plan.putBody))
		req.Header["Content-Type"] = formContentTypeHeader
		req.GetBody = w.rewind
	} else {
		req.Body, req.ContentLength, req.GetBody = nil, 0, nil
		delete(req.Header, "Content-Type")
	}
	resp, err := w.transport.RoundTrip(req)
	if err != nil {
		time.Sleep(benchErrorPause)
		return networkErrorKind(err), false
	}
	n, err := readAll(resp.Body, w.buf)
	resp.Body.Close()
	if err != nil {
		return networkErrorKind(err), false
	}
	if resp.StatusCode == http.StatusOK || (resp.StatusCode == http.StatusCreated && method == http.MethodPut) {
		return "", true
	}
	return httpErrorKind(resp.StatusCode, w.buf[:n]), false
}

// formContentTypeHeader is the Content-Type of every PUT, shared.
var formContentTypeHeader = []string{"application/x-www-form-urlencoded"}

// getBody lets net/http resend a PUT on a fresh connection.
func (w *benchWorker) getBody() (io.ReadCloser, error) {
	return &benchBody{data: w.plan.putBody}, nil
}

// readAll reads r to its end, keeping its first half of buf's worth and
// reading the rest of a longer answer into the second half, discarded.
func readAll(r io.Reader, buf []byte) (int, error) {
	keep := len(buf) / 2
	n := 0
	for {
		var m int
		var err error
		if n < keep {
			m, err = r.Read(buf[n:keep])
			n += m
		} else {
			_, err = r.Read(buf[keep:])
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// startCPUProfile profiles this process into file until stop is called.
func startCPUProfile(file string) (stop func(), err error) {
	out, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}, nil
}

// machineFacts describe where the bench ran.
type machineFacts struct {
	CPUs        int    `json:"cpus"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	LoadAverage string `json:"load_average,omitempty"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	Go          string `json:"go"`
}

func currentMachine() machineFacts {
	m := machineFacts{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if fields := strings.Fields(string(b)); len(fields) >= 3 {
			m.LoadAverage = strings.Join(fields[:3], " ")
		}
	}
	return m
}
