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

// scoringScript is a scoring script written for azureml-monitoring, with the
// import changed: inputs are collected, their correlations attached to the
// predictions, and the process exits at once (the client flushes at exit).
const scoringScript = `
import json
from modeldata_collector import ModelDataCollector, set_request_id, stats

inputs_dc = ModelDataCollector("best_model", designation="inputs", feature_names=["age", "income", "city"])
predictions_dc = ModelDataCollector("best_model", designation="predictions", feature_names=["score"])

set_request_id("ae249167-ab81-46d2-9553-e42c1f93fa77")
data = [[31, 5000.5, "Redmond, WA"], [45, 1200, "Zürich"]]
correlations = inputs_dc.collect(data, user_correlation_id="user42")
predictions = [0.93, 0.12]
predictions_dc.collect(predictions_dc.add_correlations(predictions, correlations))
print(json.dumps(correlations))
`

// TestPythonClientRowsLandInCSV runs the Python client with the system
// python3 against the built collector and finds its inputs and predictions
// in the modeldata layout, joined by the same correlation values.
func TestPythonClientRowsLandInCSV(t *testing.T) {
	python := python3(t)
	collectAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	healthAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	dataDir := t.TempDir()
	testutil.StartCollector(t, localCSVConfig(healthAddr, dataDir, "modeldata", "endpoint: "+collectAddr), collectAddr, healthAddr)

	cmd := exec.Command(python, "-c", scoringScript)
	cmd.Env = append(os.Environ(),
		"PYTHONPATH="+filepath.Join(testutil.RepoRoot(t), "clients", "python"),
		"MODELDATA_COLLECTOR_ENDPOINT=http://"+collectAddr,
		"MODELDATA_MODEL_VERSION=10",
		"MODELDATA_MODEL_CONFIG_MAP="+os.DevNull,
		"SERVICE_NAME=aks-w-collv9",
		"AML_MODEL_DC_STORAGE_ENABLED=true",
	)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\nstderr:\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("the client logged (nothing should go wrong):\n%s", stderr.String())
	}
	var corr map[string]string
	if err := json.Unmarshal(out, &corr); err != nil {
		t.Fatalf("script output %q: %v", out, err)
	}
	correlationID, ts, requestID := corr["$aml_dc_correlation_id"], corr["$aml_dc_scoring_timestamp"], corr["$aml_request_id"]
	if !strings.HasPrefix(correlationID, "user42-") || requestID != "ae249167-ab81-46d2-9553-e42c1f93fa77" {
		t.Fatalf("correlations %v", corr)
	}
	scored, err := time.Parse("2006-01-02T15:04:05.000000", ts)
	if err != nil {
		t.Fatalf("scoring timestamp %q: %v", ts, err)
	}

	day := scored.Format("2006/01/02")
	base := "modeldata/" + localWorkspace + "/aks-w-collv9/best_model/10/"
	tail := []string{correlationID, ts, "1440", localWorkspace, "aks-w-collv9", "best_model", "10", requestID}
	corrHeader := []string{"$aml_dc_correlation_id", "$aml_dc_scoring_timestamp", "$aml_dc_boundary",
		"$aml_workspace", "$aml_service_name", "$aml_model_name", "$aml_model_version", "$aml_request_id"}
	row := func(cells ...string) []string { return append(cells, tail...) }
	want := map[string][][]string{
		base + "inputs/" + day + "/data.csv": {
			append([]string{"age", "income", "city"}, corrHeader...),
			row("31", "5000.5", "Redmond, WA"),
			row("45", "1200", "Zürich"),
		},
		base + "predictions/" + day + "/data.csv": {
			append([]string{"score"}, corrHeader...),
			row("0.93"),
			row("0.12"),
		},
	}
	var got map[string][][]string
	if !testutil.Poll(20*time.Second, func() bool {
		got = testutil.ReadCSVTree(t, dataDir)
		return reflect.DeepEqual(got, want)
	}) {
		t.Fatalf("CSV files:\ngot  %q\nwant %q", got, want)
	}
}
