package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestHarnessFaultQueueDiskFull is a storage outage under load that fills
// the disk of the persistent queue (file_storage on a tmpfs of 48 MiB, of
// which the queue's reserve file takes 16 MiB; the test is skipped where it
// cannot be mounted): the receiver refuses with 503 once no request fits,
// and when storage returns the queue drains with the disk still full: the
// append journal writes in the pages of its reserve, and a hand-out or
// deletion of the queue refused for lack of space deletes the reserve file.
// Nothing else frees disk space during the run. Every acknowledged row is
// written once.
//
// Full runs only (make faults): it fills a disk at 5,000 rows/s.
func TestHarnessFaultQueueDiskFull(t *testing.T) {
	if !harnessFull() {
		t.Skipf("full runs only (%s=1, make faults): it fills a disk under load", harnessEnv)
	}
	testutil.CollectorBinary(t)
	disk := testutil.MountTmpfs(t, 48)
	size := faultSize{requests: 1500, rate: 5000, outage: 5 * time.Second}
	az := testutil.StartAzurite(t)
	collect, health, metricsPort := harnessAddr(t), harnessAddr(t), testutil.FreePort(t)
	// A queue counted in requests that holds more than the disk: the disk fills first.
	cfg := harness.CollectorConfig{CollectAddr: collect, HealthAddr: health, ConnectionString: az.ConnectionString(),
		QueueDir: filepath.Join(disk, "queue"), QueueSize: 20000, FlushTimeout: "500ms", MinBatch: 1000, Timeout: "10s", MetricsPort: metricsPort}
	col := testutil.StartCollector(t, cfg.YAML(), collect, health)
	metrics := metricsURL(metricsPort)
	var freeAtHeal int64
	// The outage lasts until the disk is full, and size.outage after.
	stop := func() {
		az.Stop()
		var free int64
		if !testutil.Poll(3*time.Minute, func() bool {
			free, _ = testutil.DiskFree(disk)
			return free < 1<<20
		}) {
			t.Fatalf("the queue's disk never filled: %d bytes free", free)
		}
		t.Logf("queue disk full: %d bytes free", free)
	}
	restart := func() {
		freeAtHeal, _ = testutil.DiskFree(disk)
		logDiskUse(t, filepath.Join(disk, "queue"))
		az.Restart()
	}
	var refused, freeAtEnd float64
	drain := func() {
		refused, _ = harness.MetricSum(context.Background(), metrics, "otelcol_modeldatablob_queue_disk_full")
		reserve, err := harness.MetricSum(context.Background(), metrics, "otelcol_modeldatablob_queue_disk_reserve")
		t.Logf("otelcol_modeldatablob_queue_disk_reserve = %.0f (%v)", reserve, err)
		stalledRefusals, err := harness.MetricSum(context.Background(), metrics, "otelcol_modeldatablob_rows_refused_queue_disk_full")
		t.Logf("otelcol_modeldatablob_rows_refused_queue_disk_full = %.0f (%v): rows refused while the queue waited for disk space", stalledRefusals, err)
		drainCollector(t, col, metrics)()
		free, _ := testutil.DiskFree(disk)
		freeAtEnd = float64(free)
	}
	m, rep, d := faultLoadDrain(t, size, "http://"+collect, []float64{0.05}, stop, restart, azuriteVerifier(t, az), drain, true)
	assertZeroLoss(t, m, rep)
	t.Logf("QUEUE-DISK-FULL: %d bytes free when storage returned, %.0f at the end; queued rows drained %.1f s after storage returned, every row %.1f s; drain writes refused for lack of space %.0f",
		freeAtHeal, freeAtEnd, d.queued.Seconds(), d.all.Seconds(), refused)
	if d.queued < 0 {
		t.Error("the rows queued on the full disk did not drain")
	}
	if refused == 0 {
		t.Error("no drain write met the full disk: the run shows nothing")
	}
	for _, line := range strings.Split(col.Output(), "\n") {
		if strings.Contains(line, "modeldatablob") && (strings.Contains(line, "\terror\t") || strings.Contains(line, "\twarn\t")) &&
			!strings.Contains(line, "Rejecting data") && !strings.Contains(line, "Exporting failed") {
			t.Log(line[:min(len(line), 400)])
		}
	}
	t.Logf("queue's reserve file deleted on the full disk: %v", strings.Contains(col.Output(), "queue_disk_reserve file is deleted"))
	if out := col.Output(); !strings.Contains(out, "The disk of the persistent queue") {
		t.Errorf("no error log said the queue's disk is full:\n%s", out[max(0, len(out)-4000):])
	}
}

// logDiskUse logs the disk each file of the queue's folder takes.
func logDiskUse(t *testing.T, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Log(err)
		return
	}
	for _, e := range entries {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, e.Name()), &st); err == nil {
			t.Logf("queue folder: %s %.1f MiB on disk (size %.1f MiB)", e.Name(), float64(st.Blocks*512)/(1<<20), float64(st.Size)/(1<<20))
		}
	}
}
