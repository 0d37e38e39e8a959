package nemesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/linearizability"
)

// Config configures a run.
type Config struct {
	// Binary is the raftkv binary the members run.
	Binary string
	// Members is the cluster's size (3 or 5).
	Members int
	// Duration is how long the faults go on.
	Duration time.Duration
	// Seed draws the schedule and the clients' operations.
	Seed uint64
	// Kinds are the faults to draw from (nil: all the kernel allows).
	Kinds []Kind
	// Schedule, if set, is run instead of one drawn from Seed (tests).
	Schedule []Fault
	// FaultMin, FaultMax bound each fault's duration (0: 3 s and 6 s).
	FaultMin, FaultMax time.Duration
	// HeartbeatMs and ElectionMs are the members' raft timing (0: 100 and
	// 1000, etcd's defaults).
	HeartbeatMs, ElectionMs int
	// LivenessBound is how long after a heal a write must succeed (0:
	// five election timeouts).
	LivenessBound time.Duration
	// DiskMB is the size of the small disk one member runs on for the
	// disk-full fault (0: 160 MiB, room for a 64 MiB WAL segment and its
	// successor; negative: no small disk, no disk-full fault).
	DiskMB int
	// OutDir receives the members' logs, the schedule, the report and the
	// visualisation (empty: a new temporary directory, removed after a run
	// that passed).
	OutDir string
	// PlantedBug is passed to every member (tests of the tests only).
	PlantedBug string
	// Log receives the schedule and messages; Progress a progress line
	// every ProgressEvery (nil: none).
	Log, Progress io.Writer
	ProgressEvery time.Duration
}

// AppliedFault is a fault as it happened.
type AppliedFault struct {
	Fault
	// Member is the member it hit (-1: none in particular); Description
	// says what was done, names resolved.
	Member      int
	Description string
	// Start and Heal are when it began and was healed, since the run's
	// start; HealToWrite is the time from the heal to the first write that
	// succeeded after it (negative: none within the bound).
	Start, Heal, HealToWrite time.Duration
	// Err is what went wrong applying or healing it.
	Err error
}

// Report is the outcome of a run.
type Report struct {
	Config   Config
	Schedule []Fault
	Faults   []AppliedFault
	// Unavailable names the kinds left out, with why.
	Unavailable []string
	// Ops counts client operations; Unknown those whose outcome is
	// unknown; SerialReads the serializable reads; Acked the acknowledged
	// writes; WatchEvents the events all watches delivered and WatchGaps
	// the stretches they were told were gone (error 401).
	Ops, Unknown, SerialReads, Acked, WatchEvents, WatchGaps int
	// SettledApplied and SettledNoEffect count the writes whose outcome
	// the clients never learned but the applied history told: in-order
	// creates it holds, and writes it proves never took effect.
	SettledApplied, SettledNoEffect int
	// Availability is the share of the fault phase's seconds with at
	// least one successful write.
	Availability float64
	// Elapsed is the length of the fault phase.
	Elapsed time.Duration
	// Linearizability is porcupine's verdict.
	Linearizability linearizability.Result
	// Problems lists every violation found; empty for a run that passed.
	Problems []string
	// Notes tell what happened that is no violation.
	Notes []string
	// OutDir holds the logs, schedule, report and visualisation.
	OutDir string
}

// Failed reports whether the run found a problem.
func (r *Report) Failed() bool { return len(r.Problems) > 0 }

// Run runs a cluster under the faults of a schedule drawn from cfg.Seed
// while the clients work, then checks everything they saw. It returns an
// error when the run could not be carried out (no namespaces, a binary
// that does not start); what the run found is in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	r, err := newRunner(cfg)
	if err != nil {
		return nil, err
	}
	defer r.cleanup()
	if err := r.start(); err != nil {
		return r.report, err
	}
	r.faults(ctx)
	if ctx.Err() != nil {
		return r.report, ctx.Err()
	}
	r.finish()
	return r.report, nil
}

