package main

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// The HTML report of `raftkv bench --report`: one self-contained page
// (charts drawn by gonum/plot as inline SVG, no script, nothing loaded
// from the network) with throughput against clients, latency percentiles
// against clients, and for each client count the latency percentile curves
// and histograms of every target side by side, then the table of figures.

// reportPercentiles are the quantiles the JSON lists and the curves draw.
var reportPercentiles = []float64{0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999}

// percentilePoint is one point of a latency percentile curve.
type percentilePoint struct {
	Q  float64 `json:"q"`
	Ms float64 `json:"ms"`
}

// reportCell is one figure of the table, with its exact value for
// machines (data-value) and its rounded text for people.
type reportCell struct {
	Field string
	Value float64
	Text  string
}

type reportRow struct {
	Target  string
	Clients int
	Cells   []reportCell
}

type reportSection struct {
	Clients              int
	Percentiles, Latency template.HTML
}

type reportPage struct {
	Title                  string
	Generated, Machine     string
	Load                   string
	Targets                []string
	Throughput, LatencyAll template.HTML
	Sections               []reportSection
	Rows                   []reportRow
	Unit                   string
}

// writeReport writes the HTML report of the targets' sweeps to file.
func writeReport(file string, sweeps []benchSweep) error {
	page, err := buildReport(sweeps)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	return nil
}

func buildReport(sweeps []benchSweep) (*reportPage, error) {
	if len(sweeps) == 0 || len(sweeps) > benchMaxSweeps {
		return nil, fmt.Errorf("--report: want 1 to %d targets, have %d", benchMaxSweeps, len(sweeps))
	}
	first := sweeps[0].Runs[0]
	page := &reportPage{Title: "raftkv bench", Generated: time.Now().UTC().Format(time.RFC3339), Unit: "requests/s"}
	var ops []string
	for _, s := range sweeps {
		page.Targets = append(page.Targets, s.Name)
		for _, r := range s.Runs {
			if !slices.Contains(ops, r.Op) {
				ops = append(ops, r.Op)
			}
		}
	}
	if len(ops) == 1 && ops[0] == "put" {
		page.Unit = "writes/s"
	} else if len(ops) == 1 && ops[0] == "get" {
		page.Unit = "reads/s"
	}
	page.Title = "raftkv bench: " + strings.Join(page.Targets, " vs ")
	m := first.Machine
	page.Machine = fmt.Sprintf("%d CPUs, GOMAXPROCS %d, %s/%s, bench built with %s; load average at the start of each run in the table",
		m.CPUs, m.GOMAXPROCS, m.OS, m.Arch, m.Go)
	page.Load = fmt.Sprintf("closed loop, each client one request at a time over its own connection; %s of %d-byte values, keys random over %d; %.1fs measured after %.1fs of warm-up per step",
		strings.Join(ops, " and "), first.ValueSize, first.KeySpace, first.DurationS, first.WarmupS)

	var err error
	if page.Throughput, err = throughputChart(sweeps, page.Unit); err != nil {
		return nil, err
	}
	if page.LatencyAll, err = latencyChart(sweeps); err != nil {
		return nil, err
	}
	for _, c := range allClientCounts(sweeps) {
		sec := reportSection{Clients: c}
		if sec.Percentiles, err = percentileChart(sweeps, c); err != nil {
			return nil, err
		}
		if sec.Latency, err = histogramChart(sweeps, c); err != nil {
			return nil, err
		}
		page.Sections = append(page.Sections, sec)
	}
	for _, s := range sweeps {
		for _, r := range s.Runs {
			l := r.LatencyMs
			cell := func(field string, v float64, format string) reportCell {
				return reportCell{Field: field, Value: v, Text: fmt.Sprintf(format, v)}
			}
			page.Rows = append(page.Rows, reportRow{Target: s.Name, Clients: r.Clients, Cells: []reportCell{
				cell("rate_per_s", r.RatePerS, "%.0f"),
				cell("mean", l.Mean, "%.3f"), cell("p50", l.P50, "%.3f"), cell("p90", l.P90, "%.3f"),
				cell("p99", l.P99, "%.3f"), cell("p99_9", l.P999, "%.3f"), cell("max", l.Max, "%.3f"),
				cell("errors", float64(r.Errors), "%.0f"), cell("requests", float64(r.Requests), "%.0f"),
			}})
		}
	}
	return page, nil
}

