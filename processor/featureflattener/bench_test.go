package featureflattener

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
	"github.com/otelcol-modeldata/otelcol-modeldata/processor/featureflattener/internal/metadata"
)

// nestedRecord is a typical SDK record: model attributes and a body of 20
// features nested two levels deep, one array, one timestamp with an offset.
func nestedRecord(lr plog.LogRecord) {
	for k, v := range sdkAttrs {
		lr.Attributes().PutStr(k, v.(string))
	}
	_ = lr.Body().FromRaw(map[string]any{"input": map[string]any{
		"age": int64(31), "income": 55000.5, "tenure_months": int64(27), "plan": "premium", "churned_before": false,
		"address": map[string]any{"zip": "98052", "city": "Redmond", "state": "WA", "country": "US"},
		"usage":   map[string]any{"calls": int64(120), "sms": int64(33), "data_gb": 12.5, "roaming": true},
		"device":  map[string]any{"os": "android", "model": "pixel 8", "age_days": int64(400)},
		"scores":  []any{0.1, 0.7, 0.2},
		"signup":  "2023-05-01T09:30:00+02:00",
		"segment": "b2c", "referral": nil,
	}})
	lr.SetTimestamp(1_700_000_000_000_000_000)
}

// SDKLogs are the records of the e2e harness's SDK routes (harness.ShapeSDK):
// requests of 100 records of features columns.
func sdkLogs(features, requests int) plog.Logs {
	rows := harness.Rows{Run: "bench", Features: features, RowsPerRequest: 100, Shape: harness.ShapeSDK}
	rows.Defaults()
	ld := plog.NewLogs()
	for req := range requests {
		rows.Logs(req, time.Unix(1_700_000_000, 0)).ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	}
	return ld
}

// BenchmarkFlattenSDK measures one op = one SDK-shaped record of the e2e
// harness (10 features: seven doubles, a string with a comma, one nested
// map; 50: strings, ints and doubles under two nesting levels), through the
// processor as the collector builds it, 100 records per call as one OTLP
// export of the harness.
func BenchmarkFlattenSDK(b *testing.B) {
	for _, features := range []int{10, 50} {
		b.Run(fmt.Sprintf("features=%d", features), func(b *testing.B) {
			benchmarkProcess(b, sdkLogs(features, 10))
		})
	}
}

// BenchmarkFlattenFlatUnsorted measures one op = one SDK record whose body
// is 10 flat doubles with keys not in sorted order: the processor writes
// them sorted (the stable header of a record that declares no order).
func BenchmarkFlattenFlatUnsorted(b *testing.B) {
	ld := plog.NewLogs()
	for range 10 {
		recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for i := range 100 {
			lr := recs.AppendEmpty()
			for k, v := range sdkAttrs {
				lr.Attributes().PutStr(k, v.(string))
			}
			body := lr.Body().SetEmptyMap()
			for k := 9; k >= 0; k-- {
				body.PutDouble(fmt.Sprintf("feature_%d", k), float64(i*k)/7)
			}
		}
	}
	benchmarkProcess(b, ld)
}

// benchmarkProcess runs copies of template through the processor, one
// ConsumeLogs per resource (one OTLP export each); one op is one record.
func benchmarkProcess(b *testing.B, template plog.Logs) {
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type),
		createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	perCall := template.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().Len()
	calls := make([]plog.Logs, template.ResourceLogs().Len())
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		for i := range calls {
			calls[i] = plog.NewLogs()
			template.ResourceLogs().At(i).CopyTo(calls[i].ResourceLogs().AppendEmpty())
		}
		runtime.GC()
		b.StartTimer()
		cpu0 := testutil.ProcessCPU()
		for _, ld := range calls {
			if err := p.ConsumeLogs(context.Background(), ld); err != nil {
				b.Fatal(err)
			}
			if done += perCall; done >= b.N {
				break
			}
		}
		cpu += testutil.ProcessCPU() - cpu0
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
}

// BenchmarkFlattenNested measures one op = one 20-feature nested record,
// through the processor as the collector builds it.
func BenchmarkFlattenNested(b *testing.B) {
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type),
		createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	template := plog.NewLogs()
	recs := template.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for range batch {
		nestedRecord(recs.AppendEmpty())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		b.StopTimer()
		ld := plog.NewLogs()
		template.CopyTo(ld)
		if n := b.N - done; n < batch {
			ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().RemoveIf(func(plog.LogRecord) bool { n--; return n < 0 })
		}
		// Collect the copy's garbage untimed, so that the timed part pays
		// only for the collections its own allocations cause.
		runtime.GC()
		b.StartTimer()
		if err := p.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReceiverRecord measures a record already in contract form (the
// modeldata receiver's output), which the processor leaves as it is.
func BenchmarkReceiverRecord(b *testing.B) {
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type),
		createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	ld := receiverLogs(false) // untouched by processing: reuse it
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 2 {
		if err := p.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
