package appinsightsexporter

import (
	"context"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var (
	t0       = time.Date(2026, 11, 24, 10, 30, 0, 123456000, time.UTC)
	traceID  = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	parentID = pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

const (
	traceHex  = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentHex = "00f067aa0ba902b7"
	timeText  = "2026-11-24T10:30:00.123456Z"
	envPrefix = "Microsoft.ApplicationInsights.11111111222233334444555555555555."
)

func spanID(b byte) pcommon.SpanID { return pcommon.SpanID{0, 0, 0, 0, 0, 0, 0, b} }

func ts(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t0.Add(d)) }

func resourceTags() map[string]string {
	return map[string]string{
		tagRole: "ml.scoring", tagRoleInstance: "pod-1", tagSDKVersion: "otelcol-modeldata:latest",
	}
}

func merge(a map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// checkEnvelope compares every field of an envelope.
func checkEnvelope(t *testing.T, got gotEnvelope, kind, baseType, time string, tags map[string]string, baseData map[string]any) {
	t.Helper()
	if got.Ver != 1 || got.Name != envPrefix+kind || got.IKey != testIKey || got.Time != time || got.SampleRate != 100 {
		t.Errorf("%s envelope: ver %d name %q iKey %q time %q sampleRate %v", kind, got.Ver, got.Name, got.IKey, got.Time, got.SampleRate)
	}
	if !reflect.DeepEqual(got.Tags, tags) {
		t.Errorf("%s tags:\n got %v\nwant %v", kind, got.Tags, tags)
	}
	if got.Data.BaseType != baseType {
		t.Errorf("%s baseType %q, want %q", kind, got.Data.BaseType, baseType)
	}
	if !reflect.DeepEqual(got.Data.BaseData, baseData) {
		t.Errorf("%s baseData:\n got %#v\nwant %#v", kind, got.Data.BaseData, baseData)
	}
}

func newResource(rs pcommon.Resource) {
	rs.Attributes().PutStr("service.name", "scoring")
	rs.Attributes().PutStr("service.namespace", "ml")
	rs.Attributes().PutStr("service.instance.id", "pod-1")
}

func addSpan(ss ptrace.ScopeSpans, name string, kind ptrace.SpanKind, id byte, d time.Duration, attrs map[string]any) ptrace.Span {
	s := ss.Spans().AppendEmpty()
	s.SetName(name)
	s.SetKind(kind)
	s.SetTraceID(traceID)
	s.SetSpanID(spanID(id))
	s.SetParentSpanID(parentID)
	s.SetStartTimestamp(ts(0))
	s.SetEndTimestamp(ts(d))
	if err := s.Attributes().FromRaw(attrs); err != nil {
		panic(err)
	}
	return s
}

func TestTracesEnvelopes(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	newResource(rs.Resource())
	ss := rs.ScopeSpans().AppendEmpty()

	server := addSpan(ss, "POST", ptrace.SpanKindServer, 1, 1500*time.Millisecond, map[string]any{
		"http.request.method": "POST", "http.route": "/score", "http.response.status_code": 200,
		"url.scheme": "http", "server.address": "scoring.local", "server.port": 8080, "url.path": "/score", "url.query": "v=2",
		"client.address": "10.0.0.1", "model.name": "churn",
	})
	ev := server.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(ts(time.Second))
	ev.Attributes().PutStr("exception.type", "ValueError")
	ev.Attributes().PutStr("exception.message", "bad input")
	ev.Attributes().PutStr("exception.stacktrace", "Traceback ...\n  File x.py")
	ev.Attributes().PutBool("exception.escaped", false)
	server.Events().AppendEmpty().SetName("not an exception")

	addSpan(ss, "GET", ptrace.SpanKindClient, 2, 26*time.Hour+3*time.Minute+4*time.Second+123456700*time.Nanosecond, map[string]any{
		"http.request.method": "GET", "url.full": "https://blob.example.com/c/b?x=1", "http.response.status_code": 503,
	})
	addSpan(ss, "SELECT modeldb", ptrace.SpanKindClient, 3, time.Millisecond, map[string]any{
		"db.system.name": "mssql", "server.address": "sql.example.com", "db.namespace": "modeldb", "db.query.text": "SELECT 1",
	}).Status().SetCode(ptrace.StatusCodeOk)
	addSpan(ss, "predict", ptrace.SpanKindInternal, 4, 2*time.Millisecond, nil)
	consumer := addSpan(ss, "scores process", ptrace.SpanKindConsumer, 5, 3*time.Millisecond, map[string]any{
		"messaging.system": "kafka", "messaging.destination.name": "scores",
	})
	consumer.Status().SetCode(ptrace.StatusCodeError)
	addSpan(ss, "scores publish", ptrace.SpanKindProducer, 6, 4*time.Millisecond, map[string]any{
		"messaging.system": "kafka", "messaging.destination.name": "scores", "server.address": "broker", "server.port": 9092,
	})
	addSpan(ss, "Scorer/Score", ptrace.SpanKindClient, 7, 5*time.Millisecond, map[string]any{
		"rpc.system": "grpc", "rpc.service": "Scorer", "rpc.method": "Score", "rpc.grpc.status_code": 14, "server.address": "model.svc",
	})
	addSpan(ss, "legacy", ptrace.SpanKindClient, 8, 6*time.Millisecond, map[string]any{
		"db.system": "postgresql", "net.peer.name": "pg", "net.peer.port": 5432, "db.name": "features", "db.statement": "SELECT *",
	})

	f := newFakeIngestion(t)
	e := startedExporter(t, testConfig(f.srv.URL))
	if err := e.pushTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 || len(reqs[0]) != 9 {
		t.Fatalf("want 1 request of 9 envelopes, got %d requests %v", len(reqs), reqs)
	}
	if f.paths[0] != "/v2.1/track|gzip" {
		t.Fatalf("path|encoding %q", f.paths[0])
	}
	got := reqs[0]
	op := func(extra ...string) map[string]string {
		return merge(resourceTags(), append([]string{tagOperationID, traceHex, tagParentID, parentHex}, extra...)...)
	}
	checkEnvelope(t, got[0], "Request", "RequestData", timeText, op(tagOperationName, "POST /score"), map[string]any{
		"ver": 2.0, "id": "0000000000000001", "name": "POST /score", "duration": "0.00:00:01.5000000",
		"responseCode": "200", "success": true, "url": "http://scoring.local:8080/score?v=2", "source": "10.0.0.1",
		"properties": map[string]any{
			"http.request.method": "POST", "http.route": "/score", "http.response.status_code": "200",
			"url.scheme": "http", "server.address": "scoring.local", "server.port": "8080", "url.path": "/score", "url.query": "v=2",
			"client.address": "10.0.0.1", "model.name": "churn",
		},
	})
	checkEnvelope(t, got[1], "Exception", "ExceptionData", "2026-11-24T10:30:01.123456Z",
		merge(resourceTags(), tagOperationID, traceHex, tagParentID, "0000000000000001"), map[string]any{
			"ver": 2.0, "severityLevel": 3.0, "problemId": "",
			"exceptions": []any{map[string]any{
				"id": 1.0, "outerId": 0.0, "typeName": "ValueError", "message": "bad input",
				"hasFullStack": true, "stack": "Traceback ...\n  File x.py",
			}},
			"properties": map[string]any{"exception.escaped": "false"},
		})
	checkEnvelope(t, got[2], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000002", "name": "GET /c/b", "resultCode": "503", "duration": "1.02:03:04.1234567",
		"success": false, "data": "https://blob.example.com/c/b?x=1", "target": "blob.example.com", "type": "HTTP",
		"properties": map[string]any{"http.request.method": "GET", "url.full": "https://blob.example.com/c/b?x=1", "http.response.status_code": "503"},
	})
	checkEnvelope(t, got[3], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000003", "name": "SELECT modeldb", "resultCode": "", "duration": "0.00:00:00.0010000",
		"success": true, "data": "SELECT 1", "target": "sql.example.com | modeldb", "type": "SQL",
		"properties": map[string]any{"db.system.name": "mssql", "server.address": "sql.example.com", "db.namespace": "modeldb", "db.query.text": "SELECT 1"},
	})
	checkEnvelope(t, got[4], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000004", "name": "predict", "resultCode": "", "duration": "0.00:00:00.0020000",
		"success": true, "data": "", "target": "", "type": "InProc",
	})
	checkEnvelope(t, got[5], "Request", "RequestData", timeText, op(tagOperationName, "scores process"), map[string]any{
		"ver": 2.0, "id": "0000000000000005", "name": "scores process", "duration": "0.00:00:00.0030000",
		"responseCode": "0", "success": false, "url": "", "source": "",
		"properties": map[string]any{"messaging.system": "kafka", "messaging.destination.name": "scores"},
	})
	checkEnvelope(t, got[6], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000006", "name": "scores publish", "resultCode": "", "duration": "0.00:00:00.0040000",
		"success": true, "data": "scores", "target": "broker:9092/scores", "type": "kafka",
		"properties": map[string]any{"messaging.system": "kafka", "messaging.destination.name": "scores", "server.address": "broker", "server.port": "9092"},
	})
	checkEnvelope(t, got[7], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000007", "name": "Scorer/Score", "resultCode": "14", "duration": "0.00:00:00.0050000",
		"success": false, "data": "Scorer/Score", "target": "model.svc", "type": "grpc",
		"properties": map[string]any{"rpc.system": "grpc", "rpc.service": "Scorer", "rpc.method": "Score", "rpc.grpc.status_code": "14", "server.address": "model.svc"},
	})
	checkEnvelope(t, got[8], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000008", "name": "legacy", "resultCode": "", "duration": "0.00:00:00.0060000",
		"success": true, "data": "SELECT *", "target": "pg:5432 | features", "type": "postgresql",
		"properties": map[string]any{"db.system": "postgresql", "net.peer.name": "pg", "net.peer.port": "5432", "db.name": "features", "db.statement": "SELECT *"},
	})
}

