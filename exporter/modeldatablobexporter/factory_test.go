package modeldatablobexporter

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
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

// TestFactoryPersistentQueueReadsOnly: with a persistent sending queue the
// exporter declares that it does not mutate the logs (so a pipeline with a
// second consumer shares them instead of copying them; it still reports that
// it batches, for the collector's double-batching warning), and read-only logs
// (which panic on any mutation) pass the queue and the batcher and land; with
// the in-memory queue the batcher merges the given logs, so it mutates.
func TestFactoryPersistentQueueReadsOnly(t *testing.T) {
	memory := localConfig(t)
	exp, err := NewFactory().CreateLogs(context.Background(), exportertest.NewNopSettings(metadata.Type), memory)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Capabilities().MutatesData {
		t.Fatal("in-memory queue with batching: MutatesData must stay true")
	}

	cfg := localConfig(t)
	q := cfg.QueueConfig.Get()
	q.StorageID = &testutil.FileStorageID
	q.Batch.Get().FlushTimeout = 50 * time.Millisecond
	host, stopStorage := testutil.StartFileStorage(t, t.TempDir())
	defer stopStorage()
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	exp, err = NewFactory().CreateLogs(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Capabilities().MutatesData {
		t.Fatal("persistent queue: MutatesData must be false")
	}
	if b, ok := exp.(interface{ ExporterHelperBatchingEnabled() bool }); !ok || !b.ExporterHelperBatchingEnabled() {
		t.Fatal("persistent queue: the collector must still see that the exporter batches")
	}
	if err := exp.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	const rows = 3
	for i := 0; i < rows; i++ {
		ld := makeLogs(testRow{model: "m", version: "1", ts: day, features: [][2]any{{"i", i}}})
		ld.MarkReadOnly()
		if err := exp.ConsumeLogs(context.Background(), ld); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	// A persistent queue keeps what it holds at shutdown: wait for the rows.
	path := filepath.Join(cfg.Local.Directory, cfg.Container, "00000000-0000-0000-0000-000000000000/local/local/local/m/1/general/2018/12/31/data.csv")
	var got []byte
	if !testutil.Poll(10*time.Second, func() bool {
		got, _ = os.ReadFile(path)
		return strings.Count(string(got), "\r\n") == rows+1
	}) {
		t.Fatalf("want header + %d rows, got %q", rows, got)
	}
}

func TestFactoryType(t *testing.T) {
	if NewFactory().Type().String() != "modeldatablob" {
		t.Fatal(NewFactory().Type())
	}
}
