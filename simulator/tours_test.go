package simulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tourRun is a tour's trace: its lines, and the cluster's state after
// each of them.
type tourRun struct {
	lines  []TraceLine
	states []ClusterState
}

func runTour(t *testing.T, name string) tourRun {
	t.Helper()
	sc, err := Tour(name)
	require.NoError(t, err)
	var trace bytes.Buffer
	res, err := RunScript(sc, &trace)
	require.NoError(t, err)
	require.Nil(t, res.Failure, "tour %s fails", name)
	require.Equal(t, "ok", res.Stats.Linearizability)
	sc2 := bufio.NewScanner(&trace)
	sc2.Buffer(nil, 16<<20)
	require.True(t, sc2.Scan())
	r, err := NewRebuilder(sc2.Bytes())
	require.NoError(t, err)
	var run tourRun
	for sc2.Scan() {
		var l TraceLine
		require.NoError(t, json.Unmarshal(sc2.Bytes(), &l))
		require.NoError(t, r.Apply(sc2.Bytes()))
		run.lines = append(run.lines, l)
		run.states = append(run.states, r.State())
	}
	return run
}

// find returns the first line at or after fromUs that satisfies ok, or -1.
func (r tourRun) find(fromUs int64, ok func(l TraceLine, st ClusterState) bool) int {
	for k, l := range r.lines {
		if l.AtUs >= fromUs && ok(l, r.states[k]) {
			return k
		}
	}
	return -1
}

func (r tourRun) last() ClusterState { return r.states[len(r.states)-1] }

// result returns the answer to the operation called at atUs.
func (r tourRun) result(t *testing.T, atUs int64) TraceLine {
	t.Helper()
	k := r.find(atUs, func(l TraceLine, _ ClusterState) bool { return l.Kind == "call" })
	require.GreaterOrEqual(t, k, 0, "no call at %dus", atUs)
	id := r.lines[k].ID
	for _, l := range r.lines[k:] {
		if (l.Kind == "return" || l.Kind == "timeout") && l.ID == id {
			return l
		}
	}
	return TraceLine{Kind: "none"}
}