func TestLogsEnvelopes(t *testing.T) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	newResource(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(ts(0))
	lr.Body().SetStr("scored 12 rows")
	lr.SetSeverityNumber(plog.SeverityNumberWarn2)
	lr.SetSeverityText("WARNING")
	lr.SetTraceID(traceID)
	lr.SetSpanID(spanID(9))
	lr.Attributes().PutInt("rows", 12)
	lr.Attributes().PutBool("cached", true)
	// No timestamp: the observed one; no trace: no operation tags; map body as JSON.
	lr2 := sl.LogRecords().AppendEmpty()
	lr2.SetObservedTimestamp(ts(time.Second))
	lr2.Body().SetEmptyMap().PutStr("k", "v")

	f := newFakeIngestion(t)
	e := startedExporter(t, testConfig(f.srv.URL))
	if err := e.pushLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 || len(reqs[0]) != 2 {
		t.Fatalf("got %v", reqs)
	}
	checkEnvelope(t, reqs[0][0], "Message", "MessageData", timeText,
		merge(resourceTags(), tagOperationID, traceHex, tagParentID, "0000000000000009"), map[string]any{
			"ver": 2.0, "message": "scored 12 rows", "severityLevel": 2.0,
			"properties": map[string]any{"rows": "12", "cached": "true"},
		})
	checkEnvelope(t, reqs[0][1], "Message", "MessageData", "2026-11-24T10:30:01.123456Z", resourceTags(), map[string]any{
		"ver": 2.0, "message": `{"k":"v"}`, "severityLevel": 1.0,
	})
}

