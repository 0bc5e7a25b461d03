package appinsightsexporter

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestDifferentialAgainstMicrosoftExporter runs tools/aidiff/emit.js: one
// fixed set of spans, logs and metrics goes through Microsoft's
// @azure/monitor-opentelemetry-exporter to one ingestion stub and, as OTLP,
// through the built collector and this exporter to another. Every envelope
// must have its twin, equal field by field except for the allowed
// differences (allowedDifferences, README "Differences from Microsoft's
// exporter").
func TestDifferentialAgainstMicrosoftExporter(t *testing.T) {
	testutil.CollectorBinary(t) // skips (or fails in CI) without the build
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed for the differential test (it runs Microsoft's exporter): ", err)
	}
	tool := testutil.AIDiffTool(t)

	microsoft := testutil.StartTLSIngestionStub(t)
	ours := testutil.StartIngestionStub(t)
	otlpPort := startCollectorTo(t, ours.URL())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, tool)
	cmd.Env = append(os.Environ(),
		"AI_CONNECTION_STRING=InstrumentationKey="+testIKey+";IngestionEndpoint="+microsoft.URL()+"/",
		fmt.Sprintf("OTLP_ENDPOINT=http://127.0.0.1:%d", otlpPort),
		"NODE_EXTRA_CA_CERTS="+microsoft.CAFile(),
		// Keep Microsoft's exporter to the stub: no statsbeat or SDK stats to Azure.
		"APPLICATION_INSIGHTS_NO_STATSBEAT=true",
		"APPLICATIONINSIGHTS_STATSBEAT_DISABLED=true",
		"APPLICATIONINSIGHTS_SDKSTATS_DISABLED=true",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
	want := microsoft.Envelopes()
	for _, p := range microsoft.Paths() {
		if p != "/v2.1/track" {
			t.Errorf("Microsoft's exporter posted to %s", p)
		}
	}
	counts := map[string]int{}
	for _, e := range want {
		counts[envelopeKind(e)]++
	}
	// The fixed set (tools/aidiff/emit.js): 6 requests, 6 dependencies, 2
	// exceptions (a span event, a log), 4 messages (a span event, 3 logs), a
	// custom event, 6 metric points (counter twice, up-down counter twice,
	// histogram, a counter of another resource), plus _OTELRESOURCE_ metrics.
	for kind, n := range map[string]int{"RequestData": 6, "RemoteDependencyData": 6, "ExceptionData": 2, "MessageData": 4, "EventData": 1, "MetricData": 6} {
		if counts[kind] < n {
			t.Fatalf("Microsoft's exporter sent %d %s envelopes, want at least %d (all: %v)", counts[kind], kind, n, counts)
		}
	}

	var got []map[string]any
	if !testutil.Poll(60*time.Second, func() bool {
		got = ours.Envelopes()
		return len(withoutResourceMetric(got)) >= len(withoutResourceMetric(want))
	}) {
		t.Errorf("the collector sent %d envelopes (without _OTELRESOURCE_), Microsoft's exporter %d",
			len(withoutResourceMetric(got)), len(withoutResourceMetric(want)))
	}
	compareEnvelopes(t, want, got)
	if os.Getenv("AIDIFF_DUMP") != "" {
		b, _ := json.MarshalIndent(map[string]any{"microsoft": want, "ours": got}, "", " ")
		_ = os.WriteFile(os.Getenv("AIDIFF_DUMP"), b, 0o600)
	}
}

func envelopeKind(e map[string]any) string {
	data, _ := e["data"].(map[string]any)
	kind, _ := data["baseType"].(string)
	return kind
}

func baseData(e map[string]any) map[string]any {
	data, _ := e["data"].(map[string]any)
	bd, _ := data["baseData"].(map[string]any)
	return bd
}

func metricName(e map[string]any) string {
	ms, _ := baseData(e)["metrics"].([]any)
	if len(ms) == 0 {
		return ""
	}
	m, _ := ms[0].(map[string]any)
	name, _ := m["name"].(string)
	return name
}

