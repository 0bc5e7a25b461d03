package modeldatablobexporter

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

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

// TestQueueReserveStart follows the reserve file at start: written whole
// with real blocks, kept when a previous run left it whole, written again
// when not, removed when turned off, left unwritten (no error) on a full
// disk, and an error for a folder it cannot write in.
func TestQueueReserveStart(t *testing.T) {
	const size = 2 << 20
	logger := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	blocks := func(path string) int64 {
		var st syscall.Stat_t
		if syscall.Stat(path, &st) != nil {
			return -1
		}
		return st.Blocks * 512
	}
	tests := []struct {
		name    string
		size    int64
		dir     func(t *testing.T) string
		before  func(t *testing.T, path string)
		held    bool
		blocks  int64 // of the file after start; -1: none
		wantErr bool
	}{
		{name: "new", size: size, dir: func(t *testing.T) string { return t.TempDir() }, held: true, blocks: size},
		{name: "left whole", size: size, dir: func(t *testing.T) string { return t.TempDir() }, held: true, blocks: size,
			before: func(t *testing.T, path string) {
				if err := os.WriteFile(path, reserveBytes(size), 0o600); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "left short", size: size, dir: func(t *testing.T) string { return t.TempDir() }, held: true, blocks: size,
			before: func(t *testing.T, path string) {
				if err := os.WriteFile(path, reserveBytes(size/3), 0o600); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "turned off", size: 0, dir: func(t *testing.T) string { return t.TempDir() }, blocks: -1,
			before: func(t *testing.T, path string) {
				if err := os.WriteFile(path, reserveBytes(size), 0o600); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "full disk", size: size, dir: func(t *testing.T) string { return testutil.MountTmpfs(t, 1) }, blocks: -1},
		{name: "no folder", size: size, dir: func(t *testing.T) string { return filepath.Join(t.TempDir(), "gone") }, blocks: -1, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			path := filepath.Join(dir, "q.reserve")
			if tc.before != nil {
				tc.before(t, path)
			}
			r := &queueReserve{size: tc.size, logger: logger}
			err := r.start(dir, "q")
			if (err != nil) != tc.wantErr {
				t.Fatalf("start: %v, want an error: %v", err, tc.wantErr)
			}
			if r.held.Load() != tc.held {
				t.Errorf("held %v, want %v", r.held.Load(), tc.held)
			}
			if got := blocks(path); got != tc.blocks && !(tc.blocks > 0 && got >= tc.blocks) {
				t.Errorf("the file holds %d bytes of blocks, want %d", got, tc.blocks)
			}
			if tc.name == "full disk" && (!r.spent() || r.refill()) {
				t.Error("a reserve that did not fit is not spent, or was written back on the full disk")
			}
		})
	}
}
