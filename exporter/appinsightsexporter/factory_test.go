package appinsightsexporter

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/appinsightsexporter/internal/metadata"
)

func TestFactory(t *testing.T) {
	f := NewFactory()
	if f.Type().String() != "appinsights" {
		t.Fatalf("type %q", f.Type())
	}
	if err := componenttest.CheckConfigStruct(f.CreateDefaultConfig()); err != nil {
		t.Fatal(err)
	}
	// The default config has no connection string: valid, the exporter starts disabled.
	if err := f.CreateDefaultConfig().(*Config).Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.ConnectionString = "InstrumentationKey=" + testIKey + ";IngestionEndpoint=http://127.0.0.1:9"
	set := exportertest.NewNopSettings(metadata.Type)
	ctx := context.Background()
	tr, me, lo := createStarted(t, cfg, set)
	shutdownAll(t, tr, me, lo)
	// A bad connection string fails creation too (Validate runs first in the collector).
	cfg.ConnectionString = "InstrumentationKey=x"
	if _, err := f.CreateTraces(ctx, set, cfg); err == nil {
		t.Fatal("created with a bad connection string")
	}
}

// Without a connection string (the secret left out of a deployment) each
// signal's exporter starts, says once that it drops telemetry, accepts what
// it is given and sends nothing, even with endpoint set.
func TestDisabledWithoutConnectionString(t *testing.T) {
	ingestion := newFakeIngestion(t)
	cfg := createDefaultConfig()
	cfg.Endpoint = ingestion.srv.URL
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	core, logs := observer.New(zap.InfoLevel)
	set := exportertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	ctx := context.Background()
	tr, me, lo := createStarted(t, cfg, set)
	if err := tr.ConsumeTraces(ctx, partialTraces()); err != nil {
		t.Fatal(err)
	}
	metrics := pmetric.NewMetrics()
	metrics.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	if err := me.ConsumeMetrics(ctx, metrics); err != nil {
		t.Fatal(err)
	}
	lg := plog.NewLogs()
	lg.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("dropped")
	if err := lo.ConsumeLogs(ctx, lg); err != nil {
		t.Fatal(err)
	}
	shutdownAll(t, tr, me, lo)
	if n := len(ingestion.requests()); n != 0 {
		t.Fatalf("disabled exporter sent %d requests", n)
	}
	const line = "appinsights: no connection_string set; exporter disabled, telemetry is dropped"
	if got := logs.FilterMessage(line).FilterLevelExact(zap.WarnLevel).Len(); got != 3 || logs.Len() != 3 {
		t.Fatalf("want the line once per signal, got %d of %d lines: %v", got, logs.Len(), logs.All())
	}
}

// createStarted creates and starts the exporter of each signal.
func createStarted(t *testing.T, cfg *Config, set exporter.Settings) (exporter.Traces, exporter.Metrics, exporter.Logs) {
	t.Helper()
	f, ctx := NewFactory(), context.Background()
	tr, err := f.CreateTraces(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	me, err := f.CreateMetrics(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := f.CreateLogs(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []component.Component{tr, me, lo} {
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
	}
	return tr, me, lo
}

func shutdownAll(t *testing.T, cs ...component.Component) {
	t.Helper()
	for _, c := range cs {
		if err := c.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
