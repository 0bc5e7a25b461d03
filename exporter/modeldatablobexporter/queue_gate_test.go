package modeldatablobexporter

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestStalledQueueRefusesAtOnce runs the factory's exporter on a persistent
// queue whose disk fills (file_storage, its queue file's writes refused with
// ENOSPC on demand): a request the full disk refuses is retryable; while the
// queue's hand-out waits for space, a request already on its way to the
// queue's lock and a new one are refused at once with 503 + Retry-After
// (Unavailable with RetryInfo), counted by rows, and the collector's metrics
// are collected meanwhile; once the disk has room the queue goes on without
// a restart and takes requests again. The file holds exactly the rows
// acknowledged, each once.
func TestStalledQueueRefusesAtOnce(t *testing.T) {
	defer func(d time.Duration) { stallRetry = d }(stallRetry)
	stallRetry = time.Millisecond
	ctx := context.Background()
	cfg := localConfig(t)
	storageHost, stopStorage := testutil.StartFileStorage(t, t.TempDir())
	defer stopStorage()
	disk := &switchedDisk{}
	exp, e, tt := startPersistentExporter(t, cfg, queueDiskHost{storageHost, disk})
	send := func(id string) error { return exp.ConsumeLogs(ctx, makeLogs(rowsWithIDs(id)...)) }
	// A request, or a collection of metrics, must never wait for the disk.
	const bound = 5 * time.Second
	sendBounded := func(id string) (time.Duration, error) {
		start := time.Now()
		err := within(t, bound, "request "+id, func() error { return send(id) })
		return time.Since(start), err
	}
	landed := func(want ...string) {
		t.Helper()
		if !testutil.Poll(20*time.Second, func() bool { return len(localFiles(t, cfg)) == 1 && len(requestIDs(t, cfg)) == len(want) }) {
			t.Fatalf("rows %v did not land", want)
		}
	}

	if err := send("before"); err != nil {
		t.Fatal(err)
	}
	landed("before")

	// The disk fills: a request the queue cannot write is refused, retryable.
	disk.fill(false)
	if err := send("refused-by-disk"); err == nil || consumererror.IsPermanent(err) {
		t.Fatalf("a request on the full disk: %v, want a retryable error", err)
	}
	disk.free()
	// A request takes the last of the disk; the consumer's next hand-out
	// meets the full disk and is held there, holding the queue's lock.
	held := disk.fill(true)
	if err := send("last-fit"); err != nil {
		t.Fatal(err)
	}
	<-held
	// A request passes the gate before the hand-out's wait begins and goes on
	// to the queue's lock.
	entered := make(chan struct{})
	inFlight := make(chan error, 1)
	go func() {
		inFlight <- e.consumeGated(ctx, makeLogs(rowsWithIDs("in-flight")...), func(ctx context.Context, ld plog.Logs) error {
			close(entered)
			return exp.(persistentLogs).Logs.ConsumeLogs(ctx, ld)
		})
	}()
	<-entered
	start := time.Now()
	disk.release() // the hand-out is refused for lack of space: the queue waits
	select {
	case err := <-inFlight:
		assertDiskFullRefusal(t, "the request on its way to the queue's lock", err)
		t.Logf("the request on its way to the queue's lock refused %s after the wait began", time.Since(start))
	case <-time.After(bound):
		t.Fatalf("the request on its way to the queue's lock still waits after %s", bound)
	}
	took, err := sendBounded("while-stalled")
	assertDiskFullRefusal(t, "a request while the queue waits", err)
	t.Logf("a request while the queue waits refused in %s", took)
	refused := within(t, bound, "a collection of metrics while the queue waits", func() int64 {
		return counter(t, tt, "otelcol_modeldatablob_rows_refused_queue_disk_full")
	})
	if refused != 2 {
		t.Errorf("%d rows counted as refused for the full disk, want 2 (in-flight, while-stalled)", refused)
	}

	// Room again: the waiting hand-out goes through and requests are taken.
	disk.free()
	if !testutil.Poll(bound, func() bool { stalled, _ := e.gate.watch(); return !stalled }) {
		t.Fatal("the queue still waits once the disk has room")
	}
	if _, err := tt.GetMetric("otelcol_exporter_queue_size"); err != nil {
		t.Errorf("the queue's size is not collected once the disk has room: %v", err)
	}
	if _, err := sendBounded("after"); err != nil {
		t.Fatalf("a request once the disk has room: %v", err)
	}
	landed("after", "before", "last-fit")
	if counter(t, tt, "otelcol_modeldatablob_queue_disk_full") == 0 {
		t.Error("the queue's wait for disk space is not counted")
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := requestIDs(t, cfg); !slices.Equal(got, []string{"after", "before", "last-fit"}) {
		t.Fatalf("rows %v in the file, want the acknowledged [after before last-fit], each once", got)
	}
}

// startPersistentExporter starts the factory's exporter with a persistent
// queue in the file_storage of host.
func startPersistentExporter(t *testing.T, cfg *Config, host component.Host) (exporter.Logs, *blobExporter, *componenttest.Telemetry) {
	t.Helper()
	ctx := context.Background()
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	q := cfg.QueueConfig.Get()
	q.StorageID = &testutil.FileStorageID
	q.Batch.Get().FlushTimeout = 10 * time.Millisecond
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(ctx) })
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	set.TelemetrySettings = tt.NewTelemetrySettings()
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	exp, err := NewFactory().CreateLogs(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(ctx, host); err != nil {
		t.Fatal(err)
	}
	return exp, exp.(persistentLogs).e, tt
}

