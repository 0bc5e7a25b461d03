package appinsightsexporter

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestCollectorBinary runs the built collector (OTELCOL_MODELDATA_BIN) with
// OTLP/HTTP in and this exporter out to a local track endpoint: a span, a
// metric point and a log record arrive as Request, Metric and Message
// envelopes with the connection string's key.
func TestCollectorBinary(t *testing.T) {
	f := newFakeIngestion(t)
	otlpPort := startCollectorTo(t, f.srv.URL)

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	newResource(rs.Resource())
	addSpan(rs.ScopeSpans().AppendEmpty(), "POST /score", ptrace.SpanKindServer, 1, 20*time.Millisecond,
		map[string]any{"http.request.method": "POST", "http.response.status_code": 200})
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("rows")
	m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(3)
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("hello")

	post := func(path string, body []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d%s", otlpPort, path), "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", path, resp.Status)
		}
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	post("/v1/traces", b, err)
	b, err = pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	post("/v1/metrics", b, err)
	b, err = plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	post("/v1/logs", b, err)

	seen := map[string]gotEnvelope{}
	if !testutil.Poll(30*time.Second, func() bool {
		for _, req := range f.requests() {
			for _, e := range req {
				seen[e.Data.BaseType] = e
			}
		}
		return len(seen) == 3
	}) {
		t.Fatalf("envelopes seen: %v", seen)
	}
	for typ, kind := range map[string]string{"RequestData": "Request", "MetricData": "Metric", "MessageData": "Message"} {
		if e := seen[typ]; e.Name != envPrefix+kind || e.IKey != testIKey {
			t.Errorf("%s: name %q iKey %q", typ, e.Name, e.IKey)
		}
	}
	if req := seen["RequestData"]; req.Tags[tagOperationID] != traceHex || req.Tags[tagRole] != "ml.scoring" || req.Data.BaseData["responseCode"] != "200" {
		t.Errorf("request: %+v", req)
	}
}

// startCollectorTo runs the built collector with OTLP/HTTP in and this
// exporter out to the track endpoint at url, for all three signals; it
// returns the OTLP port.
func startCollectorTo(t *testing.T, url string) int {
	t.Helper()
	otlpPort := testutil.FreePort(t)
	testutil.StartCollector(t, fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  appinsights:
    connection_string: InstrumentationKey=%s;IngestionEndpoint=%s
    sending_queue:
      batch:
        flush_timeout: 50ms
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [appinsights]}
    metrics: {receivers: [otlp], exporters: [appinsights]}
    logs: {receivers: [otlp], exporters: [appinsights]}
  telemetry:
    metrics:
      level: none
`, otlpPort, testIKey, url), fmt.Sprintf("127.0.0.1:%d", otlpPort))
	return otlpPort
}