func withoutResourceMetric(envs []map[string]any) []map[string]any {
	var out []map[string]any
	for _, e := range envs {
		if metricName(e) != "_OTELRESOURCE_" {
			out = append(out, e)
		}
	}
	return out
}

// twinKey names an envelope independently of the exporter that made it:
// requests and dependencies by span id; span events, logs and metrics by
// their operation, content and resource (role), with a running number for
// repeats (the counter exported twice). _OTELRESOURCE_ metrics are keyed by
// resource alone and compared as a set: Microsoft's exporter sends one per
// export call, ours one per resource in each batch.
func twinKey(e map[string]any, seen map[string]int) string {
	bd := baseData(e)
	tags, _ := e["tags"].(map[string]any)
	var key string
	switch kind := envelopeKind(e); kind {
	case "RequestData", "RemoteDependencyData":
		return kind + " " + fmt.Sprint(bd["id"])
	case "MetricData":
		if metricName(e) == "_OTELRESOURCE_" {
			return fmt.Sprintf("_OTELRESOURCE_ %v %v", tags[tagRole], tags[tagRoleInstance])
		}
		props, _ := json.Marshal(bd["properties"])
		if string(props) == "null" {
			props = []byte("{}")
		}
		key = fmt.Sprintf("%s %s %v %s", kind, metricName(e), tags[tagRole], props)
	default:
		content, _ := json.Marshal([]any{bd["message"], bd["exceptions"], bd["name"]})
		key = fmt.Sprintf("%s %v %v %s", kind, tags[tagRole], tags[tagParentID], content)
	}
	seen[key]++
	return key + " #" + strconv.Itoa(seen[key])
}

// allowedDifferences are the only fields that may differ between twins, each
// with the check it must pass instead of equality. Everything else (tags,
// ids, names, codes, success, URLs, targets, types, properties, messages,
// severity, exception details, metric values, counts, min and max) must be
// equal. Empty objects count as absent (Microsoft sends
// "measurements": {} and "properties": {} where we leave the field out).
var allowedDifferences = map[string]func(ms, ours any, e map[string]any) error{
	// Envelope name: Microsoft writes Microsoft.ApplicationInsights.<Kind>,
	// the classic SDKs (and we) insert the iKey without dashes; the
	// service reads the type from baseType.
	"name": func(ms, ours any, _ map[string]any) error {
		kind := strings.TrimPrefix(fmt.Sprint(ms), "Microsoft.ApplicationInsights.")
		if fmt.Sprint(ours) != envPrefix+kind {
			return fmt.Errorf("want %s%s", envPrefix, kind)
		}
		return nil
	},
	// Time: Microsoft writes milliseconds, truncated from a float (so up to
	// a millisecond early), we write microseconds: within [0, 2 ms). Metrics: Microsoft stamps the export, we the point's own
	// timestamp (the SDK's collection, just before the export);
	// _OTELRESOURCE_: both the time of sending.
	"time": func(ms, ours any, e map[string]any) error {
		a, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(ms))
		b, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(ours))
		if err1 != nil || err2 != nil {
			return fmt.Errorf("unparsable: %v %v", err1, err2)
		}
		if envelopeKind(e) == "MetricData" {
			if d := a.Sub(b); d < -30*time.Second || d > 30*time.Second {
				return fmt.Errorf("%s apart", d)
			}
			return nil
		}
		if d := b.Sub(a); d < 0 || d >= 2*time.Millisecond {
			return fmt.Errorf("%s apart", d)
		}
		return nil
	},
	// Duration: Microsoft writes hh:mm:ss.fffffff from float milliseconds,
	// we d.hh:mm:ss.fffffff from integer nanoseconds; both TimeSpan forms.
	"data/baseData/duration": func(ms, ours any, _ map[string]any) error {
		a, err1 := parseTimeSpan(fmt.Sprint(ms))
		b, err2 := parseTimeSpan(fmt.Sprint(ours))
		if err1 != nil || err2 != nil {
			return fmt.Errorf("unparsable: %v %v", err1, err2)
		}
		if d := a - b; d < -time.Microsecond || d > time.Microsecond {
			return fmt.Errorf("%s apart", d)
		}
		return nil
	},
	// The SDK that sent it: node<ver>:otel<ver>:ext<ver> vs otelcol-modeldata:<ver>.
	"tags/ai.internal.sdkVersion": func(_, ours any, _ map[string]any) error {
		if !strings.HasPrefix(fmt.Sprint(ours), "otelcol-modeldata:") {
			return fmt.Errorf("want otelcol-modeldata:<version>")
		}
		return nil
	},
}

