package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// ottlPipelineConfig runs collect API rows through the contrib OTTL
// processors: transform renames the feature column age to age_years in its
// place (the body key where it stands, and the name in a feature names list
// when a record carries one: docs/data-contract.md#column-order), filter drops
// every row of the model shadow_model, and attributes removes the request id.
func ottlPipelineConfig(collectAddr, healthAddr, dataDir string) string {
	return localPipeline{healthAddr: healthAddr, dataDir: dataDir,
		receiver: component{"modeldata", "endpoint: " + collectAddr},
		processors: []component{
			{"featureflattener", ""},
			{"transform/rename_age", `
error_mode: propagate
log_statements:
  - statements:
      - replace_all_patterns(log.body, "key", "^age$", "age_years")
      - set(log.attributes["modeldata.feature_names"][Index(log.attributes["modeldata.feature_names"], "age")], "age_years") where log.attributes["modeldata.feature_names"] != nil and Index(log.attributes["modeldata.feature_names"], "age") >= 0`},
			{"filter/drop_shadow", `
error_mode: propagate
logs:
  log_record:
    - log.attributes["modeldata.model.name"] == "shadow_model"`},
			{"attributes/no_request_id", `
actions:
  - key: modeldata.request_id
    action: delete`},
		}}.config()
}

// TestOTTLProcessorsRenameDropAndRedact proves the transform, filter and
// attributes processors of the distribution on contract rows: the config
// passes `validate`, and the CSV files hold exactly the rows and columns the
// statements leave.
func TestOTTLProcessorsRenameDropAndRedact(t *testing.T) {
	collectAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	healthAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	dataDir := t.TempDir()
	cfg := ottlPipelineConfig(collectAddr, healthAddr, dataDir)

	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testutil.CollectorBinary(t), "validate", "--config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}

	testutil.StartCollector(t, cfg, collectAddr, healthAddr)
	post := func(model, body string) {
		t.Helper()
		resp, err := http.Post("http://"+collectAddr+"/v1/collect", "application/json", strings.NewReader(
			`{"model_name":"`+model+`","model_version":"3","designation":"inputs",`+body+`}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("collect %s: status %d", model, resp.StatusCode)
		}
	}
	post("shadow_model", `"feature_names":["age","city"],"data":[[50,"Bern"]],"correlation_id":"c0","scoring_timestamp":"2026-11-20T10:00:00.000001","request_id":"r0"`)
	post("churn", `"feature_names":["income","age","city"],"data":[[5000.5,31,"Redmond"],[1200,45,"Zürich"]],`+
		`"correlation_id":"c1","scoring_timestamp":"2026-11-20T10:00:00.000002","request_id":"r1"`)
	post("churn", `"feature_names":["income","age","city"],"data":[[10,52,"Oslo"]],"correlation_id":"c2","scoring_timestamp":"2026-11-20T10:00:00.000003","request_id":"r2"`)
	// An empty object has no column of its own: the flattener keeps its
	// place with a feature names list, which the rename edits too.
	post("tagged", `"data":[{"income":7,"age":40,"tags":{}}],"correlation_id":"c3","scoring_timestamp":"2026-11-20T10:00:00.000004","request_id":"r3"`)

	aml := []string{"$aml_dc_correlation_id", "$aml_dc_scoring_timestamp", "$aml_dc_boundary", "$aml_workspace",
		"$aml_service_name", "$aml_model_name", "$aml_model_version", "$aml_request_id"}
	ids := func(model, corr, ts string) []string {
		return []string{corr, ts, "1440", localWorkspace, "default-service", model, "3", contract.NilRequestID}
	}
	want := map[string][][]string{
		"modeldata/" + localWorkspace + "/default-service/churn/3/inputs/2026/11/20/data.csv": {
			append([]string{"income", "age_years", "city"}, aml...),
			append([]string{"5000.5", "31", "Redmond"}, ids("churn", "c1", "2026-11-20T10:00:00.000002")...),
			append([]string{"1200", "45", "Zürich"}, ids("churn", "c1", "2026-11-20T10:00:00.000002")...),
			append([]string{"10", "52", "Oslo"}, ids("churn", "c2", "2026-11-20T10:00:00.000003")...),
		},
		"modeldata/" + localWorkspace + "/default-service/tagged/3/inputs/2026/11/20/data.csv": {
			append([]string{"income", "age_years", "tags"}, aml...),
			append([]string{"7", "40", ""}, ids("tagged", "c3", "2026-11-20T10:00:00.000004")...),
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
