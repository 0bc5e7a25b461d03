package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// wineDir holds the wine baseline, the current and shifted windows and their
// reference drift figures (connector/modeldatastats/testdata/wine).
func wineDir(t *testing.T) string {
	return filepath.Join(testutil.RepoRoot(t), "connector", "modeldatastats", "testdata", "wine")
}

// wineCollectBody is a collect API request carrying a modeldata CSV's rows:
// numbers as JSON numbers, empty cells as null, other cells as strings.
func wineCollectBody(t *testing.T, path string) string {
	t.Helper()
	names, rows := testutil.ReadModelDataCSV(t, path)
	data := make([][]any, len(rows))
	for r, rec := range rows {
		data[r] = make([]any, len(rec))
		for i, cell := range rec {
			if _, err := strconv.ParseFloat(cell, 64); err == nil {
				data[r][i] = json.Number(cell)
			} else if cell != "" {
				data[r][i] = cell
			}
		}
	}
	body, err := json.Marshal(map[string]any{"model_name": "wine", "model_version": "1", "designation": "inputs",
		"feature_names": names, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// aiMetricValues are the values of every MetricData envelope named name whose
// properties hold feature as modeldata.feature.name.
func aiMetricValues(envelopes []map[string]any, name, feature string) []float64 {
	var values []float64
	for _, e := range envelopes {
		data, _ := e["data"].(map[string]any)
		if data == nil || data["baseType"] != "MetricData" {
			continue
		}
		base, _ := data["baseData"].(map[string]any)
		props, _ := base["properties"].(map[string]any)
		metrics, _ := base["metrics"].([]any)
		if len(metrics) == 0 || props["modeldata.feature.name"] != feature {
			continue
		}
		if m, _ := metrics[0].(map[string]any); m["name"] == name {
			if v, ok := m["value"].(float64); ok {
				values = append(values, v)
			}
		}
	}
	return values
}

func containsNear(values []float64, want float64) bool {
	for _, v := range values {
		if math.Abs(v-want) <= 1e-6 {
			return true
		}
	}
	return false
}

// TestModelDataStatsDriftToPrometheusAndAppInsights sends the wine data's
// current window, then the window with alcohol shifted, through the built
// collector's collect API; the modeldatastats connector's drift gauges, read
// back from the Prometheus endpoint and from the Application Insights stub,
// equal the reference figures (numpy/scipy) and rise with the shift.
func TestModelDataStatsDriftToPrometheusAndAppInsights(t *testing.T) {
	bin := testutil.CollectorBinary(t)
	root := testutil.RepoRoot(t)
	// The example configuration, with the connector and both metric routes, validates.
	example := exec.Command(bin, "validate", "--config", filepath.Join(root, "examples", "otel-config.yaml"))
	if out, err := example.CombinedOutput(); err != nil {
		t.Fatalf("validate examples/otel-config.yaml: %v\n%s", err, out)
	}

	var ref struct {
		Current, Shifted map[string]struct {
			PSI           float64 `json:"psi"`
			JensenShannon float64 `json:"jensen_shannon"`
			Wasserstein   float64 `json:"wasserstein"`
		}
	}
	if err := json.Unmarshal(testutil.ReadFile(t, filepath.Join(wineDir(t), "reference.json")), &ref); err != nil {
		t.Fatal(err)
	}

	stub := testutil.StartIngestionStub(t)
	collect := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	prom := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	testutil.StartCollector(t, fmt.Sprintf(`
receivers:
  modeldata:
    endpoint: %s
processors:
  featureflattener: {}
connectors:
  modeldatastats:
    window: 1s
    baselines:
      - model: wine
        csv: %s
exporters:
  modeldatablob:
    backend: local
    local:
      directory: %s
  prometheus:
    endpoint: %s
  appinsights:
    connection_string: InstrumentationKey=11111111-2222-3333-4444-555555555555;IngestionEndpoint=%s/
service:
  pipelines:
    logs:
      receivers: [modeldata]
      processors: [featureflattener]
      exporters: [modeldatablob, modeldatastats]
    metrics/modeldatastats:
      receivers: [modeldatastats]
      exporters: [prometheus, appinsights]
  telemetry:
    metrics:
      level: none
`, collect, filepath.Join(wineDir(t), "baseline.csv"), t.TempDir(), prom, stub.URL()), collect, prom)

	alcohol := `modeldata_feature_name="alcohol"`
	// promAlcohol reads the alcohol series of a metric from the Prometheus endpoint.
	promAlcohol := func(name string) (float64, bool) {
		v, err := harness.MetricSum(context.Background(), "http://"+prom+"/metrics", name+"{", alcohol)
		return v, err == nil
	}
	for _, w := range []struct {
		file string
		want float64
	}{{"current.csv", ref.Current["alcohol"].PSI}, {"shifted.csv", ref.Shifted["alcohol"].PSI}} {
		resp, err := http.Post("http://"+collect+"/v1/collect", "application/json", strings.NewReader(wineCollectBody(t, filepath.Join(wineDir(t), w.file))))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("collect %s: status %d", w.file, resp.StatusCode)
		}
		var got float64
		if !testutil.Poll(30*time.Second, func() bool {
			var ok bool
			got, ok = promAlcohol("modeldata_feature_drift_psi")
			return ok && math.Abs(got-w.want) <= 1e-6
		}) {
			t.Fatalf("%s: Prometheus modeldata_feature_drift_psi{alcohol} = %g, reference %g", w.file, got, w.want)
		}
	}
	if ref.Shifted["alcohol"].PSI < 5*ref.Current["alcohol"].PSI {
		t.Fatalf("the shift does not raise PSI: %g -> %g", ref.Current["alcohol"].PSI, ref.Shifted["alcohol"].PSI)
	}
	for name, m := range map[string]string{"modeldata_feature_drift_jensen_shannon": "js", "modeldata_feature_drift_wasserstein": "w"} {
		want := ref.Shifted["alcohol"].JensenShannon
		if m == "w" {
			want = ref.Shifted["alcohol"].Wasserstein
		}
		if got, ok := promAlcohol(name); !ok || math.Abs(got-want) > 1e-6 {
			t.Errorf("Prometheus %s{alcohol} = %g, reference %g", name, got, want)
		}
	}
	if got, _ := promAlcohol("modeldata_feature_rows_total"); got != 178 {
		t.Errorf("Prometheus modeldata_feature_rows_total{alcohol} = %g, want 178 (two windows of 89)", got)
	}
	if !testutil.Poll(30*time.Second, func() bool {
		values := aiMetricValues(stub.Envelopes(), "modeldata.feature.drift.psi", "alcohol")
		return containsNear(values, ref.Current["alcohol"].PSI) && containsNear(values, ref.Shifted["alcohol"].PSI)
	}) {
		t.Fatalf("Application Insights PSI values for alcohol %v, want %g then %g", aiMetricValues(stub.Envelopes(), "modeldata.feature.drift.psi", "alcohol"),
			ref.Current["alcohol"].PSI, ref.Shifted["alcohol"].PSI)
	}
}
