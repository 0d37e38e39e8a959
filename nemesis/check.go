package nemesis

import (
	"fmt"
	"sort"
	"strings"
)

// checkSerial checks the serializable reads against the applied history:
// a serializable read may be stale, but what it returns must have been
// the key's state at some index — the node it shows is the change the
// cluster applied at its modifiedIndex — and reads of one client through
// one member process never go back in time.
func checkSerial(reads []SerialRead, applied AppliedHistory, complete func(uint64) bool) []string {
	var problems []string
	type session struct {
		client, incarnation int
		key                 string
	}
	lastIndex := map[session]uint64{}
	lastModified := map[session]uint64{}
	sort.SliceStable(reads, func(i, j int) bool { return reads[i].Call < reads[j].Call })
	report := func(format string, args ...any) {
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for _, r := range reads {
		s := session{r.Client, r.Incarnation, r.Key}
		if r.Found {
			ch, ok := applied[r.ModifiedIndex]
			switch {
			case ok && (ch.Key != r.Key || !ch.HasValue || ch.Value != r.Value):
				report("serializable read of %s through m%d by client %d: %q at modifiedIndex %d, but the change at that index is %s",
					r.Key, r.Member+1, r.Client, r.Value, r.ModifiedIndex, ch)
			case !ok && complete(r.ModifiedIndex):
				report("serializable read of %s through m%d by client %d: %q at modifiedIndex %d, which no watch and no answer saw",
					r.Key, r.Member+1, r.Client, r.Value, r.ModifiedIndex)
			}
			if r.ModifiedIndex < lastModified[s] {
				report("serializable reads of %s through m%d by client %d went back: modifiedIndex %d after %d",
					r.Key, r.Member+1, r.Client, r.ModifiedIndex, lastModified[s])
			}
			lastModified[s] = max(lastModified[s], r.ModifiedIndex)
		}
		if r.Index < lastIndex[s] {
			report("serializable reads of %s through m%d by client %d went back: X-Etcd-Index %d after %d",
				r.Key, r.Member+1, r.Client, r.Index, lastIndex[s])
		}
		lastIndex[s] = max(lastIndex[s], r.Index)
	}
	return problems
}

// replay applies the applied history from an empty key space and returns
// the files it leaves (key → change that wrote them). It reports false
// when the history has holes between from and to, which no watch saw.
func replay(applied AppliedHistory, from, to uint64) (map[string]Change, []uint64) {
	files := map[string]Change{}
	var holes []uint64
	for x := from + 1; x <= to; x++ {
		ch, ok := applied[x]
		if !ok {
			holes = append(holes, x)
			continue
		}
		if ch.HasValue {
			files[ch.Key] = ch
		} else {
			delete(files, ch.Key)
		}
	}
	return files, holes
}

// checkFinals compares each member's final listing with the applied
// history replayed up to the index the listing was read at (the fence when
// the listing failed): a write still in flight when the clients stopped
// may be applied after the last acknowledged one, between two listings.
func checkFinals(names []string, applied AppliedHistory, from, fence uint64, finals []map[string]Change, listed []uint64) []string {
	var problems []string
	for i, files := range finals {
		at := listed[i]
		if at == 0 {
			at = fence
		}
		want, _ := replay(applied, from, at)
		problems = append(problems, compareFinal(names[i], files, want)...)
	}
	return problems
}

// compareFinal compares a member's final files (key → value@index) with
// the replayed ones.
func compareFinal(member string, got map[string]Change, want map[string]Change) []string {
	var problems []string
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case gok && !wok:
			problems = append(problems, fmt.Sprintf("%s holds %s=%q@%d, which the applied history removed or never wrote", member, k, g.Value, g.Index))
		case !gok && wok:
			problems = append(problems, fmt.Sprintf("%s lacks %s=%q@%d (lost)", member, k, w.Value, w.Index))
		case g.Value != w.Value || g.Index != w.Index:
			problems = append(problems, fmt.Sprintf("%s holds %s=%q@%d, the applied history %q@%d", member, k, g.Value, g.Index, w.Value, w.Index))
		}
		if len(problems) >= 10 {
			break
		}
	}
	return problems
}

// checkAcked checks that every acknowledged write is in the applied
// history as its answer said, and that every acknowledged in-order create
// is still there at the end (queue items are never removed).
func checkAcked(acks []Ack, final map[string]Change) []string {
	var problems []string
	for _, a := range acks {
		if a.Action != "create" || !strings.HasPrefix(a.Key, "/q") || strings.Count(a.Key, "/") != 2 {
			continue
		}
		if got, ok := final[a.Key]; !ok || got.Value != a.Value {
			problems = append(problems, fmt.Sprintf("acknowledged in-order create %s is gone at the end", a.Change))
			if len(problems) >= 10 {
				break
			}
		}
	}
	return problems
}
