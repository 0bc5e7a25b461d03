package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// exampleLimit is the peak resident set examples/otel-config.yaml must stay
// under when clients send as fast as they can.
const exampleLimit = 256 << 20

// overloadConfig is examples/otel-config.yaml on free 127.0.0.1 ports with
// the azureml_v2 route on, writing below dir; with settings, its
// memory_limiter, sending_queue and memory variables are the manifest's
// instead. It starts the collector and returns the doors' base URLs and the
// collector.
func overloadConfig(t *testing.T, dir string, settings *deploySettings) (map[harness.Door]string, *testutil.Collector) {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal(testutil.ReadFile(t, filepath.Join(testutil.RepoRoot(t), "examples", "otel-config.yaml")), &cfg); err != nil {
		t.Fatal(err)
	}
	at := func(path ...string) map[string]any {
		m := cfg
		for _, k := range path {
			m = m[k].(map[string]any)
		}
		return m
	}
	collect, v2, otlpHTTP, otlpGRPC, health := harnessAddr(t), harnessAddr(t), harnessAddr(t), harnessAddr(t), harnessAddr(t)
	at("extensions", "health_check")["endpoint"] = health
	at("extensions", "file_storage")["directory"] = filepath.Join(dir, "queue")
	at("receivers", "modeldata")["endpoint"] = collect
	at("receivers", "modeldata")["azureml_v2"] = map[string]any{"endpoint": v2}
	at("receivers", "otlp", "protocols", "http")["endpoint"] = otlpHTTP
	at("receivers", "otlp", "protocols", "grpc")["endpoint"] = otlpGRPC
	blob := at("exporters", "modeldatablob")
	at("exporters", "modeldatablob", "local")["directory"] = filepath.Join(dir, "data")
	blob["subscription_id"], blob["resource_group"], blob["workspace"], blob["webservice"] =
		harness.Subscription, harness.ResourceGroup, harness.Workspace, harness.Webservice
	if settings != nil {
		at("processors")["memory_limiter"] = settings.memoryLimiter
		queue := map[string]any{}
		for k, v := range settings.sendingQueue {
			queue[k] = v
		}
		blob["sending_queue"] = queue
		for k, v := range settings.env {
			t.Setenv(k, v)
		}
	}
	at("service", "telemetry", "logs")["level"] = "warn"
	at("service", "telemetry")["metrics"] = map[string]any{"level": "none"}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	col := testutil.StartCollector(t, string(b), collect, v2, otlpHTTP, health)
	return map[harness.Door]string{harness.DoorCollect: "http://" + collect, harness.DoorV2: "http://" + v2, harness.DoorOTLP: "http://" + otlpHTTP}, col
}

// TestHarnessOverloadMemory sends rows as fast as 8 clients can, one door at
// a time, to the built collector on examples/otel-config.yaml (and on the
// gateway manifest's memory settings), measures its peak resident set, and
// verifies every acknowledged row landed once (with OTELCOL_STOCK_BIN, the
// stock otlp -> batch -> file collector gets the same OTLP load, for
// comparison). The collector must push back
// (429/503 with Retry-After; the load generator retries the same body)
// instead of buffering: the example stays under 256 MiB, the
// gateway under its container limit.
func TestHarnessOverloadMemory(t *testing.T) {
	bin := testutil.CollectorBinary(t)
	gateway := loadDeploySettings(t, "gateway.yaml")
	configs := []struct {
		name     string
		settings *deploySettings
		limit    int64
	}{
		{"example", nil, exampleLimit},
		{"gateway", &gateway, gateway.containerLimit},
	}
	rowsAt := map[int]int{10: 20000, 50: 5000}
	if harnessFull() {
		rowsAt = map[int]int{10: 1000000, 50: 200000}
	}
	stockBin := os.Getenv(stockEnv)
	if stockBin != "" {
		configs = append(configs, struct {
			name     string
			settings *deploySettings
			limit    int64
		}{"stock", nil, 0})
	}
	for _, c := range configs {
		for _, features := range []int{10, 50} {
			for _, door := range []harness.Door{harness.DoorCollect, harness.DoorV2, harness.DoorOTLP} {
				if c.name == "stock" && door != harness.DoorOTLP {
					continue
				}
				t.Run(fmt.Sprintf("%s/f%d/%s", c.name, features, door), func(t *testing.T) {
					dir := t.TempDir()
					var targets map[harness.Door]string
					var drain func()
					verify := dirVerifier(filepath.Join(dir, "data"))
					bin := bin
					if c.name == "stock" {
						// Upstream otlp -> batch -> file, as in TestHarnessThroughput.
						otlpAddr, out := harnessAddr(t), filepath.Join(dir, "stock.json")
						drain = testutil.StartBinary(t, stockBin, harness.StockConfig(otlpAddr, out, "", 0, false), otlpAddr).Stop
						targets, bin = map[harness.Door]string{harness.DoorOTLP: "http://" + otlpAddr}, stockBin
						verify = func(m *harness.Manifest) (*harness.Report, error) { return harness.VerifyOTLPJSONFiles(m, out) }
					} else {
						var col *testutil.Collector
						targets, col = overloadConfig(t, dir, c.settings)
						drain = col.Stop
					}
					pids := harness.ChildPIDs(os.Getpid(), bin)
					if len(pids) == 0 {
						t.Fatal("collector process not found")
					}
					pid := pids[len(pids)-1]
					sampler := samplePeak(pid)
					rows := harness.Rows{Run: harness.NewRunID(), Features: features, RowsPerRequest: 100}
					rows.Defaults()
					start := time.Now()
					m, err := harness.Load(context.Background(), harness.LoadConfig{Rows: rows, Targets: targets, Doors: []harness.Door{door},
						Requests: rowsAt[features] / 100, Concurrency: 8, RetryFor: 5 * time.Minute, MaxDuration: 20 * time.Minute})
					if err != nil {
						t.Fatal(err)
					}
					rep := waitFound(t, m, verify, 5*time.Minute)
					wall := time.Since(start)
					anon, file, hwm := sampler.peaks(t)
					rep = settled(t, m, verify, rep, drain)
					t.Logf("OVERLOAD %s features=%d door=%s rows=%d wall=%.1fs rows/s=%.0f VmHWM=%.0f MiB (anon %.0f, file %.0f) answers=%s verify: %s",
						c.name, features, door, rows.RowsPerRequest*m.Requests, wall.Seconds(), float64(rep.Found)/wall.Seconds(),
						mib(hwm), mib(anon), mib(file), answers(m.Stats.Status), rep)
					assertZeroLoss(t, m, rep)
					if c.limit > 0 && hwm > c.limit {
						t.Errorf("peak resident set %.0f MiB, over %.0f MiB", mib(hwm), mib(c.limit))
					}
				})
			}
		}
	}
}

// answers renders the load's answers by HTTP status, sorted.
func answers(status map[string]int) string {
	var parts []string
	for k, v := range status {
		parts = append(parts, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
