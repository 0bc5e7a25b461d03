package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

type contractRow struct {
	model, version, designation, correlationID, requestID string
	ts                                                    time.Time
	features                                              [][2]any // name, value in order
}

func contractLogs(webservice string, rows []contractRow) plog.Logs {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(contract.AttrWebservice, webservice)
	sl := rl.ScopeLogs().AppendEmpty()
	for _, r := range rows {
		lr := sl.LogRecords().AppendEmpty()
		var names []string
		body := contract.Features(lr)
		for _, f := range r.features {
			name := f[0].(string)
			names = append(names, name)
			if err := body.PutEmpty(name).FromRaw(f[1]); err != nil {
				panic(err)
			}
		}
		contract.WriteRow(lr, contract.Row{ModelName: r.model, ModelVersion: r.version, Designation: r.designation,
			CorrelationID: r.correlationID, RequestID: r.requestID, FeatureNames: names, Timestamp: r.ts})
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	}
	return logs
}

func postOTLPLogs(t *testing.T, endpoint string, logs plog.Logs) {
	t.Helper()
	body, err := (&plog.JSONMarshaler{}).MarshalLogs(logs)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+endpoint+"/v1/logs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP/HTTP logs: status %d", resp.StatusCode)
	}
}

// TestOTLPLogsLandAsModeldataCSV sends contract log records through the otlp
// receiver and checks each CSV file byte for byte: path, header, cells.
func TestOTLPLogsLandAsModeldataCSV(t *testing.T) {
	otlpAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	healthAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	dataDir := t.TempDir()
	testutil.StartCollector(t, localCSVConfig(healthAddr, dataDir, "otlp", "protocols:\n  http:\n    endpoint: "+otlpAddr), otlpAddr, healthAddr)

	day1 := time.Date(2018, 12, 31, 23, 59, 59, 123456000, time.UTC)
	day2 := day1.Add(2 * time.Second) // across midnight: the next day's folder
	postOTLPLogs(t, otlpAddr, contractLogs("aks-w-collv9", []contractRow{
		{model: "best_model", version: "10", designation: "inputs", correlationID: "c1", requestID: "r1", ts: day1,
			features: [][2]any{{"age", int64(31)}, {"income", 5000.5}, {"city", "Redmond, WA"}}},
		{model: "best_model", version: "10", designation: "inputs", correlationID: "c2", requestID: "r2", ts: day2,
			features: [][2]any{{"age", int64(45)}, {"income", 1200.0}, {"city", "Zürich"}}},
		{model: "best_model", version: "10", designation: "predictions", correlationID: "c1", requestID: "r1", ts: day1,
			features: [][2]any{{"score", 0.93}, {"approved", true}}},
	}))

	base := "modeldata/" + localWorkspace + "/aks-w-collv9/best_model/10/"
	inputsHeader := []string{"age", "income", "city", "$aml_dc_correlation_id", "$aml_dc_scoring_timestamp", "$aml_dc_boundary",
		"$aml_workspace", "$aml_service_name", "$aml_model_name", "$aml_model_version", "$aml_request_id"}
	want := map[string][][]string{
		base + "inputs/2018/12/31/data.csv": {inputsHeader,
			{"31", "5000.5", "Redmond, WA", "c1", "2018-12-31T23:59:59.123456", "1440", localWorkspace, "aks-w-collv9", "best_model", "10", "r1"}},
		base + "inputs/2019/01/01/data.csv": {inputsHeader,
			{"45", "1200", "Zürich", "c2", "2019-01-01T00:00:01.123456", "1440", localWorkspace, "aks-w-collv9", "best_model", "10", "r2"}},
		base + "predictions/2018/12/31/data.csv": {
			{"score", "approved", "$aml_dc_correlation_id", "$aml_dc_scoring_timestamp", "$aml_dc_boundary",
				"$aml_workspace", "$aml_service_name", "$aml_model_name", "$aml_model_version", "$aml_request_id"},
			{"0.93", "True", "c1", "2018-12-31T23:59:59.123456", "1440", localWorkspace, "aks-w-collv9", "best_model", "10", "r1"}},
	}
	var got map[string][][]string
	if !testutil.Poll(20*time.Second, func() bool {
		got = testutil.ReadCSVTree(t, dataDir)
		return reflect.DeepEqual(got, want)
	}) {
		t.Fatalf("CSV files:\ngot  %q\nwant %q", got, want)
	}
	// Line ends are CRLF as Python's csv writer produced.
	raw := testutil.ReadFile(t, filepath.Join(dataDir, base+"predictions/2018/12/31/data.csv"))
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Fatalf("lines do not end in CRLF: %q", raw)
	}
}
