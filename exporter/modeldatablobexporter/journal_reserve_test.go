package modeldatablobexporter

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"

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
		{name: "with the reserve", reserve: diskReserve, drains: true},
		{name: "without a reserve", reserve: 0, drains: false},
	}
	defaultReserve := diskReserve
	t.Cleanup(func() { diskReserve = defaultReserve })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			diskReserve = tc.reserve
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
			refused := counter(t, tt, "otelcol_modeldatablob_queue_disk_full")
			t.Logf("%d rows written on the full disk, %d journal writes refused for lack of space, push error: %v", len(want)-1, refused, failed)
			if refused == 0 {
				t.Fatal("no journal write met the full disk: the test did not fill it")
			}
			slices.Sort(want)
			if got := requestIDs(t, cfg); !slices.Equal(got, want) {
				t.Fatalf("%d rows in the file, want the %d acknowledged ones, each once", len(got), len(want))
			}
			rc := e.w.j.client.(*reservedClient)
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
			if got := rc.reserveHeld(); got < int64(diskReserve) {
				t.Errorf("reserve %d bytes once the disk has room, want %d", got, diskReserve)
			}
		})
	}
}

// smallDisk is a storage client on a disk of room bytes: a transaction that
// needs more than is free fails whole with ENOSPC, as bbolt's does; deleted
// values free their bytes for the next transactions.
type smallDisk struct {
	storage.Client
	room int
	kv   map[string][]byte
}

func (d *smallDisk) used() int {
	n := 0
	for _, v := range d.kv {
		n += len(v)
	}
	return n
}

func (d *smallDisk) Get(_ context.Context, key string) ([]byte, error) { return d.kv[key], nil }

func (d *smallDisk) Batch(_ context.Context, ops ...*storage.Operation) error {
	grow := 0
	for _, op := range ops {
		if op.Type == storage.Set {
			grow += len(op.Value) - len(d.kv[op.Key])
		}
	}
	if grow > 0 && d.used()+grow > d.room {
		return &os.PathError{Op: "write", Path: "exporter_modeldatablob__appends", Err: syscall.ENOSPC}
	}
	for _, op := range ops {
		switch op.Type {
		case storage.Set:
			d.kv[op.Key] = op.Value
		case storage.Delete:
			delete(d.kv, op.Key)
		}
	}
	return nil
}

// TestReservedClientStates follows the reserve through a disk that fills,
// takes writes in the reserve's space, runs out and has room again.
func TestReservedClientStates(t *testing.T) {
	const reserve = 10 * reserveChunk
	disk := &smallDisk{room: reserve + 1000, kv: map[string][]byte{}}
	rc := newReservedClient(disk, "append journal", reserve)
	var states []diskState
	refused := 0
	rc.changed = func(_ *reservedClient, s diskState, _ error) { states = append(states, s) }
	rc.refused = func() { refused++ }
	ctx := context.Background()
	if err := rc.start(ctx); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		room      int  // the disk's size before the step
		dueRetry  bool // the reserve's next try is due
		write     int  // bytes set under a new key
		wantErr   bool
		wantState diskState
		wantHeld  bool
	}{
		{name: "room", write: 900, wantState: diskRoom, wantHeld: true},
		{name: "disk full: the reserve is released, the write goes through", write: 900, wantState: diskOnSpare},
		{name: "writes go on in its space", write: reserve / 2, wantState: diskOnSpare},
		{name: "the reserve's space is spent", write: reserve, wantErr: true, wantState: diskStuck},
		{name: "a write that fits again", write: 10, wantState: diskOnSpare},
		{name: "room again, but the retry is not due", room: 10 * reserve, write: 10, wantState: diskOnSpare},
		{name: "room again, the reserve is written back", room: 10 * reserve, dueRetry: true, write: 10, wantState: diskRoom, wantHeld: true},
	}
	for i, st := range steps {
		if st.room > 0 {
			disk.room = st.room
		}
		if st.dueRetry {
			rc.retryAt = time.Time{}
		}
		err := rc.Set(ctx, fmt.Sprintf("i/%d", i), make([]byte, st.write))
		if (err != nil) != st.wantErr || (err != nil && !isDiskFull(err)) {
			t.Fatalf("%s: error %v, want error %v", st.name, err, st.wantErr)
		}
		if rc.state != st.wantState || (rc.reserveHeld() > 0) != st.wantHeld {
			t.Fatalf("%s: state %d, reserve %d bytes; want state %d, held %v", st.name, rc.state, rc.reserveHeld(), st.wantState, st.wantHeld)
		}
		if err == nil && disk.kv[fmt.Sprintf("i/%d", i)] == nil {
			t.Fatalf("%s: the write is not in storage", st.name)
		}
	}
	if want := []diskState{diskOnSpare, diskStuck, diskOnSpare, diskRoom}; !slices.Equal(states, want) {
		t.Errorf("states told %v, want %v", states, want)
	}
	if refused != 2 {
		t.Errorf("%d writes counted as refused for lack of space, want 2", refused)
	}
}
