package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// harnessEnv names the variable that switches the harness tests from the
// CI smoke size to the full runs (`make bench-e2e`, `make faults` set it).
const harnessEnv = "MODELDATA_HARNESS_FULL"

func harnessFull() bool { return os.Getenv(harnessEnv) != "" }

func harnessAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)) }

// loadAndVerify sends cfg's rows and returns the manifest and waitVerified's
// report.
func loadAndVerify(t *testing.T, cfg harness.LoadConfig, verify verifier, timeout time.Duration, drain func()) (*harness.Manifest, *harness.Report) {
	t.Helper()
	m, err := harness.Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load: %d requests, not acked %d, %.0f rows/s, attempts %d, retries %d, transport errors %d, status %v",
		m.Requests, len(m.NotAcked), m.Stats.RowsPerSecond, m.Stats.Attempts, m.Stats.Retries, m.Stats.TransportErrors, m.Stats.Status)
	rep := waitVerified(t, m, verify, timeout, drain)
	return m, rep
}

// verifier counts a manifest's rows in storage.
type verifier = func(*harness.Manifest) (*harness.Report, error)

// waitVerified polls the verifier until every acknowledged row is found (or
// timeout passes), then drains the collector and reads once more.
func waitVerified(t *testing.T, m *harness.Manifest, verify verifier, timeout time.Duration, drain func()) *harness.Report {
	t.Helper()
	return settled(t, m, verify, waitFound(t, m, verify, timeout), drain)
}

// waitFound polls the verifier until every acknowledged row is found, or
// timeout passes, and returns its last report.
func waitFound(t *testing.T, m *harness.Manifest, verify verifier, timeout time.Duration) *harness.Report {
	t.Helper()
	var rep *harness.Report
	testutil.Poll(timeout, func() bool {
		var err error
		rep, err = verify(m)
		if err != nil {
			t.Logf("verify: %v", err)
			return false
		}
		return rep.Found+rep.Malformed >= rep.Expected
	})
	if rep == nil {
		t.Fatal("verifier never ran")
	}
	return rep
}

// settled runs drain, after which nothing the collector accepted is still on
// its way to storage, and reads once more: a row written late (a duplicate)
// is counted. It returns rep when that read fails.
func settled(t *testing.T, m *harness.Manifest, verify verifier, rep *harness.Report, drain func()) *harness.Report {
	t.Helper()
	drain()
	if r, err := verify(m); err == nil {
		rep = r
	} else {
		t.Logf("verify after the drain: %v", err)
	}
	t.Logf("verify: %s", rep)
	return rep
}

// drainCollector is the drain of col. With the collector's metrics at
// metricsURL, it first waits for the exporter's queue to be empty (a
// persistent queue keeps at shutdown what it has not handed out) and logs the
// blob exporter's counters; the graceful stop then finishes the pushes in
// flight and empties a memory queue.
func drainCollector(t *testing.T, col *testutil.Collector, metricsURL string) func() {
	return func() {
		t.Helper()
		if metricsURL != "" {
			var size float64
			if !testutil.Poll(2*time.Minute, func() bool {
				n, err := harness.MetricSum(context.Background(), metricsURL, "otelcol_exporter_queue_size")
				size = n
				return err == nil && n == 0
			}) {
				t.Errorf("the exporter's queue still holds %.0f after 2 minutes", size)
			}
			logExporterMetrics(t, metricsURL)
		}
		col.Stop()
	}
}

// metricsURL is where a collector started with harness.CollectorConfig's
// MetricsPort serves its own metrics.
func metricsURL(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/metrics", port) }

func assertZeroLoss(t *testing.T, m *harness.Manifest, rep *harness.Report) {
	t.Helper()
	if len(m.NotAcked) > 0 {
		t.Errorf("%d requests never acknowledged: %v", len(m.NotAcked), m.NotAcked[:min(len(m.NotAcked), 10)])
	}
	if !rep.OK() {
		t.Errorf("not zero loss: %s; missing %v; duplicated %v; malformed %v", rep, rep.MissingSample, rep.DuplicateSample, rep.MalformedSample)
	}
}

func dirVerifier(dir string) verifier {
	return func(m *harness.Manifest) (*harness.Report, error) { return harness.VerifyDir(m, dir) }
}

func azuriteVerifier(t *testing.T, az *testutil.Azurite) verifier {
	c, err := harness.ContainerClient(az.ConnectionString(), "modeldata")
	if err != nil {
		t.Fatal(err)
	}
	return func(m *harness.Manifest) (*harness.Report, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return harness.VerifyContainer(ctx, m, c)
	}
}

// TestHarnessLoadLocal: a few thousand rows through both doors into the local
// backend, every one found exactly once.
func TestHarnessLoadLocal(t *testing.T) {
	collect, otlp, health := harnessAddr(t), harnessAddr(t), harnessAddr(t)
	dir := t.TempDir()
	cfg := harness.CollectorConfig{CollectAddr: collect, OTLPAddr: otlp, HealthAddr: health, LocalDir: dir, FlushTimeout: "200ms"}
	col := testutil.StartCollector(t, cfg.YAML(), collect, otlp, health)
	m, rep := loadAndVerify(t, harness.LoadConfig{
		Rows:     harness.Rows{Run: harness.NewRunID(), Features: 10, RowsPerRequest: 100},
		Targets:  map[harness.Door]string{harness.DoorCollect: "http://" + collect, harness.DoorOTLP: "http://" + otlp},
		Requests: 40, Concurrency: 4, MaxDuration: time.Minute,
	}, dirVerifier(dir), 60*time.Second, col.Stop)
	assertZeroLoss(t, m, rep)
	if rep.Expected != 4000 {
		t.Errorf("expected %d rows, want 4000", rep.Expected)
	}
}

// TestHarnessLoadAzurite: the same through the azblob backend into Azurite, at 50 features.
func TestHarnessLoadAzurite(t *testing.T) {
	testutil.CollectorBinary(t) // skip before starting Azurite when there is no binary
	az := testutil.StartAzurite(t)
	collect, otlp, health := harnessAddr(t), harnessAddr(t), harnessAddr(t)
	cfg := harness.CollectorConfig{CollectAddr: collect, OTLPAddr: otlp, HealthAddr: health,
		ConnectionString: az.ConnectionString(), FlushTimeout: "200ms"}
	col := testutil.StartCollector(t, cfg.YAML(), collect, otlp, health)
	m, rep := loadAndVerify(t, harness.LoadConfig{
		Rows:     harness.Rows{Run: harness.NewRunID(), Features: 50, RowsPerRequest: 100},
		Targets:  map[harness.Door]string{harness.DoorCollect: "http://" + collect, harness.DoorOTLP: "http://" + otlp},
		Requests: 30, Concurrency: 4, MaxDuration: time.Minute,
	}, azuriteVerifier(t, az), 60*time.Second, col.Stop)
	assertZeroLoss(t, m, rep)
}
