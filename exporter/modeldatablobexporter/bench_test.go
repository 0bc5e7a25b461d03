package modeldatablobexporter

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
	"github.com/otelcol-modeldata/otelcol-modeldata/processor/featureflattener"
)

// benchRows are n rows of 10 features (doubles, ints, strings), as a
// scoring service would send them, widened with doubles to width features.
func benchRows(n, width int) []testRow {
	rows := make([]testRow, n)
	for i := range rows {
		rows[i] = testRow{model: "higgsxgboost", version: "7", designation: "inputs", ts: day,
			correlationID: fmt.Sprintf("edea20ef-5f7e-43df-a9c8-%012d", i), requestID: fmt.Sprintf("ae249167-ab81-46d2-9553-%012d", i),
			features: [][2]any{{"f0", 1.1386826 + float64(i)}, {"f1", -0.47382187}, {"f2", int64(i)}, {"f3", "Redmond, WA"},
				{"f4", 0.000123}, {"f5", true}, {"f6", int64(42)}, {"f7", "category-" + strconv.Itoa(i%17)}, {"f8", 3.5e7}, {"f9", ""}}}
		for f := 10; f < width; f++ {
			rows[i].features = append(rows[i].features, [2]any{"f" + strconv.Itoa(f), float64(i) / float64(f)})
		}
	}
	return rows
}

// BenchmarkAzuriteAppend pushes batches of 10-feature rows into Azurite
// (one append per push): rows/s, MiB/s and appends/s of the real path.
func BenchmarkAzuriteAppend(b *testing.B) {
	az := testutil.StartAzurite(b)
	for _, batch := range []int{500, 5000, 15000} {
		b.Run(fmt.Sprintf("rows_per_push=%d", batch), func(b *testing.B) {
			cfg := azuriteConfig(az)
			cfg.Container = fmt.Sprintf("bench%d", batch)
			e := newTestExporter(b, cfg)
			ld := makeLogs(benchRows(batch, 10)...)
			var size int
			for _, fb := range newEncoder(cfg).encode(ld).batches {
				size += fb.body.Len()
			}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := e.push(context.Background(), ld); err != nil {
					b.Fatal(err)
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*batch)/s, "rows/s")
			b.ReportMetric(float64(b.N)/s, "appends/s")
			b.ReportMetric(float64(size)/(1<<20), "MiB/append")
			b.ReportMetric(rssMiB(), "RSS-MiB")
		})
	}
}

// BenchmarkEncode is the exporter's CSV encoding of the same rows without
// storage (plog records to per-file CSV batches).
func BenchmarkEncode(b *testing.B) {
	for _, width := range []int{10, 50} {
		b.Run(fmt.Sprintf("features=%d", width), func(b *testing.B) {
			ld := makeLogs(benchRows(5000, width)...)
			enc := newEncoder(createDefaultConfig())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if n := len(enc.encode(ld).batches); n != 1 {
					b.Fatal(n)
				}
			}
			b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// flattenedSDKLogs are the e2e harness's SDK-shaped records (harness.ShapeSDK,
// requests of 100 records) after the featureflattener with its defaults:
// what the exporter gets on the ours-otlp-sdk routes.
func flattenedSDKLogs(b *testing.B, features, requests int) plog.Logs {
	rows := harness.Rows{Run: "bench", Features: features, RowsPerRequest: 100, Shape: harness.ShapeSDK}
	rows.Defaults()
	sink := new(consumertest.LogsSink)
	p, err := featureflattener.NewFactory().CreateLogs(context.Background(),
		processortest.NewNopSettings(featureflattener.NewFactory().Type()), featureflattener.NewFactory().CreateDefaultConfig(), sink)
	if err != nil {
		b.Fatal(err)
	}
	ld := plog.NewLogs()
	for req := range requests {
		if err := p.ConsumeLogs(context.Background(), rows.Logs(req, day)); err != nil {
			b.Fatal(err)
		}
		sink.AllLogs()[req].ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	}
	return ld
}

// BenchmarkEncodeFlattened is the exporter's CSV encoding of featureflattener
// output (the ours-otlp-sdk routes), 5,000 rows per push; cpu-ns/row is the
// process CPU per row (wall time per row grows with the machine's load).
func BenchmarkEncodeFlattened(b *testing.B) {
	for _, features := range []int{10, 50} {
		b.Run(fmt.Sprintf("features=%d", features), func(b *testing.B) {
			const requests = 50
			ld := flattenedSDKLogs(b, features, requests)
			enc := newEncoder(createDefaultConfig())
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := testutil.ProcessCPU()
			for i := 0; i < b.N; i++ {
				out := enc.encode(ld)
				if n := len(out.batches); n != 1 {
					b.Fatal(n)
				}
				out.recycle() // as a push that wrote everything does
			}
			cpu := testutil.ProcessCPU() - cpu0
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*requests*100), "ns/row")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*requests*100), "cpu-ns/row")
		})
	}
}

// BenchmarkCSVToMemory is the limit: encoding/csv writing the same cells
// (already formatted strings) to memory.
func BenchmarkCSVToMemory(b *testing.B) {
	rows := benchRows(5000, 10)
	records := make([][]string, len(rows))
	for i, r := range rows {
		rec := make([]string, 0, 18)
		for _, f := range r.features {
			rec = append(rec, fmt.Sprint(f[1]))
		}
		records[i] = append(rec, r.correlationID, contract.FormatTimestamp(r.ts), contract.BoundaryDay,
			"00000000-0000-0000-0000-000000000000/local/local", "local", r.model, r.version, r.requestID)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	_ = w.WriteAll(records[:1])
	b.SetBytes(int64(buf.Len() * len(records)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if err := w.WriteAll(records); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(records))/b.Elapsed().Seconds(), "rows/s")
}

// rssMiB is this process's resident set size.
func rssMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
