package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// otlpStub is an OTLP/HTTP receiver on 127.0.0.1 that keeps what it is sent,
// decoded with the collector's own pdata, as the otlp receiver would.
type otlpStub struct {
	mu     sync.Mutex
	logs   []plog.Logs
	traces []ptrace.Traces
	srv    *httptest.Server
}

func newOTLPStub(t *testing.T) *otlpStub {
	s := &otlpStub{}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/logs", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.logs = append(s.logs, req.Logs())
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	})
	mux.HandleFunc("/v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.traces = append(s.traces, req.Traces())
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

type emitted struct {
	row     contract.Row
	columns []string // contract.Columns: the CSV header's feature columns
	body    map[string]any
	service string
	traceID pcommon.TraceID
	event   string
}

func (s *otlpStub) records() []emitted {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []emitted
	for _, logs := range s.logs {
		for i := 0; i < logs.ResourceLogs().Len(); i++ {
			rl := logs.ResourceLogs().At(i)
			service, _ := rl.Resource().Attributes().Get("service.name")
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					row, ok := contract.ReadRow(lr)
					if !ok {
						continue
					}
					out = append(out, emitted{row: row, columns: contract.Columns(lr), body: lr.Body().Map().AsRaw(), service: service.AsString(),
						traceID: lr.TraceID(), event: lr.EventName()})
				}
			}
		}
	}
	return out
}

func (s *otlpStub) spans() map[string]ptrace.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]ptrace.Span{}
	for _, tr := range s.traces {
		for i := 0; i < tr.ResourceSpans().Len(); i++ {
			ss := tr.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < ss.Len(); j++ {
				for k := 0; k < ss.At(j).Spans().Len(); k++ {
					sp := ss.At(j).Spans().At(k)
					out[sp.Name()] = sp
				}
			}
		}
	}
	return out
}

// TestScoreEmitsContractRecords scores two rows and checks what reached the
// OTLP endpoint: four model data records (two inputs, two predictions) that
// the data contract reads back with the same correlation values, and the
// request's spans, linked to the records by trace id.
func TestScoreEmitsContractRecords(t *testing.T) {
	stub := newOTLPStub(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", stub.srv.URL)
	ctx := context.Background()
	res := resource.NewSchemaless(attribute.String("service.name", "aks-w-collv9"))
	loggers, tracers, err := newProviders(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = loggers.Shutdown(ctx); _ = tracers.Shutdown(ctx) }()

	scoredAt := time.Date(2020, 8, 13, 15, 54, 16, 691697000, time.UTC)
	svc := &Service{Logger: loggers.Logger(instrumentationName), Tracer: tracers.Tracer(instrumentationName),
		ModelName: "best_model", ModelVersion: "10", Now: func() time.Time { return scoredAt }}
	server := httptest.NewServer(newMux(svc, tracers))
	defer server.Close()

	req, _ := http.NewRequest(http.MethodPost, server.URL+"/score",
		strings.NewReader(`{"data": [[31, 5000.5, "Redmond"], [62, 1200, "Zürich"]]}`))
	req.Header.Set("X-Request-Id", "ae249167-ab81-46d2-9553-e42c1f93fa77")
	req.Header.Set("X-Correlation-Id", "user42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"predictions"`) {
		t.Fatalf("score: %d %s", resp.StatusCode, body)
	}
	if err := loggers.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tracers.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}

	records := stub.records()
	if len(records) != 4 {
		t.Fatalf("got %d model data records, want 4: %+v", len(records), records)
	}
	byDesignation := map[string][]emitted{}
	for _, r := range records {
		byDesignation[r.row.Designation] = append(byDesignation[r.row.Designation], r)
	}
	inputs, predictions := byDesignation[contract.DesignationInputs], byDesignation[contract.DesignationPredictions]
	if len(inputs) != 2 || len(predictions) != 2 {
		t.Fatalf("designations: %d inputs, %d predictions", len(inputs), len(predictions))
	}
	correlationID := inputs[0].row.CorrelationID
	if !strings.HasPrefix(correlationID, "user42-") {
		t.Errorf("correlation id %q does not carry the caller's id", correlationID)
	}
	for _, r := range records {
		if r.row.ModelName != "best_model" || r.row.ModelVersion != "10" || r.event != contract.EventName {
			t.Errorf("record %+v: model or event name", r.row)
		}
		if r.row.CorrelationID != correlationID || r.row.RequestID != "ae249167-ab81-46d2-9553-e42c1f93fa77" ||
			!r.row.Timestamp.Equal(scoredAt) {
			t.Errorf("record %+v: correlation values differ from the request's", r.row)
		}
		if r.service != "aks-w-collv9" {
			t.Errorf("service.name %q", r.service)
		}
		if r.traceID.IsEmpty() {
			t.Error("record not linked to the request's trace")
		}
	}
	if got := inputs[0].columns; strings.Join(got, ",") != "age,income,city" {
		t.Errorf("input columns %v", got)
	}
	if got := predictions[0].columns; strings.Join(got, ",") != "score,approved" {
		t.Errorf("prediction columns %v", got)
	}
	if b := inputs[1].body; b["age"] != 62.0 || b["income"] != 1200.0 || b["city"] != "Zürich" {
		t.Errorf("input body %v", b)
	}
	if b := predictions[0].body; b["approved"] != true || b["score"].(float64) <= 0.5 {
		t.Errorf("prediction body %v", b)
	}

	spans := stub.spans()
	serverSpan, predict := spans["POST /score"], spans["model.predict"]
	if serverSpan.Name() == "" || predict.Name() == "" {
		t.Fatalf("spans: %v", spans)
	}
	if predict.TraceID() != serverSpan.TraceID() || inputs[0].traceID != serverSpan.TraceID() {
		t.Error("records and spans of one request do not share its trace id")
	}
	if v, _ := serverSpan.Attributes().Get(contract.AttrRequestID); v.Str() != "ae249167-ab81-46d2-9553-e42c1f93fa77" {
		t.Errorf("server span request id %q", v.Str())
	}
}

// TestBadRequestsEmitNothing: a client's mistake gets a 4xx with a message and no rows.
func TestBadRequestsEmitNothing(t *testing.T) {
	stub := newOTLPStub(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", stub.srv.URL)
	ctx := context.Background()
	loggers, tracers, err := newProviders(ctx, resource.Empty())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = loggers.Shutdown(ctx); _ = tracers.Shutdown(ctx) }()
	svc := &Service{Logger: loggers.Logger("t"), Tracer: tracers.Tracer("t"), ModelName: "m", ModelVersion: "1", Now: time.Now}
	for _, tc := range []struct{ body, want string }{
		{`{"data": [[31, 5000.5]]}`, "2 values, want 3"},
		{`{"data": [["old", 1, "x"]]}`, "age: old is not a number"},
		{`{"data": []}`, "no rows"},
		{`{"data": [[1, 2, "x"]`, "bad JSON"},
	} {
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/score", strings.NewReader(tc.body)))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %q, want 400 %q", tc.body, rec.Code, rec.Body.String(), tc.want)
		}
	}
	_ = loggers.ForceFlush(ctx)
	if n := len(stub.records()); n != 0 {
		t.Errorf("%d records emitted for bad requests", n)
	}
}
