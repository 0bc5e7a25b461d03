package modeldatablobexporter

import (
	"context"
	"fmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// storageHost is a host with one file_storage extension.
type storageHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h storageHost) GetExtensions() map[component.ID]component.Component { return h.exts }

var fileStorageID = component.MustNewID("file_storage")

func startFileStorage(t testing.TB, dir string) (storageHost, func()) {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	ext, err := f.Create(context.Background(), extension.Settings{ID: fileStorageID,
		TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	host := storageHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{fileStorageID: ext}}
	return host, func() { _ = ext.Shutdown(context.Background()) }
}

// TestAzuritePersistentQueueSurvivesRestart: rows accepted while the blob
// service is down stay in the persistent queue across an exporter restart
// and land once the service is back, each exactly once.
func TestAzuritePersistentQueueSurvivesRestart(t *testing.T) {
	az := testutil.StartAzurite(t)
	az.Stop()
	queueDir := t.TempDir()

	cfg := azuriteConfig(az)
	cfg.TimeoutConfig.Timeout = 2 * time.Second
	cfg.RetryConfig.InitialInterval = 100 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 300 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 0 // retry until shutdown
	q := cfg.QueueConfig.Get()
	q.StorageID = &fileStorageID
	q.Batch.Get().FlushTimeout = 50 * time.Millisecond

	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	start := func() (func(), func(context.Context, int) error) {
		host, stopStorage := startFileStorage(t, queueDir)
		set := exportertest.NewNopSettings(metadata.Type)
		set.TelemetrySettings = tt.NewTelemetrySettings()
		set.ID = component.NewID(metadata.Type) // the queue's storage is named by the exporter ID
		set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
		exp, err := NewFactory().CreateLogs(context.Background(), set, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.Start(context.Background(), host); err != nil {
			t.Fatal(err)
		}
		stop := func() {
			if err := exp.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			stopStorage()
		}
		send := func(ctx context.Context, n int) error {
			return exp.ConsumeLogs(ctx, makeLogs(testRow{model: "m", version: "1", ts: day, requestID: fmt.Sprint("r", n),
				features: [][2]any{{"n", n}}}))
		}
		return stop, send
	}

	const rows = 30
	stop, send := start()
	for i := 0; i < rows; i++ {
		if err := send(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	// The queued rows have met the stopped service before the restart.
	if !testutil.Poll(20*time.Second, func() bool { return counter(t, tt, "otelcol_modeldatablob_write_failures") >= 2 }) {
		t.Fatal("the exporter never tried the stopped service")
	}
	stop()

	az.Restart()
	stop, _ = start()
	const file = "00000000-0000-0000-0000-000000000000/local/local/local/m/1/general/2018/12/31/data.csv"
	var data string
	if !testutil.Poll(20*time.Second, func() bool {
		data = readBlobs(t, az, "modeldata")[file]
		return len(parseCSV(t, data)) >= rows+1
	}) {
		stop()
		t.Fatalf("rows did not land after the restart: %q", data)
	}
	stop() // shutdown drains the queue: a doubled row would have landed by now
	assertRowsOnce(t, readBlobs(t, az, "modeldata")[file], rows)
}