func TestSeverityLevels(t *testing.T) {
	for _, tt := range []struct {
		n    plog.SeverityNumber
		want int
	}{
		{plog.SeverityNumberUnspecified, 1}, {plog.SeverityNumberTrace, 0}, {plog.SeverityNumberTrace4, 0},
		{plog.SeverityNumberDebug, 0}, {plog.SeverityNumberDebug4, 0}, {plog.SeverityNumberInfo, 1}, {plog.SeverityNumberInfo4, 1},
		{plog.SeverityNumberWarn, 2}, {plog.SeverityNumberWarn4, 2}, {plog.SeverityNumberError, 3}, {plog.SeverityNumberError4, 3},
		{plog.SeverityNumberFatal, 4}, {plog.SeverityNumberFatal4, 4},
	} {
		if got := int(severityLevel(tt.n)); got != tt.want {
			t.Errorf("%v: got %d, want %d", tt.n, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0.00:00:00.0000000"},
		{-time.Second, "0.00:00:00.0000000"},
		{150 * time.Nanosecond, "0.00:00:00.0000001"},
		{1500 * time.Millisecond, "0.00:00:01.5000000"},
		{59*time.Minute + 59*time.Second, "0.00:59:59.0000000"},
		{49*time.Hour + 3*time.Minute + 4*time.Second + 123456789, "2.01:03:04.1234567"},
	} {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("%v: got %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestMetricsEnvelopes(t *testing.T) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	newResource(rm.Resource())
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()

	g := ms.AppendEmpty()
	g.SetName("queue.depth")
	gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetTimestamp(ts(0))
	gp.SetIntValue(7)
	gp.Attributes().PutStr("queue", "a")

	s := ms.AppendEmpty()
	s.SetName("rows.scored")
	sp := s.SetEmptySum().DataPoints().AppendEmpty()
	sp.SetTimestamp(ts(0))
	sp.SetDoubleValue(2.5)
	nan := s.Sum().DataPoints().AppendEmpty() // not finite: skipped
	nan.SetDoubleValue(nanValue())

	h := ms.AppendEmpty()
	h.SetName("latency")
	hp := h.SetEmptyHistogram().DataPoints().AppendEmpty()
	hp.SetTimestamp(ts(0))
	hp.SetCount(4)
	hp.SetSum(10)
	hp.SetMin(1)
	hp.SetMax(4)
	hp2 := h.Histogram().DataPoints().AppendEmpty() // no min/max: the mean
	hp2.SetTimestamp(ts(0))
	hp2.SetCount(2)
	hp2.SetSum(3)

	sm := ms.AppendEmpty()
	sm.SetName("size")
	smp := sm.SetEmptySummary().DataPoints().AppendEmpty()
	smp.SetTimestamp(ts(0))
	smp.SetCount(3)
	smp.SetSum(9)
	q := smp.QuantileValues().AppendEmpty()
	q.SetQuantile(0)
	q.SetValue(2)
	q = smp.QuantileValues().AppendEmpty()
	q.SetQuantile(1)
	q.SetValue(5)

	f := newFakeIngestion(t)
	e := startedExporter(t, testConfig(f.srv.URL))
	if err := e.pushMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 || len(reqs[0]) != 5 {
		t.Fatalf("got %v", reqs)
	}
	point := func(name string, kind, value, count, lo, hi float64) map[string]any {
		return map[string]any{"name": name, "kind": kind, "value": value, "count": count, "min": lo, "max": hi, "stdDev": 0.0}
	}
	for i, want := range []map[string]any{
		{"ver": 2.0, "metrics": []any{point("queue.depth", 0, 7, 1, 0, 0)}, "properties": map[string]any{"queue": "a"}},
		{"ver": 2.0, "metrics": []any{point("rows.scored", 0, 2.5, 1, 0, 0)}},
		{"ver": 2.0, "metrics": []any{point("latency", 1, 10, 4, 1, 4)}},
		{"ver": 2.0, "metrics": []any{point("latency", 1, 3, 2, 1.5, 1.5)}},
		{"ver": 2.0, "metrics": []any{point("size", 1, 9, 3, 2, 5)}},
	} {
		checkEnvelope(t, reqs[0][i], "Metric", "MetricData", timeText, resourceTags(), want)
	}
}

func nanValue() float64 { var z float64; return z / z }
