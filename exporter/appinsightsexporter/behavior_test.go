package appinsightsexporter

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/appinsightsexporter/internal/metadata"
)

// startTraces builds the traces exporter through the factory (exporterhelper
// retry and timeout; no queue, so ConsumeTraces returns after the last try).
func startTraces(t *testing.T, cfg *Config, set exporter.Settings) exporter.Traces {
	t.Helper()
	exp, err := NewFactory().CreateTraces(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// partialTraces: span 1 (server) with an exception, spans 2 and 3 (client).
// Envelopes: 0 request 1, 1 exception of 1, 2 dependency 2, 3 dependency 3
// (the resource has no attributes, so no _OTELRESOURCE_ metric).
func partialTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ss := rs.ScopeSpans().AppendEmpty()
	s1 := addSpan(ss, "score", ptrace.SpanKindServer, 1, time.Millisecond, nil)
	ev := s1.Events().AppendEmpty()
	ev.SetName("exception")
	ev.Attributes().PutStr("exception.type", "E1")
	addSpan(ss, "dep2", ptrace.SpanKindClient, 2, time.Millisecond, nil)
	addSpan(ss, "dep3", ptrace.SpanKindClient, 3, time.Millisecond, nil)
	return td
}

func describeEnvs(envs []gotEnvelope) []string {
	var out []string
	for _, e := range envs {
		d := e.Data.BaseData
		switch e.Data.BaseType {
		case "ExceptionData":
			out = append(out, "exception:"+d["exceptions"].([]any)[0].(map[string]any)["typeName"].(string))
		case "MessageData":
			out = append(out, "message:"+d["message"].(string))
		case "MetricData":
			p := d["metrics"].([]any)[0].(map[string]any)
			out = append(out, "metric:"+p["name"].(string)+"="+formatFloat(p["value"].(float64)))
		default:
			out = append(out, e.Data.BaseType+":"+d["id"].(string))
		}
	}
	return out
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestPartialSuccessResendsOnlyRetryableItems(t *testing.T) {
	// 206: the exception (500) and dependency 3 (429) come again, dependency 2
	// (400) is dropped, request 1 was accepted.
	f := newFakeIngestion(t, answer{status: http.StatusPartialContent, body: `{"itemsReceived":4,"itemsAccepted":1,"errors":[
		{"index":1,"statusCode":500,"message":"Internal Server Error"},
		{"index":2,"statusCode":400,"message":"Field 'name' on type 'RemoteDependencyData' is required"},
		{"index":3,"statusCode":429,"message":"Too many requests"}]}`})
	core, logs := observer.New(zap.InfoLevel)
	set := exportertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	exp := startTraces(t, testConfig(f.srv.URL), set)
	if err := exp.ConsumeTraces(context.Background(), partialTraces()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("want 2 requests, got %d", len(reqs))
	}
	if got, want := strings.Join(describeEnvs(reqs[0]), " "), "RequestData:0000000000000001 exception:E1 RemoteDependencyData:0000000000000002 RemoteDependencyData:0000000000000003"; got != want {
		t.Fatalf("first request: %s", got)
	}
	if got, want := strings.Join(describeEnvs(reqs[1]), " "), "exception:E1 RemoteDependencyData:0000000000000003"; got != want {
		t.Fatalf("second request: got %s, want %s", got, want)
	}
	// The resend marker is plumbing, never a property.
	for _, e := range reqs[1] {
		if _, ok := e.Data.BaseData["properties"]; ok {
			t.Fatalf("resent envelope has properties: %v", e.Data.BaseData)
		}
	}
	if n := logs.FilterMessageSnippet("refused items for good").Len(); n != 1 {
		t.Fatalf("want one log of the dropped item, got %d", n)
	}
}

func TestPartialSuccessLogsAndMetrics(t *testing.T) {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for _, m := range []string{"a", "b", "c", "d"} {
		sl.LogRecords().AppendEmpty().Body().SetStr(m)
	}
	f := newFakeIngestion(t, answer{status: http.StatusPartialContent, body: `{"itemsReceived":4,"itemsAccepted":2,"errors":[
		{"index":0,"statusCode":503,"message":"busy"},{"index":2,"statusCode":400,"message":"bad"}]}`})
	e := startedExporter(t, testConfig(f.srv.URL))
	err := e.pushLogs(context.Background(), ld)
	var le consumererror.Logs
	if err == nil || consumererror.IsPermanent(err) || !errors.As(err, &le) {
		t.Fatalf("want a retryable logs error, got %v", err)
	}
	if got := le.Data(); got.LogRecordCount() != 1 || got.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str() != "a" {
		t.Fatalf("retry data: %d records", got.LogRecordCount())
	}
	if !strings.Contains(err.Error(), "accepted 2 of 4 envelopes; 1 will be sent again (first: 503 busy)") {
		t.Fatalf("message: %v", err)
	}

	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	g := ms.AppendEmpty()
	g.SetName("g")
	g.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(1)
	g.Gauge().DataPoints().AppendEmpty().SetDoubleValue(2)
	h := ms.AppendEmpty()
	h.SetName("h")
	h.SetEmptyHistogram().DataPoints().AppendEmpty().SetCount(1)
	f2 := newFakeIngestion(t, answer{status: http.StatusPartialContent, header: map[string]string{"Retry-After": "3"},
		body: `{"itemsReceived":3,"itemsAccepted":2,"errors":[{"index":1,"statusCode":500,"message":"x"}]}`})
	e2 := startedExporter(t, testConfig(f2.srv.URL))
	err = e2.pushMetrics(context.Background(), md)
	var me consumererror.Metrics
	if err == nil || !errors.As(err, &me) || !strings.HasPrefix(err.Error(), "Throttle (3s)") {
		t.Fatalf("want a throttled metrics error, got %v", err)
	}
	rest := me.Data()
	if rest.DataPointCount() != 1 || rest.MetricCount() != 1 {
		t.Fatalf("retry data: %d metrics %d points", rest.MetricCount(), rest.DataPointCount())
	}
	if m := rest.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0); m.Name() != "g" || m.Gauge().DataPoints().At(0).DoubleValue() != 2 {
		t.Fatalf("retry data: %s", m.Name())
	}

	// Every refused item refused for good: nothing to retry, nothing returned.
	f3 := newFakeIngestion(t, answer{status: http.StatusPartialContent, body: `{"itemsReceived":4,"itemsAccepted":3,"errors":[{"index":3,"statusCode":400,"message":"bad"}]}`})
	if err := startedExporter(t, testConfig(f3.srv.URL)).pushLogs(context.Background(), ld); err != nil {
		t.Fatalf("only permanent item errors: %v", err)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	f := newFakeIngestion(t,
		answer{status: http.StatusServiceUnavailable, header: map[string]string{"Retry-After": "1"}},
		answer{status: http.StatusOK})
	cfg := testConfig(f.srv.URL) // 10 ms backoff: only Retry-After can make the wait one second
	exp := startTraces(t, cfg, exportertest.NewNopSettings(metadata.Type))
	if err := exp.ConsumeTraces(context.Background(), partialTraces()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || len(reqs[0]) != 4 || len(reqs[1]) != 4 {
		t.Fatalf("want the 4 envelopes twice, got %v", reqs)
	}
	if waited := f.times[1].Sub(f.times[0]); waited < time.Second {
		t.Fatalf("second try after %v, before the Retry-After of 1s", waited)
	}
}

func TestStatusErrors(t *testing.T) {
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name      string
		a         answer
		permanent bool
		want      string
	}{
		{"503 seconds", answer{status: 503, header: map[string]string{"Retry-After": "7"}}, false, "Throttle (7s)"},
		{"429 date", answer{status: 429, header: map[string]string{"Retry-After": httpDate}}, false, "Throttle (1m"},
		{"500 no header", answer{status: 500, body: "oops"}, false, "answered 500 Internal Server Error to 4 envelopes: oops"},
		{"408", answer{status: 408}, false, "answered 408 Request Timeout"},
		{"439", answer{status: 439}, false, "answered 439"},
		{"206 unreadable", answer{status: 206, body: "<html>"}, false, "206 with an unreadable body"},
		{"400", answer{status: 400, body: `{"itemsReceived":4,"itemsAccepted":0,"errors":[{"index":0,"statusCode":400,"message":"Invalid instrumentation key"}]}`},
			true, "answered 400 Bad Request to 4 envelopes: item errors: 1, first: 400 Invalid instrumentation key"},
		{"403", answer{status: 403}, true, "Microsoft Entra ID"},
		{"404", answer{status: 404}, true, "answered 404 Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIngestion(t, tt.a)
			err := startedExporter(t, testConfig(f.srv.URL)).pushTraces(context.Background(), partialTraces())
			if err == nil || consumererror.IsPermanent(err) != tt.permanent || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v (permanent %v), want %q permanent %v", err, consumererror.IsPermanent(err), tt.want, tt.permanent)
			}
		})
	}
}

