package modeldatablobexporter

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
)

// TestFactoryExporterWritesThroughQueue runs the full exporter (queue,
// batcher, retry) on the local backend: rows land, and Shutdown flushes.
func TestFactoryExporterWritesThroughQueue(t *testing.T) {
	cfg := localConfig(t)
	cfg.QueueConfig.Get().Batch.Get().FlushTimeout = 50 * time.Millisecond
	exp := startHelperExporter(t, cfg, exportertest.NewNopSettings(metadata.Type))
	for i := 0; i < 3; i++ {
		if err := exp.ConsumeLogs(context.Background(), makeLogs(testRow{model: "m", version: "1", ts: day, features: [][2]any{{"i", i}}})); err != nil {
			t.Fatal(err)
		}
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readLocal(t, cfg, "00000000-0000-0000-0000-000000000000/local/local/local/m/1/general/2018/12/31/data.csv")
	if lines := strings.Count(got, "\r\n"); lines != 4 {
		t.Fatalf("want header + 3 rows, got %q", got)
	}
}

func TestFactoryType(t *testing.T) {
	if NewFactory().Type().String() != "modeldatablob" {
		t.Fatal(NewFactory().Type())
	}
}