// allClientCounts are the client counts of every sweep, ascending.
func allClientCounts(sweeps []benchSweep) []int {
	var counts []int
	for _, s := range sweeps {
		for _, r := range s.Runs {
			if !slices.Contains(counts, r.Clients) {
				counts = append(counts, r.Clients)
			}
		}
	}
	slices.Sort(counts)
	return counts
}

// sortedRuns are a sweep's runs by client count, one per count: when a
// count was measured several times (rounds), the run of median rate (of an
// even number, the lower middle one). The table lists every run.
func sortedRuns(s benchSweep) []*benchResult {
	byCount := map[int][]*benchResult{}
	var counts []int
	for _, r := range s.Runs {
		if _, seen := byCount[r.Clients]; !seen {
			counts = append(counts, r.Clients)
		}
		byCount[r.Clients] = append(byCount[r.Clients], r)
	}
	slices.Sort(counts)
	runs := make([]*benchResult, 0, len(counts))
	for _, c := range counts {
		rounds := byCount[c]
		slices.SortStableFunc(rounds, func(a, b *benchResult) int { return cmp.Compare(a.RatePerS, b.RatePerS) })
		runs = append(runs, rounds[(len(rounds)-1)/2])
	}
	return runs
}

// runAt is the sweep's (median) run at clients, or nil.
func runAt(s benchSweep, clients int) *benchResult {
	for _, r := range sortedRuns(s) {
		if r.Clients == clients {
			return r
		}
	}
	return nil
}

// chart is a plot and the number of series drawn on it.
type chart struct {
	*plot.Plot
	series int
}

