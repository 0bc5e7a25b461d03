package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// requestEnvelope is the first Request envelope of envelopes, if any.
func requestEnvelope(envelopes []map[string]any) map[string]any {
	for _, e := range envelopes {
		if data, _ := e["data"].(map[string]any); data != nil && data["baseType"] == "RequestData" {
			return e
		}
	}
	return nil
}

// TestScoringServiceRowsToCSVAndSpansToAppInsights runs the example scoring
// service against the built collector on the example's own config: its OTel log
// records land as inputs and predictions CSV rows that join on the request id,
// and its server span reaches the (stub) Application Insights endpoint as a
// Request envelope carrying the same request id.
func TestScoringServiceRowsToCSVAndSpansToAppInsights(t *testing.T) {
	root := testutil.RepoRoot(t)
	testutil.CollectorBinary(t) // skips before building anything when there is no binary

	stub := testutil.StartIngestionStub(t)

	dataDir := t.TempDir()
	grpcPort, httpPort, healthPort, metricsPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	config := string(testutil.ReadFile(t, filepath.Join(root, "examples", "scoring-service", "otel-config.yaml")))
	config = strings.NewReplacer(":4317", fmt.Sprintf(":%d", grpcPort), ":4318", fmt.Sprintf(":%d", httpPort),
		":13133", fmt.Sprintf(":%d", healthPort)).Replace(config)
	// The collector's own metrics on a free port, not the default 8888 another run may hold.
	config += fmt.Sprintf("  telemetry:\n    metrics:\n      readers: [{pull: {exporter: {prometheus: {host: 127.0.0.1, port: %d}}}}]\n", metricsPort)
	const iKey = "11111111-2222-3333-4444-555555555555"
	t.Setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey="+iKey+";IngestionEndpoint="+stub.URL()+"/")
	t.Setenv("OTELCOL_DATA_DIR", dataDir)
	t.Setenv("OTELCOL_LISTEN_HOST", "127.0.0.1")
	testutil.StartCollector(t, config, fmt.Sprintf("127.0.0.1:%d", httpPort))

	service := filepath.Join(t.TempDir(), "scoring-service")
	build := exec.Command("go", "build", "-o", service, "./examples/scoring-service")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/scoring-service: %v\n%s", err, out)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cmd := exec.Command(service)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d", httpPort),
		"OTEL_SERVICE_NAME=best-model-scoring", "MODEL_NAME=best_model", "MODEL_VERSION=10",
		"LISTEN_ADDR="+listen,
		// Export batches after 100 ms instead of 1 s (logs) and 5 s (spans).
		"OTEL_BLRP_SCHEDULE_DELAY=100", "OTEL_BSP_SCHEDULE_DELAY=100")
	var serviceOutput strings.Builder
	cmd.Stdout, cmd.Stderr = &serviceOutput, &serviceOutput
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("scoring service output:\n%s", serviceOutput.String())
		}
	})
	if err := testutil.WaitForPort(listen, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	const requestID = "ae249167-ab81-46d2-9553-e42c1f93fa77"
	req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/score",
		strings.NewReader(`{"data": [[31, 5000.5, "Redmond"], [62, 1200, "Zürich"]]}`))
	req.Header.Set("X-Request-Id", requestID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /score: %d %s", resp.StatusCode, answer)
	}

	// Both designations land under the service's name, each row carrying the request id.
	day := time.Now().UTC()
	dir := func(designation string) string {
		return filepath.Join("modeldata", "00000000-0000-0000-0000-000000000000", "local", "local",
			"best-model-scoring", "best_model", "10", designation, day.Format("2006"), day.Format("01"), day.Format("02"))
	}
	var files map[string][][]string
	landed := testutil.Poll(30*time.Second, func() bool {
		files = testutil.ReadCSVTree(t, dataDir)
		return len(files[filepath.Join(dir("inputs"), "data.csv")]) == 3 &&
			len(files[filepath.Join(dir("predictions"), "data.csv")]) == 3
	})
	if !landed {
		t.Fatalf("rows did not land; files: %v", files)
	}
	for _, designation := range []string{"inputs", "predictions"} {
		rows := files[filepath.Join(dir(designation), "data.csv")]
		header := rows[0]
		if header[len(header)-1] != "$aml_request_id" {
			t.Fatalf("%s header %v: last column is not $aml_request_id", designation, header)
		}
		for _, row := range rows[1:] {
			if got := row[len(row)-1]; got != requestID {
				t.Errorf("%s row %v: request id %q, want %q", designation, row, got, requestID)
			}
		}
	}
	if got := files[filepath.Join(dir("inputs"), "data.csv")][0][:3]; strings.Join(got, ",") != "age,income,city" {
		t.Errorf("inputs columns %v, want age,income,city first", got)
	}

	// The server span reaches Application Insights as a Request.
	var request map[string]any
	if !testutil.Poll(30*time.Second, func() bool { request = requestEnvelope(stub.Envelopes()); return request != nil }) {
		t.Fatalf("no Request envelope reached the ingestion stub; got %d envelopes", len(stub.Envelopes()))
	}
	if request["iKey"] != iKey {
		t.Errorf("iKey %v, want %s", request["iKey"], iKey)
	}
	tags, _ := request["tags"].(map[string]any)
	if tags["ai.cloud.role"] != "best-model-scoring" {
		t.Errorf("ai.cloud.role %v, want best-model-scoring", tags["ai.cloud.role"])
	}
	baseData, _ := request["data"].(map[string]any)["baseData"].(map[string]any)
	if baseData["responseCode"] != "200" || baseData["success"] != true {
		t.Errorf("request baseData %v: want responseCode 200, success true", baseData)
	}
	properties, _ := baseData["properties"].(map[string]any)
	if properties["modeldata.request_id"] != requestID {
		t.Errorf("request properties %v: want modeldata.request_id %s", properties, requestID)
	}
}
