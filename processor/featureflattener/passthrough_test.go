package featureflattener

import (
	"bytes"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

func marshal(t *testing.T, ld plog.Logs) []byte {
	t.Helper()
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// receiverLogs builds records exactly as the modeldata receiver writes them:
// contract.WriteRow, then the features in the body in column order, resource
// path parts; listed adds the feature names list older builds wrote.
func receiverLogs(listed bool) plog.Logs {
	var names []string
	if listed {
		names = []string{"zeta", "alpha", "when", "flag", "count", "ratio", "none"}
	}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(contract.AttrWebservice, "svc")
	rl.Resource().Attributes().PutStr(contract.AttrWorkspace, "ws")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	ts := time.Date(2020, 8, 13, 15, 54, 16, 691697000, time.UTC)
	for i, d := range []string{contract.DesignationInputs, contract.DesignationPredictions} {
		lr := recs.AppendEmpty()
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Second)))
		contract.WriteRow(lr, contract.Row{ModelName: "best_model", ModelVersion: "10", Designation: d,
			CorrelationID: contract.NewCorrelationID("user"), RequestID: "r-1",
			FeatureNames: names, Timestamp: ts})
		body := contract.Features(lr)
		body.PutStr("zeta", "a,b \"quoted\"")
		body.PutStr("alpha", "x")
		body.PutStr("when", "2020-08-13T15:54:16Z")
		body.PutBool("flag", i == 0)
		body.PutInt("count", 42)
		body.PutDouble("ratio", 1234567)
		body.PutEmpty("none")
	}
	return ld
}

func TestReceiverRecordsUnchanged(t *testing.T) {
	for _, arrays := range []string{ArraysJSON, ArraysIndex} {
		for _, listed := range []bool{false, true} {
			cfg := createDefaultConfig()
			cfg.Arrays = arrays
			process, tel := newTestProcessor(t, cfg)
			in := receiverLogs(listed)
			want := marshal(t, in)
			got := process(in)
			if g := marshal(t, got); !bytes.Equal(g, want) {
				t.Fatalf("arrays=%s listed=%v: receiver records changed\n got %s\nwant %s", arrays, listed, g, want)
			}
			// And a second pass over the output changes nothing either.
			if g := marshal(t, process(got)); !bytes.Equal(g, want) {
				t.Fatalf("arrays=%s listed=%v: second pass changed records\n got %s", arrays, listed, g)
			}
			if c := droppedCounts(t, tel); len(c) != 0 {
				t.Fatalf("dropped %v", c)
			}
		}
	}
}

func TestNotModelDataUntouched(t *testing.T) {
	build := func() plog.Logs {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "web")
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.Body().SetStr(`{"msg": "hello", "nested": {"a": [1, 2]}}`)
		lr.Attributes().PutEmptyBytes("payload").FromRaw(pngHead())
		lr.Attributes().PutStr("model.name", "") // empty names no model
		lr2 := rl.ScopeLogs().At(0).LogRecords().AppendEmpty()
		_ = lr2.Body().FromRaw(map[string]any{"image": b64(pngHead()), "list": []any{[]any{int64(1)}}})
		return ld
	}
	process, _ := newTestProcessor(t, createDefaultConfig())
	in := build()
	want := marshal(t, in)
	if got := marshal(t, process(in)); !bytes.Equal(got, want) {
		t.Fatalf("non model data changed\n got %s\nwant %s", got, want)
	}
}

// A batch explodes in place: records around it keep their order, and
// records that are not model data stay as they are.
func TestExplodeKeepsNeighbours(t *testing.T) {
	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	recs.AppendEmpty().Body().SetStr("before")
	b := recs.AppendEmpty()
	b.Attributes().PutStr("model.name", "m")
	b.Attributes().PutStr(contract.AttrRequestID, "req")
	b.SetTraceID(pcommon.TraceID{1, 2, 3})
	b.SetSeverityNumber(plog.SeverityNumberInfo)
	_ = b.Body().FromRaw([]any{map[string]any{"x": int64(1)}, map[string]any{"x": int64(2)}, map[string]any{"x": int64(3)}})
	recs.AppendEmpty().Body().SetStr("after")

	process, _ := newTestProcessor(t, createDefaultConfig())
	got := records(process(ld))
	if len(got) != 5 || got[0].Body().Str() != "before" || got[4].Body().Str() != "after" {
		t.Fatalf("got %d records: %v", len(got), got)
	}
	for i, lr := range got[1:4] {
		x, _ := lr.Body().Map().Get("x")
		if x.Int() != int64(i+1) || lr.TraceID() != (pcommon.TraceID{1, 2, 3}) || lr.SeverityNumber() != plog.SeverityNumberInfo {
			t.Fatalf("row %d: body %v trace %v", i, lr.Body().AsRaw(), lr.TraceID())
		}
		if r, _ := lr.Attributes().Get(contract.AttrRequestID); r.Str() != "req" {
			t.Fatalf("row %d lost its request id", i)
		}
	}
}

func TestObservedTimestampBecomesTimestamp(t *testing.T) {
	ld := oneRecord(t, map[string]any{}, sdkAttrs, map[string]any{"a": int64(1)})
	lr := records(ld)[0]
	lr.SetTimestamp(0)
	lr.SetObservedTimestamp(pcommon.Timestamp(42))
	process, _ := newTestProcessor(t, createDefaultConfig())
	if got := records(process(ld))[0].Timestamp(); got != 42 {
		t.Fatalf("timestamp %d", got)
	}
}

func TestServiceNameDoesNotOverrideWebservice(t *testing.T) {
	process, _ := newTestProcessor(t, createDefaultConfig())
	ld := oneRecord(t, map[string]any{"service.name": "a", contract.AttrWebservice: "b"}, sdkAttrs, map[string]any{"x": int64(1)})
	out := process(ld)
	if v, _ := out.ResourceLogs().At(0).Resource().Attributes().Get(contract.AttrWebservice); v.Str() != "b" {
		t.Fatalf("webservice %q", v.Str())
	}
}