// runner carries one run.
type runner struct {
	cfg     Config
	report  *Report
	logf    func(string, ...any)
	cluster *Cluster
	rec     *linearizability.Recorder
	now     func() int64
	epoch   time.Time
	load    *workload
	stopped chan struct{}
	clients *sync.WaitGroup
	// watchers are one per member; watchCtx stops them.
	watchers   []*watcher
	watchWG    sync.WaitGroup
	stopWatch  context.CancelFunc
	probes     []*client.Client
	probeSeq   int
	probeID    int
	faultStart time.Time
	// current describes the fault in force, for the progress line.
	current atomic.Pointer[string]
	leader  atomic.Int64
	keepOut bool
}

func newRunner(cfg Config) (*runner, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if cfg.Members < 1 {
		cfg.Members = 3
	}
	if cfg.ElectionMs == 0 {
		cfg.ElectionMs = 1000
	}
	if cfg.HeartbeatMs == 0 {
		cfg.HeartbeatMs = 100
	}
	if cfg.LivenessBound == 0 {
		cfg.LivenessBound = 5 * time.Duration(cfg.ElectionMs) * time.Millisecond
	}
	if cfg.DiskMB == 0 {
		cfg.DiskMB = 160
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.ProgressEvery == 0 {
		cfg.ProgressEvery = 5 * time.Second
	}
	r := &runner{cfg: cfg, report: &Report{Config: cfg}}
	r.logf = func(format string, args ...any) { fmt.Fprintf(cfg.Log, format+"\n", args...) }
	if cfg.OutDir == "" {
		dir, err := os.MkdirTemp("", "raftkv-nemesis-")
		if err != nil {
			return nil, err
		}
		r.report.OutDir = dir
	} else {
		r.report.OutDir, r.keepOut = cfg.OutDir, true
		if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// kinds returns the kinds this run draws from, saying which are left out.
func (r *runner) kinds() []Kind {
	kinds := r.cfg.Kinds
	if kinds == nil {
		kinds = AllKinds()
	}
	var out []Kind
	for _, k := range kinds {
		switch {
		case k == Delay:
			if ok, why := netemAvailable(); !ok {
				r.report.Unavailable = append(r.report.Unavailable, "delay: "+why)
				continue
			}
		case k == DiskFull && r.cfg.DiskMB < 0:
			r.report.Unavailable = append(r.report.Unavailable, "disk-full: no small disk (DiskMB < 0)")
			continue
		}
		out = append(out, k)
	}
	return out
}

// start prints the schedule, starts the cluster, the watches and the
// clients.
func (r *runner) start() error {
	cfg := r.cfg
	kinds := r.kinds()
	disk := -1
	if cfg.DiskMB > 0 {
		disk = cfg.Members - 1
	}
	r.report.Schedule = NewSchedule(ScheduleOptions{Seed: cfg.Seed, Members: cfg.Members, DiskMember: disk, Kinds: kinds,
		Duration: cfg.Duration, Liveness: time.Second, FaultMin: cfg.FaultMin, FaultMax: cfg.FaultMax})
	if cfg.Schedule != nil {
		r.report.Schedule = cfg.Schedule
		cfg.Duration = 0
		for _, f := range cfg.Schedule {
			cfg.Duration += f.Duration + f.Quiet
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "nemesis: seed %d, %d members, %v of faults (replay the schedule: --seed %d)\n", cfg.Seed, cfg.Members, cfg.Duration, cfg.Seed)
	fmt.Fprintf(&b, "nemesis: faults available: %v\n", kinds)
	for _, u := range r.report.Unavailable {
		fmt.Fprintf(&b, "nemesis: not available: %s\n", u)
	}
	if cfg.PlantedBug != "" {
		fmt.Fprintf(&b, "nemesis: PLANTED BUG in every member: %s\n", cfg.PlantedBug)
	}
	fmt.Fprintf(&b, "nemesis: schedule:\n")
	for i, f := range r.report.Schedule {
		fmt.Fprintf(&b, "  %3d. %s\n", i+1, f)
	}
	fmt.Fprint(cfg.Log, b.String())
	_ = os.WriteFile(filepath.Join(r.report.OutDir, "schedule.txt"), []byte(b.String()), 0o644)

	c, err := StartCluster(ClusterOptions{Binary: cfg.Binary, Members: cfg.Members, HeartbeatMs: cfg.HeartbeatMs,
		ElectionMs: cfg.ElectionMs, Token: fmt.Sprintf("nemesis-%d", cfg.Seed), LogDir: r.report.OutDir,
		DiskMB: max(cfg.DiskMB, 0), PlantedBug: cfg.PlantedBug, Logf: r.logf})
	if err != nil {
		return err
	}
	r.cluster = c
	r.logf("nemesis: members on %s.%d.0/24 in namespaces raftkv-nem%d-m*, logs in %s", addressPrefix, c.Net.Slot, c.Net.Slot, r.report.OutDir)
	ctx := context.Background()
	if lead := c.Leader(ctx, 20*time.Second); lead < 0 {
		return fmt.Errorf("nemesis: no leader within 20 s of the start")
	}
	r.now, r.epoch = linearizability.WallClock()
	r.rec = linearizability.NewRecorder()
	for _, m := range c.Members {
		cl, err := client.New(client.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: time.Second, HeaderTimeoutPerRequest: time.Second})
		if err != nil {
			return err
		}
		r.probes = append(r.probes, cl)
	}
	watchCtx, stop := context.WithCancel(ctx)
	r.stopWatch = stop
	for _, m := range c.Members {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := r.probes[m.Index].Get(rctx, "/", &client.GetOptions{Quorum: true})
		cancel()
		if err != nil {
			return fmt.Errorf("nemesis: read / through %s: %w", m.Name, err)
		}
		r.watchers = append(r.watchers, startWatcher(watchCtx, m, resp.Index, &r.watchWG))
	}
	r.load = newWorkload(c, r.rec, r.now, time.Now())
	r.probeID = len(c.Members) * r.load.perMember
	r.stopped = make(chan struct{})
	r.clients = r.load.run(r.stopped, cfg.Seed)
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// faults runs the schedule.
func (r *runner) faults(ctx context.Context) {
	r.faultStart = time.Now()
	none := "none"
	r.current.Store(&none)
	progressDone := make(chan struct{})
	if r.cfg.Progress != nil {
		go r.progress(progressDone)
	}
	defer close(progressDone)
	// Let the clients warm up.
	sleep(ctx, time.Second)
	for _, f := range r.report.Schedule {
		// The schedule's length is an estimate: the run stops at its
		// duration, whatever is left of the schedule.
		if ctx.Err() != nil || (r.cfg.Schedule == nil && time.Since(r.faultStart) >= r.cfg.Duration) {
			break
		}
		if !r.fault(ctx, f) {
			break
		}
	}
	r.report.Elapsed = time.Since(r.faultStart)
}

// fault applies one fault, waits, heals it and checks that the cluster
// takes a write within the bound. It returns false when the run cannot go
// on.
func (r *runner) fault(ctx context.Context, f Fault) bool {
	lead := r.cluster.Leader(ctx, 2*time.Second)
	r.leader.Store(int64(lead))
	af := AppliedFault{Fault: f, Start: time.Since(r.faultStart)}
	at := r.now()
	victim, desc, heal, err := r.cluster.apply(ctx, f, lead)
	af.Member, af.Description = victim, desc
	if desc == "" {
		af.Description = f.what()
	}
	r.current.Store(&af.Description)
	if err != nil {
		af.Err = err
		r.report.Problems = append(r.report.Problems, fmt.Sprintf("fault %q could not be applied: %v", af.Description, err))
	}
	if err == nil {
		sleep(ctx, f.Duration)
	}
	healAt := r.now()
	if heal != nil {
		hctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := heal(hctx); err != nil {
			af.Err = errors.Join(af.Err, err)
			r.report.Problems = append(r.report.Problems, fmt.Sprintf("heal of %q failed: %v", af.Description, err))
		}
		cancel()
	}
	// The network is healed after every fault, whatever it was.
	if err := r.cluster.Net.Heal(); err != nil {
		r.report.Problems = append(r.report.Problems, fmt.Sprintf("heal the network: %v", err))
	}
	af.Heal = time.Since(r.faultStart)
	healed := "healed"
	r.current.Store(&healed)
	r.rec.Annotate(linearizability.Annotation{Tag: "nemesis", Start: at, End: healAt, Description: af.Description,
		Details: fmt.Sprintf("%s (%v)", f.Kind, f.Duration.Round(time.Millisecond)), Color: faultColor(f.Kind)})
	took, ok := r.probe(r.cfg.LivenessBound)
	af.HealToWrite = took
	r.report.Faults = append(r.report.Faults, af)
	if !ok {
		r.rec.Annotate(linearizability.Annotation{Tag: "nemesis", Start: r.now(), End: r.now(), Description: "no write within the liveness bound", Color: "#ff0000"})
		r.report.Problems = append(r.report.Problems, r.stuck(af))
		return false
	}
	r.rec.Annotate(linearizability.Annotation{Tag: "nemesis", Start: r.now(), End: r.now(),
		Description: fmt.Sprintf("first write %v after the heal", took.Round(time.Millisecond)), Color: "#d9ead3"})
	sleep(ctx, f.Quiet)
	return af.Err == nil
}

// faultColor is a fault's colour in the visualisation.
func faultColor(k Kind) string {
	switch k {
	case Kill, Wipe, Pause:
		return "#f4cccc"
	case RemoveAdd, DiskFull:
		return "#fce5cd"
	default:
		return "#cfe2f3"
	}
}

// probe writes /nemesis-probe through each running member in turn until
// one write succeeds or bound passes, and returns how long it took. Each
// attempt is an operation of the history, through one member only (never
// re-sent: its outcome stays its own).
func (r *runner) probe(bound time.Duration) (time.Duration, bool) {
	start := time.Now()
	for k := 0; time.Since(start) < bound; k++ {
		m := r.cluster.Members[k%len(r.cluster.Members)]
		if !m.Running() {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		r.probeSeq++
		value := fmt.Sprintf("probe-%d", r.probeSeq)
		cmd := kvstore.Command{Op: kvstore.OpSet, Path: "/nemesis-probe", Value: value}
		r.load.mu.Lock()
		r.load.values[value] = cmd.Path
		r.load.mu.Unlock()
		id := r.rec.Call(r.probeID, linearizability.Write(cmd), r.now())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := r.probes[m.Index].Set(ctx, cmd.Path, value, nil)
		cancel()
		if err != nil {
			if neverSent(err) {
				r.rec.NoEffect(id)
			} else if out, known := errorOutput(err); known {
				r.rec.Return(id, out, r.now())
			} else {
				r.rec.Unknown(id)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		r.rec.Return(id, linearizability.Output{Index: resp.Index, Node: toNode(resp.Node, resp.Action), Prev: toNode(resp.PrevNode, "")}, r.now())
		r.load.mu.Lock()
		r.load.acks = append(r.load.acks, Ack{Client: r.probeID, Change: changeOf(resp)})
		r.load.okWrites[int64(time.Since(r.load.start)/time.Second)] = true
		r.load.mu.Unlock()
		took := time.Since(start)
		return took, took <= bound
	}
	return -1, false
}

// stuck describes a cluster that took no write after a heal: the members'
// /v2/stats and the ends of their logs.
func (r *runner) stuck(af AppliedFault) string {
	var b strings.Builder
	fmt.Fprintf(&b, "liveness: no write succeeded within %v of healing %q\n", r.cfg.LivenessBound, af.Description)
	for _, m := range r.cluster.Members {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fmt.Fprintf(&b, "--- %s (running %v) stats:\n%s--- %s log (last 30 lines of %s):\n%s\n",
			m.Name, m.Running(), m.Stats(ctx), m.Name, m.LogPath, m.LogTail(30))
		cancel()
	}
	return b.String()
}

// progress prints a line every ProgressEvery.
func (r *runner) progress(done chan struct{}) {
	t := time.NewTicker(r.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		lead := "none"
		if l := r.leader.Load(); l >= 0 {
			lead = fmt.Sprintf("m%d", l+1)
		}
		fmt.Fprintf(r.cfg.Progress, "nemesis %5s/%v: %d ops (%d unknown), %d faults, leader %s, now: %s\n",
			time.Since(r.faultStart).Round(time.Second), r.cfg.Duration, r.load.ops.Load(), r.load.unknown.Load(),
			len(r.report.Faults), lead, *r.current.Load())
	}
}

// finish stops the clients, drains the watches and checks everything.
func (r *runner) finish() {
	close(r.stopped)
	r.clients.Wait()
	r.logf("nemesis: clients stopped; draining the watches")
	r.report.Availability = r.availability()
	// A last write through the cluster marks the end: every watch must
	// deliver every change up to it.
	if _, ok := r.probe(3 * r.cfg.LivenessBound); !ok {
		r.report.Problems = append(r.report.Problems, r.stuck(AppliedFault{Description: "the final heal"}))
	}
	// The final reads and listings come before the watches drain, and the
	// fence covers what the listings show: a write still in flight when
	// the clients stopped (a member holds a request until its timeout, and
	// queues its proposal while there is no leader) may be applied after
	// the last acknowledged write, and each listing is checked against the
	// applied history up to its own index.
	finals, listed := r.finalReads()
	fence := r.lastAck()
	for _, x := range listed {
		fence = max(fence, x)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, w := range r.watchers {
		for w.last() < fence && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if w.last() < fence {
			s := w.snapshot()
			r.report.Problems = append(r.report.Problems, fmt.Sprintf("the watch through m%d did not deliver index %d within 15 s of the end (it is at %d)", s.Member+1, fence, s.Last()))
		}
	}
	r.stopWatch()
	r.watchWG.Wait()
	r.check(fence, finals, listed)
}

// lastAck is the index of the last acknowledged write.
func (r *runner) lastAck() uint64 {
	r.load.mu.Lock()
	defer r.load.mu.Unlock()
	var last uint64
	for _, a := range r.load.acks {
		last = max(last, a.Index)
	}
	return last
}

// availability is the share of the fault phase's seconds in which some
// write succeeded.
func (r *runner) availability() float64 {
	r.load.mu.Lock()
	defer r.load.mu.Unlock()
	from := int64(r.faultStart.Sub(r.load.start) / time.Second)
	to := from + int64(r.report.Elapsed/time.Second)
	if to <= from {
		return 0
	}
	ok := 0
	for s := from; s < to; s++ {
		if r.load.okWrites[s] {
			ok++
		}
	}
	return float64(ok) / float64(to-from)
}

// finalReads reads every key through every member, linearizably, into
// the history, and lists each member's files, with the index each listing
// was read at (0 when it failed).
func (r *runner) finalReads() ([]map[string]Change, []uint64) {
	r.load.mu.Lock()
	keys := slices.Clone(r.load.keys)
	r.load.mu.Unlock()
	keys = append(keys, "/nemesis-probe")
	for _, m := range r.cluster.Members {
		w := &worker{w: r.load, id: r.probeID + 1 + m.Index, member: m, cl: r.probes[m.Index], last: map[string]string{}}
		for _, k := range keys {
			w.read(k, strings.HasPrefix(k, "/q"))
		}
	}
	// The listings come after every final read: a write still in flight
	// that no listing shows can have been seen by no operation of the
	// history (see settlePending).
	var finals []map[string]Change
	var listed []uint64
	for _, m := range r.cluster.Members {
		files := map[string]Change{}
		var at uint64
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := r.probes[m.Index].Get(ctx, "/", &client.GetOptions{Quorum: true, Recursive: true})
		cancel()
		if err != nil {
			r.report.Problems = append(r.report.Problems, fmt.Sprintf("final listing through %s: %v", m.Name, err))
		} else {
			flatten(resp.Node, files)
			at = resp.Index
		}
		finals = append(finals, files)
		listed = append(listed, at)
	}
	return finals, listed
}

// flatten lists the files under n.
func flatten(n *client.Node, out map[string]Change) {
	if n == nil {
		return
	}
	if !n.Dir {
		out[n.Key] = Change{Index: n.ModifiedIndex, Key: n.Key, Value: n.Value, HasValue: true}
		return
	}
	for _, c := range n.Nodes {
		flatten(c, out)
	}
}

// check runs every check and fills in the report. finals are the members'
// final listings, listed the indexes they were read at.
func (r *runner) check(fence uint64, finals []map[string]Change, listed []uint64) {
	rep := r.report
	var streams []WatchStream
	for _, w := range r.watchers {
		s := w.snapshot()
		streams = append(streams, s)
		rep.WatchEvents += len(s.Events)
		rep.WatchGaps += len(s.Gaps)
	}
	r.load.mu.Lock()
	acks, serial, values := slices.Clone(r.load.acks), slices.Clone(r.load.serial), r.load.values
	r.load.mu.Unlock()
	rep.Acked, rep.SerialReads = len(acks), len(serial)
	rep.Ops += len(serial)

	applied, problems := buildApplied(streams, acks)
	problems = append(problems, checkStreams(streams, applied)...)
	problems = append(problems, checkValues(applied, values)...)
	from := streams[0].After
	for _, s := range streams {
		from = min(from, s.After)
	}
	_, holes := replay(applied, from, fence)
	rep.SettledApplied, rep.SettledNoEffect = r.settlePending(applied, len(holes) == 0, finals)
	h := r.rec.History()
	rep.Ops += len(h.Operations)
	for _, op := range h.Operations {
		if op.Unknown {
			rep.Unknown++
		}
	}
	complete := func(x uint64) bool { return x > from && x <= fence && len(holes) == 0 }
	problems = append(problems, checkSerial(serial, applied, complete)...)
	if len(holes) > 0 {
		problems = append(problems, fmt.Sprintf("no watch saw the changes at %d indexes between %d and %d (first: %d): every watch had a gap there",
			len(holes), from+1, fence, holes[0]))
	} else {
		var names []string
		for _, m := range r.cluster.Members {
			names = append(names, m.Name)
		}
		problems = append(problems, checkFinals(names, applied, from, fence, finals, listed)...)
	}
	for i, files := range finals {
		for _, p := range checkAcked(acks, files) {
			problems = append(problems, r.cluster.Members[i].Name+": "+p)
		}
	}
	for _, m := range r.cluster.Members {
		problems = append(problems, m.Crashes()...)
	}
	rep.Notes = r.cluster.Notes()
	rep.Problems = append(rep.Problems, problems...)

	vis := filepath.Join(rep.OutDir, "history.html")
	opts := linearizability.Options{Epoch: r.epoch, VisualizationPath: vis, Log: r.cfg.Log, Timeout: 2 * time.Minute,
		AlwaysVisualize: len(rep.Problems) > 0}
	started := time.Now()
	res := linearizability.Check(h, opts)
	r.logf("nemesis: checked %d operations in %d parts in %v", res.Operations, res.Partitions, time.Since(started).Round(time.Millisecond))
	rep.Linearizability = res
	if !res.Ok {
		rep.Problems = append(rep.Problems, "linearizability: "+res.String())
	}
}

// settlePending records the writes whose outcome their clients never
// learned. An in-order create the applied history holds took effect as it
// shows (its node is new: no previous node), so it is recorded with that
// answer. A write whose value the applied history does not hold — complete,
// without holes — and no member's final listing shows never took effect
// within the history: the listings come after every operation of the
// history, so nothing in it can have seen the write. Everything else stays
// unknown. A known answer is far cheaper for porcupine than an unknown one.
func (r *runner) settlePending(applied AppliedHistory, complete bool, finals []map[string]Change) (settled, noEffect int) {
	seen := map[string]Change{}
	for _, ch := range applied {
		if ch.HasValue {
			seen[ch.Value] = ch
		}
	}
	listed := map[string]bool{}
	for _, files := range finals {
		for _, f := range files {
			listed[f.Value] = true
		}
	}
	r.load.mu.Lock()
	pending := r.load.pending
	r.load.pending = nil
	r.load.mu.Unlock()
	for _, p := range pending {
		ch, ok := seen[p.cmd.Value]
		switch {
		case p.cmd.Value == "" || (ok && p.cmd.Op != kvstore.OpCreateInOrder):
			r.rec.Unknown(p.id)
		case ok && ch.Action == kvstore.ActionCreate:
			v := ch.Value
			node := &kvstore.Node{Key: ch.Key, Value: &v, ModifiedIndex: ch.Index, CreatedIndex: ch.Index}
			r.rec.Applied(p.id, linearizability.Output{Index: ch.Index, Node: node})
			settled++
		case !ok && complete && !listed[p.cmd.Value] && len(finals) == len(r.cluster.Members):
			r.rec.NoEffect(p.id)
			noEffect++
		default:
			r.rec.Unknown(p.id)
		}
	}
	return settled, noEffect
}

// cleanup tears the cluster down and, for a run that passed, removes its
// output directory unless it was asked for.
func (r *runner) cleanup() {
	if r.stopWatch != nil {
		r.stopWatch()
		r.watchWG.Wait()
	}
	for _, cl := range r.probes {
		cl.Close()
	}
	if r.cluster != nil {
		if err := r.cluster.Close(); err != nil {
			r.report.Problems = append(r.report.Problems, err.Error())
		}
	}
	if !r.report.Failed() && !r.keepOut && r.report.Elapsed > 0 {
		os.RemoveAll(r.report.OutDir)
		r.report.OutDir = ""
	}
}

// WriteTable writes the report as a table: faults by kind, operations,
// availability, time from heal to first write, and the verdict.
func (r *Report) WriteTable(w io.Writer) {
	type row struct {
		n        int
		took     []time.Duration
		failures int
	}
	rows := map[Kind]*row{}
	var all []time.Duration
	for _, f := range r.Faults {
		x := rows[f.Kind]
		if x == nil {
			x = &row{}
			rows[f.Kind] = x
		}
		x.n++
		if f.HealToWrite >= 0 {
			x.took = append(x.took, f.HealToWrite)
			all = append(all, f.HealToWrite)
		} else {
			x.failures++
		}
		if f.Err != nil {
			x.failures++
		}
	}
	fmt.Fprintf(w, "%-18s %6s %14s %14s\n", "fault", "count", "heal→write p50", "heal→write max")
	for _, k := range AllKinds() {
		x := rows[k]
		if x == nil {
			continue
		}
		p50, mx := percentiles(x.took)
		fmt.Fprintf(w, "%-18s %6d %14v %14v\n", k, x.n, p50, mx)
	}
	p50, mx := percentiles(all)
	fmt.Fprintf(w, "%-18s %6d %14v %14v\n", "all", len(r.Faults), p50, mx)
	fmt.Fprintf(w, "operations: %d (%d acknowledged writes, %d serializable reads, %d unknown outcomes; %d more settled from the applied history: %d took effect, %d never did)\n",
		r.Ops, r.Acked, r.SerialReads, r.Unknown, r.SettledApplied+r.SettledNoEffect, r.SettledApplied, r.SettledNoEffect)
	fmt.Fprintf(w, "watches: %d events delivered, %d gaps (error 401)\n", r.WatchEvents, r.WatchGaps)
	fmt.Fprintf(w, "availability: %.1f%% of %v with a successful write\n", 100*r.Availability, r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "linearizability: %s\n", r.Linearizability)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Failed() {
		fmt.Fprintf(w, "FAILED with %d problems (seed %d; logs, schedule and visualisation in %s):\n", len(r.Problems), r.Config.Seed, r.OutDir)
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	} else {
		fmt.Fprintf(w, "PASSED (seed %d)\n", r.Config.Seed)
	}
}

func percentiles(ds []time.Duration) (p50, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond)
}
