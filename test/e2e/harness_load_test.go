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

// loadAndVerify sends cfg's rows and polls the verifier until every
// acknowledged row is found (or the timeout passes), then asserts zero loss,
// zero duplicates, zero malformed rows.
func loadAndVerify(t *testing.T, cfg harness.LoadConfig, verify func(*harness.Manifest) (*harness.Report, error), timeout time.Duration) (*harness.Manifest, *harness.Report) {
	t.Helper()
	m, err := harness.Load(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load: %d requests, not acked %d, %.0f rows/s, attempts %d, retries %d, transport errors %d, status %v",
		m.Requests, len(m.NotAcked), m.Stats.RowsPerSecond, m.Stats.Attempts, m.Stats.Retries, m.Stats.TransportErrors, m.Stats.Status)
	rep := waitVerified(t, m, verify, timeout)
	return m, rep
}

func waitVerified(t *testing.T, m *harness.Manifest, verify func(*harness.Manifest) (*harness.Report, error), timeout time.Duration) *harness.Report {
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
	// A last read after the count settled: late duplicates show up too.
	time.Sleep(500 * time.Millisecond)
	if r, err := verify(m); err == nil {
		rep = r
	}
	t.Logf("verify: %s", rep)
	return rep
}

func assertZeroLoss(t *testing.T, m *harness.Manifest, rep *harness.Report) {
	t.Helper()
	if len(m.NotAcked) > 0 {
		t.Errorf("%d requests never acknowledged: %v", len(m.NotAcked), m.NotAcked[:min(len(m.NotAcked), 10)])
	}
	if !rep.OK() {
		t.Errorf("not zero loss: %s; missing %v; duplicated %v; malformed %v", rep, rep.MissingSample, rep.DuplicateSample, rep.MalformedSample)
	}
}

func dirVerifier(dir string) func(*harness.Manifest) (*harness.Report, error) {
	return func(m *harness.Manifest) (*harness.Report, error) { return harness.VerifyDir(m, dir) }
}

func azuriteVerifier(t *testing.T, az *testutil.Azurite) func(*harness.Manifest) (*harness.Report, error) {
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
	testutil.StartCollector(t, cfg.YAML(), collect, otlp, health)
	m, rep := loadAndVerify(t, harness.LoadConfig{
		Rows:     harness.Rows{Run: harness.NewRunID(), Features: 10, RowsPerRequest: 100},
		Targets:  map[harness.Door]string{harness.DoorCollect: "http://" + collect, harness.DoorOTLP: "http://" + otlp},
		Requests: 40, Concurrency: 4, MaxDuration: time.Minute,
	}, dirVerifier(dir), 60*time.Second)
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
	testutil.StartCollector(t, cfg.YAML(), collect, otlp, health)
	m, rep := loadAndVerify(t, harness.LoadConfig{
		Rows:     harness.Rows{Run: harness.NewRunID(), Features: 50, RowsPerRequest: 100},
		Targets:  map[harness.Door]string{harness.DoorCollect: "http://" + collect, harness.DoorOTLP: "http://" + otlp},
		Requests: 30, Concurrency: 4, MaxDuration: time.Minute,
	}, azuriteVerifier(t, az), 60*time.Second)
	assertZeroLoss(t, m, rep)
}
