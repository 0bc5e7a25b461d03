package modeldatablobexporter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// failingStore fails every append of rows with a retryable error.
type failingStore struct{ *localStore }

func (s failingStore) appendAt(ctx context.Context, name string, pos int64, data []byte) error {
	if pos == 0 {
		return s.localStore.appendAt(ctx, name, pos, data)
	}
	return errors.New("HTTP 503 ServerBusy")
}

// TestDefaultRetryKeepsRowsUntilStorageIsBack: by default a failing batch
// is handed back for retry however long the failure lasts; rows are dropped
// (and counted) only with a max_elapsed_time that has passed, or with
// retry_on_failure disabled.
func TestDefaultRetryKeepsRowsUntilStorageIsBack(t *testing.T) {
	rows := []testRow{
		{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}}},
		{model: "m", version: "1", ts: day, features: [][2]any{{"a", 2}}},
	}
	tests := []struct {
		name        string
		modify      func(*Config)
		failedFor   time.Duration
		wantDropped int64
	}{
		{name: "default, failing for a day", failedFor: 24 * time.Hour},
		{name: "max_elapsed_time not reached", modify: func(c *Config) { c.RetryConfig.MaxElapsedTime = time.Hour }, failedFor: time.Minute},
		{name: "max_elapsed_time passed", modify: func(c *Config) { c.RetryConfig.MaxElapsedTime = time.Hour }, failedFor: 2 * time.Hour, wantDropped: 2},
		{name: "retry disabled", modify: func(c *Config) { c.RetryConfig.Enabled = false }, wantDropped: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := localConfig(t)
			if tc.modify != nil {
				tc.modify(cfg)
			}
			e, tt := newTestExporterTel(t, cfg)
			e.store = failingStore{e.store.(*localStore)}
			e.w = newWriter(e.store, cfg, e.tel)

			err := e.push(context.Background(), makeLogs(rows...))
			var failed consumererror.Logs
			if cfg.RetryConfig.Enabled {
				if !errors.As(err, &failed) || consumererror.IsPermanent(err) {
					t.Fatalf("first push: want a retryable error with the rows, got %v", err)
				}
				e.failing[failed.Data()].firstFailure = time.Now().Add(-tc.failedFor) // the batch has been failing that long
				err = e.push(context.Background(), failed.Data())
			}
			if got := counter(t, tt, "otelcol_modeldatablob_rows_dropped"); got != tc.wantDropped {
				t.Errorf("rows_dropped %d, want %d", got, tc.wantDropped)
			}
			if tc.wantDropped > 0 {
				if !consumererror.IsPermanent(err) {
					t.Errorf("want a permanent error once the rows are dropped, got %v", err)
				}
				return
			}
			if !errors.As(err, &failed) || consumererror.IsPermanent(err) || failed.Data().LogRecordCount() != len(rows) {
				t.Errorf("want every row handed back for retry, got %v", err)
			}
		})
	}
}

// TestDefaultRetryConfig: retry forever, with the interval capped so the
// queue drains within seconds of storage returning.
func TestDefaultRetryConfig(t *testing.T) {
	r := createDefaultConfig().RetryConfig
	if !r.Enabled || r.MaxElapsedTime != 0 || r.MaxInterval != 2*time.Second || r.InitialInterval != time.Second {
		t.Fatalf("default retry_on_failure: %+v", r)
	}
	if got := helperRetryConfig(func() Config { c := *createDefaultConfig(); c.RetryConfig.MaxElapsedTime = time.Hour; return c }().RetryConfig); got.MaxElapsedTime != 0 {
		t.Fatalf("the exporterhelper must not drop on its own: %+v", got)
	}
}

// TestDeletedFileIsWrittenAgain: a file (or its folder) deleted while the
// collector runs is created again, header first, instead of failing forever.
func TestDeletedFileIsWrittenAgain(t *testing.T) {
	cfg := localConfig(t)
	e := newTestExporter(t, cfg)
	push(t, e, testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}}})
	if err := os.RemoveAll(filepath.Join(cfg.Local.Directory, cfg.Container)); err != nil {
		t.Fatal(err)
	}
	push(t, e, testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 2}}})
	got := readLocal(t, cfg, "00000000-0000-0000-0000-000000000000/local/local/local/m/1/general/2018/12/31/data.csv")
	if records := parseCSV(t, got); len(records) != 2 || records[0][0] != "a" || records[1][0] != "2" {
		t.Fatalf("want the header and the second row, got %q", got)
	}
}

// TestAzuriteDeletedContainerIsCreatedAgain: with create_container, a
// container deleted under a running collector is created again and the
// next rows land in it.
func TestAzuriteDeletedContainerIsCreatedAgain(t *testing.T) {
	az := testutil.StartAzurite(t)
	e := newTestExporter(t, azuriteConfig(az))
	push(t, e, testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}}})
	if _, err := containerClient(t, az, "modeldata").Delete(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	row := testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 2}}}
	var err error
	// Azurite may still be deleting the container: 409 ContainerBeingDeleted is retried like any conflict.
	if !testutil.Poll(30*time.Second, func() bool { err = e.push(context.Background(), makeLogs(row)); return err == nil }) {
		t.Fatalf("push after the container was deleted: %v", err)
	}
	blobs := readBlobs(t, az, "modeldata")
	if len(blobs) != 1 {
		t.Fatalf("blobs: %q", blobs)
	}
	for _, data := range blobs {
		assertRowsOnce(t, data, 1)
	}
}

// TestAzuriteRefusedCredentialKeepsRows: a refused credential (403) is not
// a reason to drop rows: they are handed back for retry, and the error log
// says what to fix.
func TestAzuriteRefusedCredentialKeepsRows(t *testing.T) {
	az := testutil.StartAzurite(t)
	cfg := azuriteConfig(az)
	e := newTestExporter(t, cfg) // container created with the right key
	core, logs := observer.New(zap.ErrorLevel)
	e.logger = zap.New(core)
	bad := *cfg
	bad.AzBlob.ConnectionString = configopaque.String("DefaultEndpointsProtocol=http;AccountName=" + testutil.AzuriteAccount +
		";AccountKey=" + strings.Repeat("A", 86) + "==;BlobEndpoint=" + az.Endpoint() + ";")
	st, err := newAzBlobStore(&bad, e.logger)
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	e.w = newWriter(st, &bad, e.tel)
	for i := 0; i < 2; i++ {
		err = e.push(context.Background(), makeLogs(testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}}}))
		var failed consumererror.Logs
		if !errors.As(err, &failed) || consumererror.IsPermanent(err) || failed.Data().LogRecordCount() != 1 {
			t.Fatalf("push with a refused credential: want the row handed back for retry, got %v", err)
		}
	}
	entries := logs.FilterMessageSnippet("rows stay queued").All()
	if len(entries) != 1 || !strings.Contains(entries[0].ContextMap()["hint"].(string), "credential is refused") {
		t.Fatalf("want one error log with the hint (the second is held back), got %v", logs.All())
	}
}
