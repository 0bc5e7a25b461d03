package modeldatablobexporter

import (
	"context"
	"encoding/csv"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/modeldatablobexporter/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// testRow is one model data record to send.
type testRow struct {
	resource       map[string]string // path-part resource attributes
	model, version string
	designation    string
	correlationID  string
	requestID      string
	ts             time.Time
	features       [][2]any // name, value in declared order
	undeclared     [][2]any // body keys not in feature_names
	noFeatureNames bool
}

var day = time.Date(2018, 12, 31, 23, 59, 59, 123456000, time.UTC)

func makeLogs(rows ...testRow) plog.Logs {
	logs := plog.NewLogs()
	for _, r := range rows {
		rl := logs.ResourceLogs().AppendEmpty()
		for k, v := range r.resource {
			rl.Resource().Attributes().PutStr(k, v)
		}
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		body := contract.Features(lr)
		var names []string
		for _, f := range r.features {
			names = append(names, f[0].(string))
			if err := body.PutEmpty(f[0].(string)).FromRaw(f[1]); err != nil {
				panic(err)
			}
		}
		for _, f := range r.undeclared {
			if err := body.PutEmpty(f[0].(string)).FromRaw(f[1]); err != nil {
				panic(err)
			}
		}
		contract.WriteRow(lr, contract.Row{ModelName: r.model, ModelVersion: r.version, Designation: r.designation,
			CorrelationID: r.correlationID, RequestID: r.requestID, FeatureNames: names, Timestamp: r.ts})
		if r.noFeatureNames {
			lr.Attributes().Remove(contract.AttrFeatureNames)
		}
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	}
	return logs
}

// localConfig is a local-backend config writing under a fresh folder.
func localConfig(t testing.TB) *Config {
	cfg := createDefaultConfig()
	cfg.Local.Directory = t.TempDir()
	return cfg
}

// newTestExporter builds a blobExporter (no exporterhelper) and starts it.
func newTestExporter(t testing.TB, cfg *Config) *blobExporter {
	t.Helper()
	e, _ := newTestExporterTel(t, cfg)
	return e
}

// newTestExporterTel is newTestExporter with telemetry to read back.
func newTestExporterTel(t testing.TB, cfg *Config) (*blobExporter, *componenttest.Telemetry) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tt.NewTelemetrySettings()
	e, err := newExporter(cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.shutdown(context.Background()) })
	return e, tt
}

// counter is the sum of an Int64 counter's data points (0 when never recorded).
func counter(t testing.TB, tt *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	if err != nil {
		return 0
	}
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		n += dp.Value
	}
	return n
}

// startHelperExporter builds the full exporter (queue, retry) from the factory.
func startHelperExporter(t testing.TB, cfg *Config, set exporter.Settings) exporter.Logs {
	t.Helper()
	exp, err := NewFactory().CreateLogs(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	return exp
}

func readLocal(t testing.TB, cfg *Config, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cfg.Local.Directory, cfg.Container, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// localFiles lists every file under the container folder but the staging
// files of open Parquet files.
func localFiles(t testing.TB, cfg *Config) []string {
	t.Helper()
	var files []string
	root := filepath.Join(cfg.Local.Directory, cfg.Container)
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || strings.HasPrefix(fi.Name(), ".tmp-") {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func exportertestSettings() exporter.Settings { return exportertest.NewNopSettings(metadata.Type) }

func parseCSV(t testing.TB, data string) [][]string {
	t.Helper()
	records, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("%v in %q", err, data)
	}
	return records
}

// gaugeValue is the sum of an int64 gauge's points, 0 when not reported.
func gaugeValue(t testing.TB, tt *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	if err != nil {
		return 0
	}
	var n int64
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		n += dp.Value
	}
	return n
}
