package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The memory comparison (-memory N): for each system in turn, a fresh
// 3-member cluster is filled through the HTTP API with N keys (paths
// /mem/keys/000000..., 16 bytes at a million keys, 64-byte values, 64
// clients spread over the members), then each member's resident set is
// read from /proc/PID/status: once the figures have settled after the
// load, and again after an idle period in which the Go runtime (both
// systems are Go programs) may return freed memory to the kernel on its
// own. Nothing is forced: no GC is triggered, no memory limit set; the
// figures are what `ps` shows an operator.

// memorySample is one member's memory at one moment, in bytes.
type memorySample struct {
	// RSS is VmRSS: resident now.
	RSS int64 `json:"rss_bytes"`
	// HWM is VmHWM: the largest RSS since the process started.
	HWM int64 `json:"hwm_bytes"`
}

// memberMemory is what the memory comparison reports of one member.
type memberMemory struct {
	Endpoint string       `json:"endpoint"`
	Role     string       `json:"role"`
	Settled  memorySample `json:"settled"`
	Idle     memorySample `json:"idle"`
	// DataBytes is the size of the member's data directory after idle.
	DataBytes int64 `json:"data_bytes"`
}

// systemMemory is the memory comparison's result for one system.
type systemMemory struct {
	System string  `json:"system"`
	Keys   int     `json:"keys"`
	FillS  float64 `json:"fill_seconds"`
	// FailedWrites counts the fill's failed attempts by kind (each was
	// retried).
	FailedWrites map[string]int `json:"failed_writes,omitempty"`
	Members      []memberMemory `json:"members"`
}

// memoryKeyPrefix is the directory of the keys: with 6-digit names, each
// key path is 16 bytes.
const memoryKeyPrefix = "/mem/keys"

// memoryValueSize is the size of every value, in bytes.
const memoryValueSize = 64

// runMemory runs the memory comparison, one system after the other (each
// cluster stopped before the next starts, so neither's pages compete with
// the other's).
func runMemory(ctx context.Context, o options, procs *processes, work string) error {
	printMachine(o)
	fmt.Printf("memory: %d keys (paths %s/%0*d..., %d bytes each), %d-byte values, written by 64 clients (net/http, form PUTs, failures retried) over the 3 members of each system in turn\n\n",
		o.memoryKeys, memoryKeyPrefix, len(strconv.Itoa(o.memoryKeys-1)), 0,
		len(memoryKeyPrefix)+1+len(strconv.Itoa(o.memoryKeys-1)), memoryValueSize)
	var results []systemMemory
	for _, name := range []string{"raftkv", "etcd"} {
		if o.only != "" && o.only != name {
			continue
		}
		s, err := startSystem(ctx, o, procs, work, name)
		if err != nil {
			return err
		}
		r, err := measureMemory(ctx, o, s)
		procs.stopAll()
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	printMemoryTable(os.Stdout, results)
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	file := filepath.Join(o.outDir, "memory.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return err
	}
	fmt.Printf("\nthe figures as JSON: %s\n", file)
	return nil
}

// startSystem starts a 3-member cluster of raftkv or etcd.
func startSystem(ctx context.Context, o options, procs *processes, work, name string) (*system, error) {
	if name == "raftkv" {
		return startCluster(ctx, procs, work, o.outDir, "raftkv", []string{o.raftkvBin, "serve"})
	}
	etcdBin, version, err := findEtcd(ctx, o.etcdBin)
	if err != nil {
		return nil, err
	}
	fmt.Printf("etcd: %s (%s)\n", etcdBin, version)
	s, err := startCluster(ctx, procs, work, o.outDir, "etcd", []string{etcdBin, "--enable-v2=true"})
	if err != nil {
		return nil, err
	}
	s.getArgs = []string{"--quorum"}
	return s, nil
}

// measureMemory fills s with the keys and reads its members' memory.
func measureMemory(ctx context.Context, o options, s *system) (systemMemory, error) {
	r := systemMemory{System: s.name, Keys: o.memoryKeys}
	start := time.Now()
	err := fillKeys(ctx, o, s, &r)
	r.FillS = time.Since(start).Seconds()
	if len(r.FailedWrites) > 0 {
		fmt.Printf("%s: failed attempts (each retried): %v\n", s.name, r.FailedWrites)
	}
	if err != nil {
		return r, err
	}
	fmt.Printf("%s: %d keys written in %.0f s (%.0f writes/s)\n", s.name, o.memoryKeys, r.FillS, float64(o.memoryKeys)/r.FillS)
	if err := spotCheck(ctx, o, s); err != nil {
		return r, err
	}
	settled, err := settle(ctx, s)
	if err != nil {
		return r, err
	}
	fmt.Printf("%s: settled; idle for %v\n", s.name, o.memoryIdle)
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(o.memoryIdle):
	}
	leader, _ := findLeader(ctx, s)
	for i, ep := range s.endpoints {
		idle, err := readMemory(s.pids[i])
		if err != nil {
			return r, err
		}
		role := "follower"
		if ep == leader {
			role = "leader"
		}
		r.Members = append(r.Members, memberMemory{Endpoint: ep, Role: role, Settled: settled[i], Idle: idle,
			DataBytes: dirSize(s.dataDirs[i])})
	}
	if o.profileDir != "" {
		if err := heapProfiles(ctx, o, s, leader); err != nil {
			fmt.Fprintln(os.Stderr, "compare: heap profile:", err)
		}
	}
	return r, nil
}

