package kvstore

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The benchmark key space: 16-byte keys ("/" and 15 digits) holding 64-byte
// values, as the targets are stated.
const benchKeys = 1_000_000

var benchValue = strings.Repeat("v", 64)

func benchKey(i int) string { return fmt.Sprintf("/%015d", i) }

// benchKeyList returns the first n benchmark keys as substrings of one
// backing string, so that the harness adds one object, not a million, to
// what the garbage collector marks while the store is measured.
func benchKeyList(n int) []string {
	var all strings.Builder
	all.Grow(16 * n)
	for i := range n {
		all.WriteString(benchKey(i))
	}
	backing := all.String()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = backing[16*i : 16*(i+1)]
	}
	return keys
}

// benchStore is a store of benchKeys keys, built once and shared by the
// benchmarks that only overwrite existing keys.
var benchStore = sync.OnceValues(func() (*Store, []string) {
	s, err := New(Config{})
	if err != nil {
		panic(err)
	}
	keys := benchKeyList(benchKeys)
	for i := range keys {
		if r := s.Apply(uint64(i+1), Command{Op: OpSet, Path: keys[i], Value: benchValue, Now: t0}); r.Err != nil {
			panic(r.Err)
		}
	}
	return s, keys
})

// reportApplies reports the applies per second of a loop of b.N applies
// that started at start, and the process CPU time per apply (the mutator
// and the garbage collector on every core): on a shared machine wall time
// depends on what else runs, CPU time much less.
func reportApplies(b *testing.B, start time.Time, cpuStart time.Duration) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "applies/s")
	b.ReportMetric(float64((processCPU()-cpuStart).Nanoseconds())/float64(b.N), "cpu-ns/apply")
}

// processCPU returns the user and system CPU time the process has used.
func processCPU() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// BenchmarkSetApply overwrites keys of a 1M-key store.
func BenchmarkSetApply(b *testing.B) {
	s, keys := benchStore()
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), processCPU()
	for i := range b.N {
		r := s.Apply(uint64(i), Command{Op: OpSet, Path: keys[i%len(keys)], Value: benchValue, Now: t0})
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	reportApplies(b, start, cpuStart)
}

// BenchmarkSetApplyDecoded is BenchmarkSetApply with each command decoded
// from its Raft-entry encoding first, as a member applies it.
func BenchmarkSetApplyDecoded(b *testing.B) {
	s, keys := benchStore()
	entries := make([][]byte, 4096)
	for i := range entries {
		entries[i], _ = Command{Op: OpSet, Path: keys[i*241%len(keys)], Value: benchValue, Now: t0}.MarshalBinary()
	}
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), processCPU()
	for i := range b.N {
		var c Command
		if err := c.UnmarshalBinary(entries[i%len(entries)]); err != nil {
			b.Fatal(err)
		}
		if r := s.Apply(uint64(i), c); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	reportApplies(b, start, cpuStart)
}

// BenchmarkCompareAndSwapApply swaps keys of a 1M-key store (every value
// is benchValue, so every comparison succeeds).
func BenchmarkCompareAndSwapApply(b *testing.B) {
	s, keys := benchStore()
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), processCPU()
	for i := range b.N {
		r := s.Apply(uint64(i), Command{Op: OpCompareAndSwap, Path: keys[i%len(keys)],
			PrevValue: benchValue, Value: benchValue, Now: t0})
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	reportApplies(b, start, cpuStart)
}

// BenchmarkSetApplyWith100kIdleWatchers is BenchmarkSetApply with 100,000
// watchers waiting on other keys: they must not slow applies down.
func BenchmarkSetApplyWith100kIdleWatchers(b *testing.B) {
	s, keys := benchStore()
	watchers := make([]*Watcher, 100_000)
	for i := range watchers {
		w, err := s.Watch(fmt.Sprintf("/idle/%d", i), WatchOptions{Recursive: i%2 == 0})
		if err != nil {
			b.Fatal(err)
		}
		watchers[i] = w
	}
	defer func() {
		for _, w := range watchers {
			w.Remove()
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), processCPU()
	for i := range b.N {
		r := s.Apply(uint64(i), Command{Op: OpSet, Path: keys[i%len(keys)], Value: benchValue, Now: t0})
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	reportApplies(b, start, cpuStart)
}

// BenchmarkSaveMillionKeys snapshots a store of a million keys: time the
// member's event loop spends on it every SnapshotEvery entries, and the
// snapshot's size.
func BenchmarkSaveMillionKeys(b *testing.B) {
	s, _ := benchStore()
	b.ReportAllocs()
	b.ResetTimer()
	size := 0
	for range b.N {
		data, err := s.Save()
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/save")
	b.ReportMetric(float64(size)/1e6, "MB/snapshot")
}

// BenchmarkMemoryPerKey measures the heap a store needs per key.
func BenchmarkMemoryPerKey(b *testing.B) {
	keys := benchKeyList(benchKeys)
	for range b.N {
		before := heapInUse()
		s, _ := New(Config{})
		for i, k := range keys {
			s.Apply(uint64(i+1), Command{Op: OpSet, Path: k, Value: strings.Clone(benchValue), Now: t0})
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/benchKeys, "bytes/key")
		runtime.KeepAlive(s)
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkGetRecursive10kChildren reads a directory of 10,000 files.
func BenchmarkGetRecursive10kChildren(b *testing.B) {
	s, _ := New(Config{})
	for i := range 10_000 {
		s.Apply(uint64(i+1), Command{Op: OpSet, Path: fmt.Sprintf("/dir/%015d", i), Value: benchValue, Now: t0})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		e, err := s.Get("/dir", GetOptions{Recursive: true, Sorted: true, Now: t0})
		if err != nil || len(e.Node.Nodes) != 10_000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/get")
}

// BenchmarkWatchers100kOneEventEach registers 100,000 watchers on distinct
// keys, then applies one set to each key: every watcher gets one event.
// ns/watcher covers registering, the apply that wakes it, and receiving;
// bytes/idle-watcher is the heap a waiting watcher holds.
func BenchmarkWatchers100kOneEventEach(b *testing.B) {
	const watchers = 100_000
	keys := make([]string, watchers)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var watcherBytes float64
	for range b.N {
		s, _ := New(Config{})
		ws := make([]*Watcher, watchers)
		b.StopTimer()
		before := heapInUse()
		b.StartTimer()
		for i, k := range keys {
			ws[i], _ = s.Watch(k, WatchOptions{})
		}
		b.StopTimer()
		watcherBytes = float64(heapInUse()-before) / watchers
		b.StartTimer()
		for i, k := range keys {
			s.Apply(uint64(i+1), Command{Op: OpSet, Path: k, Value: benchValue, Now: t0})
		}
		for _, w := range ws {
			if e := <-w.EventChan(); e == nil {
				b.Fatal("no event")
			}
		}
		if s.WatcherCount() != 0 {
			b.Fatal("one-shot watchers left")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*watchers), "ns/watcher")
	b.ReportMetric(watcherBytes, "bytes/idle-watcher")
}
