package contract

import (
	"strings"
	"unicode"
)

// OpenTelemetry GenAI semantic conventions: the events LLM instrumentations
// emit, and how one LLM call becomes two model data rows (designation inputs
// for the request side, predictions for the response side) joined by one
// request id. docs/data-contract.md ("LLM calls") explains the mapping.

// GenAI event names. The current generation (semantic conventions v1.37 and
// later) sends one event per call; the older one sends one event per message,
// in the span context of the call's span.
const (
	GenAIEventDetails          = "gen_ai.client.inference.operation.details"
	GenAIEventSystemMessage    = "gen_ai.system.message"
	GenAIEventUserMessage      = "gen_ai.user.message"
	GenAIEventAssistantMessage = "gen_ai.assistant.message"
	GenAIEventToolMessage      = "gen_ai.tool.message"
	GenAIEventChoice           = "gen_ai.choice"
	// GenAIEventPrefix starts every GenAI event name.
	GenAIEventPrefix = "gen_ai."
	// AttrEventName carries the event name on records of SDKs that predate
	// the log record's own event name field.
	AttrEventName = "event.name"
)

// GenAI attributes read from the events.
const (
	GenAIOperationName      = "gen_ai.operation.name"
	GenAIProviderName       = "gen_ai.provider.name"
	GenAISystem             = "gen_ai.system" // the older name of gen_ai.provider.name
	GenAIRequestModel       = "gen_ai.request.model"
	GenAIRequestPrefix      = "gen_ai.request."
	GenAIResponseModel      = "gen_ai.response.model"
	GenAIResponseID         = "gen_ai.response.id"
	GenAIConversationID     = "gen_ai.conversation.id"
	GenAIOutputType         = "gen_ai.output.type"
	GenAIFinishReasons      = "gen_ai.response.finish_reasons"
	GenAIInputTokens        = "gen_ai.usage.input_tokens"
	GenAIOutputTokens       = "gen_ai.usage.output_tokens"
	GenAISystemInstructions = "gen_ai.system_instructions"
	GenAIInputMessages      = "gen_ai.input.messages"
	GenAIOutputMessages     = "gen_ai.output.messages"
	GenAIErrorType          = "error.type"
)

// Columns of the inputs row of an LLM call, in file order. Request
// parameters other than these (gen_ai.request.<name>) follow, sorted, as
// request_<name>.
const (
	GenAIColOperation          = "operation_name"
	GenAIColProvider           = "provider_name"
	GenAIColRequestModel       = "request_model"
	GenAIColConversationID     = "conversation_id"
	GenAIColSystemInstructions = "system_instructions"
	GenAIColInputMessages      = "input_messages"
	GenAIColLastUserMessage    = "last_user_message"
	GenAIColOutputType         = "output_type"
)

// GenAIRequestParameters are the request parameters every inputs row has a
// column for (empty when the call did not set them), by attribute suffix.
var GenAIRequestParameters = []string{"temperature", "max_tokens", "top_p", "top_k",
	"frequency_penalty", "presence_penalty", "stop_sequences", "seed", "choice.count"}

// GenAIRequestColumn names the column of request parameter gen_ai.request.<suffix>.
func GenAIRequestColumn(suffix string) string {
	return "request_" + strings.ReplaceAll(suffix, ".", "_")
}

// Columns of the predictions row of an LLM call, in file order.
const (
	GenAIColResponseModel      = "response_model"
	GenAIColResponseID         = "response_id"
	GenAIColOutputMessages     = "output_messages"
	GenAIColFirstOutputMessage = "first_output_message"
	GenAIColFinishReasons      = "finish_reasons"
	GenAIColInputTokens        = "usage_input_tokens"
	GenAIColOutputTokens       = "usage_output_tokens"
	GenAIColErrorType          = "error_type"
)

// GenAIInputColumns returns the fixed columns of an inputs row, in order.
func GenAIInputColumns() []string {
	cols := []string{GenAIColOperation, GenAIColProvider, GenAIColRequestModel, GenAIColConversationID,
		GenAIColSystemInstructions, GenAIColInputMessages, GenAIColLastUserMessage}
	for _, p := range GenAIRequestParameters {
		cols = append(cols, GenAIRequestColumn(p))
	}
	return append(cols, GenAIColOutputType)
}

// GenAIPredictionColumns returns the columns of a predictions row, in order.
func GenAIPredictionColumns() []string {
	return []string{GenAIColOperation, GenAIColProvider, GenAIColResponseModel, GenAIColResponseID,
		GenAIColConversationID, GenAIColOutputMessages, GenAIColFirstOutputMessage, GenAIColFinishReasons,
		GenAIColInputTokens, GenAIColOutputTokens, GenAIColErrorType}
}

// GenAIDefaultModel names the model of GenAI events that name none (the
// older per-message events carry no gen_ai.request.model).
const GenAIDefaultModel = "genai"

// SanitizeSegment turns a client value (an LLM's model name such as
// "meta/llama-3:70b") into a valid path segment: "/", "\", control and
// invisible format characters become "_", surrounding space and trailing
// dots are removed, and the result is cut to MaxSegmentLen bytes. It
// returns "" when nothing is left.
func SanitizeSegment(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == unicode.ReplacementChar || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '_'
		}
		return r
	}, s)
	if len(s) > MaxSegmentLen {
		s = strings.ToValidUTF8(s[:MaxSegmentLen], "")
	}
	s = strings.TrimRight(strings.TrimSpace(s), ". ")
	if s == "" || s == "." || s == ".." {
		return ""
	}
	return s
}
