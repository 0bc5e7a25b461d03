package featureflattener

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

// GenAIConfig turns OpenTelemetry GenAI events (LLM calls) into model data rows.
type GenAIConfig struct {
	// Enabled turns GenAI events into rows; other records are not affected.
	Enabled bool `mapstructure:"enabled"`
	// Models maps a gen_ai.request.model value to the model name and version
	// of the rows' path.
	Models map[string]GenAIModel `mapstructure:"models"`
	// DefaultModelVersion is the version of rows whose model is not in Models
	// and that carry no model version attribute.
	DefaultModelVersion string `mapstructure:"default_model_version"`
}

// GenAIModel is the path model name and version of one LLM.
type GenAIModel struct {
	Name    string `mapstructure:"name"`
	Version string `mapstructure:"version"`
}

func defaultGenAIConfig() GenAIConfig {
	return GenAIConfig{Enabled: true, DefaultModelVersion: "1"}
}

func (c *GenAIConfig) validate() error {
	var errs []error
	if err := contract.ValidateSegment("genai.default_model_version", c.DefaultModelVersion); err != nil {
		errs = append(errs, err)
	}
	for m, to := range c.Models {
		if to.Name != "" {
			if err := contract.ValidateSegment(fmt.Sprintf("genai.models[%s].name", m), to.Name); err != nil {
				errs = append(errs, err)
			}
		}
		if to.Version != "" {
			if err := contract.ValidateSegment(fmt.Sprintf("genai.models[%s].version", m), to.Version); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// genAIEventName returns the GenAI event name of a record, or "". The check
// costs one string comparison for records that carry an event name.
func genAIEventName(lr plog.LogRecord) string {
	name := lr.EventName()
	if name == "" {
		if v, ok := lr.Attributes().Get(contract.AttrEventName); ok && v.Type() == pcommon.ValueTypeStr {
			name = v.Str()
		}
	}
	if !strings.HasPrefix(name, contract.GenAIEventPrefix) {
		return ""
	}
	switch name {
	case contract.GenAIEventDetails, contract.GenAIEventSystemMessage, contract.GenAIEventUserMessage,
		contract.GenAIEventAssistantMessage, contract.GenAIEventToolMessage, contract.GenAIEventChoice:
		return name
	}
	return ""
}

// rewriteGenAI replaces the GenAI events of recs by contract rows in place:
// a gen_ai.client.inference.operation.details event by its inputs and
// predictions rows, and the per-message events of one span (trace and span
// id) by the rows of their exchange, at the place of its first message.
// Other records keep their place. Per-message events are grouped within
// recs only. Media inside messages is removed and counted in counts.
func (f *flattener) rewriteGenAI(recs plog.LogRecordSlice, res pcommon.Resource, counts map[string]int64) {
	first := -1
	for i, lr := range recs.All() {
		if genAIEventName(lr) != "" {
			first = i
			break
		}
	}
	if first < 0 {
		return
	}
	out := plog.NewLogRecordSlice()
	out.EnsureCapacity(recs.Len() + 1)
	type slot struct {
		lr plog.LogRecord // a record kept as it is, when ex is nil
		ex *exchange
	}
	var slots []slot
	bySpan := map[[24]byte]*exchange{}
	for i, lr := range recs.All() {
		name := ""
		if i >= first {
			name = genAIEventName(lr)
		}
		switch {
		case name == "":
			slots = append(slots, slot{lr: lr})
		case name == contract.GenAIEventDetails:
			ex := &exchange{}
			ex.fromDetails(lr)
			slots = append(slots, slot{ex: ex})
		default:
			var key [24]byte
			tid, sid := lr.TraceID(), lr.SpanID()
			copy(key[:16], tid[:])
			copy(key[16:], sid[:])
			ex := bySpan[key]
			if ex == nil || tid.IsEmpty() {
				ex = &exchange{}
				slots = append(slots, slot{ex: ex})
				if !tid.IsEmpty() {
					bySpan[key] = ex
				}
			}
			ex.addMessage(name, lr)
		}
	}
	for _, s := range slots {
		if s.ex == nil {
			s.lr.MoveTo(out.AppendEmpty())
			continue
		}
		s.ex.stripMedia(counts)
		f.writeExchange(s.ex, res, out)
	}
	recs.RemoveIf(func(plog.LogRecord) bool { return true })
	out.MoveAndAppendTo(recs)
}

// exchange is one LLM call, read from its event(s).
type exchange struct {
	src       plog.LogRecord // the first event: timestamps, span context, attributes
	inputs    []any          // input messages, role + parts
	outputs   []any          // output messages, role + parts + finish_reason
	outIndex  []int64        // the choice index of each output (older events)
	system    any            // system instructions (current event only)
	hasInputs bool
	hasOutput bool
	details   bool
}

func (ex *exchange) fromDetails(lr plog.LogRecord) {
	ex.src, ex.details, ex.hasInputs, ex.hasOutput = lr, true, true, true
	attrs := lr.Attributes()
	var body pcommon.Map
	if lr.Body().Type() == pcommon.ValueTypeMap {
		body = lr.Body().Map()
	}
	get := func(key string) (pcommon.Value, bool) {
		if v, ok := attrs.Get(key); ok {
			return v, true
		}
		if body != (pcommon.Map{}) {
			return body.Get(key)
		}
		return pcommon.Value{}, false
	}
	if v, ok := get(contract.GenAISystemInstructions); ok {
		ex.system = structured(v)
	}
	if v, ok := get(contract.GenAIInputMessages); ok {
		if s, ok := structured(v).([]any); ok {
			ex.inputs = s
		}
	}
	if v, ok := get(contract.GenAIOutputMessages); ok {
		if s, ok := structured(v).([]any); ok {
			ex.outputs = s
		}
	}
}

// stripMedia removes inline media from the messages: the content of blob
// parts (base64 image, audio or video) and byte values. The part stays, with
// its mime_type and modality, so a reader sees that media was sent.
func (ex *exchange) stripMedia(counts map[string]int64) {
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if t["type"] == "blob" {
				if _, ok := t["content"]; ok {
					delete(t, "content")
					counts[reasonContentType]++
				}
			}
			for k, e := range t {
				if _, ok := e.([]byte); ok {
					delete(t, k)
					counts[reasonBytes]++
					continue
				}
				walk(e)
			}
		case []any:
			for i, e := range t {
				if _, ok := e.([]byte); ok {
					t[i] = nil
					counts[reasonBytes]++
					continue
				}
				walk(e)
			}
		}
	}
	walk(ex.system)
	for _, m := range ex.inputs {
		walk(m)
	}
	for _, m := range ex.outputs {
		walk(m)
	}
}

// structured is a value as the conventions' JSON schemas describe it: an
// AnyValue as is, a string holding JSON parsed (span-attribute style).
func structured(v pcommon.Value) any {
	if v.Type() == pcommon.ValueTypeStr {
		s := strings.TrimSpace(v.Str())
		if strings.HasPrefix(s, "[") || strings.HasPrefix(s, "{") {
			dec := json.NewDecoder(strings.NewReader(s))
			dec.UseNumber()
			var raw any
			if err := dec.Decode(&raw); err == nil && !dec.More() {
				return fromJSON(raw)
			}
		}
	}
	return v.AsRaw()
}

// addMessage adds one per-message event (semantic conventions v1.36 and
// earlier) to the exchange, converted to the current role + parts schema.
func (ex *exchange) addMessage(name string, lr plog.LogRecord) {
	if !ex.hasInputs && !ex.hasOutput {
		ex.src = lr
	}
	var body map[string]any
	switch lr.Body().Type() {
	case pcommon.ValueTypeMap:
		body = lr.Body().Map().AsRaw()
	case pcommon.ValueTypeStr:
		if m, ok := structured(lr.Body()).(map[string]any); ok {
			body = m
		} else {
			body = map[string]any{"content": lr.Body().Str()}
		}
	default:
		body = map[string]any{}
	}
	if name == contract.GenAIEventChoice {
		msg, _ := body["message"].(map[string]any)
		out := oldMessage("assistant", msg)
		if r, ok := body["finish_reason"].(string); ok {
			out["finish_reason"] = r
		}
		idx, _ := body["index"].(int64)
		// keep outputs ordered by choice index
		pos := sort.Search(len(ex.outIndex), func(i int) bool { return ex.outIndex[i] > idx })
		ex.outputs = append(ex.outputs, nil)
		copy(ex.outputs[pos+1:], ex.outputs[pos:])
		ex.outputs[pos] = out
		ex.outIndex = append(ex.outIndex, 0)
		copy(ex.outIndex[pos+1:], ex.outIndex[pos:])
		ex.outIndex[pos] = idx
		ex.hasOutput = true
		return
	}
	role := strings.TrimSuffix(strings.TrimPrefix(name, contract.GenAIEventPrefix), ".message")
	ex.inputs = append(ex.inputs, oldMessage(role, body))
	ex.hasInputs = true
}

// oldMessage converts an older event body ({role, content, tool_calls, id})
// to a message of the current schema ({role, parts}).
func oldMessage(role string, body map[string]any) map[string]any {
	if r, ok := body["role"].(string); ok && r != "" {
		role = r
	}
	var parts []any
	if id, ok := body["id"].(string); ok && role == "tool" {
		parts = append(parts, map[string]any{"type": "tool_call_response", "id": id, "result": body["content"]})
	} else {
		parts = appendContentParts(parts, body["content"])
	}
	if calls, ok := body["tool_calls"].([]any); ok {
		for _, c := range calls {
			call, _ := c.(map[string]any)
			fn, _ := call["function"].(map[string]any)
			parts = append(parts, map[string]any{"type": "tool_call", "id": call["id"], "name": fn["name"], "arguments": fn["arguments"]})
		}
	}
	if parts == nil {
		parts = []any{}
	}
	return map[string]any{"role": role, "parts": parts}
}

// appendContentParts appends the parts of an older message content: a
// string is one text part; a list holds strings, {"text": ...} parts or
// typed parts kept as they are.
func appendContentParts(parts []any, content any) []any {
	switch c := content.(type) {
	case nil:
	case string:
		parts = append(parts, map[string]any{"type": "text", "content": c})
	case []any:
		for _, p := range c {
			switch pt := p.(type) {
			case string:
				parts = append(parts, map[string]any{"type": "text", "content": pt})
			case map[string]any:
				if t, ok := pt["text"].(string); ok && pt["type"] == nil {
					parts = append(parts, map[string]any{"type": "text", "content": t})
				} else {
					parts = append(parts, pt)
				}
			default:
				parts = append(parts, p)
			}
		}
	default:
		parts = append(parts, c)
	}
	return parts
}

// messageText joins the text parts of a message with newlines.
func messageText(msg any) string {
	m, _ := msg.(map[string]any)
	parts, _ := m["parts"].([]any)
	var b strings.Builder
	for _, p := range parts {
		part, _ := p.(map[string]any)
		if part["type"] != "text" {
			continue
		}
		if s, ok := part["content"].(string); ok {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(s)
		}
	}
	return b.String()
}

// jsonCell encodes a value as one JSON cell ("" for nil), without HTML escaping.
func jsonCell(v any) string {
	if v == nil {
		return ""
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// writeExchange appends the inputs and predictions rows of an exchange to out.
func (f *flattener) writeExchange(ex *exchange, res pcommon.Resource, out plog.LogRecordSlice) {
	row, provider := f.exchangeRow(ex, res.Attributes())
	newRow := func(designation string, cols []string) cells {
		lr := out.AppendEmpty()
		lr.SetObservedTimestamp(ex.src.ObservedTimestamp())
		lr.SetTraceID(ex.src.TraceID())
		lr.SetSpanID(ex.src.SpanID())
		lr.SetFlags(ex.src.Flags())
		row.Designation = designation
		contract.WriteRow(lr, row)
		// The body in column order is the column order (contract.Columns).
		body := contract.Features(lr)
		body.EnsureCapacity(len(cols))
		for _, c := range cols {
			body.PutEmpty(c)
		}
		return cells{src: ex.src.Attributes(), body: body}
	}
	if ex.hasInputs {
		writeInputs(ex, provider, newRow)
	}
	if ex.hasOutput {
		writePredictions(ex, provider, newRow)
	}
}

// exchangeRow is the contract row both of an exchange's records share (model,
// version, request and correlation ids, time), and the exchange's provider.
func (f *flattener) exchangeRow(ex *exchange, rattrs pcommon.Map) (contract.Row, string) {
	attrs := ex.src.Attributes()
	reqModel := attrString(attrs, contract.GenAIRequestModel)
	provider := lookup(attrs, rattrs, []string{contract.GenAIProviderName, contract.GenAISystem})
	name, version := "", ""
	if m, ok := f.cfg.GenAI.Models[reqModel]; ok && reqModel != "" {
		name, version = m.Name, m.Version
	}
	for _, c := range []string{reqModel, lookup(attrs, rattrs, f.cfg.ModelNameAttributes),
		attrString(attrs, contract.GenAIResponseModel), provider, contract.GenAIDefaultModel} {
		if name == "" {
			name = contract.SanitizeSegment(c)
		}
	}
	if version == "" {
		version = contract.SanitizeSegment(lookup(attrs, rattrs, f.cfg.ModelVersionAttributes))
	}
	if version == "" {
		version = f.cfg.GenAI.DefaultModelVersion
	}
	tid, sid := ex.src.TraceID(), ex.src.SpanID()
	requestID := attrString(attrs, contract.GenAIResponseID)
	if requestID == "" && !tid.IsEmpty() {
		requestID = hex.EncodeToString(tid[:]) + "-" + hex.EncodeToString(sid[:])
	}
	if requestID == "" {
		requestID = contract.NewCorrelationID("")
	}
	correlationID := lookup(attrs, rattrs, f.cfg.CorrelationIDAttributes)
	if correlationID == "" && !tid.IsEmpty() {
		correlationID = hex.EncodeToString(tid[:])
	}
	if correlationID == "" {
		correlationID = requestID
	}
	return contract.Row{ModelName: name, ModelVersion: version, RequestID: requestID, CorrelationID: correlationID,
		Timestamp: contract.ScoringTime(ex.src)}, provider
}

// writeInputs writes the exchange's inputs row: the request, its messages and
// its parameters (the known ones, then any other gen_ai.request.* by name).
func writeInputs(ex *exchange, provider string, newRow func(string, []string) cells) {
	attrs := ex.src.Attributes()
	cols := contract.GenAIInputColumns()
	var extra []string
	for k := range attrs.All() {
		if s, ok := strings.CutPrefix(k, contract.GenAIRequestPrefix); ok && k != contract.GenAIRequestModel && !slices.Contains(contract.GenAIRequestParameters, s) {
			extra = append(extra, s)
		}
	}
	sort.Strings(extra)
	for _, s := range extra {
		cols = append(cols, contract.GenAIRequestColumn(s))
	}
	c := newRow(contract.DesignationInputs, cols)
	c.str(contract.GenAIColOperation, attrString(attrs, contract.GenAIOperationName))
	c.str(contract.GenAIColProvider, provider)
	c.str(contract.GenAIColRequestModel, attrString(attrs, contract.GenAIRequestModel))
	c.str(contract.GenAIColConversationID, attrString(attrs, contract.GenAIConversationID))
	c.str(contract.GenAIColSystemInstructions, jsonCell(ex.system))
	if ex.inputs != nil {
		c.str(contract.GenAIColInputMessages, jsonCell(ex.inputs))
	}
	for i := len(ex.inputs) - 1; i >= 0; i-- {
		if m, _ := ex.inputs[i].(map[string]any); m["role"] == "user" {
			c.str(contract.GenAIColLastUserMessage, messageText(m))
			break
		}
	}
	for _, p := range contract.GenAIRequestParameters {
		c.attr(contract.GenAIRequestColumn(p), contract.GenAIRequestPrefix+p)
	}
	for _, s := range extra {
		c.attr(contract.GenAIRequestColumn(s), contract.GenAIRequestPrefix+s)
	}
	c.str(contract.GenAIColOutputType, attrString(attrs, contract.GenAIOutputType))
}

// writePredictions writes the exchange's predictions row: the response, its
// messages, finish reasons and token counts.
func writePredictions(ex *exchange, provider string, newRow func(string, []string) cells) {
	attrs := ex.src.Attributes()
	c := newRow(contract.DesignationPredictions, contract.GenAIPredictionColumns())
	c.str(contract.GenAIColOperation, attrString(attrs, contract.GenAIOperationName))
	c.str(contract.GenAIColProvider, provider)
	c.str(contract.GenAIColResponseModel, attrString(attrs, contract.GenAIResponseModel))
	c.str(contract.GenAIColResponseID, attrString(attrs, contract.GenAIResponseID))
	c.str(contract.GenAIColConversationID, attrString(attrs, contract.GenAIConversationID))
	if ex.outputs != nil {
		c.str(contract.GenAIColOutputMessages, jsonCell(ex.outputs))
		if len(ex.outputs) > 0 {
			c.str(contract.GenAIColFirstOutputMessage, messageText(ex.outputs[0]))
		}
	}
	if _, ok := attrs.Get(contract.GenAIFinishReasons); ok {
		c.attr(contract.GenAIColFinishReasons, contract.GenAIFinishReasons)
	} else if !ex.details {
		var reasons []any
		for _, o := range ex.outputs {
			if r, ok := o.(map[string]any)["finish_reason"]; ok {
				reasons = append(reasons, r)
			}
		}
		if reasons != nil {
			c.str(contract.GenAIColFinishReasons, jsonCell(reasons))
		}
	}
	c.attr(contract.GenAIColInputTokens, contract.GenAIInputTokens)
	c.attr(contract.GenAIColOutputTokens, contract.GenAIOutputTokens)
	c.str(contract.GenAIColErrorType, attrString(attrs, contract.GenAIErrorType))
}

// cells fills one GenAI row's body from the source record's attributes.
type cells struct {
	src, body pcommon.Map
}

// str sets a text cell; an empty text leaves the cell empty.
func (c cells) str(col, s string) {
	if s != "" {
		c.body.PutStr(col, s)
	}
}

// attr copies the source attribute key into a cell, lists and maps as JSON.
func (c cells) attr(col, key string) {
	if v, ok := c.src.Get(key); ok {
		switch v.Type() {
		case pcommon.ValueTypeSlice, pcommon.ValueTypeMap:
			c.body.PutStr(col, jsonCell(v.AsRaw()))
		default:
			v.CopyTo(c.body.PutEmpty(col))
		}
	}
}

// attrString is an attribute's value as text, "" when it is absent.
func attrString(attrs pcommon.Map, key string) string {
	if v, ok := attrs.Get(key); ok {
		return v.AsString()
	}
	return ""
}
