package lifetrace

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Record is one line of a trace file, with the process that wrote it.
type Record struct {
	Process             int
	Member, Peer, Index uint64
	Stage               Stage
	At                  int64
}

// ReadFiles reads every PREFIX.<pid> file. A malformed line is an error
// naming the file and line.
func ReadFiles(prefix string) ([]Record, error) {
	names, err := filepath.Glob(prefix + ".*")
	if err != nil {
		return nil, err
	}
	var recs []Record
	for _, name := range names {
		pid, err := strconv.Atoi(strings.TrimPrefix(name, prefix+"."))
		if err != nil {
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			r, err := parseLine(sc.Text())
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			r.Process = pid
			recs = append(recs, r)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	slices.SortStableFunc(recs, func(a, b Record) int { return cmp.Compare(a.At, b.At) })
	return recs, nil
}

func parseLine(s string) (Record, error) {
	f := strings.Fields(s)
	if len(f) != 5 {
		return Record{}, fmt.Errorf("want 5 fields, got %d", len(f))
	}
	var r Record
	var err error
	parse := func(s string, base int) uint64 {
		v, e := strconv.ParseUint(s, base, 64)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	r.Member, r.Peer, r.Index = parse(f[0], 16), parse(f[1], 16), parse(f[2], 10)
	stage := parse(f[3], 10)
	r.At = int64(parse(f[4], 10))
	if err != nil {
		return Record{}, err
	}
	if stage == 0 || stage >= uint64(numStages) {
		return Record{}, fmt.Errorf("unknown stage %d", stage)
	}
	r.Stage = Stage(stage)
	return r, nil
}

// A Row is one stage of the chain: where (the process's role), what, and
// to or from whom, with its offset from the request's read over the writes
// seen.
type Row struct {
	Where, Stage, Peer string
	N                  int
	P10, P50, P90      time.Duration
}

// Chain follows every write whose request was read in [from, to] (wall
// clock, ns) on the process that read most requests, and returns the
// stages in the order of their median offset, with how many writes it
// followed. Processes are named by role: "leader" (the one sending
// appends), "follower1", "follower2", ... in process-ID order.
func Chain(recs []Record, from, to int64) ([]Row, int) {
	var in []Record
	for _, r := range recs {
		if r.At >= from && r.At <= to {
			in = append(in, r)
		}
	}
	reads, appends := map[int]int{}, map[int]int{}
	memberProcess := map[uint64]int{}
	for _, r := range in {
		switch r.Stage {
		case RequestRead:
			reads[r.Process]++
		case AppendSent:
			appends[r.Process]++
		}
		if r.Member != 0 {
			memberProcess[r.Member] = r.Process
		}
	}
	client, leader := most(reads), most(appends)
	if client == 0 || leader == 0 {
		return nil, 0
	}
	var followers []int
	for _, p := range memberProcess {
		if p != leader && !slices.Contains(followers, p) {
			followers = append(followers, p)
		}
	}
	slices.Sort(followers)
	role := func(process int) string {
		if process == leader {
			return "leader"
		}
		if i := slices.Index(followers, process); i >= 0 {
			return fmt.Sprintf("follower%d", i+1)
		}
		return fmt.Sprintf("process %d", process)
	}
	peerRole := func(member uint64) string {
		if p, ok := memberProcess[member]; ok {
			return role(p)
		}
		return ""
	}
	type key struct {
		where int
		stage Stage
		peer  uint64
	}
	offsets := map[key][]time.Duration{}
	writes := 0
	for i := 0; i < len(in); i++ {
		if in[i].Stage != RequestRead || in[i].Process != client {
			continue
		}
		start := in[i].At
		end := -1
		for j := i + 1; j < len(in); j++ {
			if in[j].Process == client && in[j].Stage == ResponseWritten {
				end = j
				break
			}
		}
		if end < 0 {
			break
		}
		// The write's entry: the first append sent while it was served.
		var index uint64
		for j := i; j <= end; j++ {
			if in[j].Stage == AppendSent {
				index = in[j].Index
				break
			}
		}
		if index == 0 {
			continue // not a write, or not one the cluster appended
		}
		writes++
		seen := map[key]bool{}
		for j := i; j <= end; j++ {
			r := in[j]
			if r.Stage.Indexed() && r.Index < index {
				continue
			}
			if r.Process == client && r.Stage == RequestRead && j != i {
				continue
			}
			k := key{r.Process, r.Stage, r.Peer}
			if seen[k] {
				continue
			}
			seen[k] = true
			offsets[k] = append(offsets[k], time.Duration(r.At-start))
		}
	}
	rows := make([]Row, 0, len(offsets))
	for k, d := range offsets {
		slices.Sort(d)
		rows = append(rows, Row{
			Where: role(k.where), Stage: k.stage.String(), Peer: peerRole(k.peer), N: len(d),
			P10: d[len(d)/10], P50: d[len(d)/2], P90: d[len(d)*9/10],
		})
	}
	slices.SortFunc(rows, func(a, b Row) int {
		if c := cmp.Compare(int64(a.P50), int64(b.P50)); c != 0 {
			return c
		}
		return strings.Compare(a.Where+a.Stage+a.Peer, b.Where+b.Stage+b.Peer)
	})
	return rows, writes
}

func most(counts map[int]int) int {
	best, n := 0, 0
	for p, c := range counts {
		if c > n || (c == n && p < best) {
			best, n = p, c
		}
	}
	return best
}