func newReportPlot(title, x, y string) *chart {
	p := &chart{Plot: plot.New()}
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

// clientAxis makes the x axis a log scale of client counts, ticked at the
// counts measured.
func clientAxis(p *chart, counts []int) {
	if len(counts) > 1 && counts[0] > 0 {
		p.X.Scale = plot.LogScale{}
	}
	var ticks []plot.Tick
	for _, c := range counts {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: strconv.Itoa(c)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	if len(counts) > 0 {
		// Room for the last tick's label.
		p.X.Min, p.X.Max = float64(counts[0])/1.2, float64(counts[len(counts)-1])*1.3
	}
}

// addSeries draws one target's line with points in its colour, and dash
// style when asked.
func addSeries(p *chart, name string, target, dash int, xys plotter.XYs) error {
	if len(xys) == 0 {
		return nil
	}
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	c := plotutil.Color(target)
	l.Color, pts.Color = c, c
	l.Dashes = plotutil.Dashes(dash)
	pts.Shape = plotutil.Shape(target)
	p.Add(l, pts)
	p.Legend.Add(name, l, pts)
	p.series++
	return nil
}

func throughputChart(sweeps []benchSweep, unit string) (template.HTML, error) {
	p := newReportPlot("Throughput against clients", "clients (log scale)", unit)
	for i, s := range sweeps {
		var xys plotter.XYs
		for _, r := range sortedRuns(s) {
			xys = append(xys, plotter.XY{X: float64(r.Clients), Y: r.RatePerS})
		}
		if err := addSeries(p, s.Name, i, 0, xys); err != nil {
			return "", err
		}
	}
	p.Y.Min = 0
	clientAxis(p, allClientCounts(sweeps))
	return renderSVG(p, 7*vg.Inch, 4*vg.Inch)
}

func latencyChart(sweeps []benchSweep) (template.HTML, error) {
	p := newReportPlot("Latency against clients (solid p50, dashed p99)", "clients (log scale)", "ms (log scale)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	for i, s := range sweeps {
		var p50, p99 plotter.XYs
		for _, r := range sortedRuns(s) {
			x := float64(r.Clients)
			p50 = append(p50, plotter.XY{X: x, Y: positive(r.LatencyMs.P50)})
			p99 = append(p99, plotter.XY{X: x, Y: positive(r.LatencyMs.P99)})
		}
		if err := addSeries(p, s.Name+" p50", i, 0, p50); err != nil {
			return "", err
		}
		if err := addSeries(p, s.Name+" p99", i, 2, p99); err != nil {
			return "", err
		}
	}
	clientAxis(p, allClientCounts(sweeps))
	return renderSVG(p, 7*vg.Inch, 4*vg.Inch)
}

// positive keeps a value drawable on a log scale.
func positive(v float64) float64 { return max(v, 0.001) }

// nines maps a quantile to its number of nines (p90 → 1, p99 → 2), the
// usual x axis of latency percentile curves.
func nines(q float64) float64 { return -math.Log10(1 - q) }

func percentileChart(sweeps []benchSweep, clients int) (template.HTML, error) {
	p := newReportPlot(fmt.Sprintf("Latency percentiles, %d clients", clients), "percentile", "ms (log scale)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var ticks []plot.Tick
	for _, q := range reportPercentiles {
		label := ""
		if q == 0.5 || q == 0.9 || q == 0.99 || q == 0.999 || q == 0.9999 {
			label = "p" + strconv.FormatFloat(q*100, 'f', -1, 64)
		}
		ticks = append(ticks, plot.Tick{Value: nines(q), Label: label})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = nines(reportPercentiles[0])-0.1, nines(reportPercentiles[len(reportPercentiles)-1])+0.3
	for i, s := range sweeps {
		if r := runAt(s, clients); r != nil {
			var xys plotter.XYs
			for _, pt := range r.Percentiles {
				xys = append(xys, plotter.XY{X: nines(pt.Q), Y: positive(pt.Ms)})
			}
			if err := addSeries(p, s.Name, i, 0, xys); err != nil {
				return "", err
			}
		}
	}
	return renderSVG(p, 5*vg.Inch, 3.5*vg.Inch)
}

func histogramChart(sweeps []benchSweep, clients int) (template.HTML, error) {
	p := newReportPlot(fmt.Sprintf("Latency histogram, %d clients", clients), "latency up to, ms (log scale)", "% of requests")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	for i, s := range sweeps {
		if r := runAt(s, clients); r != nil && r.LatencyMs.Count > 0 {
			var xys plotter.XYs
			for _, row := range r.Histogram {
				xys = append(xys, plotter.XY{X: positive(row.UpToMs), Y: 100 * float64(row.Count) / float64(r.LatencyMs.Count)})
			}
			if err := addSeries(p, s.Name, i, 0, xys); err != nil {
				return "", err
			}
		}
	}
	p.Y.Min = 0
	return renderSVG(p, 5*vg.Inch, 3.5*vg.Inch)
}

// renderSVG draws p as an SVG element to inline in the page (no XML
// prolog, no DOCTYPE).
func renderSVG(p *chart, w, h vg.Length) (svgHTML template.HTML, err error) {
	p.BackgroundColor = color.White
	if p.series == 0 {
		// Nothing to draw: log scales cannot range over nothing.
		p.X.Scale, p.Y.Scale = plot.LinearScale{}, plot.LinearScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.DefaultTicks{}, plot.DefaultTicks{}
		p.Title.Text += " (no data)"
	}
	defer func() {
		// gonum/plot panics on data it cannot draw; a report must not.
		if r := recover(); r != nil {
			svgHTML, err = "", fmt.Errorf("--report: draw %q: %v", p.Title.Text, r)
		}
	}()
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", fmt.Errorf("--report: draw %q: %w", p.Title.Text, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("--report: draw %q: %w", p.Title.Text, err)
	}
	svg := buf.String()
	if i := strings.Index(svg, "<svg"); i >= 0 {
		svg = svg[i:]
	}
	return template.HTML(svg), nil
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
.facts { color: #555; } .facts dt { font-weight: bold; float: left; width: 7em; } .facts dd { margin-left: 8em; }
.pair { display: flex; flex-wrap: wrap; gap: 1em; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<dl class="facts">
<dt>targets</dt><dd>{{range $i, $t := .Targets}}{{if $i}}, {{end}}{{$t}}{{end}}</dd>
<dt>load</dt><dd>{{.Load}}</dd>
<dt>machine</dt><dd>{{.Machine}}</dd>
<dt>charts</dt><dd>one run per target and client count: of several rounds, the run of median rate; the table lists every run</dd>
<dt>written</dt><dd>{{.Generated}}</dd>
</dl>
<h2>Throughput</h2>
<figure>{{.Throughput}}</figure>
<h2>Latency</h2>
<figure>{{.LatencyAll}}</figure>
{{range .Sections}}<h2>{{.Clients}} clients</h2>
<div class="pair"><figure>{{.Percentiles}}</figure><figure>{{.Latency}}</figure></div>
{{end}}
<h2>Figures</h2>
<table id="figures">
<thead><tr><th>target</th><th>clients</th><th>{{.Unit}}</th><th>mean ms</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>errors</th><th>requests</th></tr></thead>
<tbody>
{{range .Rows}}{{$row := .}}<tr data-target="{{.Target}}" data-clients="{{.Clients}}"><td>{{.Target}}</td><td>{{.Clients}}</td>{{range .Cells}}<td data-field="{{.Field}}" data-value="{{printf "%v" .Value}}">{{.Text}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
</body>
</html>
`))
