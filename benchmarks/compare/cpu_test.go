package main

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestProcessCPUAgreesWithRusage: the CPU time read from /proc/PID/stat
// grows as getrusage says this process's does, and a missing process is
// an error, not a zero.
func TestProcessCPUAgreesWithRusage(t *testing.T) {
	rusage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	ruBefore := rusage()
	x := 0
	for start := time.Now(); rusage()-ruBefore < 300*time.Millisecond && time.Since(start) < 20*time.Second; {
		x++
	}
	after, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	got, want := after-before, rusage()-ruBefore
	if d := got - want; d < -60*time.Millisecond || d > 60*time.Millisecond {
		t.Fatalf("/proc counted %v of CPU, getrusage %v (loop ran %d times)", got, want, x)
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
