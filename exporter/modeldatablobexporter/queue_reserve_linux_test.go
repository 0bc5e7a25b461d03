package modeldatablobexporter

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestQueueReserveFileDrainsAFullDisk fills the real filesystem of the
// persistent queue (file_storage on a tmpfs of 24 MiB, skipped where it
// cannot be mounted) with 8 senders as fast as they can, until the queue's
// own writes meet the full disk. With an 8 MiB reserve file the first such
// write deletes it and the queue drains with nothing freed by anyone: every
// acknowledged row lands once, and new requests are taken again. Without
// one the queue waits and nothing drains until the tmpfs is enlarged.
func TestQueueReserveFileDrainsAFullDisk(t *testing.T) {
	defer func(d time.Duration) { stallRetry = d }(stallRetry)
	stallRetry = 10 * time.Millisecond
	const reserve = 8 << 20
	for _, tc := range []struct {
		name    string
		reserve int64
	}{
		{name: "with the reserve file", reserve: reserve},
		{name: "without a reserve file", reserve: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := testutil.MountTmpfs(t, 24)
			cfg := localConfig(t)
			cfg.QueueDiskReserve = tc.reserve
			host, stopStorage := testutil.StartFileStorage(t, dir)
			defer stopStorage()
			exp, e, tt := startPersistentExporter(t, cfg, host)
			file := filepath.Join(dir, "exporter_modeldatablob__logs.reserve")
			gauge := func() int64 { return gaugeValue(t, tt, "otelcol_modeldatablob_queue_disk_reserve") }
			if held := e.reserve.reserveHeld(); held != tc.reserve {
				t.Fatalf("reserve file holds %d bytes at start, want %d", held, tc.reserve)
			}
			if tc.reserve > 0 {
				var st syscall.Stat_t
				if err := syscall.Stat(file, &st); err != nil || st.Blocks*512 < tc.reserve {
					t.Fatalf("reserve file at start: %d bytes of blocks (%v), want %d", st.Blocks*512, err, tc.reserve)
				}
				if got := gauge(); got < tc.reserve {
					t.Errorf("otelcol_modeldatablob_queue_disk_reserve %d at start, want at least %d", got, tc.reserve)
				}
			}
			full := func() bool { waiting, _ := e.gate.watch(); return waiting }
			if tc.reserve > 0 {
				full = func() bool { return !e.reserve.held.Load() }
			}
			acked, refused, _ := fillQueueDisk(t, exp, full)
			free, _ := testutil.DiskFree(dir)
			t.Logf("%d rows acknowledged, %d requests refused; %d bytes free once the senders stopped", len(acked), refused, free)
			landed := func() bool { return len(requestIDs(t, cfg)) >= len(acked) }

			if tc.reserve == 0 {
				if testutil.Poll(3*time.Second, landed) {
					t.Fatal("the queue drained on the full disk without a reserve: the test shows nothing")
				}
				if !full() {
					t.Fatal("the queue does not wait on the full disk without a reserve")
				}
				t.Logf("without a reserve: %d of %d acknowledged rows landed, the queue waits", len(requestIDs(t, cfg)), len(acked))
				if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
					t.Fatalf("enlarge the tmpfs: %v", err)
				}
			} else if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Fatalf("the reserve file is still there after the disk filled (%v)", err)
			}
			start := time.Now()
			if !testutil.Poll(60*time.Second, landed) {
				t.Fatalf("%d rows in the file, want the %d acknowledged", len(requestIDs(t, cfg)), len(acked))
			}
			t.Logf("the queue drained %s after the senders stopped", time.Since(start).Round(time.Millisecond))
			if full() && tc.reserve == 0 {
				t.Error("the queue still waits once the disk has room")
			}
			// Drained, the queue takes requests again.
			if err := within(t, 5*time.Second, "a request after the drain", func() error {
				return exp.ConsumeLogs(ctx, makeLogs(rowsWithIDs("after")...))
			}); err != nil {
				t.Fatalf("a request after the drain: %v", err)
			}
			acked = append(acked, "after")
			if tc.reserve > 0 {
				if e.reserve.refill() {
					t.Fatal("the reserve was written back on a disk without room for it")
				}
				if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
					t.Fatalf("enlarge the tmpfs: %v", err)
				}
				if !e.reserve.refill() || gauge() < tc.reserve {
					t.Fatalf("the reserve was not written back once the disk had room (gauge %d)", gauge())
				}
			}
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
		})
	}
}
