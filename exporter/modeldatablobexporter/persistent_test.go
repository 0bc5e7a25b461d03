package modeldatablobexporter

import (
	"context"
	"fmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

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
	q.StorageID = &testutil.FileStorageID
	q.Batch.Get().FlushTimeout = 50 * time.Millisecond

	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	start := func() (func(), func(context.Context, int) error) {
		host, stopStorage := testutil.StartFileStorage(t, queueDir)
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
