package featureflattener

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

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
