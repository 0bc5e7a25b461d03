package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// The kill -9 and storage-outage runs of TestHarnessFaultKill9 and
// TestHarnessFaultAzuriteDown with format mdc_jsonl (append blobs, the CSV
// writer's guarantees) and parquet (block blobs open across pushes, each
// push's row group staged and journaled before its acknowledgment, files
// left open by a kill committed at start): every acknowledged row found,
// none doubled, resent requests included.
var faultFormats = []string{"mdc_jsonl", "parquet"}

// faultParquetMaxAge keeps the runs' Parquet files open across several
// pushes (batches flush every 500 ms) and the time until every row is
// visible short: the runs wait for every row in storage.
const faultParquetMaxAge = "3s"

func TestHarnessFaultKill9Formats(t *testing.T) {
	testutil.CollectorBinary(t)
	for _, format := range faultFormats {
		t.Run(format, func(t *testing.T) {
			size := faultRun(faultSize{requests: 60, rate: 3000, outage: time.Second}, faultSize{requests: 2000, rate: 3000, outage: time.Second})
			az := testutil.StartAzurite(t)
			collect, health, metricsPort := harnessAddr(t), harnessAddr(t), testutil.FreePort(t)
			cfg := harness.CollectorConfig{CollectAddr: collect, HealthAddr: health, ConnectionString: az.ConnectionString(),
				QueueDir: filepath.Join(t.TempDir(), "queue"), FlushTimeout: "500ms", MinBatch: 1000, Format: format, MetricsPort: metricsPort,
				ParquetMaxAge: faultParquetMaxAge}
			col := testutil.StartCollector(t, cfg.YAML(), collect, health)
			kills := killShares(t)
			m, rep := faultLoad(t, size, "http://"+collect, kills,
				col.Kill, func() { col.Restart(collect, health) }, azuriteVerifier(t, az), drainCollector(t, col, metricsURL(metricsPort)))
			t.Logf("KILL9 %s: %d kills, expected %d, found %d, missing %d, duplicated %d, malformed %d",
				format, len(kills), rep.Expected, rep.Found, rep.Missing, rep.Duplicated, rep.Malformed)
			assertExactlyOnceAcrossKills(t, m, rep)
		})
	}
}

// killShares is when the kill runs kill: at 40 % of the acknowledged rows,
// or (full runs) at 20 random shares.
func killShares(t *testing.T) []float64 {
	if !harnessFull() {
		return []float64{0.4}
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	kills := make([]float64, 20)
	for i := range kills {
		kills[i] = 0.05 + 0.9*rng.Float64()
	}
	sort.Float64s(kills)
	t.Logf("kill -9 at shares %.3f of the acknowledged rows (seed %d)", kills, seed)
	return kills
}

// TestHarnessFaultKill9ParquetLocal: the Parquet kill run on the local
// folder. Before each restart a staging file no journal entry names is put
// beside the collector's, as a kill between staging a file's first row
// group and journaling it leaves one (a window random kills rarely hit),
// and one of another instance. The restarted collector removes its own and
// leaves the other's; every acknowledged row is in the files once.
func TestHarnessFaultKill9ParquetLocal(t *testing.T) {
	testutil.CollectorBinary(t)
	size := faultRun(faultSize{requests: 60, rate: 3000, outage: time.Second}, faultSize{requests: 2000, rate: 3000, outage: time.Second})
	dir := t.TempDir()
	collect, health, metricsPort := harnessAddr(t), harnessAddr(t), testutil.FreePort(t)
	cfg := harness.CollectorConfig{CollectAddr: collect, HealthAddr: health, LocalDir: dir,
		QueueDir: filepath.Join(t.TempDir(), "queue"), FlushTimeout: "500ms", MinBatch: 1000, Format: "parquet", MetricsPort: metricsPort,
		ParquetMaxAge: faultParquetMaxAge, InstanceID: "e2e-host"}
	col := testutil.StartCollector(t, cfg.YAML(), collect, health)
	planted := filepath.Join(dir, "modeldata", "planted")
	if err := os.MkdirAll(planted, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(planted, ".tmp-e2e-other-0123456789abcdef.parquet.staging")
	restart := func() {
		own := filepath.Join(planted, fmt.Sprintf(".tmp-e2e-host-%016x.parquet.staging", rand.Uint64()))
		for _, p := range []string{own, other} {
			if err := os.WriteFile(p, []byte("staged before the kill"), 0o644); err != nil {
				t.Error(err)
			}
		}
		col.Restart(collect, health)
	}
	kills := killShares(t)
	m, rep := faultLoad(t, size, "http://"+collect, kills, col.Kill, restart, dirVerifier(dir), drainCollector(t, col, metricsURL(metricsPort)))
	t.Logf("KILL9 parquet local: %d kills, expected %d, found %d, missing %d, duplicated %d, malformed %d",
		len(kills), rep.Expected, rep.Found, rep.Missing, rep.Duplicated, rep.Malformed)
	assertExactlyOnceAcrossKills(t, m, rep)
	var staging []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			staging = append(staging, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(staging, []string{other}) {
		t.Errorf("staging files after the run: %v, want only %s", staging, other)
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
				FlushTimeout: "500ms", MinBatch: 1000, Timeout: "10s", QueueSize: 20, Format: format, ParquetMaxAge: faultParquetMaxAge}
			col := testutil.StartCollector(t, cfg.YAML(), collect, health)
			m, rep := faultLoad(t, size, "http://"+collect, []float64{0.3}, az.Stop, az.Restart, azuriteVerifier(t, az), col.Stop)
			assertZeroLoss(t, m, rep)
		})
	}
}
