package modeldatablobexporter

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/processor/featureflattener"
)

// TestOTLPRecordTimeToCSV: an OTLP record's time, through the flattener and
// the exporter, is the row's $aml_dc_scoring_timestamp and its date folder.
// A timestamp of 2^63 ns or more (OTLP's times after 2262-04-11, which pdata
// reads as before 1970) is no scoring time: like a missing one, the row
// takes the observed timestamp, else the arrival time, never a wrapped time.
func TestOTLPRecordTimeToCSV(t *testing.T) {
	observed := time.Date(2020, 8, 13, 15, 54, 16, 691697000, time.UTC)
	tests := []struct {
		name         string
		ts, observed pcommon.Timestamp
		want         time.Time // zero: the arrival time
	}{
		{name: "normal time", ts: pcommon.NewTimestampFromTime(day), want: day},
		{name: "int64 max", ts: math.MaxInt64, want: contract.MaxTimestamp},
		{name: "0 (missing), observed", observed: pcommon.NewTimestampFromTime(observed), want: observed},
		{name: "0 (missing), no observed"},
		{name: "2^63, observed", ts: 1 << 63, observed: pcommon.NewTimestampFromTime(observed), want: observed},
		{name: "2^63, no observed", ts: 1 << 63},
		{name: "year 2300, observed", ts: 10413792000000000000, observed: pcommon.NewTimestampFromTime(observed), want: observed},
		{name: "year 2300, no observed", ts: 10413792000000000000},
		{name: "2^64-1, observed", ts: math.MaxUint64, observed: pcommon.NewTimestampFromTime(observed), want: observed},
		{name: "2^64-1, no observed", ts: math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld := plog.NewLogs()
			lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			lr.Attributes().PutStr(contract.AttrModelName, "m")
			lr.Attributes().PutStr(contract.AttrModelVersion, "1")
			lr.Attributes().PutStr(contract.AttrDesignation, "inputs")
			lr.Body().SetEmptyMap().PutInt("x", 1)
			lr.SetTimestamp(tt.ts)
			lr.SetObservedTimestamp(tt.observed)

			before := time.Now().UTC().Truncate(time.Microsecond)
			flattened := flatten(t, ld)
			after := time.Now().UTC()
			cfg := localConfig(t)
			if err := newTestExporter(t, cfg).push(context.Background(), flattened); err != nil {
				t.Fatal(err)
			}

			files := localFiles(t, cfg)
			if len(files) != 1 {
				t.Fatalf("files %q, want one", files)
			}
			rows := parseCSV(t, readLocal(t, cfg, files[0]))
			col := slices.Index(rows[0], contract.ColScoringTimestamp)
			if len(rows) != 2 || col < 0 {
				t.Fatalf("CSV %q", rows)
			}
			cell := rows[1][col]
			got, err := contract.ParseTimestamp(cell)
			if err != nil {
				t.Fatalf("scoring timestamp %q: %v", cell, err)
			}
			if tt.want.IsZero() {
				if got.Before(before) || got.After(after) {
					t.Fatalf("scoring timestamp %s, want the arrival time, %s..%s", cell, before, after)
				}
			} else if want := contract.FormatTimestamp(tt.want); cell != want {
				t.Fatalf("scoring timestamp %s, want %s", cell, want)
			}
			if want := dayDir + "inputs/" + got.Format("2006/01/02") + "/data.csv"; files[0] != want {
				t.Fatalf("file %s, want %s", files[0], want)
			}
		})
	}
}

// flatten passes ld through the featureflattener with its defaults.
func flatten(t *testing.T, ld plog.Logs) plog.Logs {
	t.Helper()
	f := featureflattener.NewFactory()
	sink := new(consumertest.LogsSink)
	p, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(f.Type()), f.CreateDefaultConfig(), sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ConsumeLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	return sink.AllLogs()[0]
}