func TestPermanentNotRetried(t *testing.T) {
	f := newFakeIngestion(t, answer{status: http.StatusBadRequest, body: `{"itemsReceived":4,"itemsAccepted":0,"errors":[]}`})
	exp := startTraces(t, testConfig(f.srv.URL), exportertest.NewNopSettings(metadata.Type))
	err := exp.ConsumeTraces(context.Background(), partialTraces())
	if err == nil || !consumererror.IsPermanent(err) {
		t.Fatalf("want a permanent error, got %v", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("400 was sent %d times", n)
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	f := newFakeIngestion(t)
	f.srv.Close()
	err := startedExporter(t, testConfig(f.srv.URL)).pushTraces(context.Background(), partialTraces())
	if err == nil || consumererror.IsPermanent(err) || !strings.Contains(err.Error(), "post 4 envelopes to Application Insights") {
		t.Fatalf("got %v", err)
	}
}

func TestNoCompressionAndSecretsNotLogged(t *testing.T) {
	f := newFakeIngestion(t)
	cfg := testConfig(f.srv.URL)
	cfg.Compression = "none"
	core, logs := observer.New(zap.DebugLevel)
	set := exportertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	exp := startTraces(t, cfg, set)
	if err := exp.ConsumeTraces(context.Background(), partialTraces()); err != nil {
		t.Fatal(err)
	}
	if f.paths[0] != "/v2.1/track|" || len(f.requests()[0]) != 4 {
		t.Fatalf("uncompressed request: %q", f.paths[0])
	}
	for _, l := range logs.All() {
		text := l.Message
		for _, fld := range l.Context {
			text += " " + fld.String
		}
		if strings.Contains(text, testIKey) || strings.Contains(text, "InstrumentationKey") {
			t.Fatalf("log shows the connection string: %s", text)
		}
	}
}

// TestResourceMetricNotResent: a refused _OTELRESOURCE_ metric is not a
// reason to send spans again (the next batch carries it anyway).
func TestResourceMetricNotResent(t *testing.T) {
	td := partialTraces()
	newResource(td.ResourceSpans().At(0).Resource())
	f := newFakeIngestion(t, answer{status: http.StatusPartialContent,
		body: `{"itemsReceived":5,"itemsAccepted":4,"errors":[{"index":0,"statusCode":500,"message":"x"}]}`})
	if err := startedExporter(t, testConfig(f.srv.URL)).pushTraces(context.Background(), td); err != nil {
		t.Fatalf("got %v", err)
	}
	if got := strings.Join(describeEnvs(f.requests()[0]), " "); !strings.HasPrefix(got, "metric:_OTELRESOURCE_=1 RequestData") {
		t.Fatalf("sent %s", got)
	}
}
