package modeldatablobexporter

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestFullDiskNeverHoldsRequests fills the real filesystem of the persistent
// queue (file_storage on a tmpfs of 16 MiB, skipped where it cannot be
// mounted) with 8 senders as fast as they can: the queue's own writes meet
// the full disk and it waits, and no request waits with it: each is taken or
// refused, the refusals retryable. Before the disk was known to be nearly
// full, 1 run in 6 held 6 of the 8 senders on the waiting queue until the
// disk had room. Once the tmpfs is enlarged the queue goes on by itself and
// takes requests again; every acknowledged row lands once. Without the
// queue's reserve file, so that the queue waits.
func TestFullDiskNeverHoldsRequests(t *testing.T) {
	defer func(d time.Duration) { stallRetry = d }(stallRetry)
	stallRetry = 10 * time.Millisecond
	ctx := context.Background()
	dir := testutil.MountTmpfs(t, 16)
	cfg := localConfig(t)
	cfg.QueueDiskReserve = 0 // the queue must wait
	host, stopStorage := testutil.StartFileStorage(t, dir)
	defer stopStorage()
	exp, e, tt := startPersistentExporter(t, cfg, host)
	const bound = 5 * time.Second
	acked, refused, slowest := fillQueueDisk(t, exp, func() bool { waiting, _ := e.gate.watch(); return waiting })
	t.Logf("%d rows acknowledged, %d requests refused, the slowest request took %s", len(acked), refused, slowest)
	if slowest > bound {
		t.Errorf("a request took %s: it waited for the full disk", slowest)
	}
	if got := counter(t, tt, "otelcol_modeldatablob_rows_refused_queue_disk_full"); got == 0 {
		t.Error("no refusal counted while the queue waited")
	}

	// Room again: the queue goes on and takes requests.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatalf("enlarge the tmpfs: %v", err)
	}
	if !testutil.Poll(bound, func() bool { waiting, _ := e.gate.watch(); return !waiting }) {
		t.Fatal("the queue still waits once the disk has room")
	}
	// A write of the queue that still waited when the gate was read may
	// refuse a request once more before it goes through: sent again, as a
	// client does after a retryable refusal (a refused request is not queued).
	if !testutil.Poll(bound, func() bool {
		err := within(t, bound, "a request once the disk has room", func() error {
			return exp.ConsumeLogs(ctx, makeLogs(rowsWithIDs("after")...))
		})
		if err != nil {
			assertDiskFullRefusal(t, "a request once the disk has room", err)
		}
		return err == nil
	}) {
		t.Fatal("no request taken once the disk has room")
	}
	acked = append(acked, "after")
	slices.Sort(acked)
	if !testutil.Poll(60*time.Second, func() bool { return len(requestIDs(t, cfg)) >= len(acked) }) {
		t.Fatalf("%d rows in the file, want the %d acknowledged", len(requestIDs(t, cfg)), len(acked))
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := requestIDs(t, cfg); !slices.Equal(got, acked) {
		t.Fatalf("%d rows in the file, want the %d acknowledged, each once", len(got), len(acked))
	}
}

// fillQueueDisk sends requests of 100 rows from 8 senders as fast as they
// can until full() is seen, and 200 refusals after: the rows acknowledged,
// the requests refused, and the time the slowest request took.
func fillQueueDisk(t *testing.T, exp exporter.Logs, full func() bool) (acked []string, refused int64, slowest time.Duration) {
	t.Helper()
	ctx := context.Background()
	var (
		mu       sync.Mutex
		nRefused atomic.Int64
		slow     atomic.Int64
		closedAt atomic.Int64 // refusals counted when full was first seen
		wg       sync.WaitGroup
	)
	closedAt.Store(-1)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				if at := closedAt.Load(); at >= 0 && nRefused.Load() >= at+200 {
					return
				}
				ids := make([]string, 100)
				for j := range ids {
					ids[j] = fmt.Sprintf("w%d-%05d-%03d", w, i, j)
				}
				start := time.Now()
				err := exp.ConsumeLogs(ctx, makeLogs(rowsWithIDs(ids...)...))
				if took := int64(time.Since(start)); took > slow.Load() {
					slow.Store(took)
				}
				if err != nil {
					if consumererror.IsPermanent(err) {
						t.Errorf("a request on the full disk refused for good: %v", err)
						return
					}
					nRefused.Add(1)
					continue
				}
				mu.Lock()
				acked = append(acked, ids...)
				mu.Unlock()
			}
		})
	}
	if !testutil.Poll(30*time.Second, full) {
		t.Fatal("the queue's disk never filled as the test needs: it shows nothing")
	}
	closedAt.Store(nRefused.Load())
	within(t, 6*time.Second, "a sender", func() struct{} { wg.Wait(); return struct{}{} })
	return acked, nRefused.Load(), time.Duration(slow.Load())
}
