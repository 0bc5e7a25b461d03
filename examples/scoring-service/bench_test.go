package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// discard is a log exporter that drops everything: the benchmark measures the
// handler and the SDK's batching, not a network.
type discard struct{}

func (discard) Export(context.Context, []sdklog.Record) error { return nil }
func (discard) Shutdown(context.Context) error                { return nil }
func (discard) ForceFlush(context.Context) error              { return nil }

// BenchmarkScore scores a request of 10 rows: parse, predict, emit 20 records.
func BenchmarkScore(b *testing.B) {
	loggers := sdklog.NewLoggerProvider(
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", "bench"))),
		sdklog.WithProcessor(sdklog.NewBatchProcessor(discard{})))
	defer func() { _ = loggers.Shutdown(context.Background()) }()
	svc := &Service{Logger: loggers.Logger("bench"), Tracer: tracenoop.NewTracerProvider().Tracer("bench"),
		ModelName: "best_model", ModelVersion: "10", Now: time.Now}
	body := `{"data": [` + strings.TrimSuffix(strings.Repeat(`[31, 5000.5, "Redmond"],`, 10), ",") + `]}`
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/score", strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
	b.ReportMetric(float64(b.N)*20/b.Elapsed().Seconds(), "records/s")
}
