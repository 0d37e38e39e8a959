// Command compare runs raftkv and etcd side by side on this machine: a
// 3-member cluster of each on 127.0.0.1 (every write fsynced), the same
// closed-loop load from `raftkv bench` against each, the systems taking
// turns, for several client counts, writes and linearizable reads. It prints
// one table of rates, latencies and raftkv/etcd ratios, writes every run's
// JSON (and an HTML report) to a directory, and stops every process it
// started, on Ctrl-C and on failure too.
//
// Run it with `make bench-compare`, or
//
//	go run ./benchmarks/compare -duration 5s -clients 1,16,64,256
//
// etcd is the binary named by $ETCD, else `etcd` on PATH, else Debian's
// etcd-server package, installed with apt-get.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	clients   []int
	duration  time.Duration
	warmup    time.Duration
	rounds    int
	valueSize int
	keySpace  int
	ops       []string
	outDir    string
	raftkvBin string
	// benchBin runs the load (and writes the report); raftkvBin when empty.
	benchBin   string
	etcdBin    string
	profileDir string
	// life follows each write of 1-client runs through raftkv's member
	// processes (a lifetrace build) and prints where its time goes.
	life       bool
	only       string
	httpClient string
	// loneClient says where the client of a 1-client run goes.
	loneClient string
	// memoryKeys, when positive, runs the memory comparison with that
	// many keys instead of the rate comparison.
	memoryKeys int
	// memoryIdle is how long the memory comparison waits, after the
	// figures settled, before it reads them again.
	memoryIdle time.Duration
}

func main() {
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	procs := &processes{}
	err = run(ctx, opts, procs)
	procs.stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func parseOptions(args []string) (options, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	var o options
	clients := fs.String("clients", "1,16,64,256", "comma-separated client counts")
	ops := fs.String("ops", "put,get", "put, get or both")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load before each measured run")
	fs.IntVar(&o.rounds, "rounds", 1, "how many times each (clients, op) pair is measured on each system")
	fs.IntVar(&o.valueSize, "value-size", 8, "bytes per value")
	fs.IntVar(&o.keySpace, "key-space", 10000, "distinct keys")
	fs.StringVar(&o.outDir, "out", "", "directory for the runs' JSON, the HTML report and the members' logs (default: a new temporary directory)")
	fs.StringVar(&o.raftkvBin, "raftkv", "", "raftkv binary (default: built from this checkout)")
	fs.StringVar(&o.benchBin, "bench", "", "raftkv binary whose bench command runs the load (default: the -raftkv one), to compare servers under one load tool")
	fs.StringVar(&o.etcdBin, "etcd", os.Getenv("ETCD"), "etcd binary (default $ETCD, then etcd on PATH, then apt-get install etcd-server)")
	fs.StringVar(&o.profileDir, "profile", "", "write CPU profiles of raftkv's members (leader and followers) during the 64-client (or largest) write runs here")
	fs.StringVar(&o.only, "only", "", "run one system only: raftkv or etcd")
	fs.BoolVar(&o.life, "life", false, "follow every write of raftkv's 1-client write runs through its three processes (a build with the lifetrace tag) and print the stages' offsets: where one write's time goes")
	fs.StringVar(&o.httpClient, "http-client", "raw", "the load tool's HTTP client: raw (its own, lean) or net/http")
	fs.StringVar(&o.loneClient, "lone-client", "both", "where the client of a 1-client run goes: both (a run on the leader and one on a follower), leader, follower, or spread (member 0, as the clients of larger runs)")
	fs.IntVar(&o.memoryKeys, "memory", 0, "instead of rates, compare memory: write this many keys (64-byte values) to each system in turn and read every member's RSS")
	fs.DurationVar(&o.memoryIdle, "memory-idle", 30*time.Second, "with -memory: how long to wait idle, after the figures settled, before reading them again")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-clients %q: want positive integers", *clients)
		}
		o.clients = append(o.clients, n)
	}
	for _, s := range strings.Split(*ops, ",") {
		if s != "put" && s != "get" {
			return o, fmt.Errorf("-ops %q: want put and/or get", *ops)
		}
		o.ops = append(o.ops, s)
	}
	if o.rounds < 1 || o.duration <= 0 {
		return o, errors.New("-rounds and -duration must be positive")
	}
	if o.memoryKeys < 0 || o.memoryKeys > 10_000_000 || o.memoryIdle < 0 {
		return o, errors.New("-memory: want 0 to 10,000,000 keys; -memory-idle: want a duration >= 0")
	}
	switch o.loneClient {
	case "both", "leader", "follower", "spread":
	default:
		return o, fmt.Errorf("-lone-client %q: want both, leader, follower or spread", o.loneClient)
	}
	if o.only != "" && o.only != "raftkv" && o.only != "etcd" {
		return o, fmt.Errorf("-only %q: want raftkv or etcd", o.only)
	}
	if o.life {
		if o.raftkvBin != "" {
			return o, errors.New("-life builds its own raftkv (with the lifetrace tag): leave -raftkv out")
		}
		// One client writing to raftkv alone: the chain of one write at a
		// time, undisturbed.
		o.only, o.ops, o.clients = "raftkv", []string{"put"}, []int{1}
	}
	return o, nil
}

