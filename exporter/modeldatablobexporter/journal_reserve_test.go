package modeldatablobexporter

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
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

func (d *smallDisk) Set(ctx context.Context, key string, value []byte) error {
	return d.Batch(ctx, storage.SetOperation(key, value))
}

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

// TestQueueWaitsForDiskSpace: the queue's writes that hand out or delete a
// request wait while the disk is full and are made once it has room; its
// new requests fail at once; at shutdown a waiting write gives up unmade.
func TestQueueWaitsForDiskSpace(t *testing.T) {
	defer func(d time.Duration) { stallRetry = d }(stallRetry)
	stallRetry = time.Millisecond
	ctx := context.Background()
	var mu sync.Mutex
	disk := &smallDisk{room: 1000, kv: map[string][]byte{"1": make([]byte, 900)}}
	stalls := 0
	stop := make(chan struct{})
	c := &stallingClient{Client: lockedDisk{disk, &mu}, stop: stop, gate: &queueGate{}, reserve: &queueReserve{}, stalled: func(error) {
		mu.Lock()
		defer mu.Unlock()
		if stalls++; stalls == 3 {
			disk.room = 2000 // space freed by hand
		}
	}}
	if err := c.Set(ctx, "2", make([]byte, 900)); !isDiskFull(err) {
		t.Fatalf("a new request on the full disk: %v, want no space left", err)
	}
	if err := c.Batch(ctx, storage.SetOperation("meta", make([]byte, 200)), storage.GetOperation("1")); err != nil {
		t.Fatalf("hand-out: %v", err)
	}
	if stalls != 3 || disk.kv["meta"] == nil {
		t.Fatalf("the hand-out waited %d times, written %v; want 3 and written", stalls, disk.kv["meta"] != nil)
	}
	disk.room = 0
	close(stop)
	if err := c.Batch(ctx, storage.SetOperation("meta", make([]byte, 300)), storage.DeleteOperation("1")); err != errStallStopped {
		t.Fatalf("at shutdown: %v, want %v", err, errStallStopped)
	}
	if disk.kv["1"] == nil {
		t.Fatal("the request was deleted at shutdown on the full disk")
	}
}

// lockedDisk is a smallDisk shared with the test's callbacks.
type lockedDisk struct {
	*smallDisk
	mu *sync.Mutex
}

func (d lockedDisk) Batch(ctx context.Context, ops ...*storage.Operation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.smallDisk.Batch(ctx, ops...)
}

// TestReserveIsNotText: no byte of the reserve is ASCII and its keys hold no
// digit, so no text searched for in the queue folder (a masked card number,
// a name) turns up in it; the keys sort in the reserve's order.
func TestReserveIsNotText(t *testing.T) {
	disk := &smallDisk{room: 1 << 20, kv: map[string][]byte{}}
	rc := newReservedClient(disk, "append journal", 100*reserveChunk)
	if err := rc.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(disk.kv) != 100 {
		t.Fatalf("%d reserve values stored, want 100", len(disk.kv))
	}
	if !slices.IsSorted(rc.keys) {
		t.Errorf("reserve keys not in order: %v", rc.keys)
	}
	for k, v := range disk.kv {
		if strings.ContainsAny(k, "0123456789") {
			t.Fatalf("reserve key %q holds a digit", k)
		}
		if len(v) != reserveChunk {
			t.Fatalf("%s: %d bytes, want %d", k, len(v), reserveChunk)
		}
		for i, b := range v {
			if b < 0x80 {
				t.Fatalf("%s: byte %d is %#x, an ASCII byte", k, i, b)
			}
		}
	}
}