var timeSpan = regexp.MustCompile(`^(?:(\d+)\.)?(\d{2}):(\d{2}):(\d{2}(?:\.\d+)?)$`)

func parseTimeSpan(s string) (time.Duration, error) {
	m := timeSpan.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a TimeSpan", s)
	}
	days, _ := strconv.Atoi("0" + m[1])
	hours, _ := strconv.Atoi(m[2])
	mins, _ := strconv.Atoi(m[3])
	secs, _ := strconv.ParseFloat(m[4], 64)
	return time.Duration(days)*24*time.Hour + time.Duration(hours)*time.Hour + time.Duration(mins)*time.Minute +
		time.Duration(secs*1e9+0.5), nil
}

func compareEnvelopes(t *testing.T, want, got []map[string]any) {
	t.Helper()
	index := func(envs []map[string]any) (map[string]map[string]any, []string) {
		seen := map[string]int{}
		m := map[string]map[string]any{}
		var order []string
		for _, e := range envs {
			k := twinKey(e, seen)
			if _, dup := m[k]; !dup {
				order = append(order, k)
			}
			m[k] = e
		}
		return m, order
	}
	ms, order := index(want)
	ourByKey, ourOrder := index(got)
	for _, k := range ourOrder {
		if _, ok := ms[k]; !ok {
			t.Errorf("only ours sent %s:\n%s", k, dump(ourByKey[k]))
		}
	}
	for _, k := range order {
		o, ok := ourByKey[k]
		if !ok {
			t.Errorf("only Microsoft's exporter sent %s:\n%s", k, dump(ms[k]))
			continue
		}
		a, b := flatten(ms[k]), flatten(o)
		var diffs []string
		for _, path := range unionKeys(a, b) {
			va, vb := a[path], b[path]
			if check, ok := allowedDifferences[path]; ok {
				if err := check(va, vb, ms[k]); err != nil {
					diffs = append(diffs, fmt.Sprintf("%s: Microsoft %v, ours %v: %v", path, va, vb, err))
				}
				continue
			}
			if !reflect.DeepEqual(va, vb) {
				diffs = append(diffs, fmt.Sprintf("%s: Microsoft %v, ours %v", path, show(va), show(vb)))
			}
		}
		if len(diffs) > 0 {
			t.Errorf("%s differs:\n  %s", k, strings.Join(diffs, "\n  "))
		}
	}
}

// flatten turns an envelope into path -> leaf value ("data/baseData/id");
// empty objects disappear.
func flatten(e map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, vv := range x {
				walk(strings.TrimPrefix(prefix+"/"+k, "/"), vv)
			}
		case []any:
			for i, vv := range x {
				walk(prefix+"/"+strconv.Itoa(i), vv)
			}
		default:
			out[prefix] = v
		}
	}
	walk("", e)
	return out
}

func unionKeys(a, b map[string]any) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func show(v any) string {
	if v == nil {
		return "(absent)"
	}
	return fmt.Sprintf("%q", fmt.Sprint(v))
}

func dump(e map[string]any) string {
	b, _ := json.MarshalIndent(e, "  ", "  ")
	return "  " + string(b)
}
