package embed

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The dashboard and the alert rules shipped in docs/, and the unit tests
// of the rules.
const (
	dashboardPath  = "../docs/grafana-dashboard.json"
	alertsPath     = "../docs/prometheus-alerts.yml"
	alertTestsPath = "../docs/prometheus-alerts-test.yml"
)

// prometheusSeries are the series Prometheus makes itself for every scrape
// target rather than reading them from /metrics.
var prometheusSeries = []string{"up"}

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promqlMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent     = regexp.MustCompile(`\$?[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	promqlOperators = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
		"group_left", "group_right", "inf", "nan", "atan2"}
	labelValues = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// promqlSeries returns the names of the series a PromQL expression reads:
// crudely but honestly, it drops strings, label matchers, ranges and
// grouping clauses, then keeps every identifier that is neither a
// function (followed by "("), an operator keyword, nor a Grafana variable.
func promqlSeries(expr string) []string {
	expr = promqlStrings.ReplaceAllString(expr, `""`)
	expr = promqlMatchers.ReplaceAllString(expr, " ")
	expr = promqlRanges.ReplaceAllString(expr, " ")
	expr = promqlGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, tok := range promqlIdent.FindAllString(expr, -1) {
		tok = strings.TrimSpace(tok)
		if strings.HasSuffix(tok, "(") || strings.HasPrefix(tok, "$") || slices.Contains(promqlOperators, strings.ToLower(tok)) {
			continue
		}
		names = append(names, tok)
	}
	return names
}

// dashboardExprs returns every query of a Grafana dashboard: the panels'
// expressions and the metrics its variables list label values of.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var dash any
	require.NoError(t, json.Unmarshal(raw, &dash), "%s is not JSON", path)
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if s, ok := child.(string); ok {
					if k == "expr" {
						exprs = append(exprs, s)
					}
					for _, m := range labelValues.FindAllStringSubmatch(s, -1) {
						exprs = append(exprs, m[1])
					}
				}
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(dash)
	return exprs
}

// alertExprs returns the expressions of every rule in a rules file. It
// reads the YAML crudely (an "expr:" key, its value on the line or as a
// block scalar of the lines indented deeper); promtool, when installed,
// checks the file properly.
func alertExprs(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(raw), "\n")
	var exprs []string
	rules := 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "- alert:") || strings.HasPrefix(trimmed, "- record:") {
			rules++
		}
		value, ok := strings.CutPrefix(trimmed, "expr:")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		if value != "|" && value != ">" {
			exprs = append(exprs, strings.Trim(value, `'"`))
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		var block []string
		for i+1 < len(lines) {
			next := lines[i+1]
			if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
				break
			}
			block = append(block, next)
			i++
		}
		exprs = append(exprs, strings.Join(block, "\n"))
	}
	require.Equal(t, rules, len(exprs), "%s: every rule has one expression", path)
	return exprs
}

// missingSeries returns the names that no sample of the exposition text
// (a /metrics body) carries, but for Prometheus's own.
func missingSeries(names []string, exposition string) []string {
	served := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		served[name] = true
	}
	var missing []string
	for _, n := range names {
		if !served[n] && !slices.Contains(prometheusSeries, n) && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	return missing
}

// TestPromQLSeriesExtraction is the test of the test below: the extractor
// finds the series of typical expressions (and nothing else), and a name
// the member does not serve is reported.
func TestPromQLSeriesExtraction(t *testing.T) {
	for expr, want := range map[string][]string{
		`histogram_quantile(0.99, sum by (instance, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket{job=~"$job",instance=~"a|b"}[$__rate_interval])))`: {"etcd_disk_wal_fsync_duration_seconds_bucket"},
		`sum without (instance) (up{job=~".*(raftkv|etcd).*"} == bool 0) or count without (To) (rate(x_total[2m])) > 0.01`:                                   {"up", "x_total"},
		`increase((max without (instance) (a_total) or 0 * absent(a_total{job="x"}))[15m:1m]) >= 4`:                                                          {"a_total", "a_total"},
		`etcd_server_proposals_committed_total{job="j"} - etcd_server_proposals_applied_total`:                                                               {"etcd_server_proposals_committed_total", "etcd_server_proposals_applied_total"},
	} {
		assert.Equal(t, want, promqlSeries(expr), expr)
	}
	exposition := "# HELP a_total x\n# TYPE a_total counter\na_total 1\nb_bucket{le=\"1\"} 2\n"
	assert.Equal(t, []string{"c"}, missingSeries([]string{"a_total", "b_bucket", "up", "c"}, exposition))
	assert.Empty(t, missingSeries(promqlSeries(`rate(a_total[1m]) / on (x) b_bucket`), exposition))
}

// TestDashboardAndAlertsUseServedSeries checks that every series the Grafana
// dashboard and the alert rules in docs/ read is served by a real member
// (the leader of a 3-member cluster that has served reads, writes and a
// failed request), and has promtool check the rules and run their unit
// tests when it is installed (Debian's package prometheus).
func TestDashboardAndAlertsUseServedSeries(t *testing.T) {
	var names []string
	exprs := append(dashboardExprs(t, dashboardPath), alertExprs(t, alertsPath)...)
	require.Greater(t, len(exprs), 20)
	for _, e := range exprs {
		found := promqlSeries(e)
		require.NotEmpty(t, found, "no series found in %q", e)
		names = append(names, found...)
	}
	slices.Sort(names)
	names = slices.Compact(names)

	members := startCluster(t, 3)
	leader, _ := leaderOf(t, members)
	client := &http.Client{Timeout: 10 * time.Second}
	code, body, err := put(client, leader.ClientURLs()[0]+"/v2/keys/k", url.Values{"value": {"v"}})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code, body)
	code, _ = get(t, leader.ClientURLs()[0]+"/v2/keys/missing") // a failure, for etcd_http_failed_total
	require.Equal(t, http.StatusNotFound, code)
	var missing []string
	require.Eventually(t, func() bool {
		_, exposition := get(t, leader.ClientURLs()[0]+"/metrics")
		missing = missingSeries(names, exposition)
		return len(missing) == 0
	}, 10*time.Second, 100*time.Millisecond, "series the dashboard or the rules read but no member serves: %v", &missing)
	t.Logf("%d series read by %d expressions, all served", len(names), len(exprs))

	t.Run("promtool", func(t *testing.T) {
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			t.Skip("promtool not installed (Debian: apt-get install prometheus): the rules are not checked by it")
		}
		out, err := exec.Command(promtool, "check", "rules", alertsPath).CombinedOutput()
		require.NoError(t, err, "promtool check rules:\n%s", out)
		cmd := exec.Command(promtool, "test", "rules", "prometheus-alerts-test.yml")
		cmd.Dir = "../docs"
		out, err = cmd.CombinedOutput()
		require.NoError(t, err, "promtool test rules:\n%s", out)
		assert.Contains(t, string(out), "SUCCESS", fmt.Sprintf("%s", out))
	})
}
