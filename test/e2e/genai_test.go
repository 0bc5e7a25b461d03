package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// genAIExampleConfig is examples/genai/otel-config.yaml on free ports and a
// test folder, with a second exporter instance writing the same rows as MDC
// JSONL.
func genAIExampleConfig(t *testing.T, grpcAddr, httpAddr, healthAddr, dataDir string) (cfg, path string) {
	path = filepath.Join(testutil.RepoRoot(t), "examples", "genai", "otel-config.yaml")
	cfg = string(testutil.ReadFile(t, path))
	for _, r := range [][2]string{
		{"${env:OTELCOL_LISTEN_HOST:-localhost}:4317", grpcAddr},
		{"${env:OTELCOL_LISTEN_HOST:-localhost}:4318", httpAddr},
		{"${env:OTELCOL_LISTEN_HOST:-localhost}:13133", healthAddr},
		{"${env:OTELCOL_DATA_DIR:-./data}", dataDir},
		{"exporters: [modeldatablob]", "exporters: [modeldatablob, modeldatablob/mdc]"},
		{"\nexporters:\n", `
exporters:
  modeldatablob/mdc:
    backend: local
    local:
      directory: ` + dataDir + `
    format: mdc_jsonl
    mdc:
      instance_id: replica-0
`},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("examples/genai/otel-config.yaml no longer contains %q", r[0])
		}
		cfg = strings.ReplaceAll(cfg, r[0], r[1])
	}
	return cfg, path
}

