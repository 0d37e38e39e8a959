package linearizability

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/raftkv/raftkv/kvstore"
)

// UnboundedClockSkew, as Options.ClockSkew, says nothing is known of the
// members' clocks: a node with a TTL may then expire at any time after it
// was written.
const UnboundedClockSkew = time.Duration(math.MaxInt64)

// Options tune Check. The zero value checks a history recorded in Unix
// nanoseconds against members whose clocks agree with the recorder's, and
// writes the visualisation of a failure to a new file in os.TempDir().
type Options struct {
	// Epoch is the instant the recorder's time 0 stands for. Zero means the
	// recorded times are Unix nanoseconds. TTL expirations, which the
	// members compute from their own clocks, are compared with recorded
	// times through it.
	Epoch time.Time
	// ClockSkew bounds how far any member's clock may be from the
	// recorder's at any time during the history: with clocks that drift,
	// the drift accumulated over the whole history. A node with a TTL that
	// expires at E (by the clock of the member that took the write) cannot
	// have been removed before recorder time E - ClockSkew; see the package
	// documentation. UnboundedClockSkew lifts the bound.
	ClockSkew time.Duration
	// Annotations are added to the history's own in the visualisation.
	Annotations []Annotation
	// VisualizationPath is the file a failing check writes porcupine's
	// HTML visualisation to. Empty means a new file in os.TempDir().
	VisualizationPath string
	// AlwaysVisualize writes the visualisation even for a linearizable
	// history, to study how it linearizes.
	AlwaysVisualize bool
	// Log receives one line naming the visualisation file when one is
	// written. Nil means os.Stderr.
	Log io.Writer
	// Timeout bounds the time spent checking each independent part; a part
	// not decided within it is named in Result.Undecided. Zero means no
	// limit, so that the verdict depends only on the history.
	Timeout time.Duration
}

// Result is the verdict of Check.
type Result struct {
	// Ok says the history is linearizable.
	Ok bool
	// Operations is the number of operations checked: all of the history's
	// but reads whose outcome is unknown, which cannot constrain anything.
	Operations int
	// Partitions is the number of independent parts checked (see partition).
	Partitions int
	// Illegal names the parts that are not linearizable by their top-level
	// key ("/a"), or "/" when the history was checked as one part;
	// Undecided those whose check ran out of Options.Timeout (the history
	// is then neither found linearizable nor found not to be).
	Illegal, Undecided []string
	// IndexOrder is a violation of the etcd index's order across keys.
	IndexOrder *IndexViolation
	// Visualization is the path of the HTML file written, if any, and
	// VisualizationErr the error that prevented writing it.
	Visualization    string
	VisualizationErr error
	// Info is porcupine's linearization information, computed when the
	// visualisation is written.
	Info porcupine.LinearizationInfo
}

// String summarises the result in one line.
func (r Result) String() string {
	if r.Ok {
		return fmt.Sprintf("linearizable (%d operations in %d parts)", r.Operations, r.Partitions)
	}
	var why []string
	if len(r.Illegal) > 0 {
		why = append(why, "not linearizable under "+strings.Join(r.Illegal, ", "))
	}
	if len(r.Undecided) > 0 {
		why = append(why, "undecided within the time limit under "+strings.Join(r.Undecided, ", "))
	}
	if r.IndexOrder != nil {
		why = append(why, "index order: "+r.IndexOrder.Reason)
	}
	s := fmt.Sprintf("NOT linearizable (%d operations in %d parts): %s", r.Operations, r.Partitions, strings.Join(why, "; "))
	switch {
	case r.Visualization != "":
		s += "; visualisation: " + r.Visualization
	case r.VisualizationErr != nil:
		s += "; no visualisation: " + r.VisualizationErr.Error()
	}
	return s
}

