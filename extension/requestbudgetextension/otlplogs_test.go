package requestbudgetextension

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/otelcol-modeldata/otelcol-modeldata/extension/requestbudgetextension/internal/metadatatest"
)

func marshalLogs(t testing.TB, logs plog.Logs) []byte {
	t.Helper()
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(logs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// variedLogs has every kind of field around and in its records: resource
// and scope attributes, schema URLs, empty records, records with varints,
// fixed64s, bytes and nested maps, several ResourceLogs and ScopeLogs.
func variedLogs() plog.Logs {
	logs := plog.NewLogs()
	for r := 0; r < 3; r++ {
		rl := logs.ResourceLogs().AppendEmpty()
		rl.SetSchemaUrl("https://example.com/schema")
		rl.Resource().Attributes().PutStr("service.name", strings.Repeat("s", 200*r))
		rl.Resource().Attributes().PutInt("pid", int64(r))
		for s := 0; s < r+1; s++ {
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName("scope")
			sl.Scope().Attributes().PutDouble("x", 1.5)
			for i := 0; i < 2*s+1; i++ {
				lr := sl.LogRecords().AppendEmpty()
				if i == 0 {
					continue // an empty record: a tag and a zero length
				}
				lr.SetTimestamp(pcommon.Timestamp(1700000000000000000 + i))
				lr.SetSeverityNumber(plog.SeverityNumberInfo)
				lr.SetTraceID([16]byte{1, 2, 3})
				lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
				body := lr.Body().SetEmptyMap()
				body.PutStr("text", strings.Repeat("x", 150*i))
				body.PutEmptySlice("list").AppendEmpty().SetInt(-1)
				lr.Attributes().PutBool("ok", true)
			}
		}
	}
	rl := logs.ResourceLogs().AppendEmpty() // a ResourceLogs without scopes
	rl.Resource().Attributes().PutStr("empty", "")
	return logs
}

func tinyLogs(n int) plog.Logs {
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	records.EnsureCapacity(n)
	for i := 0; i < n; i++ {
		records.AppendEmpty().SetTimestamp(pcommon.Timestamp(1700000000000000000 + i))
	}
	return logs
}

// TestLogRecordScanner: the records counted are pdata's LogRecordCount
// however the body is cut: in two at every byte, and a byte at a time.
func TestLogRecordScanner(t *testing.T) {
	bodies := map[string][]byte{"tiny records, minimal": tinyBody(50)}
	for name, logs := range map[string]plog.Logs{"varied": variedLogs(), "tiny records": tinyLogs(50), "empty": plog.NewLogs()} {
		bodies[name] = marshalLogs(t, logs)
	}
	for name, b := range bodies {
		t.Run(name, func(t *testing.T) {
			logs, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b)
			if err != nil {
				t.Fatal(err)
			}
			want := int64(logs.LogRecordCount())
			for i := 0; i <= len(b); i++ {
				s := &logRecordScanner{}
				if got := s.scan(b[:i]) + s.scan(b[i:]); got != want || s.broken {
					t.Fatalf("cut at byte %d of %d: %d records (broken %v), want %d", i, len(b), got, s.broken, want)
				}
			}
			s, got := &logRecordScanner{}, int64(0)
			for i := range b {
				got += s.scan(b[i : i+1])
			}
			if got != want || s.broken {
				t.Fatalf("a byte at a time: %d records (broken %v), want %d", got, s.broken, want)
			}
		})
	}
}

// TestLogRecordScannerMalformed: on malformed protobuf the scanner stops
// counting (never more records than started before the fault) and never
// panics or loops; random bytes alike.
func TestLogRecordScannerMalformed(t *testing.T) {
	record := protowire.AppendTag(nil, 2, protowire.BytesType)
	record = protowire.AppendVarint(record, 0)
	scope := protowire.AppendTag(nil, 2, protowire.BytesType)
	scope = protowire.AppendBytes(scope, bytes.Repeat(record, 3))
	resource := protowire.AppendTag(nil, 1, protowire.BytesType)
	resource = protowire.AppendBytes(resource, scope) // three records
	for _, tt := range []struct {
		name   string
		body   []byte
		want   int64
		broken bool
	}{
		{"well formed", resource, 3, false},
		{"field number 0", append(append([]byte{}, resource...), 0x02, 0x00), 3, true},
		{"group", append(protowire.AppendTag(nil, 1, protowire.StartGroupType), resource...), 0, true},
		{"wire type 7", append([]byte{0x0f}, resource...), 0, true},
		{"varint of 11 bytes", append(bytes.Repeat([]byte{0xff}, 11), resource...), 0, true},
		{"length over its message", append([]byte{0x0a, 0x02, 0x12, 0x05, 0, 0, 0, 0, 0}, resource...), 0, true},
		{"fixed64 over its message", append([]byte{0x0a, 0x03, 0x12, 0x01, 0x09, 0, 0, 0, 0, 0, 0, 0, 0}, resource...), 0, true},
		{"length of 2^63", append(append([]byte{0x0a}, protowire.AppendVarint(nil, 1<<63)...), resource...), 0, true},
		{"truncated", resource[:len(resource)-1], 2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &logRecordScanner{}
			if got := s.scan(tt.body); got != tt.want {
				t.Errorf("%d records, want %d", got, tt.want)
			}
			if s.broken != tt.broken {
				t.Errorf("broken %v, want %v", s.broken, tt.broken)
			}
			if tt.broken && s.scan(resource) != 0 {
				t.Error("counts again after a fault")
			}
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		b := make([]byte, rng.IntN(64))
		for k := range b {
			b[k] = byte(rng.Uint32())
		}
		s := &logRecordScanner{}
		if got := s.scan(b); got < 0 || got > int64(len(b)/2) {
			t.Fatalf("%x: %d records", b, got)
		}
	}
}

// TestOTLPLogRecordsCharged: with the default budget (64 MiB), a 20 MiB
// OTLP/HTTP protobuf body of records holding only a timestamp (1.9M
// records, about 350 MiB decoded) is refused 413 as it is read, before the
// otlp receiver decodes it; a 19 MiB body of 3,900 records of 50 string
// features, sent plain and gzip-compressed, is accepted, as is a body
// of tiny records that fits the budget. A
// malformed body is answered by the receiver (400), not by the budget.
func TestOTLPLogRecordsCharged(t *testing.T) {
	sink := &consumertest.LogsSink{}
	cfg := createDefaultConfig()
	addr, ext, tel := otlpWithBudget(t, cfg, sink, "http")
	url := "http://" + addr + "/v1/logs"

	tiny := tinyBody(20<<20/11 - 1)
	if len(tiny) < 19<<20 || len(tiny) > 20<<20 {
		t.Fatalf("tiny-record body of %d bytes, want about 20 MiB", len(tiny))
	}
	a := post(url, tiny, "length")
	if a.err != nil || a.status != http.StatusRequestEntityTooLarge || !bytes.Contains(a.body, []byte("too many records")) {
		t.Fatalf("20 MiB of tiny records: status %d, %v: %s", a.status, a.err, a.body)
	}
	if sink.LogRecordCount() != 0 {
		t.Fatalf("%d records of the refused body reached the pipeline", sink.LogRecordCount())
	}

	full := plog.NewLogs()
	records := full.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	cell := strings.Repeat("s", 19<<20/(3900*50)-12)
	for i := 0; i < 3900; i++ {
		body := records.AppendEmpty().Body().SetEmptyMap()
		for k := 0; k < 50; k++ {
			body.PutStr(fmt.Sprintf("f%02d", k), cell)
		}
	}
	fullBody := marshalLogs(t, full)
	if len(fullBody) < 18<<20 || len(fullBody) > 20<<20 {
		t.Fatalf("full body of %d bytes, want about 19 MiB", len(fullBody))
	}
	for _, how := range []string{"length", "gzip"} {
		if a := post(url, fullBody, how); a.err != nil || a.status != http.StatusOK {
			t.Errorf("3,900 records x 50 features (%s): status %d, %v: %s", how, a.status, a.err, a.body)
		}
	}
	// 300,000 tiny records: 3.1 MiB, 58 MiB charged.
	if a := post(url, tinyBody(300000), "chunked"); a.err != nil || a.status != http.StatusOK {
		t.Errorf("300,000 tiny records: status %d, %v: %s", a.status, a.err, a.body)
	}
	if a := post(url, append(bytes.Repeat([]byte{0xff}, 11), tiny[:1000]...), "length"); a.err != nil || a.status != http.StatusBadRequest {
		t.Errorf("malformed body: status %d, %v: %s", a.status, a.err, a.body)
	}
	if want := 2*3900 + 300000; sink.LogRecordCount() != want {
		t.Errorf("%d records reached the pipeline, want %d", sink.LogRecordCount(), want)
	}
	if held := ext.budget.Held(); held != 0 {
		t.Errorf("%d bytes still held", held)
	}
	metadatatest.AssertEqualRequestBudgetRequestsRefused(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "too_many_records"))}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// tinyBody is an ExportLogsServiceRequest of n records holding only a
// timestamp, 11 bytes each on the wire (pdata's marshaler adds empty fields).
func tinyBody(n int) []byte {
	record := protowire.AppendTag(nil, 2, protowire.BytesType)
	record = protowire.AppendVarint(record, 9)
	record = protowire.AppendTag(record, 1, protowire.Fixed64Type)
	record = protowire.AppendFixed64(record, 1700000000000000000)
	scope := protowire.AppendTag(nil, 2, protowire.BytesType)
	scope = protowire.AppendVarint(scope, uint64(n*len(record)))
	resource := protowire.AppendTag(nil, 1, protowire.BytesType)
	resource = protowire.AppendVarint(resource, uint64(len(scope)+n*len(record)))
	b := append(resource, scope...)
	return append(b, bytes.Repeat(record, n)...)
}
