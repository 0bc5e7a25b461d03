package deploy

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// TestExampleConfigRuns is `make run` as a new user does it: the shipped
// examples/otel-config.yaml with no App Insights connection string. The
// collector starts with the exporter disabled and says so, answers its health
// check, writes a collected row, and serves the metrics the alert rules read
// under the names they use.
func TestExampleConfigRuns(t *testing.T) {
	root := testutil.RepoRoot(t)
	config := string(testutil.ReadFile(t, filepath.Join(root, "examples", "otel-config.yaml")))
	// A loopback address of its own, so the fixed ports of the example meet no other test's.
	host := fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), rand.IntN(250), 2+rand.IntN(250))
	if !strings.Contains(config, "host: 127.0.0.1") {
		t.Fatal("examples/otel-config.yaml: the metrics endpoint is no longer on 127.0.0.1; update this test")
	}
	config = strings.ReplaceAll(config, "host: 127.0.0.1", "host: "+host)
	dataDir := t.TempDir()
	t.Setenv("OTELCOL_LISTEN_HOST", host)
	t.Setenv("OTELCOL_DATA_DIR", dataDir)
	t.Setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "")
	c := testutil.StartCollector(t, config, host+":4320", host+":13133", host+":8888")

	if !strings.Contains(c.Output(), "appinsights: no connection_string set; exporter disabled, telemetry is dropped") {
		t.Errorf("no log line saying App Insights is disabled:\n%s", c.Output())
	}
	get := func(url string) string {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
		}
		return string(body)
	}
	if body := get("http://" + host + ":13133/"); !strings.Contains(body, "Server available") {
		t.Errorf("health check: %s", body)
	}

	resp, err := http.Post("http://"+host+":4320/v1/collect", "application/json", strings.NewReader(
		`{"model_name":"best_model","model_version":"10","designation":"inputs","feature_names":["age"],"data":[[31]]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("collect: %d", resp.StatusCode)
	}
	day := time.Now().UTC()
	want := filepath.Join(dataDir, "modeldata", "00000000-0000-0000-0000-000000000000", "local", "local", "local",
		"best_model", "10", "inputs", day.Format("2006"), day.Format("01"), day.Format("02"), "data.csv")
	if !testutil.Poll(30*time.Second, func() bool {
		data, err := os.ReadFile(want)
		return err == nil && strings.Count(string(data), "\n") == 2
	}) {
		t.Fatalf("no row in %s", want)
	}

	metrics := get("http://" + host + ":8888/metrics")
	for _, name := range []string{"otelcol_modeldatablob_rows_written", "otelcol_exporter_queue_size",
		"otelcol_exporter_queue_capacity", "otelcol_exporter_sent_log_records", "otelcol_receiver_accepted_log_records"} {
		if !strings.Contains(metrics, "\n"+name+"{") && !strings.Contains(metrics, "\n"+name+" ") {
			t.Errorf("metric %s is not served as the alert rules name it", name)
		}
	}
}
