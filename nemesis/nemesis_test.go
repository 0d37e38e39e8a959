package nemesis

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testSeed is RAFTKV_NEMESIS_SEED, or a fresh seed printed for replay.
func testSeed(t *testing.T) uint64 {
	if s := os.Getenv("RAFTKV_NEMESIS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RAFTKV_NEMESIS_SEED=%q: %v", s, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano() % 1_000_000_000)
}

// testDuration is RAFTKV_NEMESIS_DURATION, or d.
func testDuration(t *testing.T, d time.Duration) time.Duration {
	if s := os.Getenv("RAFTKV_NEMESIS_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("RAFTKV_NEMESIS_DURATION=%q: %v", s, err)
		}
		return v
	}
	return d
}

// logWriter sends lines to t.Log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestNemesis is the bounded run of `make test`: three members on their
// own test hosts, about a minute of every fault the kernel allows, the
// clients' history checked. Replay its schedule with RAFTKV_NEMESIS_SEED.
func TestNemesis(t *testing.T) {
	needNamespaces(t)
	seed := testSeed(t)
	t.Logf("nemesis seed %d (replay: RAFTKV_NEMESIS_SEED=%d go test -run TestNemesis ./nemesis)", seed, seed)
	kinds, err := ParseKinds(os.Getenv("RAFTKV_NEMESIS_KINDS"))
	if err != nil {
		t.Fatal(err)
	}
	duration := testDuration(t, 60*time.Second)
	// Ctrl-C stops the run and tears everything down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := Run(ctx, Config{Binary: raftkvBinary(t), Members: 3, Seed: seed, Kinds: kinds,
		Duration: duration, Log: logWriter{t}, Progress: logWriter{t}, ProgressEvery: 10 * time.Second})
	if rep != nil {
		var b strings.Builder
		rep.WriteTable(&b)
		t.Log("\n" + b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Fatalf("nemesis run failed (seed %d); see %s", seed, rep.OutDir)
	}
	if rep.Acked < 100 || len(rep.Faults) < int(duration/(15*time.Second)) {
		t.Fatalf("the run did too little: %d acknowledged writes, %d faults", rep.Acked, len(rep.Faults))
	}
	assertNothingLeft(t, -1)
}

// TestNemesisCatchesPlantedBug is a test of the test: members with a
// planted bug — a leader answers linearizable reads from its own state
// without confirming it still leads, and does not step down when it hears
// from no majority — are run with their leader cut off twice. The clients
// bound to the old leader read stale values while the others write, and
// the run must fail with the visualisation, the fault drawn on it.
func TestNemesisCatchesPlantedBug(t *testing.T) {
	needNamespaces(t)
	out := t.TempDir()
	isolate := Fault{Kind: Isolate, Member: Leader, Duration: 5 * time.Second, Quiet: time.Second}
	rep, err := Run(context.Background(), Config{Binary: raftkvBinary(t), Members: 3, Seed: 1,
		Schedule: []Fault{isolate, isolate}, OutDir: out, Log: logWriter{t},
		PlantedBug: "read-index-no-heartbeat,no-check-quorum"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.WriteTable(&b)
	t.Log("\n" + b.String())
	if !rep.Failed() || rep.Linearizability.Ok {
		t.Fatal("the run with a leader serving stale reads passed")
	}
	page, err := os.ReadFile(rep.Linearizability.Visualization)
	if err != nil {
		t.Fatalf("no visualisation: %v", err)
	}
	if !strings.Contains(string(page), "(the leader)") {
		t.Fatal("the visualisation does not show the fault schedule")
	}
	if !strings.Contains(b.String(), "seed 1") {
		t.Fatal("the report does not name the seed")
	}
	assertNothingLeft(t, -1)
}

// TestLeftoversOfAKilledRunAreCleaned SIGKILLs a process in the middle of
// a run (namespaces, links, a tmpfs mount and members up) and checks that
// its members died with it and that the next start removes everything it
// left.
func TestLeftoversOfAKilledRunAreCleaned(t *testing.T) {
	if os.Getenv("RAFTKV_NEMESIS_CHILD") == "1" {
		// The child: start a cluster, say which slot, wait to be killed.
		c, err := StartCluster(ClusterOptions{Binary: os.Getenv("RAFTKV_NEMESIS_BIN"), Members: 3, Token: "killed",
			LogDir: os.Getenv("RAFTKV_NEMESIS_LOGS"), DiskMB: 100})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Printf("ready %d %d\n", c.Net.Slot, c.Members[0].pid())
		time.Sleep(time.Minute)
		os.Exit(1)
	}
	needNamespaces(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeftoversOfAKilledRunAreCleaned$")
	cmd.Env = append(os.Environ(), "RAFTKV_NEMESIS_CHILD=1", "RAFTKV_NEMESIS_BIN="+raftkvBinary(t), "RAFTKV_NEMESIS_LOGS="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var slot, member int
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if _, scanErr := fmt.Sscanf(line, "ready %d %d", &slot, &member); err != nil || scanErr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child did not start a cluster: %q %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// Its members die with it (the next start would kill them otherwise).
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(member, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if syscall.Kill(member, 0) == nil {
		t.Errorf("member process %d outlived the run that started it", member)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); !strings.Contains(string(out), fmt.Sprintf("raftkv-nem%d-", slot)) {
		t.Fatalf("the killed run left no namespaces to clean (%s): the test tests nothing", out)
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	if !strings.Contains(string(mounts), slotDir(slot)) {
		t.Fatal("the killed run left no tmpfs mount to clean: the test tests nothing")
	}
	var logged strings.Builder
	nw, err := NewNetwork(3, func(format string, args ...any) { fmt.Fprintf(&logged, format+"\n", args...) })
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "leftovers of a crashed run") {
		t.Errorf("the next start did not say it cleaned: %q", logged.String())
	}
	assertNothingLeft(t, slot)
	mounts, _ = os.ReadFile("/proc/self/mounts")
	if strings.Contains(string(mounts), slotDir(slot)) {
		t.Errorf("mounts left behind:\n%s", mounts)
	}
}

// TestNemesisLivenessFailureAttachesStats is a test of the liveness
// check's report: with a bound no write can meet, the run must fail after
// the first heal and attach every member's /v2/stats and the end of its
// log.
func TestNemesisLivenessFailureAttachesStats(t *testing.T) {
	needNamespaces(t)
	kill := Fault{Kind: Kill, Member: Leader, Duration: 2 * time.Second, Quiet: time.Second}
	rep, err := Run(context.Background(), Config{Binary: raftkvBinary(t), Members: 3, Seed: 2, DiskMB: -1,
		Schedule: []Fault{kill, kill}, LivenessBound: time.Nanosecond, OutDir: t.TempDir(), Log: logWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Faults) != 1 {
		t.Fatalf("the run went on after a liveness failure: %d faults", len(rep.Faults))
	}
	var stuck string
	for _, p := range rep.Problems {
		if strings.HasPrefix(p, "liveness:") {
			stuck = p
		}
	}
	for _, want := range []string{"liveness: no write succeeded within 1ns", "/v2/stats/self: 200", "/v2/stats/leader", "m1 log", "m3 log"} {
		if !strings.Contains(stuck, want) {
			t.Fatalf("the liveness failure does not say %q:\n%s", want, stuck)
		}
	}
	assertNothingLeft(t, -1)
}