// fillKeys writes every key once: 64 clients, each with its own
// keep-alive connection to one member (client i to member i mod 3), PUTs
// of the form a curl user sends. A write that fails (an error answer, a
// timeout, a lost connection) is retried, up to 10 times, as a client
// would; the failed attempts are counted by kind and reported.
func fillKeys(ctx context.Context, o options, s *system, r *systemMemory) error {
	const (
		clients  = 64
		attempts = 10
	)
	width := len(strconv.Itoa(o.memoryKeys - 1))
	value := "value=" + strings.Repeat("v", memoryValueSize)
	var mu sync.Mutex
	failures := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		ep := s.endpoints[c%len(s.endpoints)]
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= o.memoryKeys {
					return
				}
				url := fmt.Sprintf("%s/v2/keys%s/%0*d", ep, memoryKeyPrefix, width, k)
				for try := 1; ; try++ {
					kind := putForm(ctx, client, url, value)
					if kind == "" {
						break
					}
					mu.Lock()
					failures[kind]++
					mu.Unlock()
					if try == attempts {
						errs <- fmt.Errorf("%s: PUT %s failed %d times, last: %s", s.name, url, attempts, kind)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	r.FailedWrites = failures
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// putForm sends one form PUT and returns "" on success, else what went
// wrong.
func putForm(ctx context.Context, client *http.Client, url, body string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Timeout") {
			return "client timeout (30 s)"
		}
		return "connection error"
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		return ""
	}
	var etcdErr struct {
		Message string `json:"message"`
		Cause   string `json:"cause"`
	}
	json.Unmarshal(b, &etcdErr)
	return fmt.Sprintf("HTTP %d %s (%s)", resp.StatusCode, etcdErr.Message, etcdErr.Cause)
}

// spotCheck reads a few keys back from every member (linearizably) to
// make sure the keys are there, with their values.
func spotCheck(ctx context.Context, o options, s *system) error {
	width := len(strconv.Itoa(o.memoryKeys - 1))
	rng := rand.New(rand.NewPCG(uint64(o.memoryKeys), 1))
	keys := []int{0, o.memoryKeys - 1, rng.IntN(o.memoryKeys), rng.IntN(o.memoryKeys)}
	for _, ep := range s.endpoints {
		for _, k := range keys {
			url := fmt.Sprintf("%s/v2/keys%s/%0*d?quorum=true", ep, memoryKeyPrefix, width, k)
			var ev struct {
				Node struct {
					Value string `json:"value"`
				} `json:"node"`
			}
			if err := getJSON(ctx, url, &ev); err != nil {
				return fmt.Errorf("%s: spot check: %w", s.name, err)
			}
			if len(ev.Node.Value) != memoryValueSize {
				return fmt.Errorf("%s: spot check %s: value of %d bytes, want %d", s.name, url, len(ev.Node.Value), memoryValueSize)
			}
		}
	}
	return nil
}

// settle waits until no member's RSS has moved by more than 2% for 5
// seconds (at most a minute), and returns the figures then.
func settle(ctx context.Context, s *system) ([]memorySample, error) {
	const (
		steadyFor = 5
		tolerance = 0.02
		limit     = 60
	)
	var last []memorySample
	steady := 0
	for range limit {
		now := make([]memorySample, len(s.pids))
		for i, pid := range s.pids {
			var err error
			if now[i], err = readMemory(pid); err != nil {
				return nil, err
			}
		}
		moved := last == nil
		for i := range last {
			if d := float64(now[i].RSS - last[i].RSS); d > tolerance*float64(last[i].RSS) || -d > tolerance*float64(last[i].RSS) {
				moved = true
			}
		}
		if moved {
			steady = 0
		} else if steady++; steady >= steadyFor {
			return now, nil
		}
		last = now
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	fmt.Printf("%s: RSS still moving after %d s; taking the last figures\n", s.name, limit)
	return last, nil
}

// readMemory reads VmRSS and VmHWM of a process.
func readMemory(pid int) (memorySample, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memorySample{}, fmt.Errorf("memory of process %d: %w", pid, err)
	}
	var m memorySample
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			m.RSS = kb << 10
		case "VmHWM:":
			m.HWM = kb << 10
		}
	}
	if m.RSS == 0 || m.HWM == 0 {
		return m, fmt.Errorf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return m, nil
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// heapProfiles saves every member's heap profile (Go's, in use and
// allocated) into the profile directory.
func heapProfiles(ctx context.Context, o options, s *system, leader string) error {
	if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
		return err
	}
	for i, ep := range s.endpoints {
		role := "follower" + strconv.Itoa(i+1)
		if ep == leader {
			role = "leader"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/debug/pprof/heap", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: heap profile: %s", ep, resp.Status)
		}
		file := filepath.Join(o.profileDir, fmt.Sprintf("%s-%s-heap-%d.pprof", s.name, role, o.memoryKeys))
		if err := os.WriteFile(file, b, 0o644); err != nil {
			return err
		}
		fmt.Printf("  (heap profile of %s %s: %s)\n", s.name, ep, file)
	}
	return nil
}

