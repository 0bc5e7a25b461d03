package featureflattener

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// Records without a correlation id get one per request id within a
// delivery; records without any timestamp get the delivery's arrival time.
func TestGeneratedCorrelationIDAndArrivalTime(t *testing.T) {
	process, _ := newTestProcessor(t, createDefaultConfig())
	build := func() plog.Logs {
		ld := plog.NewLogs()
		recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for _, rec := range []struct{ requestID, correlationID string }{
			{"r1", ""}, {"r1", ""}, {"r2", ""}, {"", ""}, {"", ""}, {"r1", "given"},
		} {
			lr := recs.AppendEmpty()
			lr.Attributes().PutStr("model.name", "m")
			if rec.requestID != "" {
				lr.Attributes().PutStr("request.id", rec.requestID)
			}
			if rec.correlationID != "" {
				lr.Attributes().PutStr("correlation.id", rec.correlationID)
			}
			lr.Body().SetEmptyMap().PutInt("x", 1)
		}
		return ld
	}
	before := time.Now()
	out := process(build())
	after := time.Now()
	recs := out.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	ids := make([]string, recs.Len())
	for i, lr := range recs.All() {
		row, _ := contract.ReadRow(lr)
		ids[i] = row.CorrelationID
		if row.Timestamp.Before(before.Truncate(time.Microsecond)) || row.Timestamp.After(after) {
			t.Errorf("record %d: scoring time %v, want the arrival time (between %v and %v)", i, row.Timestamp, before, after)
		}
	}
	if ids[0] == "" || ids[0] != ids[1] || ids[2] == ids[0] || ids[3] == "" || ids[3] != ids[4] || ids[3] == ids[0] || ids[3] == ids[2] {
		t.Errorf("correlation ids %q: want one per request id, shared within it", ids)
	}
	if ids[5] != "given" {
		t.Errorf("a given correlation id became %q", ids[5])
	}
	again := process(build()).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if v, _ := again.Attributes().Get(contract.AttrCorrelationID); v.Str() == ids[0] {
		t.Error("the next delivery reused a generated correlation id")
	}
	// An observed timestamp is kept over the arrival time.
	ld := build()
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).SetObservedTimestamp(pcommon.Timestamp(7e17))
	if ts := process(ld).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Timestamp(); ts != 7e17 {
		t.Errorf("timestamp %d, want the observed 7e17", ts)
	}
}

// TestTimestampOutOfRange: a record timestamp of 2^63 ns or more is replaced
// (contract.FillTimestamp), counted with reason timestamp_out_of_range, and
// warned about at most once per warnInterval with the value replaced.
func TestTimestampOutOfRange(t *testing.T) {
	deliver := func(process func(plog.Logs) plog.Logs, model string, timestamps ...pcommon.Timestamp) {
		ld := plog.NewLogs()
		recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		for _, ts := range timestamps {
			lr := recs.AppendEmpty()
			lr.Attributes().PutStr("model.name", model)
			lr.Body().SetEmptyMap().PutInt("x", 1)
			lr.SetTimestamp(ts)
		}
		for _, lr := range records(process(ld)) {
			if !contract.IsScoringTime(lr.Timestamp()) {
				t.Errorf("timestamp %d left on a record", lr.Timestamp())
			}
		}
	}
	const year2300 = pcommon.Timestamp(10413792000000000000)
	process, tel := newTestProcessor(t, createDefaultConfig())
	deliver(process, "a", 1<<63, year2300, 7e17, 0)
	if got := droppedCounts(t, tel); !reflect.DeepEqual(got, map[string]int64{reasonTimestamp: 2}) {
		t.Errorf("dropped values %v, want 2 with reason %s", got, reasonTimestamp)
	}

	f := testFlattener(t, createDefaultConfig())
	core, logs := observer.New(zap.WarnLevel)
	f.logger = zap.New(core)
	flatten := func(ld plog.Logs) plog.Logs {
		out, err := f.processLogs(context.Background(), ld)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	deliver(flatten, "a", 1<<63)
	deliver(flatten, "b", year2300, year2300)
	deliver(flatten, "c", 7e17) // in range: not counted
	f.timeWarn.next.Store(0)
	deliver(flatten, "d", math.MaxUint64)
	var got []string
	for _, e := range logs.All() {
		c := e.ContextMap()
		got = append(got, fmt.Sprintf("%v records, model %v, %v", c["records"], c["model"], c["timestamp_unix_nano"]))
	}
	if want := []string{"1 records, model a, 9223372036854775808", "3 records, model d, 18446744073709551615"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("warnings %q, want %q", got, want)
	}
}
