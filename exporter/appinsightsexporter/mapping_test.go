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
	plain := server.Events().AppendEmpty()
	plain.SetName("not an exception")
	plain.SetTimestamp(ts(time.Second))

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
	if len(reqs) != 1 || len(reqs[0]) != 11 {
		t.Fatalf("want 1 request of 11 envelopes, got %d requests %v", len(reqs), reqs)
	}
	if f.paths[0] != "/v2.1/track|gzip" {
		t.Fatalf("path|encoding %q", f.paths[0])
	}
	got := reqs[0]
	op := func(extra ...string) map[string]string {
		return merge(resourceTags(), append([]string{tagOperationID, traceHex, tagParentID, parentHex}, extra...)...)
	}
	if res := got[0]; res.Data.BaseType != "MetricData" || !reflect.DeepEqual(res.Data.BaseData, map[string]any{
		"ver": 2.0, "metrics": []any{map[string]any{"name": "_OTELRESOURCE_", "value": 1.0}},
		"properties": map[string]any{"service.name": "scoring", "service.namespace": "ml", "service.instance.id": "pod-1"},
	}) || !reflect.DeepEqual(res.Tags, resourceTags()) {
		t.Errorf("_OTELRESOURCE_ metric: %+v", res)
	}
	checkEnvelope(t, got[1], "Request", "RequestData", timeText, op(tagOperationName, "POST /score", tagLocationIP, "10.0.0.1"), map[string]any{
		"ver": 2.0, "id": "0000000000000001", "name": "POST /score", "duration": "0.00:00:01.5000000",
		"responseCode": "200", "success": true, "url": "http://scoring.local/score",
		"properties": map[string]any{"model.name": "churn"},
	})
	eventTags := merge(resourceTags(), tagOperationID, traceHex, tagParentID, "0000000000000001")
	checkEnvelope(t, got[2], "Exception", "ExceptionData", "2026-11-24T10:30:01.123456Z", eventTags, map[string]any{
		"ver": 2.0,
		"exceptions": []any{map[string]any{
			"typeName": "ValueError", "message": "bad input", "hasFullStack": true, "stack": "Traceback ...\n  File x.py",
		}},
		"properties": map[string]any{"exception.escaped": "false"},
	})
	checkEnvelope(t, got[3], "Message", "MessageData", "2026-11-24T10:30:01.123456Z", eventTags, map[string]any{
		"ver": 2.0, "message": "not an exception",
	})
	checkEnvelope(t, got[4], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000002", "name": "GET /c/b", "resultCode": "503", "duration": "1.02:03:04.1234567",
		"success": true, "data": "https://blob.example.com/c/b?x=1", "target": "https://blob.example.com/c/b?x=1", "type": "Http",
	})
	checkEnvelope(t, got[5], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000003", "name": "SELECT modeldb", "resultCode": "0", "duration": "0.00:00:00.0010000",
		"success": true, "data": "SELECT 1", "target": "sql.example.com|modeldb", "type": "SQL",
		"properties": map[string]any{"server.address": "sql.example.com"},
	})
	checkEnvelope(t, got[6], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000004", "name": "predict", "resultCode": "0", "duration": "0.00:00:00.0020000",
		"success": true, "type": "InProc",
	})
	checkEnvelope(t, got[7], "Request", "RequestData", timeText, op(tagOperationName, "scores process"), map[string]any{
		"ver": 2.0, "id": "0000000000000005", "name": "scores process", "duration": "0.00:00:00.0030000",
		"responseCode": "0", "success": false,
		"properties": map[string]any{"messaging.system": "kafka", "messaging.destination.name": "scores"},
	})
	checkEnvelope(t, got[8], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000006", "name": "scores publish", "resultCode": "0", "duration": "0.00:00:00.0040000",
		"success": true, "type": "Queue Message",
		"properties": map[string]any{"messaging.system": "kafka", "messaging.destination.name": "scores"},
	})
	checkEnvelope(t, got[9], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000007", "name": "Scorer/Score", "resultCode": "14", "duration": "0.00:00:00.0050000",
		"success": true, "target": "model.svc", "type": "GRPC",
		"properties": map[string]any{"rpc.service": "Scorer", "rpc.method": "Score"},
	})
	checkEnvelope(t, got[10], "RemoteDependency", "RemoteDependencyData", timeText, op(), map[string]any{
		"ver": 2.0, "id": "0000000000000008", "name": "legacy", "resultCode": "0", "duration": "0.00:00:00.0060000",
		"success": true, "data": "SELECT *", "target": "pg|features", "type": "postgresql",
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
	// No timestamp: the observed one; no trace: no operation tags; map body
	// as JSON; no severity: none sent.
	lr2 := sl.LogRecords().AppendEmpty()
	lr2.SetObservedTimestamp(ts(time.Second))
	lr2.Body().SetEmptyMap().PutStr("k", "v")
	// A logged exception (Python's logger.exception) is an exception.
	lr3 := sl.LogRecords().AppendEmpty()
	lr3.SetTimestamp(ts(0))
	lr3.SetSeverityNumber(plog.SeverityNumberError)
	lr3.Body().SetStr("scoring failed")
	lr3.Attributes().PutStr("exception.type", "KeyError")
	lr3.Attributes().PutStr("exception.message", "'id'")
	lr3.Attributes().PutStr("exception.stacktrace", "Traceback ...")
	lr3.Attributes().PutStr("code.function", "score")
	// Without exception.message: the body is the message.
	lr4 := sl.LogRecords().AppendEmpty()
	lr4.SetTimestamp(ts(0))
	lr4.Body().SetStr("no model")
	lr4.Attributes().PutStr("exception.type", "LookupError")
	// A custom event, with the end user and session tags.
	lr5 := sl.LogRecords().AppendEmpty()
	lr5.SetTimestamp(ts(0))
	lr5.Attributes().PutStr("microsoft.custom_event.name", "model.promoted")
	lr5.Attributes().PutStr("enduser.id", "alice")
	lr5.Attributes().PutStr("session.id", "s-1")
	lr5.Attributes().PutStr("microsoft.client.ip", "198.51.100.4")
	lr5.Attributes().PutStr("model.version", "7")

	f := newFakeIngestion(t)
	e := startedExporter(t, testConfig(f.srv.URL))
	if err := e.pushLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 1 || len(reqs[0]) != 5 {
		t.Fatalf("got %v", reqs)
	}
	checkEnvelope(t, reqs[0][0], "Message", "MessageData", timeText,
		merge(resourceTags(), tagOperationID, traceHex, tagParentID, "0000000000000009"), map[string]any{
			"ver": 2.0, "message": "scored 12 rows", "severityLevel": "Warning",
			"properties": map[string]any{"rows": "12", "cached": "true"},
		})
	checkEnvelope(t, reqs[0][1], "Message", "MessageData", "2026-11-24T10:30:01.123456Z", resourceTags(), map[string]any{
		"ver": 2.0, "message": `{"k":"v"}`,
	})
	checkEnvelope(t, reqs[0][2], "Exception", "ExceptionData", timeText, resourceTags(), map[string]any{
		"ver": 2.0, "severityLevel": "Error",
		"exceptions": []any{map[string]any{"typeName": "KeyError", "message": "'id'", "hasFullStack": true, "stack": "Traceback ..."}},
		"properties": map[string]any{"code.function": "score"},
	})
	checkEnvelope(t, reqs[0][3], "Exception", "ExceptionData", timeText, resourceTags(), map[string]any{
		"ver": 2.0, "exceptions": []any{map[string]any{"typeName": "LookupError", "message": "no model", "hasFullStack": false}},
	})
	checkEnvelope(t, reqs[0][4], "Event", "EventData", timeText,
		merge(resourceTags(), tagAuthUserID, "alice", tagSessionID, "s-1", tagLocationIP, "198.51.100.4"), map[string]any{
			"ver": 2.0, "name": "model.promoted", "properties": map[string]any{"model.version": "7"},
		})
}

func TestSeverityLevels(t *testing.T) {
	for _, tt := range []struct {
		n    plog.SeverityNumber
		want string
	}{
		{plog.SeverityNumberUnspecified, ""}, {plog.SeverityNumberTrace, "Verbose"}, {plog.SeverityNumberTrace4, "Verbose"},
		{plog.SeverityNumberDebug, "Verbose"}, {plog.SeverityNumberDebug4, "Verbose"}, {plog.SeverityNumberInfo, "Information"},
		{plog.SeverityNumberInfo4, "Information"}, {plog.SeverityNumberWarn, "Warning"}, {plog.SeverityNumberWarn4, "Warning"},
		{plog.SeverityNumberError, "Error"}, {plog.SeverityNumberError4, "Error"},
		{plog.SeverityNumberFatal, "Critical"}, {plog.SeverityNumberFatal4, "Critical"}, {plog.SeverityNumber(25), ""},
	} {
		if got := severityLevel(tt.n); got != tt.want {
			t.Errorf("%v: got %q, want %q", tt.n, got, tt.want)
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
	hp2 := h.Histogram().DataPoints().AppendEmpty() // no min/max: none sent
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
	point := func(name string, value, count float64, minMax ...float64) map[string]any {
		p := map[string]any{"name": name, "kind": "Aggregation", "value": value, "count": count}
		if len(minMax) == 2 {
			p["min"], p["max"] = minMax[0], minMax[1]
		}
		return p
	}
	for i, want := range []map[string]any{
		{"ver": 2.0, "metrics": []any{point("queue.depth", 7, 1)}, "properties": map[string]any{"queue": "a"}},
		{"ver": 2.0, "metrics": []any{point("rows.scored", 2.5, 1)}},
		{"ver": 2.0, "metrics": []any{point("latency", 10, 4, 1, 4)}},
		{"ver": 2.0, "metrics": []any{point("latency", 3, 2)}},
		{"ver": 2.0, "metrics": []any{point("size", 9, 3, 2, 5)}},
	} {
		checkEnvelope(t, reqs[0][i], "Metric", "MetricData", timeText, resourceTags(), want)
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestResourceTags(t *testing.T) {
	sdk := "otelcol-modeldata:dev"
	tests := []struct {
		name  string
		attrs map[string]any
		want  map[string]string
	}{
		{"namespace.name, instance id, version",
			map[string]any{"service.name": "scoring", "service.namespace": "ml", "service.instance.id": "i-1", "service.version": "1.2", "host.name": "node-3"},
			map[string]string{tagRole: "ml.scoring", tagRoleInstance: "i-1", tagApplicationVer: "1.2"}},
		{"unknown service on Kubernetes: the deployment and the pod",
			map[string]any{"service.name": "unknown_service:python", "k8s.deployment.name": "scorer", "k8s.replicaset.name": "scorer-5d8f7",
				"k8s.pod.name": "scorer-5d8f7-xk2p9", "service.instance.id": "i-1", "host.name": "node-3"},
			map[string]string{tagRole: "scorer", tagRoleInstance: "scorer-5d8f7-xk2p9"}},
		{"named service on Kubernetes keeps its name, the pod is the instance",
			map[string]any{"service.name": "scoring", "k8s.deployment.name": "scorer", "k8s.pod.name": "scorer-1"},
			map[string]string{tagRole: "scoring", tagRoleInstance: "scorer-1"}},
		{"unknown service, stateful set",
			map[string]any{"service.name": "unknown_service", "k8s.statefulset.name": "db"},
			map[string]string{tagRole: "db"}},
		{"unknown service and nothing else: as given, instance from host.name",
			map[string]any{"service.name": "unknown_service:java", "host.name": "vm-1"},
			map[string]string{tagRole: "unknown_service:java", tagRoleInstance: "vm-1"}},
		{"device",
			map[string]any{"device.id": "d-1", "device.model.name": "Pixel"},
			map[string]string{tagDeviceID: "d-1", tagDeviceModel: "Pixel"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := pcommon.NewResource()
			if err := res.Attributes().FromRaw(tt.attrs); err != nil {
				t.Fatal(err)
			}
			want := merge(tt.want, tagSDKVersion, sdk)
			if got := newEncoder(target{iKey: testIKey}, "").resourceTags(res); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v\nwant %v", got, want)
			}
		})
	}
}

// TestRequestNamesAndLocation: the operation name of a server span is
// METHOD route whenever there is a route (a custom span name too), else
// METHOD path of url.full, else the span name; the client address is the
// location, never a property.
func TestRequestNamesAndLocation(t *testing.T) {
	tests := []struct {
		name, spanName string
		attrs          map[string]any
		wantName, ip   string
	}{
		{"route wins over a custom name", "score handler",
			map[string]any{"http.request.method": "POST", "http.route": "/v1/{model}", "url.full": "http://h/v1/churn"}, "POST /v1/{model}", ""},
		{"path of url.full without a route", "GET",
			map[string]any{"http.method": "GET", "http.url": "http://h:8080/health?x=1", "client.address": "203.0.113.9"}, "GET /health", "203.0.113.9"},
		{"span name without HTTP", "batch", map[string]any{"network.peer.address": "10.1.1.1"}, "batch", "10.1.1.1"},
		{"microsoft.client.ip overrides", "GET",
			map[string]any{"http.request.method": "GET", "client.address": "10.0.0.1", "microsoft.client.ip": "198.51.100.1"}, "GET", "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			span := ptrace.NewSpan()
			span.SetName(tt.spanName)
			span.SetKind(ptrace.SpanKindServer)
			if err := span.Attributes().FromRaw(tt.attrs); err != nil {
				t.Fatal(err)
			}
			tags := spanTags(span, map[string]string{})
			d := newRequestData(span, tags)
			if d.Name != tt.wantName || tags[tagOperationName] != tt.wantName || tags[tagLocationIP] != tt.ip {
				t.Fatalf("name %q, operation %q, ip %q", d.Name, tags[tagOperationName], tags[tagLocationIP])
			}
			for k := range d.Properties {
				if k == "client.address" || k == "microsoft.client.ip" || k == "network.peer.address" {
					t.Fatalf("%s copied to properties", k)
				}
			}
		})
	}
}