// printMemoryTable prints every member's figures and, with both systems,
// the ratios: of the leaders, and of the largest members.
func printMemoryTable(w io.Writer, results []systemMemory) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-7s %-24s %-8s %12s %12s %12s %12s\n", "system", "member", "role", "RSS settled", "RSS idle", "peak (HWM)", "data dir")
	for _, r := range results {
		for _, m := range r.Members {
			fmt.Fprintf(w, "%-7s %-24s %-8s %12s %12s %12s %12s\n", r.System, m.Endpoint, m.Role,
				mib(m.Settled.RSS), mib(m.Idle.RSS), mib(m.Idle.HWM), mib(m.DataBytes))
		}
	}
	if len(results) != 2 {
		return
	}
	fmt.Fprintln(w)
	figures := []struct {
		label string
		pick  func(systemMemory) int64
	}{
		{"leader RSS settled", func(r systemMemory) int64 { return leaderOf(r).Settled.RSS }},
		{"leader RSS idle", func(r systemMemory) int64 { return leaderOf(r).Idle.RSS }},
		{"largest member RSS settled", func(r systemMemory) int64 { return largest(r, func(m memberMemory) int64 { return m.Settled.RSS }) }},
		{"largest member RSS idle", func(r systemMemory) int64 { return largest(r, func(m memberMemory) int64 { return m.Idle.RSS }) }},
		{"largest member peak (HWM)", func(r systemMemory) int64 { return largest(r, func(m memberMemory) int64 { return m.Idle.HWM }) }},
	}
	fmt.Fprintf(w, "%-27s %12s %12s %8s\n", "", results[0].System, results[1].System, "ratio")
	for _, f := range figures {
		a, b := f.pick(results[0]), f.pick(results[1])
		fmt.Fprintf(w, "%-27s %12s %12s %7.2fx\n", f.label, mib(a), mib(b), float64(a)/float64(b))
	}
}

func leaderOf(r systemMemory) memberMemory {
	for _, m := range r.Members {
		if m.Role == "leader" {
			return m
		}
	}
	return memberMemory{}
}

func largest(r systemMemory, figure func(memberMemory) int64) int64 {
	var most int64
	for _, m := range r.Members {
		most = max(most, figure(m))
	}
	return most
}

// mib formats bytes in MiB.
func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