// TestToursTeachWhatTheySay runs every tour and checks that what its
// captions describe happens in the run.
func TestToursTeachWhatTheySay(t *testing.T) {
	tours := Tours()
	var names []string
	for _, sc := range tours {
		names = append(names, sc.Name)
		require.NotEmpty(t, sc.Title, sc.Name)
		require.NotEmpty(t, sc.Captions, sc.Name)
	}
	require.Subset(t, names, []string{"election", "replication", "conflict", "figure8", "partition", "readindex", "learner"})
	checks := map[string]func(t *testing.T, r tourRun){
		"election": func(t *testing.T, r tourRun) {
			// A split vote: two candidates of the same term, and no leader
			// of that term ever.
			k := r.find(1050000, func(_ TraceLine, st ClusterState) bool {
				return st.Members[0].Role == "candidate" && st.Members[2].Role == "candidate" && st.Members[0].Term == st.Members[2].Term && st.Members[0].Term > 2
			})
			require.GreaterOrEqual(t, k, 0, "no split vote")
			split := r.states[k].Members[0].Term
			require.Equal(t, -1, r.find(0, func(l TraceLine, _ ClusterState) bool {
				return l.Kind == "member" && l.Role == "leader" && l.Term == split
			}))
			require.Positive(t, r.find(0, func(l TraceLine, _ ClusterState) bool {
				return l.Kind == "member" && l.Role == "leader" && l.Term > split
			}))
		},
		"replication": func(t *testing.T, r tourRun) {
			k := r.find(900000, func(l TraceLine, st ClusterState) bool { return l.Kind == "commit" })
			require.GreaterOrEqual(t, k, 0)
			require.Less(t, r.states[k].Members[2].Last, r.states[k].Commit, "the paused member holds the entry that committed without it")
			end := r.last()
			require.Equal(t, end.Members[1].Last, end.Members[2].Last, "the paused member caught up")
			require.Contains(t, r.result(t, 1500000).Result, "blue")
		},
		"conflict": func(t *testing.T, r tourRun) {
			// Member 2's entry 5 of term 2 is replaced by the leader's of term 3.
			k := r.find(1300000, func(l TraceLine, _ ClusterState) bool { return l.Kind == "log" && l.Member == 2 && l.From == 5 })
			require.GreaterOrEqual(t, k, 0, "no truncation of member 2's log")
			require.Equal(t, uint64(2), r.states[k-1].Members[1].Terms[4-r.states[k-1].Members[1].First+1])
			require.Equal(t, uint64(3), r.states[k].Members[1].Terms[4-r.states[k].Members[1].First+1])
		},
		"figure8": func(t *testing.T, r tourRun) {
			// Entry 7 of term 2 on a majority while no member has
			// committed it; at the end, entry 7 is of term 3 everywhere.
			term7 := func(m MemberState) uint64 {
				if m.Last < 7 || m.First > 7 {
					return 0
				}
				return m.Terms[7-m.First]
			}
			k := r.find(0, func(_ TraceLine, st ClusterState) bool {
				on := 0
				for _, m := range st.Members {
					if term7(m) == 2 {
						on++
					}
					if m.Commit >= 7 {
						return false
					}
				}
				return on >= 4
			})
			require.GreaterOrEqual(t, k, 0, "entry 7 of term 2 never on four members uncommitted")
			for _, m := range r.last().Members {
				require.Equal(t, uint64(3), term7(m), "member %d's entry 7", m.ID)
				require.GreaterOrEqual(t, m.Commit, uint64(7))
			}
		},
		"partition": func(t *testing.T, r tourRun) {
			require.Equal(t, -1, r.find(400000, func(l TraceLine, _ ClusterState) bool {
				return l.AtUs < 1400000 && l.Kind == "member" && l.Member == 3 && (l.Role == "candidate" || l.Term > 2)
			}), "an isolated member with PreVote raised its term")
			k := r.find(1400000, func(_ TraceLine, _ ClusterState) bool { return true })
			require.Equal(t, "leader", r.states[k].Members[1].Role)
			k = r.find(1600000, func(l TraceLine, _ ClusterState) bool {
				return l.Kind == "member" && l.Member == 2 && l.Role == "follower"
			})
			require.GreaterOrEqual(t, k, 0)
			require.Less(t, r.lines[k].AtUs, int64(2700000), "the cut-off leader stepped down only at the heal")
		},
		"readindex": func(t *testing.T, r tourRun) {
			require.Contains(t, r.result(t, 800000).Result, `"red`)
			require.Contains(t, r.result(t, 900000).Result, `"blue`)
			require.Equal(t, "timeout", r.result(t, 1450000).Kind)
			require.Contains(t, r.result(t, 2100000).Result, `"blue`)
			require.Contains(t, r.result(t, 2700000).Result, `"green`)
		},
		"learner": func(t *testing.T, r tourRun) {
			var confs []string
			for _, l := range r.lines {
				if l.Kind == "conf" && l.Member == 2 {
					b, _ := json.Marshal([]any{l.Voters, l.Learners})
					confs = append(confs, string(b))
				}
			}
			require.Equal(t, []string{`[[1,2,3],null]`, `[[1,2,3],[4]]`, `[[1,2,3,4],null]`, `[[2,3,4],null]`}, confs)
		},
	}
	for _, sc := range tours {
		t.Run(sc.Name, func(t *testing.T) {
			check := checks[sc.Name]
			require.NotNil(t, check, "tour %s has no test of what it teaches", sc.Name)
			check(t, runTour(t, sc.Name))
		})
	}
}

// TestTourCodePointersExist checks that every caption's code pointer names
// a file of the repository and, after the colon, functions defined in it.
func TestTourCodePointersExist(t *testing.T) {
	paren := regexp.MustCompile(`\s*\(.*\)`)
	for _, sc := range Tours() {
		for _, c := range sc.Captions {
			require.NotEmpty(t, c.Text)
			for _, ref := range strings.Split(c.Code, ";") {
				ref = strings.TrimSpace(ref)
				if ref == "" {
					continue
				}
				file, funcs, _ := strings.Cut(ref, ":")
				src, err := os.ReadFile(filepath.Join("..", strings.TrimSpace(file)))
				require.NoError(t, err, "tour %s at %dus names %q", sc.Name, c.AtUs, file)
				for _, name := range strings.Split(paren.ReplaceAllString(funcs, ""), ",") {
					name = strings.TrimSpace(name)
					if name == "" {
						continue
					}
					defined := regexp.MustCompile(`(?m)^func (\([^)]*\) )?` + regexp.QuoteMeta(name) + `[\[(]`)
					require.True(t, defined.Match(src), "tour %s at %dus: %s defines no function %s", sc.Name, c.AtUs, file, name)
				}
			}
		}
		require.True(t, slices.IsSortedFunc(sc.Captions, func(a, b Caption) int { return int(a.AtUs - b.AtUs) }), "tour %s: captions out of time order", sc.Name)
		d, err := time.ParseDuration(sc.Duration)
		require.NoError(t, err)
		for _, c := range sc.Captions {
			require.Less(t, c.AtUs, d.Microseconds(), "tour %s: a caption after the run's end", sc.Name)
		}
	}
}
