package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/raftkv/raftkv/internal/lifetrace"
)

// lifeRun is a measured run whose writes -life follows: its time span and
// where its client was.
type lifeRun struct {
	from, to time.Time
	label    string
}

// printLife prints where the time of each write of run l went, from the
// members' lifetrace records: every stage's offset from the moment the
// request was read, median first.
func printLife(work string, l lifeRun) {
	time.Sleep(time.Second) // the members flush their records four times a second
	recs, err := lifetrace.ReadFiles(filepath.Join(work, "life"))
	if err != nil {
		fmt.Println("compare: -life:", err)
		return
	}
	rows, writes := lifetrace.Chain(recs, l.from.UnixNano(), l.to.UnixNano())
	label := l.label
	if writes == 0 {
		fmt.Printf("\n-life: no write followed for 1 client%s (no records in the measured run)\n", label)
		return
	}
	fmt.Printf("\nwhere a write's time goes, 1 client%s: %d writes followed through the three processes; offsets from the moment the request's head was read (µs)\n", label, writes)
	fmt.Printf("  %8s %8s %8s  %s\n", "p50", "p10", "p90", "stage")
	for _, r := range rows {
		what := r.Where + ": " + r.Stage
		if r.Peer != "" {
			arrow := " -> "
			if strings.Contains(r.Stage, "received") || strings.Contains(r.Stage, "stepped") {
				arrow = " <- "
			}
			what += arrow + r.Peer
		}
		if r.N < writes*9/10 {
			what += fmt.Sprintf("  (in %d%% of writes)", r.N*100/writes)
		}
		fmt.Printf("  %8.1f %8.1f %8.1f  %s\n", us(r.P50), us(r.P10), us(r.P90), what)
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