// Check checks a history for linearizability against the model of the key
// space, with no time limit unless Options.Timeout sets one (without, the
// verdict depends only on the history). A failing check writes the visualisation (see Options) and
// names it in the result and on Options.Log.
func Check(h History, opts Options) Result {
	h.Operations = slices.DeleteFunc(slices.Clone(h.Operations), func(op Operation) bool { return op.NoEffect })
	ops, end := porcupineOps(h, opts)
	parts := partition(ops)
	res := Result{Operations: len(ops), Partitions: len(parts)}
	plain := model(false)
	verdicts := make([]porcupine.CheckResult, len(parts))
	var wg sync.WaitGroup
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, part := range parts {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			verdicts[i] = porcupine.CheckOperationsTimeout(plain, part, opts.Timeout)
			<-slots
		}()
	}
	wg.Wait()
	whole := hasRootOp(ops)
	for i, v := range verdicts {
		name := "/"
		if !whole {
			name = topLevel(parts[i][0].Input.(*call).in.Key)
		}
		switch v {
		case porcupine.Illegal:
			res.Illegal = append(res.Illegal, name)
		case porcupine.Unknown:
			res.Undecided = append(res.Undecided, name)
		}
	}
	res.IndexOrder = checkIndexOrder(h.Operations)
	res.Ok = len(res.Illegal) == 0 && len(res.Undecided) == 0 && res.IndexOrder == nil
	// An undecided part alone is not drawn: linearizing it again for the
	// page would run out of time as well.
	if len(res.Illegal) > 0 || res.IndexOrder != nil || opts.AlwaysVisualize {
		visualize(&res, shown(ops, parts, verdicts, res), annotations(h, opts, res.IndexOrder, end), opts)
	}
	return res
}

// shown returns the operations the visualisation shows: those of the parts
// that failed, or of the parts holding an index-order violation, or all of
// them for a linearizable history. Linearizing a part again for the
// visualisation costs as much as checking it did, and parts that pass only
// crowd the page.
func shown(ops []porcupine.Operation, parts [][]porcupine.Operation, verdicts []porcupine.CheckResult, res Result) []porcupine.Operation {
	if res.Ok {
		return ops
	}
	var out []porcupine.Operation
	for i, part := range parts {
		keep := verdicts[i] == porcupine.Illegal
		if v := res.IndexOrder; v != nil && len(res.Illegal) == 0 {
			for _, op := range part {
				id := op.Metadata.(int)
				keep = keep || id == v.Before.ID || id == v.After.ID
			}
		}
		if keep {
			out = append(out, part...)
		}
	}
	return out
}

// hasRootOp reports whether any operation names the root, which makes the
// whole history one part.
func hasRootOp(ops []porcupine.Operation) bool {
	for _, op := range ops {
		if op.Input.(*call).in.Key == "/" {
			return true
		}
	}
	return false
}

// porcupineOps turns a history into porcupine's operations, and returns the
// end of the history: the time unknown outcomes return at.
func porcupineOps(h History, opts Options) ([]porcupine.Operation, int64) {
	var end int64 = math.MinInt64
	for _, op := range h.Operations {
		end = max(end, op.Call)
		if !unknown(&op) && !op.Unseen {
			end = max(end, op.Return)
		}
	}
	end++
	seen := firstSeen(h)
	ops := make([]porcupine.Operation, 0, len(h.Operations))
	for i := range h.Operations {
		op := &h.Operations[i]
		if unknown(op) && !op.Input.isWrite() {
			continue
		}
		in := op.Input
		in.Key = cleanKey(in.Key)
		c := &call{in: in, id: op.ID, client: op.Client, at: op.Call, node: writtenNode(op, opts)}
		a := &answer{out: op.Output, at: op.Return, unknown: unknown(op)}
		ret := op.Return
		if op.Unseen {
			a.at, a.unseen, ret = math.MaxInt64, true, end
		}
		if a.unknown {
			a.out, a.at, ret = Output{}, math.MaxInt64, end
			if at, ok := seen[op.Input.Value]; ok && carriesValue(&op.Input) {
				ret = max(op.Call, at)
			}
		}
		ops = append(ops, porcupine.Operation{ClientId: op.Client, Input: c, Call: op.Call, Output: a, Return: ret, Metadata: op.ID})
	}
	return ops, end
}

// unknown reports whether op's outcome is unknown: recorded so, or answered
// with an internal error (code 300), which may come after the operation
// took effect.
func unknown(op *Operation) bool {
	return op.Unknown || op.Output.Err == kvstore.CodeRaftInternal
}

// firstSeen returns, for every value only one write in h carries, the
// earliest return of a completed operation that showed a node with that
// value. A write whose outcome is unknown but whose value someone saw took
// effect before that: returning it there, rather than at the end of the
// history, spares the checker from trying it anywhere later, which is where
// the cost of unknown outcomes lies.
func firstSeen(h History) map[string]int64 {
	writers := map[string]int{}
	for i := range h.Operations {
		if in := &h.Operations[i].Input; carriesValue(in) {
			writers[in.Value]++
		}
	}
	seen := map[string]int64{}
	var visit func(n *kvstore.Node, at int64)
	visit = func(n *kvstore.Node, at int64) {
		if n == nil {
			return
		}
		if n.Value != nil && writers[*n.Value] == 1 {
			if first, ok := seen[*n.Value]; !ok || at < first {
				seen[*n.Value] = at
			}
		}
		for _, child := range n.Nodes {
			visit(child, at)
		}
	}
	for i := range h.Operations {
		op := &h.Operations[i]
		if !unknown(op) && !op.Unseen {
			visit(op.Output.Node, op.Return)
			visit(op.Output.Prev, op.Return)
		}
	}
	return seen
}

