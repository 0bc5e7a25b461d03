package featureflattener

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// genAIRow is one output record: contract attributes and cells by column.
type genAIRow struct {
	model, version, designation, requestID, correlationID string
	columns                                               []string
	cells                                                 map[string]string // non-empty cells
}

func readGenAIRows(t *testing.T, ld plog.Logs) []genAIRow {
	t.Helper()
	var rows []genAIRow
	for _, lr := range records(ld) {
		row, ok := contract.ReadRow(lr)
		if !ok {
			t.Fatalf("record %q is not model data", lr.EventName())
		}
		cells := map[string]string{}
		for k, v := range contract.Features(lr).All() {
			if s := contract.FormatValue(v); s != "" {
				cells[k] = s
			}
		}
		rows = append(rows, genAIRow{row.ModelName, row.ModelVersion, row.Designation, row.RequestID, row.CorrelationID, contract.Columns(lr), cells})
	}
	return rows
}

func inputColumns(extra ...string) []string {
	return append(contract.GenAIInputColumns(), extra...)
}

const (
	traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanA    = traceHex + "-00f067aa0ba902b7"
	spanB    = traceHex + "-00f067aa0ba902b8"
)

func TestGenAICurrentEvent(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.GenAI.Models = map[string]GenAIModel{"gpt-4": {Name: "weather-chat", Version: "2024-06"}}
	run, _ := newTestProcessor(t, cfg)
	got := readGenAIRows(t, run(testutil.GenAICurrentLogs()))
	want := []genAIRow{
		{"weather-chat", "2024-06", "inputs", "chatcmpl-123", traceHex, inputColumns("request_encoding_formats"), map[string]string{
			"operation_name":           "chat",
			"provider_name":            "openai",
			"request_model":            "gpt-4",
			"conversation_id":          "conv_5j66UpCpwteGg4YSxUnt7lPY",
			"system_instructions":      testutil.CanonicalJSON(testutil.GenAISystemInstructionsJSON),
			"input_messages":           testutil.CanonicalJSON(testutil.GenAIInputMessagesJSON),
			"last_user_message":        testutil.GenAICurrentLastUser,
			"request_temperature":      "0.2",
			"request_max_tokens":       "100",
			"request_top_p":            "1",
			"request_stop_sequences":   `["forest","lived"]`,
			"request_seed":             "100",
			"request_encoding_formats": `["float"]`,
			"output_type":              "text",
		}},
		{"weather-chat", "2024-06", "predictions", "chatcmpl-123", traceHex, contract.GenAIPredictionColumns(), map[string]string{
			"operation_name":       "chat",
			"provider_name":        "openai",
			"response_model":       "gpt-4-0613",
			"response_id":          "chatcmpl-123",
			"conversation_id":      "conv_5j66UpCpwteGg4YSxUnt7lPY",
			"output_messages":      testutil.CanonicalJSON(testutil.GenAIOutputMessagesJSON),
			"first_output_message": testutil.GenAICurrentOutput,
			"finish_reasons":       `["stop"]`,
			"usage_input_tokens":   "100",
			"usage_output_tokens":  "180",
		}},
	}
	checkGenAIRows(t, got, want)
}

func TestGenAIOlderEventsGroupedBySpan(t *testing.T) {
	run, _ := newTestProcessor(t, createDefaultConfig())
	got := readGenAIRows(t, run(testutil.GenAIOlderLogs()))
	if len(got) != 5 {
		t.Fatalf("got %d rows, want 5: %+v", len(got), got)
	}
	noContextID := got[4].requestID
	want := []genAIRow{
		{"openai", "1", "inputs", spanA, traceHex, inputColumns(), map[string]string{
			"provider_name":     "openai",
			"input_messages":    testutil.GenAIOlderInputsA,
			"last_user_message": testutil.GenAIOlderLastUserA,
		}},
		{"openai", "1", "predictions", spanA, traceHex, contract.GenAIPredictionColumns(), map[string]string{
			"provider_name":        "openai",
			"output_messages":      testutil.GenAIOlderOutputsA,
			"first_output_message": testutil.GenAIOlderOutputA,
			"finish_reasons":       `["stop"]`,
		}},
		{"openai", "1", "inputs", spanB, traceHex, inputColumns(), map[string]string{
			"provider_name":     "openai",
			"input_messages":    testutil.GenAIOlderInputsB,
			"last_user_message": testutil.GenAIOlderLastUserB,
		}},
		{"openai", "1", "predictions", spanB, traceHex, contract.GenAIPredictionColumns(), map[string]string{
			"provider_name":   "openai",
			"output_messages": testutil.GenAIOlderOutputsB,
			"finish_reasons":  `["tool_calls"]`,
		}},
		{"openai", "1", "inputs", noContextID, noContextID, inputColumns(), map[string]string{
			"provider_name":     "openai",
			"input_messages":    `[{"parts":[{"content":"Hello?","type":"text"}],"role":"user"}]`,
			"last_user_message": "Hello?",
		}},
	}
	checkGenAIRows(t, got, want)
	if len(noContextID) != 36 || noContextID == got[0].requestID {
		t.Fatalf("a message without span context gets its own request id, got %q", noContextID)
	}
}