// TestGenAIEventsToCSVMasked sends GenAI events of both convention
// generations, shaped as the conventions define them (tool calls, multi-part
// messages, personal data in the texts), over OTLP/HTTP to the built
// collector running examples/genai/otel-config.yaml. Every CSV cell is
// checked, the MDC JSONL rows of the current event too, and no byte under
// the data folder (CSV, JSONL, the persistent queue) holds the e-mail
// address, phone number or card number.
func TestGenAIEventsToCSVMasked(t *testing.T) {
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	healthAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	dataDir := t.TempDir()
	cfg, examplePath := genAIExampleConfig(t, grpcAddr, httpAddr, healthAddr, dataDir)
	if out, err := exec.Command(testutil.CollectorBinary(t), "validate", "--config", examplePath).CombinedOutput(); err != nil {
		t.Fatalf("validate examples/genai/otel-config.yaml: %v\n%s", err, out)
	}
	testutil.StartCollector(t, cfg, httpAddr, healthAddr)

	postOTLPLogs(t, httpAddr, testutil.GenAICurrentLogs())
	older := testutil.GenAIOlderLogs()
	older.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
		return lr.TraceID().IsEmpty() // its request id is a new UUID; the unit test covers it
	})
	postOTLPLogs(t, httpAddr, older)

	mask := strings.NewReplacer(testutil.GenAIEmail, "<email>", testutil.GenAIPhone, "<phone>", testutil.GenAICard, "<card>").Replace
	const (
		ws       = "00000000-0000-0000-0000-000000000000/local/local"
		traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanA    = traceHex + "-00f067aa0ba902b7"
		spanB    = traceHex + "-00f067aa0ba902b8"
		ts       = "2026-11-20T10:00:00.123456"
	)
	aml := contract.CorrelationColumns
	ids := func(model, requestID string) []string {
		return []string{traceHex, ts, "1440", ws, "weather-agent", model, "1", requestID}
	}
	row := func(cells []string, model, requestID string) []string {
		return append(append([]string{}, cells...), ids(model, requestID)...)
	}
	// inputs: operation .. last_user_message, 9 request parameters, output_type
	inputs := func(operation, model, conversation, system, messages, lastUser string, params []string, outputType string) []string {
		return append(append([]string{operation, "openai", model, conversation, system, mask(messages), mask(lastUser)}, params...), outputType)
	}
	noParams := make([]string, len(contract.GenAIRequestParameters))
	dir := "modeldata/" + ws + "/weather-agent/"
	want := map[string][][]string{
		dir + "gpt-4/1/inputs/2026/11/20/data.csv": {
			append(append(contract.GenAIInputColumns(), "request_encoding_formats"), aml...),
			row(append(inputs("chat", "gpt-4", "conv_5j66UpCpwteGg4YSxUnt7lPY",
				testutil.CanonicalJSON(testutil.GenAISystemInstructionsJSON), testutil.CanonicalJSON(testutil.GenAIInputMessagesJSON),
				testutil.GenAICurrentLastUser,
				// temperature, max_tokens, top_p, top_k, frequency_penalty, presence_penalty, stop_sequences, seed, choice.count
				[]string{"0.2", "100", "1", "", "", "", `["forest","lived"]`, "100", ""}, "text"), `["float"]`), "gpt-4", "chatcmpl-123"),
		},
		dir + "gpt-4/1/predictions/2026/11/20/data.csv": {
			append(contract.GenAIPredictionColumns(), aml...),
			row([]string{"chat", "openai", "gpt-4-0613", "chatcmpl-123", "conv_5j66UpCpwteGg4YSxUnt7lPY",
				mask(testutil.CanonicalJSON(testutil.GenAIOutputMessagesJSON)), mask(testutil.GenAICurrentOutput), `["stop"]`, "100", "180", ""},
				"gpt-4", "chatcmpl-123"),
		},
		dir + "openai/1/inputs/2026/11/20/data.csv": {
			append(contract.GenAIInputColumns(), aml...),
			row(inputs("", "", "", "", testutil.GenAIOlderInputsA, testutil.GenAIOlderLastUserA, noParams, ""), "openai", spanA),
			row(inputs("", "", "", "", testutil.GenAIOlderInputsB, testutil.GenAIOlderLastUserB, noParams, ""), "openai", spanB),
		},
		dir + "openai/1/predictions/2026/11/20/data.csv": {
			append(contract.GenAIPredictionColumns(), aml...),
			row([]string{"", "openai", "", "", "", mask(testutil.GenAIOlderOutputsA), mask(testutil.GenAIOlderOutputA), `["stop"]`, "", "", ""}, "openai", spanA),
			row([]string{"", "openai", "", "", "", mask(testutil.GenAIOlderOutputsB), "", `["tool_calls"]`, "", "", ""}, "openai", spanB),
		},
	}
	var got map[string][][]string
	if !testutil.Poll(30*time.Second, func() bool {
		got = testutil.ReadCSVTree(t, dataDir)
		return reflect.DeepEqual(got, want)
	}) {
		t.Fatalf("CSV files:\ngot  %q\nwant %q", got, want)
	}

	checkGenAIAnalyzeQueries(t, dataDir, mask)

	// MDC JSONL: the rows of the current event, every field of data.
	mdcDir := filepath.Join(dataDir, "modeldata", "modelDataCollector", "local", "local")
	wantMDC := map[string]map[string]any{
		"model_inputs": {
			"operation_name": "chat", "provider_name": "openai", "request_model": "gpt-4",
			"conversation_id": "conv_5j66UpCpwteGg4YSxUnt7lPY", "system_instructions": testutil.CanonicalJSON(testutil.GenAISystemInstructionsJSON),
			"input_messages": mask(testutil.CanonicalJSON(testutil.GenAIInputMessagesJSON)), "last_user_message": mask(testutil.GenAICurrentLastUser),
			"request_temperature": 0.2, "request_max_tokens": 100.0, "request_top_p": 1.0, "request_top_k": nil,
			"request_frequency_penalty": nil, "request_presence_penalty": nil, "request_stop_sequences": `["forest","lived"]`,
			"request_seed": 100.0, "request_choice_count": nil, "output_type": "text", "request_encoding_formats": `["float"]`,
		},
		"model_outputs": {
			"operation_name": "chat", "provider_name": "openai", "response_model": "gpt-4-0613", "response_id": "chatcmpl-123",
			"conversation_id": "conv_5j66UpCpwteGg4YSxUnt7lPY", "output_messages": mask(testutil.CanonicalJSON(testutil.GenAIOutputMessagesJSON)),
			"first_output_message": mask(testutil.GenAICurrentOutput), "finish_reasons": `["stop"]`,
			"usage_input_tokens": 100.0, "usage_output_tokens": 180.0, "error_type": nil,
		},
	}
	for collection, wantData := range wantMDC {
		file := filepath.Join(mdcDir, collection, "2026", "11", "20", "10", "replica-0.jsonl")
		var rec map[string]any
		if !testutil.Poll(30*time.Second, func() bool {
			rec = mdcRecord(file, "chatcmpl-123")
			return rec != nil
		}) {
			t.Fatalf("%s: no record of request chatcmpl-123", file)
		}
		data, _ := rec["data"].([]any)
		if len(data) != 1 || !reflect.DeepEqual(data[0], wantData) {
			t.Errorf("%s data:\ngot  %v\nwant %v", collection, data, wantData)
		}
		if rec["correlationid"] != traceHex || rec["modelversion"] != "1" {
			t.Errorf("%s: correlationid %v, modelversion %v", collection, rec["correlationid"], rec["modelversion"])
		}
	}

	// No output byte holds the personal data, in any spelling the fixtures use.
	secrets := []string{testutil.GenAIEmail, testutil.GenAIPhone, testutil.GenAICard, "jane.doe", "555-0100", "4111"}
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// mdcRecord returns the JSONL record of a request id in file, or nil.
func mdcRecord(file, requestID string) map[string]any {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["xrequestid"] == requestID {
			return rec
		}
	}
	return nil
}