// carriesValue reports whether in writes its Value into a file.
func carriesValue(in *Input) bool {
	switch in.Kind {
	case KindSet, KindCreate, KindUpdate, KindCompareAndSwap, KindCreateInOrder:
		return in.Value != "" && !in.Dir && !in.Refresh
	}
	return false
}

// writtenNode returns the TTL of the node op writes: when it may expire,
// in the recorder's clock. From the answer's expiration when it has one;
// otherwise the member that took the write fixed the expiration at its
// clock (at least the call time less the skew) plus the TTL, and the
// leader that expires it reads a clock at most the skew ahead.
func writtenNode(op *Operation, opts Options) written {
	in := &op.Input
	if !in.isWrite() || !in.HasTTL {
		return written{}
	}
	if !unknown(op) && op.Output.Err == 0 && op.Output.Node != nil {
		exp := op.Output.Node.Expiration
		if exp == nil {
			return written{}
		}
		base := opts.Epoch
		if base.IsZero() {
			base = time.Unix(0, 0)
		}
		return written{ttl: true, vanishAt: subSaturating(int64(exp.Sub(base)), opts.ClockSkew)}
	}
	if in.TTL > uint64(math.MaxInt64/int64(time.Second)) {
		// etcd's arithmetic wraps such TTLs around, even into the past.
		return written{ttl: true, vanishAt: math.MinInt64}
	}
	at := addSaturating(op.Call, time.Duration(in.TTL)*time.Second)
	return written{ttl: true, vanishAt: subSaturating(subSaturating(at, opts.ClockSkew), opts.ClockSkew)}
}

func addSaturating(t int64, d time.Duration) int64 {
	if d > 0 && t > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	return t + int64(d)
}

func subSaturating(t int64, d time.Duration) int64 {
	if d < 0 {
		panic(fmt.Sprintf("linearizability: negative clock skew %v", d))
	}
	if t < math.MinInt64+int64(d) {
		return math.MinInt64
	}
	return t - int64(d)
}

// annotations returns the visualisation's annotations: the history's, the
// options', and one marking an index-order violation.
func annotations(h History, opts Options, v *IndexViolation, end int64) []porcupine.Annotation {
	var out []porcupine.Annotation
	for _, a := range append(append([]Annotation(nil), h.Annotations...), opts.Annotations...) {
		tag := a.Tag
		if tag == "" {
			tag = "faults"
		}
		stop := a.End
		if stop < a.Start {
			stop = max(end, a.Start)
		}
		out = append(out, porcupine.Annotation{Tag: tag, Start: a.Start, End: stop,
			Description: a.Description, Details: a.Details, BackgroundColor: a.Color})
	}
	if v != nil {
		out = append(out, porcupine.Annotation{Tag: "index order", Start: v.Before.Call, End: max(v.After.Return, v.After.Call),
			Description: fmt.Sprintf("operations %d and %d", v.Before.ID, v.After.ID), Details: v.Reason,
			BackgroundColor: "#f4cccc"})
	}
	return out
}

// visualize writes porcupine's visualisation of ops, with annotations.
// Only here does a check compute porcupine's partial linearizations.
func visualize(res *Result, ops []porcupine.Operation, notes []porcupine.Annotation, opts Options) {
	m := model(true)
	_, info := porcupine.CheckOperationsVerbose(m, ops, 0)
	info.AddAnnotations(notes)
	res.Info = info
	path := opts.VisualizationPath
	if path == "" {
		f, err := os.CreateTemp("", "raftkv-linearizability-*.html")
		if err != nil {
			res.VisualizationErr = fmt.Errorf("create visualisation file: %w", err)
			return
		}
		path = f.Name()
		f.Close()
	}
	if err := porcupine.VisualizePath(m, info, path); err != nil {
		res.VisualizationErr = fmt.Errorf("write visualisation %s: %w", path, err)
		return
	}
	res.Visualization = path
	log := opts.Log
	if log == nil {
		log = os.Stderr
	}
	fmt.Fprintf(log, "linearizability: %s\n", res)
}
