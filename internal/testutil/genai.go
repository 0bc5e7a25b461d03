package testutil

import (
	"encoding/json"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// GenAI events shaped as the OpenTelemetry GenAI semantic conventions define
// them (docs/gen-ai/gen-ai-events.md and the input/output messages JSON
// schemas; the per-message events of v1.36 and earlier). The message texts
// carry an e-mail address, a phone number and a card number for the
// redaction test.

// GenAITime is the timestamp of every fixture event.
var GenAITime = time.Date(2026, 11, 20, 10, 0, 0, 123456000, time.UTC)

// Span contexts of the fixtures.
var (
	GenAITraceID = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	GenAISpanID  = pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	GenAISpanIDB = pcommon.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb8}
)

// Personal data in the fixtures' message texts.
const (
	GenAIEmail = "jane.doe@example.com"
	GenAIPhone = "+1 425-555-0100"
	GenAICard  = "4111 1111 1111 1111"
)

// Structured content of the current event, as the conventions' examples.
const (
	GenAISystemInstructionsJSON = `[{"type":"text","content":"You are a weather assistant."},` +
		`{"type":"text","content":"Use the get_weather tool for current conditions."}]`
	GenAIInputMessagesJSON = `[` +
		`{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"},` +
		`{"type":"text","content":"Send it to ` + GenAIEmail + ` or call ` + GenAIPhone + `."}]},` +
		`{"role":"assistant","parts":[{"type":"tool_call","id":"call_VSPygqKTWdrhaFErNvMV18Yl","name":"get_weather","arguments":{"location":"Paris"}}]},` +
		`{"role":"tool","parts":[{"type":"tool_call_response","id":"call_VSPygqKTWdrhaFErNvMV18Yl","result":"rainy, 57°F"}]}]`
	GenAIOutputMessagesJSON = `[{"role":"assistant","parts":[{"type":"text",` +
		`"content":"The weather in Paris is currently rainy with a temperature of 57°F. I charged card ` + GenAICard + `."}],` +
		`"finish_reason":"stop"}]`
)

func rawJSON(s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic(err)
	}
	return numbers(v)
}

// numbers turns json.Number into int64 or float64, as an SDK would send them.
func numbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = numbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = numbers(e)
		}
	}
	return v
}

func genAIEvent(sl plog.ScopeLogs, name string, tid pcommon.TraceID, sid pcommon.SpanID, attrs map[string]any, body string) {
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(name)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(GenAITime))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(GenAITime))
	lr.SetTraceID(tid)
	lr.SetSpanID(sid)
	if err := lr.Attributes().FromRaw(attrs); err != nil {
		panic(err)
	}
	if body != "" {
		if err := lr.Body().FromRaw(rawJSON(body)); err != nil {
			panic(err)
		}
	}
}

func genAILogs(scope string) (plog.Logs, plog.ScopeLogs) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "weather-agent")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(scope)
	return ld, sl
}

// GenAICurrentLogs is one chat call as the event
// gen_ai.client.inference.operation.details, content opted in, with a
// multi-part user message, a tool call and its response.
func GenAICurrentLogs() plog.Logs {
	ld, sl := genAILogs("opentelemetry.instrumentation.openai_v2")
	genAIEvent(sl, "gen_ai.client.inference.operation.details", GenAITraceID, GenAISpanID, map[string]any{
		"gen_ai.operation.name":           "chat",
		"gen_ai.provider.name":            "openai",
		"gen_ai.request.model":            "gpt-4",
		"gen_ai.request.temperature":      0.2,
		"gen_ai.request.max_tokens":       int64(100),
		"gen_ai.request.top_p":            1.0,
		"gen_ai.request.stop_sequences":   []any{"forest", "lived"},
		"gen_ai.request.seed":             int64(100),
		"gen_ai.request.encoding_formats": []any{"float"},
		"gen_ai.conversation.id":          "conv_5j66UpCpwteGg4YSxUnt7lPY",
		"gen_ai.output.type":              "text",
		"gen_ai.response.id":              "chatcmpl-123",
		"gen_ai.response.model":           "gpt-4-0613",
		"gen_ai.response.finish_reasons":  []any{"stop"},
		"gen_ai.usage.input_tokens":       int64(100),
		"gen_ai.usage.output_tokens":      int64(180),
		"server.address":                  "api.openai.com",
		"server.port":                     int64(443),
		"gen_ai.system_instructions":      rawJSON(GenAISystemInstructionsJSON),
		"gen_ai.input.messages":           rawJSON(GenAIInputMessagesJSON),
		"gen_ai.output.messages":          rawJSON(GenAIOutputMessagesJSON),
	}, "")
	return ld
}

