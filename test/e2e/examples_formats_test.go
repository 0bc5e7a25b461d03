package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestExampleFormatsConfig runs examples/otel-config-formats.yaml (ports
// and the Parquet max_age made test-sized) and finds one request's rows as
// CSV, MDC JSON Lines and Parquet, each read back with DuckDB.
func TestExampleFormatsConfig(t *testing.T) {
	root := testutil.RepoRoot(t)
	testutil.CollectorBinary(t)
	dataDir := t.TempDir()
	collectPort, httpPort, healthPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	config := string(testutil.ReadFile(t, filepath.Join(root, "examples", "otel-config-formats.yaml")))
	config = strings.NewReplacer(":4320", fmt.Sprintf(":%d", collectPort), ":4318", fmt.Sprintf(":%d", httpPort),
		":13133", fmt.Sprintf(":%d", healthPort), "max_age: 5m", "max_age: 1s").Replace(config)
	t.Setenv("OTELCOL_DATA_DIR", dataDir)
	t.Setenv("OTELCOL_LISTEN_HOST", "127.0.0.1")
	collect := fmt.Sprintf("127.0.0.1:%d", collectPort)
	testutil.StartCollector(t, config, collect)

	body := `{"model_name": "best_model", "model_version": "10", "designation": "inputs", "correlation_id": "corr-1",
	  "feature_names": ["age", "income", "city"], "data": [[31, 5000.5, "Redmond"], [62, 1200.25, "Zürich"]]}`
	resp, err := http.Post("http://"+collect+"/v1/collect", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("collect: HTTP %d", resp.StatusCode)
	}

	base := filepath.Join(dataDir, "modeldata")
	queries := map[string]string{
		".csv":     "SELECT age, income, city FROM read_csv('%s', header = true) ORDER BY age",
		".jsonl":   "SELECT d.age, d.income, d.city FROM (SELECT unnest(data) AS d FROM read_json('%s', format = 'newline_delimited')) ORDER BY d.age",
		".parquet": "SELECT age, income, city FROM read_parquet('%s') ORDER BY age",
	}
	found := map[string]string{}
	if !testutil.Poll(30*time.Second, func() bool {
		_ = filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && !strings.HasPrefix(fi.Name(), ".") {
				found[filepath.Ext(p)] = p
			}
			return nil
		})
		return len(found) == 3
	}) {
		t.Fatalf("files of the three formats not all written: %v", found)
	}
	if !strings.Contains(found[".jsonl"], filepath.FromSlash("modelDataCollector/fraud-ep/blue/model_inputs/")) {
		t.Errorf("MDC file at %s", found[".jsonl"])
	}
	for ext, q := range queries {
		res := testutil.DuckDB(t, fmt.Sprintf(q, found[ext]))
		if got := fmt.Sprint(res.Rows); got != "[[31 5000.5 Redmond] [62 1200.25 Zürich]]" {
			t.Errorf("%s read by DuckDB: %s (types %v)", ext, got, res.Types)
		}
	}
}
