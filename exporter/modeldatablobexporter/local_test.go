package modeldatablobexporter

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
)

const ws = "1a2b3c4d-0000-0000-0000-000000000000/myresourcegrp/myworkspace"

func refConfig(t *testing.T) *Config {
	cfg := localConfig(t)
	cfg.SubscriptionID, cfg.ResourceGroup, cfg.Workspace = "1A2B3C4D-0000-0000-0000-000000000000", "MyResourceGrp", "MyWorkspace"
	return cfg
}

func push(t *testing.T, e *blobExporter, rows ...testRow) {
	t.Helper()
	if err := e.push(context.Background(), makeLogs(rows...)); err != nil {
		t.Fatalf("push: %v", err)
	}
}

// layoutPushes are the pushes of the byte-for-byte layout tests (local and
// Azurite); layoutWant is what they must leave, relative to the container.
func layoutPushes() [][]testRow {
	svc := map[string]string{contract.AttrWebservice: "aks-w-collv9"}
	next := day.Add(2e9) // across midnight
	return [][]testRow{{
		{resource: svc, model: "best_model", version: "10", designation: "inputs", correlationID: "c1", requestID: "r1", ts: day,
			features: [][2]any{{"age", int64(31)}, {"income", 5000.5}, {"city", "Redmond, WA"}}},
		{resource: svc, model: "best_model", version: "10", designation: "inputs", correlationID: "c2", ts: next,
			features: [][2]any{{"age", int64(45)}, {"income", 1200.0}, {"city", "Zürich \"ZH\"\nline 2"}}},
		{resource: svc, model: "best_model", version: "10", designation: "predictions", correlationID: "c1", requestID: "r1", ts: day,
			features: [][2]any{{"score", 0.93}, {"approved", true}}, undeclared: [][2]any{{"z", nil}, {"b", "x"}}},
	}, {
		{resource: svc, model: "best_model", version: "10", designation: "inputs", correlationID: "c3", requestID: "r3", ts: day,
			features: [][2]any{{"age", int64(1)}, {"income", 2.0}, {"city", "=cmd"}}},
	}}
}

func layoutWant() map[string]string {
	base := ws + "/aks-w-collv9/best_model/10/"
	tail := ",$aml_dc_correlation_id,$aml_dc_scoring_timestamp,$aml_dc_boundary,$aml_workspace,$aml_service_name,$aml_model_name,$aml_model_version,$aml_request_id\r\n"
	return map[string]string{
		base + "inputs/2018/12/31/data.csv": "age,income,city" + tail +
			"31,5000.5,\"Redmond, WA\",c1,2018-12-31T23:59:59.123456,1440," + ws + ",aks-w-collv9,best_model,10,r1\r\n" +
			"1,2,=cmd,c3,2018-12-31T23:59:59.123456,1440," + ws + ",aks-w-collv9,best_model,10,r3\r\n",
		// A newline inside a quoted cell stays a bare LF, as Python's csv writer left it.
		base + "inputs/2019/01/01/data.csv": "age,income,city" + tail +
			"45,1200,\"Zürich \"\"ZH\"\"\nline 2\",c2,2019-01-01T00:00:01.123456,1440," + ws + ",aks-w-collv9,best_model,10,00000000-0000-0000-0000-000000000000\r\n",
		// Body keys not in feature_names follow the declared ones, sorted.
		base + "predictions/2018/12/31/data.csv": "score,approved,b,z" + tail +
			"0.93,True,x,,c1,2018-12-31T23:59:59.123456,1440," + ws + ",aks-w-collv9,best_model,10,r1\r\n",
	}
}

// TestLayoutAndColumns checks files byte for byte: path, header, cells, CRLF.
func TestLayoutAndColumns(t *testing.T) {
	cfg := refConfig(t)
	e := newTestExporter(t, cfg)
	for _, rows := range layoutPushes() {
		push(t, e, rows...)
	}
	got := map[string]string{}
	for _, f := range localFiles(t, cfg) {
		got[f] = readLocal(t, cfg, f)
	}
	if want := layoutWant(); !reflect.DeepEqual(got, want) {
		t.Fatalf("files:\ngot  %q\nwant %q", got, want)
	}
}

func TestPathPartsFromResourceAndDefaults(t *testing.T) {
	cfg := localConfig(t)
	e := newTestExporter(t, cfg)
	push(t, e,
		testRow{model: "m", version: "1", ts: day, features: [][2]any{{"a", 1}}},
		testRow{resource: map[string]string{contract.AttrSubscriptionID: "SUB", contract.AttrResourceGroup: "RG",
			contract.AttrWorkspace: "WS", contract.AttrWebservice: "Svc"}, model: "m", version: "1", designation: "labels", ts: day,
			features: [][2]any{{"a", 1}}},
	)
	want := []string{
		"00000000-0000-0000-0000-000000000000/local/local/local/m/1/general/2018/12/31/data.csv",
		"sub/rg/ws/Svc/m/1/labels/2018/12/31/data.csv",
	}
	if got := localFiles(t, cfg); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := readLocal(t, cfg, want[1]); !strings.Contains(got, ",sub/rg/ws,Svc,m,1,") {
		t.Fatalf("correlation columns: %q", got)
	}
}