// system is one cluster under test.
type system struct {
	name      string
	endpoints []string
	// pids are the members' process ids, in the order of endpoints.
	pids []int
	// dataDirs are the members' data directories, in the same order.
	dataDirs []string
	// getArgs are the bench flags of a linearizable read on it.
	getArgs []string
}

func run(ctx context.Context, o options, procs *processes) error {
	work, err := os.MkdirTemp("", "raftkv-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if o.outDir == "" {
		o.outDir = filepath.Join(os.TempDir(), "raftkv-compare-"+time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	if o.raftkvBin == "" {
		o.raftkvBin = filepath.Join(work, "raftkv")
		fmt.Println("building raftkv ...")
		args := []string{"build", "-o", o.raftkvBin}
		if o.life {
			args = append(args, "-tags", "lifetrace")
			// The members inherit it and write their records there.
			os.Setenv("RAFTKV_LIFETRACE", filepath.Join(work, "life"))
		}
		build := exec.CommandContext(ctx, "go", append(args, "github.com/raftkv/raftkv/cmd/raftkv")...)
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build raftkv: %w", err)
		}
	}
	if o.benchBin == "" {
		o.benchBin = o.raftkvBin
	}
	if o.memoryKeys > 0 {
		return runMemory(ctx, o, procs, work)
	}
	var systems []*system
	if o.only != "etcd" {
		rk, err := startCluster(ctx, procs, work, o.outDir, "raftkv", []string{o.raftkvBin, "serve"})
		if err != nil {
			return err
		}
		systems = append(systems, rk)
	}
	if o.only != "raftkv" {
		etcdBin, version, err := findEtcd(ctx, o.etcdBin)
		if err != nil {
			return err
		}
		fmt.Printf("etcd: %s (%s)\n", etcdBin, version)
		ec, err := startCluster(ctx, procs, work, o.outDir, "etcd", []string{etcdBin, "--enable-v2=true"})
		if err != nil {
			return err
		}
		ec.getArgs = []string{"--quorum"}
		systems = append(systems, ec)
	}
	printMachine(o)
	results := map[string][]benchRun{}
	var lives []lifeRun
	for _, op := range o.ops {
		if op == "get" {
			for _, s := range systems {
				if err := prefill(ctx, o, s); err != nil {
					return err
				}
			}
		}
		for _, c := range o.clients {
			for _, where := range placements(o, c) {
				for round := range o.rounds {
					// The systems take turns, and which goes first
					// alternates, so that neither always runs on a machine
					// the other just warmed (or heated).
					order := systems
					if (round+c)%2 == 1 && len(systems) == 2 {
						order = []*system{systems[1], systems[0]}
					}
					for _, s := range order {
						started := time.Now()
						r, err := benchOnce(ctx, o, s, op, c, where, systems[0] == s)
						if err != nil {
							return err
						}
						if o.life {
							lives = append(lives, lifeRun{from: started.Add(o.warmup), to: time.Now(), label: placementLabel(where, r.endpoint)})
						}
						results[s.name] = append(results[s.name], r)
						fmt.Printf("  %-6s %-3s %4d clients%s: %8.0f/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  (load %s; CPU per request: load tool %v, members %s, leader first)\n",
							s.name, op, c, placementLabel(where, r.endpoint), r.RatePerS, r.LatencyMs.P50, r.LatencyMs.P99, r.Errors,
							r.Machine.LoadAverage, r.benchCPUPerRequest(o).Round(time.Microsecond), r.membersCPUPerRequest(o))
					}
				}
			}
		}
	}
	printTable(os.Stdout, o, systems, results)
	for _, l := range lives {
		printLife(work, l)
	}
	if o.loneClient == "both" && slicesContains(o.clients, 1) {
		fmt.Println("\n1 client @leader: the lone client talks to the leader of each system; @follower: to a follower, which forwards to the leader")
	}
	if err := writeOutputs(ctx, o, systems, results); err != nil {
		return err
	}
	fmt.Printf("\nevery run's JSON and the HTML report are in %s\n", o.outDir)
	return nil
}

// benchRun is the part of `raftkv bench --output json` the table uses.
type benchRun struct {
	Op        string  `json:"op"`
	Clients   int     `json:"clients"`
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`
	RatePerS  float64 `json:"rate_per_s"`
	LatencyMs struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"latency_ms"`
	Machine struct {
		LoadAverage string `json:"load_average"`
	} `json:"machine"`
	// raw is the whole JSON, kept for the output directory.
	raw []byte
	// where is the lone client's member ("leader" or "follower"), or ""
	// when the clients are spread over the members.
	where string
	// endpoint is the member a placed lone client talked to.
	endpoint string
	// benchCPU is the CPU time (user + system) the load tool used,
	// warm-up included.
	benchCPU time.Duration
	// memberCPU is the CPU time each member used over the same time, the
	// leader first; nil if it could not be read.
	memberCPU []time.Duration
}

// benchCPUPerRequest estimates the load tool's CPU per request, counting
// the warm-up's requests at the measured rate.
func (r benchRun) benchCPUPerRequest(o options) time.Duration {
	requests := r.RatePerS * (o.duration + o.warmup).Seconds()
	if requests < 1 {
		return 0
	}
	return time.Duration(float64(r.benchCPU) / requests)
}

// membersCPUPerRequest says the members' CPU per request the way
// benchCPUPerRequest does, leader first: "43+33+30µs".
func (r benchRun) membersCPUPerRequest(o options) string {
	requests := r.RatePerS * (o.duration + o.warmup).Seconds()
	if requests < 1 || r.memberCPU == nil {
		return "?"
	}
	parts := make([]string, len(r.memberCPU))
	for i, c := range r.memberCPU {
		parts[i] = strconv.Itoa(int(float64(c/time.Microsecond) / requests))
	}
	return strings.Join(parts, "+") + "µs"
}

// processCPU is the CPU time (user + system) process pid has used, from
// /proc/PID/stat (in USER_HZ ticks, 100 a second on Linux).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count from the last ')'. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// membersCPU reads every member's CPU time, leader first (nil on any
// error: the figure is then left out, not guessed).
func membersCPU(s *system, leader string) []time.Duration {
	var cpu []time.Duration
	for i, pid := range s.pids {
		c, err := processCPU(pid)
		if err != nil {
			return nil
		}
		if s.endpoints[i] == leader {
			cpu = append([]time.Duration{c}, cpu...)
		} else {
			cpu = append(cpu, c)
		}
	}
	return cpu
}

// benchOnce runs raftkv bench once against s.
func benchOnce(ctx context.Context, o options, s *system, op string, clients int, where string, profile bool) (benchRun, error) {
	endpoints := s.endpoints
	if where != "" {
		ep, err := memberAt(ctx, s, where)
		if err != nil {
			return benchRun{}, err
		}
		endpoints = []string{ep}
	}
	args := []string{"bench", "--endpoints", strings.Join(endpoints, ","), "--op", op,
		"--clients", strconv.Itoa(clients), "--duration", o.duration.String(), "--warmup", o.warmup.String(),
		"--value-size", strconv.Itoa(o.valueSize), "--key-space", strconv.Itoa(o.keySpace), "--output", "json",
		"--http-client", o.httpClient}
	if op == "get" {
		args = append(args, "--no-prefill")
		args = append(args, s.getArgs...)
	}
	var profileDone chan error
	if profile && o.profileDir != "" && op == "put" && clients == profileClients(o) {
		profileDone = make(chan error, 1)
		go func() { profileDone <- profileMembers(ctx, o, s, clients) }()
	}
	leader, _ := findLeader(ctx, s)
	cpuBefore := membersCPU(s, leader)
	cmd := exec.CommandContext(ctx, o.benchBin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	cpuAfter := membersCPU(s, leader)
	if profileDone != nil {
		if perr := <-profileDone; perr != nil {
			fmt.Fprintln(os.Stderr, "compare: profile:", perr)
		}
	}
	if err != nil {
		return benchRun{}, fmt.Errorf("%s: raftkv %s: %w", s.name, strings.Join(args, " "), err)
	}
	var r benchRun
	if err := json.Unmarshal(out, &r); err != nil {
		return benchRun{}, fmt.Errorf("%s: bench output: %w", s.name, err)
	}
	r.raw = out
	r.benchCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if cpuBefore != nil && len(cpuAfter) == len(cpuBefore) {
		for i := range cpuAfter {
			r.memberCPU = append(r.memberCPU, cpuAfter[i]-cpuBefore[i])
		}
	}
	r.where = where
	if where != "" {
		r.endpoint = endpoints[0]
	}
	return r, nil
}

// placements are where the clients of a run go: spread over the members
// (""), or, for a lone client and -lone-client both, once on the leader
// and once on a follower — a follower forwards a write to the leader and
// answers once it has applied it itself, a hop a client of the leader
// does not pay, so a fair 1-client comparison puts both systems' lone
// clients on the same kind of member.
func placements(o options, clients int) []string {
	if clients != 1 {
		return []string{""}
	}
	switch o.loneClient {
	case "both":
		return []string{"leader", "follower"}
	case "leader", "follower":
		return []string{o.loneClient}
	}
	return []string{""}
}

// placementLabel names where a run's lone client was.
func placementLabel(where, endpoint string) string {
	if where == "" {
		return ""
	}
	return fmt.Sprintf(" @%s %s", where, endpoint)
}

// memberAt is the client URL of s's leader, or of a follower.
func memberAt(ctx context.Context, s *system, where string) (string, error) {
	leader, err := findLeader(ctx, s)
	if err != nil {
		return "", err
	}
	if where == "leader" {
		return leader, nil
	}
	for _, ep := range s.endpoints {
		if ep != leader {
			return ep, nil
		}
	}
	return "", fmt.Errorf("%s: no follower", s.name)
}

func slicesContains(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// profileClients is the client count whose write run is profiled: 64 if
// measured, else the largest.
func profileClients(o options) int {
	largest := 0
	for _, c := range o.clients {
		if c == 64 {
			return 64
		}
		largest = max(largest, c)
	}
	return largest
}

// profileMembers takes a CPU profile of each of s's members at once,
// through the middle of a measured run: the leader's and the followers'
// shares of the machine, side by side.
func profileMembers(ctx context.Context, o options, s *system, clients int) error {
	leader, err := findLeader(ctx, s)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.warmup + o.duration/10):
	}
	if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
		return err
	}
	seconds := max(1, int(o.duration.Seconds()*0.8))
	errs := make([]error, len(s.endpoints))
	var wg sync.WaitGroup
	followers := 0
	for i, ep := range s.endpoints {
		role := "leader"
		if ep != leader {
			followers++
			role = fmt.Sprintf("follower%d", followers)
		}
		file := filepath.Join(o.profileDir, fmt.Sprintf("%s-%s-put-%d.pprof", s.name, role, clients))
		wg.Go(func() { errs[i] = fetchProfile(ctx, ep, seconds, file) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fetchProfile writes a CPU profile of the member at ep, taken over
// seconds, to file.
func fetchProfile(ctx context.Context, ep string, seconds int, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", ep, seconds), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: pprof: %s", ep, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Printf("  (CPU profile of %s: %s)\n", ep, file)
	return os.WriteFile(file, b, 0o644)
}

// findLeader is the client URL of the member whose /v2/stats/self says it
// leads.
func findLeader(ctx context.Context, s *system) (string, error) {
	for _, ep := range s.endpoints {
		var self struct {
			State string `json:"state"`
		}
		if err := getJSON(ctx, ep+"/v2/stats/self", &self); err == nil && self.State == "StateLeader" {
			return ep, nil
		}
	}
	return "", fmt.Errorf("%s: no member says it leads", s.name)
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// prefill writes every key once, so that reads find them: a short GET
// run with the bench tool's own prefill.
func prefill(ctx context.Context, o options, s *system) error {
	args := []string{"bench", "--endpoints", strings.Join(s.endpoints, ","), "--op", "get", "--clients", "64",
		"--duration", "100ms", "--warmup", "0s", "--value-size", strconv.Itoa(o.valueSize),
		"--key-space", strconv.Itoa(o.keySpace), "--output", "json"}
	cmd := exec.CommandContext(ctx, o.benchBin, append(args, s.getArgs...)...)
	cmd.Stderr = os.Stderr
	if _, err := cmd.Output(); err != nil {
		return fmt.Errorf("%s: prefill: %w", s.name, err)
	}
	return nil
}

// printMachine says where the comparison runs.
func printMachine(o options) {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				model = strings.TrimSpace(line[strings.Index(line, ":")+1:])
				break
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("machine: %d CPUs (%s), %s/%s, load average %s\n", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH,
		strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
	if o.memoryKeys > 0 {
		return
	}
	fmt.Printf("load: closed loop, `raftkv bench --http-client %s`, %d-byte values, keys random over %d, clients spread over the 3 members, "+
		"%v measured after %v of warm-up, %d round(s)\n", o.httpClient, o.valueSize, o.keySpace, o.duration, o.warmup, o.rounds)
	fmt.Println("reads: raftkv's default GET (linearizable, ReadIndex) against etcd's GET ?quorum=true (linearizable, through raft)")
	fmt.Println()
}

// printTable prints one row per (op, clients): each system's median run
// over the rounds, and the ratio of the rates.
func printTable(w io.Writer, o options, systems []*system, results map[string][]benchRun) {
	fmt.Fprintln(w)
	if o.rounds > 1 {
		fmt.Fprintf(w, "each figure is the run of median rate among %d rounds\n", o.rounds)
	}
	header := fmt.Sprintf("%-6s %11s", "op", "clients")
	for _, s := range systems {
		header += fmt.Sprintf(" | %-6s %9s %8s %8s", s.name, "ops/s", "p50 ms", "p99 ms")
	}
	if len(systems) == 2 {
		header += fmt.Sprintf(" | %s/%s", systems[0].name, systems[1].name)
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, strings.Repeat("-", len(header)))
	for _, op := range o.ops {
		label := "writes"
		if op == "get" {
			label = "reads"
		}
		for _, c := range o.clients {
			for _, where := range placements(o, c) {
				printRow(w, systems, results, label, op, c, where)
			}
		}
	}
}

// printRow prints the row of (op, clients, where).
func printRow(w io.Writer, systems []*system, results map[string][]benchRun, label, op string, c int, where string) {
	count := strconv.Itoa(c)
	if where != "" {
		count += " @" + where
	}
	line := fmt.Sprintf("%-6s %11s", label, count)
	var rates []float64
	for _, s := range systems {
		r := medianRun(results[s.name], op, c, where)
		line += fmt.Sprintf(" | %-6s %9.0f %8.2f %8.2f", "", r.RatePerS, r.LatencyMs.P50, r.LatencyMs.P99)
		if r.Errors > 0 {
			line += fmt.Sprintf(" (%d errors)", r.Errors)
		}
		rates = append(rates, r.RatePerS)
	}
	if len(rates) == 2 && rates[1] > 0 {
		line += fmt.Sprintf(" | %.2fx", rates[0]/rates[1])
	}
	fmt.Fprintln(w, line)
}

// medianRun is the run of median rate among the rounds of (op, clients);
// of an even number of rounds, the lower of the two middle ones.
func medianRun(runs []benchRun, op string, clients int, where string) benchRun {
	var match []benchRun
	for _, r := range runs {
		if r.Op == op && r.Clients == clients && r.where == where {
			match = append(match, r)
		}
	}
	if len(match) == 0 {
		return benchRun{}
	}
	for i := 1; i < len(match); i++ {
		for j := i; j > 0 && match[j].RatePerS < match[j-1].RatePerS; j-- {
			match[j], match[j-1] = match[j-1], match[j]
		}
	}
	return match[(len(match)-1)/2]
}

// writeOutputs writes every run's JSON, one file per system and op as a
// JSON array (what `raftkv bench --report --from` reads), and one HTML
// report per op with the systems side by side.
func writeOutputs(ctx context.Context, o options, systems []*system, results map[string][]benchRun) error {
	for _, op := range o.ops {
		args := []string{"bench", "--report", filepath.Join(o.outDir, "report-"+opLabel(op)+".html")}
		for _, s := range systems {
			var raws []json.RawMessage
			for _, r := range results[s.name] {
				// The report has one run per client count: of a lone
				// client placed twice, the one on the leader.
				if r.Op == op && r.where != "follower" {
					raws = append(raws, r.raw)
				}
			}
			b, err := json.MarshalIndent(raws, "", "  ")
			if err != nil {
				return err
			}
			file := filepath.Join(o.outDir, fmt.Sprintf("%s-%s.json", s.name, op))
			if err := os.WriteFile(file, b, 0o644); err != nil {
				return err
			}
			args = append(args, "--from", s.name+"="+file)
		}
		cmd := exec.CommandContext(ctx, o.benchBin, args...)
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "compare: HTML report not written:", err)
		}
	}
	return nil
}

// opLabel names an op's figures.
func opLabel(op string) string {
	if op == "get" {
		return "reads"
	}
	return "writes"
}

// findEtcd returns an etcd binary and its version: the one named, else
// etcd on PATH, else Debian's etcd-server installed with apt-get.
func findEtcd(ctx context.Context, named string) (bin, version string, err error) {
	bin = named
	if bin == "" {
		if p, err := exec.LookPath("etcd"); err == nil {
			bin = p
		}
	}
	if bin == "" {
		policy, _ := exec.CommandContext(ctx, "apt-cache", "policy", "etcd-server").CombinedOutput()
		fmt.Printf("no etcd on PATH and $ETCD unset; apt-cache policy etcd-server:\n%s", policy)
		install := exec.CommandContext(ctx, "apt-get", "install", "-y", "etcd-server")
		if os.Geteuid() != 0 {
			install = exec.CommandContext(ctx, "sudo", "-n", "apt-get", "install", "-y", "etcd-server")
		}
		install.Stdout, install.Stderr = os.Stdout, os.Stderr
		if err := install.Run(); err != nil {
			return "", "", fmt.Errorf("install etcd-server (or set ETCD to an etcd binary): %w", err)
		}
		if bin, err = exec.LookPath("etcd"); err != nil {
			return "", "", errors.New("etcd-server installed, but no etcd on PATH")
		}
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "", "", fmt.Errorf("%s --version: %w", bin, err)
	}
	return bin, strings.Join(strings.Fields(strings.ReplaceAll(string(out), "\n", "; ")), " "), nil
}

// startCluster starts a 3-member cluster of command (raftkv serve and etcd
// take the same flags) on free loopback ports, data in work and logs in
// logDir, and waits until it answers a quorum read on every member.
func startCluster(ctx context.Context, procs *processes, work, logDir, name string, command []string) (*system, error) {
	const size = 3
	ports, err := freePorts(2 * size)
	if err != nil {
		return nil, err
	}
	var initial []string
	for i := range size {
		initial = append(initial, fmt.Sprintf("%s%d=http://127.0.0.1:%d", name, i+1, ports[2*i+1]))
	}
	s := &system{name: name}
	for i := range size {
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		dir := filepath.Join(work, fmt.Sprintf("%s%d", name, i+1))
		args := append(append([]string{}, command[1:]...),
			"--name", fmt.Sprintf("%s%d", name, i+1), "--data-dir", dir,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", name+"-compare", "--enable-pprof")
		logFile, err := os.Create(filepath.Join(logDir, filepath.Base(dir)+".log"))
		if err != nil {
			return nil, err
		}
		pid, err := procs.start(command[0], args, logFile)
		if err != nil {
			return nil, fmt.Errorf("start %s member %d: %w", name, i+1, err)
		}
		s.endpoints = append(s.endpoints, client)
		s.pids = append(s.pids, pid)
		s.dataDirs = append(s.dataDirs, dir)
	}
	if err := waitReady(ctx, s); err != nil {
		return nil, fmt.Errorf("%s: %w (logs in %s)", name, err, logDir)
	}
	where := "a follower"
	if leader, err := findLeader(ctx, s); err == nil && leader == s.endpoints[0] {
		where = "the leader"
	}
	// Client i uses member i mod 3; a lone client goes where -lone-client
	// says (with spread, to the first member, a follower or not).
	fmt.Printf("%s: 3 members up at %s (the first is %s)\n", name, strings.Join(s.endpoints, ", "), where)
	return s, nil
}

// waitReady waits until a write succeeds and every member answers a
// quorum read.
func waitReady(ctx context.Context, s *system) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, ep := range s.endpoints {
		for {
			if err := readyCheck(ctx, ep); err == nil {
				break
			} else if time.Now().After(deadline) {
				return fmt.Errorf("not ready after 30s: %w", err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func readyCheck(ctx context.Context, ep string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, ep+"/v2/keys/compare-ready", strings.NewReader("value=1"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: %s", ep, resp.Status)
	}
	var ev struct {
		Action string `json:"action"`
	}
	return getJSON(ctx, ep+"/v2/keys/compare-ready?quorum=true", &ev)
}

// freePorts finds n free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// processes are the servers this command started; stopAll ends them.
type processes struct {
	mu    sync.Mutex
	procs []process
}

// process is a started server; done is closed when it has exited.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *processes) start(bin string, args []string, log *os.File) (pid int, err error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Their own process group (a Ctrl-C reaches us, and we stop them in
	// order), and killed by the kernel should this process die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := cmd.Start(); err != nil {
		log.Close()
		return 0, err
	}
	done := make(chan struct{})
	p.procs = append(p.procs, process{cmd, done})
	go func() {
		cmd.Wait()
		log.Close()
		close(done)
	}()
	return cmd.Process.Pid, nil
}

// stopAll sends SIGTERM to every process started, then SIGKILL to those
// still running after 5 s.
func (p *processes) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.procs {
		c.cmd.Process.Signal(syscall.SIGTERM)
	}
	timeout := time.After(5 * time.Second)
	for _, c := range p.procs {
		select {
		case <-c.done:
			continue
		case <-timeout:
		}
		c.cmd.Process.Kill()
		<-c.done
	}
	p.procs = nil
}
