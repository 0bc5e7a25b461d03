package modeldatablobexporter

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestFileStatesAreBounded: with max_open_files 2, writing to five files
// keeps two states; a forgotten file is found again and appended to, its
// header still written once.
func TestFileStatesAreBounded(t *testing.T) {
	cfg := localConfig(t)
	cfg.MaxOpenFiles = 2
	e := newTestExporter(t, cfg)
	for round := 0; round < 2; round++ {
		for m := 0; m < 5; m++ {
			push(t, e, testRow{model: fmt.Sprint("m", m), version: "1", ts: day, features: [][2]any{{"a", round}}})
		}
	}
	if n := e.w.lru.Len(); n != 2 {
		t.Errorf("file states kept: %d, want 2", n)
	}
	for m := 0; m < 5; m++ {
		got := readLocal(t, cfg, fmt.Sprintf("00000000-0000-0000-0000-000000000000/local/local/local/m%d/1/general/2018/12/31/data.csv", m))
		if records := parseCSV(t, got); len(records) != 3 || strings.Count(got, "$aml_request_id") != 1 {
			t.Errorf("m%d: want one header and two rows, got %q", m, got)
		}
	}
}

func TestValidateMaxOpenFiles(t *testing.T) {
	cfg := createDefaultConfig()
	if cfg.MaxOpenFiles != 1000 {
		t.Fatalf("default max_open_files %d", cfg.MaxOpenFiles)
	}
	cfg.MaxOpenFiles = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max_open_files 0") {
		t.Fatalf("got %v", err)
	}
}

// nullStore accepts every call and keeps nothing: the writer's own memory is measured.
type nullStore struct{}

func (nullStore) start(context.Context) error                           { return nil }
func (nullStore) props(context.Context, string) (fileProps, error)      { return fileProps{}, nil }
func (nullStore) create(context.Context, string) error                  { return nil }
func (nullStore) appendAt(context.Context, string, int64, []byte) error { return nil }
func (nullStore) appendAny(context.Context, string, []byte) (appended, error) {
	return appended{}, nil
}
func (nullStore) readAt(context.Context, string, int64, int64) ([]byte, error) {
	return nil, nil
}

// BenchmarkDistinctModels writes one row for each of N distinct models
// (N files) and reports the heap afterwards: flat with the LRU
// (max_open_files 1000), growing with N when the cap is as large as N.
func BenchmarkDistinctModels(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, cap := range []struct {
			name string
			max  int
		}{{"max_open_files=1000", 1000}, {"unbounded", n}} {
			b.Run(fmt.Sprintf("models=%d/%s", n, cap.name), func(b *testing.B) {
				cfg := createDefaultConfig()
				cfg.MaxOpenFiles = cap.max
				tel, err := newTelemetry(componenttest.NewNopTelemetrySettings())
				if err != nil {
					b.Fatal(err)
				}
				enc := newEncoder(cfg)
				var heap float64
				for i := 0; i < b.N; i++ {
					w := newWriter(nullStore{}, cfg, tel)
					for m := 0; m < n; m++ {
						for _, fb := range enc.encode(makeLogs(testRow{model: fmt.Sprint("model-", m), version: "1", ts: day, features: [][2]any{{"a", m}}})).batches {
							if _, err := w.write(context.Background(), fb, &pushLog{}); err != nil {
								b.Fatal(err)
							}
						}
					}
					runtime.GC()
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					heap = float64(ms.HeapAlloc) / (1 << 20)
					runtime.KeepAlive(w)
				}
				b.ReportMetric(heap, "heap-MiB")
			})
		}
	}
}

// BenchmarkAppendJournal is what the append journal adds to one append of
// 5,000 rows (the default min_size) with a file_storage queue: the intent
// written before the append and deleted when the batch retires.
func BenchmarkAppendJournal(b *testing.B) {
	host, stop := testutil.StartFileStorage(b, b.TempDir())
	defer stop()
	client, err := host.GetExtensions()[testutil.FileStorageID].(storage.Extension).GetClient(context.Background(), component.KindExporter, component.NewID(metadata.Type), journalName)
	if err != nil {
		b.Fatal(err)
	}
	j := newJournal(client)
	lines := make([]int, 5000)
	for i := range lines {
		lines[i] = 250
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pl := &pushLog{}
		if err := j.record(context.Background(), &intent{blob: "m/1/inputs/2026/11/29/data.csv", pos: int64(i), lines: lines}, pl); err != nil {
			b.Fatal(err)
		}
		if err := j.commit(context.Background(), []*pushLog{pl}); err != nil {
			b.Fatal(err)
		}
	}
}