// GenAIOlderLogs are the per-message events of two chat calls (spans A and
// B of one trace) interleaved in one batch, as instrumentations emit them
// without OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental: span A
// has a system message, a multi-part user message, an assistant tool call,
// the tool's answer and the final choice; span B a user message and a choice
// that calls a tool. A record without span context is its own exchange.
func GenAIOlderLogs() plog.Logs {
	ld, sl := genAILogs("opentelemetry.instrumentation.openai_v2")
	sys := map[string]any{"gen_ai.system": "openai"}
	a, b := GenAISpanID, GenAISpanIDB
	genAIEvent(sl, "gen_ai.system.message", GenAITraceID, a, sys, `{"content":"You're a helpful bot"}`)
	genAIEvent(sl, "gen_ai.user.message", GenAITraceID, a, sys,
		`{"role":"user","content":[{"text":"What's the weather in Paris?"},{"text":"My card is `+GenAICard+`"}]}`)
	genAIEvent(sl, "gen_ai.user.message", GenAITraceID, b, sys, `{"content":"Weather in Oslo? Mail `+GenAIEmail+`"}`)
	genAIEvent(sl, "gen_ai.assistant.message", GenAITraceID, a, sys,
		`{"tool_calls":[{"id":"call_VSPygqKTWdrhaFErNvMV18Yl","type":"function","function":{"name":"get_weather","arguments":{"location":"Paris"}}}]}`)
	genAIEvent(sl, "gen_ai.tool.message", GenAITraceID, a, sys, `{"content":"rainy, 57°F","id":"call_VSPygqKTWdrhaFErNvMV18Yl"}`)
	genAIEvent(sl, "gen_ai.choice", GenAITraceID, b, sys,
		`{"index":0,"finish_reason":"tool_calls","message":{"tool_calls":[{"id":"call_oslo","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Oslo\"}"}}]}}`)
	genAIEvent(sl, "gen_ai.choice", GenAITraceID, a, sys,
		`{"index":0,"finish_reason":"stop","message":{"content":"The weather in Paris is rainy and overcast, with temperatures around 57°F. Call `+GenAIPhone+` for more."}}`)
	genAIEvent(sl, "gen_ai.user.message", pcommon.TraceID{}, pcommon.SpanID{}, sys, `{"content":"Hello?"}`)
	return ld
}

// The older events of GenAIOlderLogs as the featureflattener converts them to
// the current schema (keys sorted), per span.
const (
	GenAIOlderInputsA = `[{"parts":[{"content":"You're a helpful bot","type":"text"}],"role":"system"},` +
		`{"parts":[{"content":"What's the weather in Paris?","type":"text"},{"content":"My card is ` + GenAICard + `","type":"text"}],"role":"user"},` +
		`{"parts":[{"arguments":{"location":"Paris"},"id":"call_VSPygqKTWdrhaFErNvMV18Yl","name":"get_weather","type":"tool_call"}],"role":"assistant"},` +
		`{"parts":[{"id":"call_VSPygqKTWdrhaFErNvMV18Yl","result":"rainy, 57°F","type":"tool_call_response"}],"role":"tool"}]`
	GenAIOlderLastUserA  = "What's the weather in Paris?\nMy card is " + GenAICard
	GenAIOlderOutputA    = "The weather in Paris is rainy and overcast, with temperatures around 57°F. Call " + GenAIPhone + " for more."
	GenAIOlderOutputsA   = `[{"finish_reason":"stop","parts":[{"content":"` + GenAIOlderOutputA + `","type":"text"}],"role":"assistant"}]`
	GenAIOlderLastUserB  = "Weather in Oslo? Mail " + GenAIEmail
	GenAIOlderInputsB    = `[{"parts":[{"content":"` + GenAIOlderLastUserB + `","type":"text"}],"role":"user"}]`
	GenAIOlderOutputsB   = `[{"finish_reason":"tool_calls","parts":[{"arguments":"{\"location\":\"Oslo\"}","id":"call_oslo","name":"get_weather","type":"tool_call"}],"role":"assistant"}]`
	GenAICurrentLastUser = "Weather in Paris?\nSend it to " + GenAIEmail + " or call " + GenAIPhone + "."
	GenAICurrentOutput   = "The weather in Paris is currently rainy with a temperature of 57°F. I charged card " + GenAICard + "."
)

// CanonicalJSON re-encodes a JSON text as the featureflattener writes JSON
// cells: object keys sorted, no HTML escaping.
func CanonicalJSON(s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(err)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
