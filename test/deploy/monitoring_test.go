package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// ruleFile is a Prometheus rule file (rule_files: / a PrometheusRule's spec).
type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

// Series Prometheus makes itself, not the collector.
var prometheusSeries = map[string]bool{"up": true}

var (
	promStringRE   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatcherRE  = regexp.MustCompile(`\{[^}]*\}`)
	promRangeRE    = regexp.MustCompile(`\[[^\]]*\]`)
	promGroupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdentRE    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	promKeywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true,
		"without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames are the series names a PromQL expression reads.
func metricNames(expr string) []string {
	s := promStringRE.ReplaceAllString(expr, " ")
	s = promMatcherRE.ReplaceAllString(s, " ")
	s = promRangeRE.ReplaceAllString(s, " ")
	s = promGroupingRE.ReplaceAllString(s, " ")
	var names []string
	for _, m := range promIdentRE.FindAllStringSubmatch(s, -1) {
		ident := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(m[0]), "("))
		if m[1] != "" || promKeywords[strings.ToLower(ident)] { // a function or a keyword
			continue
		}
		names = append(names, ident)
	}
	return names
}

// checkRuleFile parses a rule file strictly and checks every rule has what
// an on-call person needs; it returns the metric names its expressions read.
func checkRuleFile(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	var rf ruleFile
	if err := yaml.UnmarshalStrict(data, &rf); err != nil {
		t.Fatalf("rule file: %v", err)
	}
	if len(rf.Groups) == 0 {
		t.Fatal("rule file: no groups")
	}
	used := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: a name and rules are required", g.Name)
		}
		for _, r := range g.Rules {
			what := g.Name + "/" + r.Alert + r.Record
			if (r.Alert == "") == (r.Record == "") {
				t.Errorf("%s: a rule is an alert or a record", what)
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: expression %q is not balanced", what, r.Expr)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", what, r.For, err)
				}
			}
			if r.Alert != "" && (r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "") {
				t.Errorf("%s: an alert needs labels.severity and annotations summary and description", what)
			}
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("%s: the expression reads no metric", what)
			}
			for _, n := range names {
				used[n] = true
			}
		}
	}
	return used
}

// telemetryNames reports which of names are metric names declared in the
// code built into the collector: a string literal in a non-test Go file of
// any package of the binary (ours, the collector's, contrib's).
func telemetryNames(t *testing.T, names map[string]bool) (missing []string) {
	t.Helper()
	buildDir := filepath.Dir(testutil.CollectorBinary(t))
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.Dir}}", ".")
	cmd.Dir = buildDir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v", buildDir, err)
	}
	found := map[string]bool{}
	for _, dir := range strings.Fields(string(out)) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for n := range names {
				if !found[n] && strings.Contains(string(src), `"`+n+`"`) {
					found[n] = true
				}
			}
		}
	}
	for n := range names {
		if !found[n] && !prometheusSeries[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	return missing
}

// TestAlertRules: the shipped rule file parses, covers what docs/operate.md
// says to alert on, and reads only metrics the collector really exports.
func TestAlertRules(t *testing.T) {
	root := testutil.RepoRoot(t)
	used := checkRuleFile(t, testutil.ReadFile(t, filepath.Join(root, "deploy", "monitoring", "prometheus-rules.yaml")))
	for _, want := range []string{
		"otelcol_exporter_send_failed_log_records",    // rows lost after retries
		"otelcol_exporter_enqueue_failed_log_records", // queue full
		"otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity",
		"otelcol_modeldatablob_rows_dropped", "otelcol_modeldatablob_rows_quarantined",
		"otelcol_modeldatablob_write_failures", "otelcol_featureflattener_dropped_values",
		"otelcol_receiver_refused_log_records",
	} {
		if !used[want] {
			t.Errorf("no rule reads %s", want)
		}
	}
	if os.Getenv(testutil.BinaryEnv) == "" && os.Getenv("CI") == "" {
		t.Skipf("%s not set: metric names not checked against the build", testutil.BinaryEnv)
	}
	if missing := telemetryNames(t, used); len(missing) > 0 {
		t.Errorf("the rules read metrics that no component of the build declares: %v", missing)
	}
}

func TestMetricNames(t *testing.T) {
	got := metricNames(`sum by (namespace, pod) (increase(a_b{exporter="x"}[5m])) / max(c) > 0 or rate(d[1m]) and on(pod) e`)
	if strings.Join(got, " ") != "a_b c d e" {
		t.Fatalf("got %v", got)
	}
}