// within runs f from a goroutine and fails the test unless it returns
// within bound.
func within[T any](t *testing.T, bound time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(bound):
		t.Fatalf("%s still waits after %s: it waits for the full disk", what, bound)
	}
	var zero T
	return zero
}

// assertDiskFullRefusal: err is the refusal for a full queue disk, which
// receivers answer 503 with Retry-After (10 s).
func assertDiskFullRefusal(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, errQueueDiskFull) || consumererror.IsPermanent(err) {
		t.Fatalf("%s: %v, want the retryable refusal for a full queue disk", what, err)
	}
	st, _ := grpcstatus.FromError(err)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() == diskFullRetryAfter {
			return
		}
	}
	t.Fatalf("%s: status %v carries no retry delay of %s", what, st, diskFullRetryAfter)
}

// switchedDisk is the disk of the queue's file (not the journal's): while
// full, its writes fail with ENOSPC, as bbolt's do when the file needs a
// page more. Filled after the next request, the first drain write (one that
// reads or deletes) on the full disk is held until released.
type switchedDisk struct {
	mu        sync.Mutex
	full      bool
	fillAfter bool          // the next request the queue writes fills the disk
	held      chan struct{} // closed when the held write arrives
	released  chan struct{}
}

// fill fills the disk now, or with the next request the queue writes and
// returns a channel closed once a drain write is held.
func (d *switchedDisk) fill(afterNext bool) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full, d.fillAfter = !afterNext, afterNext
	if afterNext {
		d.held, d.released = make(chan struct{}), make(chan struct{})
	}
	return d.held
}

func (d *switchedDisk) release() { close(d.released) }

func (d *switchedDisk) free() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.full = false
}

// refuses tells whether the disk refuses ops, holding the first drain write.
func (d *switchedDisk) refuses(ops []*storage.Operation) bool {
	d.mu.Lock()
	full, held := d.full, d.held
	hold := full && held != nil && drains(ops)
	if hold {
		d.held = nil
	}
	d.mu.Unlock()
	if hold {
		close(held)
		<-d.released
	}
	return full && slices.ContainsFunc(ops, func(op *storage.Operation) bool { return op.Type != storage.Get })
}

// wrote fills the disk after a request when asked to.
func (d *switchedDisk) wrote(ops []*storage.Operation) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fillAfter && !drains(ops) {
		d.full, d.fillAfter = true, false
	}
}

type queueDiskHost struct {
	testutil.StorageHost
	d *switchedDisk
}

func (h queueDiskHost) GetExtensions() map[component.ID]component.Component {
	ext := h.StorageHost.GetExtensions()[testutil.FileStorageID].(storage.Extension)
	return map[component.ID]component.Component{testutil.FileStorageID: queueDiskStorage{ext, h.d}}
}

type queueDiskStorage struct {
	storage.Extension
	d *switchedDisk
}

func (s queueDiskStorage) GetClient(ctx context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	c, err := s.Extension.GetClient(ctx, kind, id, name)
	if err != nil || name == journalName {
		return c, err
	}
	return switchedClient{c, s.d}, nil
}

type switchedClient struct {
	storage.Client
	d *switchedDisk
}

func (c switchedClient) Set(ctx context.Context, key string, value []byte) error {
	return c.Batch(ctx, storage.SetOperation(key, value))
}

func (c switchedClient) Delete(ctx context.Context, key string) error {
	return c.Batch(ctx, storage.DeleteOperation(key))
}

func (c switchedClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	if c.d.refuses(ops) {
		return &os.PathError{Op: "write", Path: "exporter_modeldatablob__logs", Err: syscall.ENOSPC}
	}
	err := c.Client.Batch(ctx, ops...)
	if err == nil {
		c.d.wrote(ops)
	}
	return err
}
