package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestAzureMLV2SDKRowsLandInCSV sends what azureml-ai-monitoring sends
// (v2_sdk_client.py, system python3, stdlib urllib) to the built collector
// and finds the inputs and outputs in the modeldata layout, joined by the
// SDK's correlation id; compact mode is refused with 415.
func TestAzureMLV2SDKRowsLandInCSV(t *testing.T) {
	python := python3(t)
	collectAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	v2Port := testutil.FreePort(t)
	v2Addr := fmt.Sprintf("127.0.0.1:%d", v2Port)
	healthAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	dataDir := t.TempDir()
	testutil.StartCollector(t, localCSVConfig(healthAddr, dataDir, "modeldata", `endpoint: `+collectAddr+`
azureml_v2:
  endpoint: `+v2Addr+`
  model_name: fallback_model
  webservice: aks-w-collv9`), collectAddr, v2Addr, healthAddr)

	cmd := exec.Command(python, filepath.Join(testutil.RepoRoot(t), "test", "e2e", "v2_sdk_client.py"))
	cmd.Env = append(os.Environ(), "AZUREML_MDC_HOST=127.0.0.1", fmt.Sprintf("AZUREML_MDC_PORT=%d", v2Port))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\nstderr:\n%s", err, stderr.String())
	}
	type answer struct {
		Status int
		Body   string
	}
	var got struct {
		CorrelationID            string `json:"correlation_id"`
		Inputs, Outputs, Compact answer
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("script output %q: %v", out, err)
	}
	if got.Inputs.Status != 200 || got.Outputs.Status != 200 {
		t.Fatalf("inputs %+v outputs %+v", got.Inputs, got.Outputs)
	}
	if got.Compact.Status != 415 || !strings.Contains(got.Compact.Body, "AZUREML_MDC_FORMAT_COMPACT") {
		t.Errorf("compact mode: %+v", got.Compact)
	}

	id := got.CorrelationID
	ts := "2020-08-13T15:44:16.000000" // ce-time 1597333456
	base := "modeldata/" + localWorkspace + "/aks-w-collv9/best_model/10/"
	tail := []string{id, ts, "1440", localWorkspace, "aks-w-collv9", "best_model", "10", id}
	corrHeader := []string{"$aml_dc_correlation_id", "$aml_dc_scoring_timestamp", "$aml_dc_boundary",
		"$aml_workspace", "$aml_service_name", "$aml_model_name", "$aml_model_version", "$aml_request_id"}
	row := func(cells ...string) []string { return append(cells, tail...) }
	want := map[string][][]string{
		base + "inputs/2020/08/13/data.csv": {
			append([]string{"age", "income", "city", "url", "flag", "score"}, corrHeader...),
			row("31", "5000.5", "Zürich", "http://x", "True", ""),
			row("45", "1200.25", "Redmond, WA", "", "False", "0.25"),
		},
		base + "predictions/2020/08/13/data.csv": {
			append([]string{"prediction"}, corrHeader...),
			row("0.93"),
			row("0.12"),
		},
	}
	var files map[string][][]string
	if !testutil.Poll(20*time.Second, func() bool {
		files = testutil.ReadCSVTree(t, dataDir)
		return reflect.DeepEqual(files, want)
	}) {
		t.Fatalf("CSV files:\ngot  %q\nwant %q", files, want)
	}
}
