package appinsightsexporter

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
)

func TestFactory(t *testing.T) {
	f := NewFactory()
	if f.Type().String() != "appinsights" {
		t.Fatalf("type %q", f.Type())
	}
	if err := componenttest.CheckConfigStruct(f.CreateDefaultConfig()); err != nil {
		t.Fatal(err)
	}
	// The default config has no connection string: a clear error, not a start.
	if err := f.CreateDefaultConfig().(*Config).Validate(); err == nil || !strings.Contains(err.Error(), "connection_string must be set") {
		t.Fatalf("default config: %v", err)
	}
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.ConnectionString = "InstrumentationKey=" + testIKey + ";IngestionEndpoint=http://127.0.0.1:9"
	set := exportertest.NewNopSettings(componentType)
	ctx := context.Background()
	host := componenttest.NewNopHost()
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
	for _, start := range []func() error{
		func() error { return tr.Start(ctx, host) }, func() error { return me.Start(ctx, host) }, func() error { return lo.Start(ctx, host) },
	} {
		if err := start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, stop := range []func() error{
		func() error { return tr.Shutdown(ctx) }, func() error { return me.Shutdown(ctx) }, func() error { return lo.Shutdown(ctx) },
	} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	// A bad connection string fails creation too (Validate runs first in the collector).
	cfg.ConnectionString = "InstrumentationKey=x"
	if _, err := f.CreateTraces(ctx, set, cfg); err == nil {
		t.Fatal("created with a bad connection string")
	}
}