func checkGenAIRows(t *testing.T, got, want []genAIRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("row %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestGenAIOtherRecordsUntouched(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enabled bool
		event   string
	}{
		{"unknown gen_ai event", true, "gen_ai.evaluation.result"},
		{"disabled", false, contract.GenAIEventDetails},
		{"other event", true, "browser.page_view"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.GenAI.Enabled = tc.enabled
			run, _ := newTestProcessor(t, cfg)
			ld := oneRecord(t, nil, map[string]any{"gen_ai.request.model": "gpt-4", "gen_ai.operation.name": "chat"}, "hi")
			records(ld)[0].SetEventName(tc.event)
			want := plog.NewLogs()
			ld.CopyTo(want)
			if got := run(ld); !reflect.DeepEqual(got, want) {
				t.Fatalf("record changed")
			}
		})
	}
}

func TestGenAIEventNameAttributeAndMixedBatch(t *testing.T) {
	run, _ := newTestProcessor(t, createDefaultConfig())
	ld := oneRecord(t, map[string]any{"model.name": "churn", "model.version": "3"}, nil, map[string]any{"age": 31})
	sl := ld.ResourceLogs().At(0).ScopeLogs().At(0)
	lr := sl.LogRecords().AppendEmpty()
	lr.Attributes().PutStr(contract.AttrEventName, contract.GenAIEventUserMessage)
	lr.Body().SetStr(`{"content":"Hi"}`)
	got := records(run(ld))
	if len(got) != 2 {
		t.Fatalf("got %d records, want the model row and one GenAI inputs row", len(got))
	}
	if n := contract.Columns(got[0]); !reflect.DeepEqual(n, []string{"age"}) {
		t.Fatalf("model row: %v", n)
	}
	row, _ := contract.ReadRow(got[1])
	// the resource names model churn version 3: GenAI rows without a request model use it
	if row.ModelName != "churn" || row.ModelVersion != "3" || row.Designation != "inputs" {
		t.Fatalf("GenAI row: %+v", row)
	}
	if v, _ := contract.Features(got[1]).Get(contract.GenAIColLastUserMessage); v.Str() != "Hi" {
		t.Fatalf("last user message %q", v.Str())
	}
}

func TestGenAIModelNameSanitized(t *testing.T) {
	run, _ := newTestProcessor(t, createDefaultConfig())
	ld := oneRecord(t, nil, map[string]any{"gen_ai.request.model": "meta/llama-3:70b.", "gen_ai.operation.name": "chat"}, nil)
	records(ld)[0].SetEventName(contract.GenAIEventDetails)
	for _, lr := range records(run(ld)) {
		if row, _ := contract.ReadRow(lr); row.ModelName != "meta_llama-3:70b" {
			t.Fatalf("model name %q", row.ModelName)
		}
	}
}

func TestGenAIConfigValidate(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.GenAI.DefaultModelVersion = ""
	cfg.GenAI.Models = map[string]GenAIModel{"x": {Name: "a/b"}}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "genai.default_model_version") || !strings.Contains(err.Error(), "genai.models[x].name") {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkGenAICheckOtherRecords measures what GenAI mode costs a record
// that is not a GenAI event (one op = one SDK-shaped record without an event
// name, the slowest case: the event.name attribute is looked up).
func BenchmarkGenAICheckOtherRecords(b *testing.B) {
	f, err := newFlattener(createDefaultConfig(), noop.Int64Counter{})
	if err != nil {
		b.Fatal(err)
	}
	recs := plog.NewLogRecordSlice()
	for range 1000 {
		nestedRecord(recs.AppendEmpty())
	}
	res := pcommon.NewResource()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += recs.Len() {
		f.rewriteGenAI(recs, res, map[string]int64{})
	}
}

// BenchmarkGenAIDetailsEvent measures one op = one
// gen_ai.client.inference.operation.details event (content included) through
// the processor: two rows out.
func BenchmarkGenAIDetailsEvent(b *testing.B) {
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(componentType),
		createDefaultConfig(), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	const batch = 100
	template := testutil.GenAICurrentLogs()
	recs := template.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for range batch - 1 {
		recs.At(0).CopyTo(recs.AppendEmpty())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		b.StopTimer()
		ld := plog.NewLogs()
		template.CopyTo(ld)
		b.StartTimer()
		if err := p.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGenAIMediaPartsDropped(t *testing.T) {
	run, tel := newTestProcessor(t, createDefaultConfig())
	ld := oneRecord(t, nil, map[string]any{
		"gen_ai.operation.name": "chat",
		"gen_ai.request.model":  "gpt-4o",
		"gen_ai.input.messages": `[{"role":"user","parts":[{"type":"text","content":"What is on this photo?"},` +
			`{"type":"blob","modality":"image","mime_type":"image/png","content":"` + b64(pngHead()) + `"}]}]`,
	}, nil)
	records(ld)[0].SetEventName(contract.GenAIEventDetails)
	records(ld)[0].Attributes().PutEmptyBytes("gen_ai.output.messages") // not a message list: ignored
	got := records(run(ld))
	v, _ := contract.Features(got[0]).Get(contract.GenAIColInputMessages)
	want := `[{"parts":[{"content":"What is on this photo?","type":"text"},{"mime_type":"image/png","modality":"image","type":"blob"}],"role":"user"}]`
	if v.Str() != want {
		t.Fatalf("input_messages:\ngot  %s\nwant %s", v.Str(), want)
	}
	if n := droppedCounts(t, tel)[reasonContentType]; n != 1 {
		t.Fatalf("content_type drops = %d, want 1", n)
	}
}
