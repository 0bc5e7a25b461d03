package modeldatablobexporter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestJournalWritesOnAFullDisk fills the filesystem of the persistent
// queue's storage (a tmpfs, skipped where it cannot be mounted) and pushes
// batches of 1,000 rows: the journal must record each append's intent before
// it, and with its reserve it does, in the pages the reserve leaves in its
// own file. Without a reserve the first batch the journal needs a new page
// for is refused, as it was before the reserve. Every row the pushes
// acknowledged is in the file once; once the disk has room again the reserve
// is written back.
func TestJournalWritesOnAFullDisk(t *testing.T) {
	tests := []struct {
		name    string
		reserve int
		drains  bool
	}{
		{name: "with the reserve", reserve: journalReserve, drains: true},
		{name: "without a reserve", reserve: 0, drains: false},
	}
	defaultReserve := journalReserve
	t.Cleanup(func() { journalReserve = defaultReserve })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			journalReserve = tc.reserve
			queueDir := testutil.MountTmpfs(t, 16)
			cfg := localConfig(t)
			e, tt, stop := journaledExporter(t, cfg, queueDir)
			defer stop()
			ctx := context.Background()
			want := []string{"before"}
			push(t, e, rowsWithIDs(want...)...)
			free := testutil.FillDisk(t, queueDir)
			var failed error
			for b := 0; b < 20 && failed == nil; b++ {
				ids := make([]string, 1000)
				for i := range ids {
					ids[i] = fmt.Sprintf("b%02d-%04d", b, i)
				}
				if failed = e.push(ctx, makeLogs(rowsWithIDs(ids...)...)); failed == nil {
					want = append(want, ids...)
				}
			}
			refused := counter(t, tt, "otelcol_modeldatablob_journal_disk_full")
			t.Logf("%d rows written on the full disk, %d journal writes refused for lack of space, push error: %v", len(want)-1, refused, failed)
			if refused == 0 {
				t.Fatal("no journal write met the full disk: the test did not fill it")
			}
			slices.Sort(want)
			if got := requestIDs(t, cfg); !slices.Equal(got, want) {
				t.Fatalf("%d rows in the file, want the %d acknowledged ones, each once", len(got), len(want))
			}
			rc := e.tel.reserve.Load()
			if !tc.drains {
				if failed == nil || !isDiskFull(failed) || !strings.Contains(failed.Error(), "record the append") {
					t.Fatalf("without a reserve the journal wrote on the full disk (push error %v): the test shows nothing", failed)
				}
				return
			}
			if failed != nil {
				t.Fatalf("push on the full disk: %v", failed)
			}
			if rc.reserveHeld() != 0 {
				t.Fatal("the reserve is still held after the disk filled")
			}

			free()
			rc.mu.Lock()
			rc.retryAt = time.Time{} // the reserve's next try is due
			rc.mu.Unlock()
			push(t, e, rowsWithIDs("after")...)
			if got := rc.reserveHeld(); got < int64(journalReserve) {
				t.Errorf("reserve %d bytes once the disk has room, want %d", got, journalReserve)
			}
		})
	}
}
