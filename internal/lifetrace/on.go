//go:build lifetrace

package lifetrace

import (
	"bufio"
	"fmt"
	"os"
	"sync"
	"time"
)

// Enabled says whether this build records.
const Enabled = true

type record struct {
	member, peer, index uint64
	stage               Stage
	at                  int64
}

var (
	mu      sync.Mutex
	pending []record
	prefix  = os.Getenv("RAFTKV_LIFETRACE")
)

func init() {
	if prefix != "" {
		go flush()
	}
}

// Mark notes that member passed stage (about peer and index, where they
// apply) now.
func Mark(member, peer, index uint64, stage Stage) {
	if prefix == "" {
		return
	}
	at := time.Now().UnixNano()
	mu.Lock()
	pending = append(pending, record{member, peer, index, stage, at})
	mu.Unlock()
}

// flush appends the records to the process's file four times a second.
func flush() {
	name := fmt.Sprintf("%s.%d", prefix, os.Getpid())
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lifetrace: %v\n", err)
		return
	}
	w := bufio.NewWriter(f)
	for {
		time.Sleep(250 * time.Millisecond)
		mu.Lock()
		take := pending
		pending = nil
		mu.Unlock()
		for _, r := range take {
			fmt.Fprintf(w, "%x %x %d %d %d\n", r.member, r.peer, r.index, r.stage, r.at)
		}
		if err := w.Flush(); err != nil {
			fmt.Fprintf(os.Stderr, "lifetrace: %s: %v\n", name, err)
			return
		}
	}
}
