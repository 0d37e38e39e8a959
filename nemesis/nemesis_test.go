package nemesis

import (
	"context"
	"os"
	"strconv"
	"strings"
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
	rep, err := Run(context.Background(), Config{Binary: raftkvBinary(t), Members: 3, Seed: seed, Kinds: kinds,
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
