package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// The kill -9 and storage-outage runs of TestHarnessFaultKill9 and
// TestHarnessFaultAzuriteDown with format mdc_jsonl (append blobs, the CSV
// writer's guarantees) and parquet (block blobs committed inside the push):
// every acknowledged row must be found.
var faultFormats = []string{"mdc_jsonl", "parquet"}

func TestHarnessFaultKill9Formats(t *testing.T) {
	testutil.CollectorBinary(t)
	for _, format := range faultFormats {
		t.Run(format, func(t *testing.T) {
			size := faultRun(faultSize{requests: 60, rate: 3000, outage: time.Second}, faultSize{requests: 1000, rate: 5000, outage: 2 * time.Second})
			az := testutil.StartAzurite(t)
			collect, health, metricsPort := harnessAddr(t), harnessAddr(t), testutil.FreePort(t)
			cfg := harness.CollectorConfig{CollectAddr: collect, HealthAddr: health, ConnectionString: az.ConnectionString(),
				QueueDir: filepath.Join(t.TempDir(), "queue"), FlushTimeout: "500ms", MinBatch: 1000, Format: format, MetricsPort: metricsPort}
			col := testutil.StartCollector(t, cfg.YAML(), collect, health)
			kills := []float64{0.4}
			if harnessFull() {
				kills = []float64{0.2, 0.4, 0.6, 0.8}
			}
			m, rep := faultLoad(t, size, "http://"+collect, kills,
				col.Kill, func() { col.Restart(collect, health) }, azuriteVerifier(t, az), drainCollector(t, col, metricsURL(metricsPort)))
			if len(m.NotAcked) > 0 || rep.Missing > 0 || rep.Malformed > 0 || rep.Found != rep.Expected {
				t.Errorf("%s: rows lost or damaged across kill -9: %s (not acked %d); missing %v malformed %v",
					format, rep, len(m.NotAcked), rep.MissingSample, rep.MalformedSample)
			}
			if rep.Duplicated > 0 {
				t.Logf("%s: DUPLICATES after kill -9: %d rows written twice (at-least-once window), e.g. %v",
					format, rep.Duplicated, rep.DuplicateSample)
			}
		})
	}
}

func TestHarnessFaultAzuriteDownFormats(t *testing.T) {
	testutil.CollectorBinary(t)
	for _, format := range faultFormats {
		t.Run(format, func(t *testing.T) {
			size := faultRun(faultSize{requests: 60, rate: 2000, outage: 30 * time.Second}, faultSize{requests: 1000, rate: 200, outage: 15 * time.Minute})
			az := testutil.StartAzurite(t)
			collect, health := harnessAddr(t), harnessAddr(t)
			cfg := harness.CollectorConfig{CollectAddr: collect, HealthAddr: health, ConnectionString: az.ConnectionString(),
				FlushTimeout: "500ms", MinBatch: 1000, Timeout: "10s", QueueSize: 20, Format: format}
			col := testutil.StartCollector(t, cfg.YAML(), collect, health)
			m, rep := faultLoad(t, size, "http://"+collect, []float64{0.3}, az.Stop, az.Restart, azuriteVerifier(t, az), col.Stop)
			assertZeroLoss(t, m, rep)
		})
	}
}