// checkGenAIAnalyzeQueries runs the SQL blocks of docs/analyze.md's "LLM
// calls" section (the views, then each query) in DuckDB on the files in
// dataDir and checks their results.
func checkGenAIAnalyzeQueries(t *testing.T, dataDir string, mask func(string) string) {
	t.Helper()
	doc := string(testutil.ReadFile(t, filepath.Join(testutil.RepoRoot(t), "docs", "analyze.md")))
	_, section, ok := strings.Cut(doc, "\n## LLM calls\n")
	if !ok {
		t.Fatal(`docs/analyze.md has no "## LLM calls" section`)
	}
	var blocks []string
	for _, part := range strings.Split(section, "```sql\n")[1:] {
		sql, _, _ := strings.Cut(part, "```")
		blocks = append(blocks, strings.ReplaceAll(sql, "'modeldata/", "'"+filepath.ToSlash(dataDir)+"/modeldata/"))
	}
	const traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	want := [][][]any{
		{{"gpt-4", "2026-11-20", "1", "100", "180"}, {"openai", "2026-11-20", "2", nil, nil}},
		{{"stop", "2"}, {"tool_calls", "1"}},
		{
			{"gpt-4", "chatcmpl-123", mask(testutil.GenAICurrentLastUser), mask(testutil.GenAICurrentOutput), `["stop"]`, "3"},
			{"openai", traceHex + "-00f067aa0ba902b7", mask(testutil.GenAIOlderLastUserA), mask(testutil.GenAIOlderOutputA), `["stop"]`, "4"},
			{"openai", traceHex + "-00f067aa0ba902b8", mask(testutil.GenAIOlderLastUserB), nil, `["tool_calls"]`, "1"},
		},
	}
	if len(blocks) != 1+len(want) {
		t.Fatalf("docs/analyze.md LLM calls: %d sql blocks, want the views and %d queries", len(blocks), len(want))
	}
	for i, w := range want {
		got := testutil.DuckDB(t, blocks[0]+blocks[i+1]).Rows
		if !reflect.DeepEqual(got, w) {
			t.Errorf("docs/analyze.md LLM calls query %d:\ngot  %q\nwant %q", i+1, got, w)
		}
	}
}
