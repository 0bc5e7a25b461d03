package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// stockEnv points the throughput run at the stock collector (otlp -> batch ->
// file, upstream components only), built by `make bench-e2e` into _build/stock.
const stockEnv = "OTELCOL_STOCK_BIN"

// throughputResult is one route's figures (docs/benchmarks.md, "End to end").
type throughputResult struct {
	Route           string  `json:"route"`
	Features        int     `json:"features"`
	Rows            int64   `json:"rows"`
	WallSeconds     float64 `json:"wall_s"`       // first request sent -> last row written (exporter's sent count)
	RowsPerSecond   float64 `json:"rows_per_s"`   // end to end
	IngestPerSecond float64 `json:"ingest_per_s"` // acknowledged rows / load time
	CPUSeconds      float64 `json:"cpu_s"`        // collector utime+stime over the measured load
	CPUPerMillion   float64 `json:"cpu_s_per_million_rows"`
	RowsPerCPUSec   float64 `json:"rows_per_cpu_s"`
	HWMMiB          float64 `json:"vm_hwm_mib"`     // peak RSS of the collector (start-up and warm-up included)
	MaxRSSMiB       float64 `json:"max_rss_mib"`    // largest VmRSS sampled during the measured load
	MaxAnonMiB      float64 `json:"max_anon_mib"`   // largest RssAnon (heap, stacks; no mapped files such as the queue's) sampled
	StorageCPU      float64 `json:"storage_cpu_s"`  // Azurite's utime+stime over the same span (ours only)
	LatencyP50      float64 `json:"latency_p50_ms"` // collect call -> row visible in its blob (sampled)
	LatencyP99      float64 `json:"latency_p99_ms"`
	LatencySamples  int     `json:"latency_samples"`
	Verify          string  `json:"verify"`
}

func throughputRows(features int) int {
	if v, err := strconv.Atoi(os.Getenv("MODELDATA_HARNESS_ROWS")); err == nil && v > 0 {
		return v * 10 / features
	}
	if !harnessFull() {
		return 3000
	}
	return 10_000_000 / features // 1M rows at 10 features, 200k at 50
}

// steadyRate is the paced load of the steady runs (RSS and latency at a load
// both routes sustain): rows/s.
func steadyRate(features int) float64 { return 200_000 / float64(features) }

// steadySeconds is how long a steady run lasts.
func steadySeconds() int {
	if v, err := strconv.Atoi(os.Getenv("MODELDATA_HARNESS_STEADY_SECONDS")); err == nil && v > 0 {
		return v
	}
	if !harnessFull() {
		return 2
	}
	return 30
}

// throughputRoute is one way rows reach storage: our collector's collect
// API or OTLP, or the stock collector's OTLP, with records in contract form
// or as an OTel SDK emits them.
type throughputRoute struct {
	name      string
	stock     bool
	door      harness.Door
	shape     string // harness.ShapeContract or harness.ShapeSDK
	json      bool   // OTLP/HTTP JSON instead of protobuf
	transform bool   // stock: the transform processor (harness.StockTransform) flattens and moves attributes
	second    string // ours: a second consumer of the logs (harness.CollectorConfig.SecondConsumer)
	format    string // ours: the exporter's format (empty: csv)
	// persistent: ours with the sending queue on disk (file_storage), as examples/otel-config.yaml has it.
	persistent bool
}

// throughputRoutes: ours-otlp-sdk* run the featureflattener (as
// examples/otel-config.yaml does); the stock-otlp-sdk* routes get the same bytes.
var throughputRoutes = []throughputRoute{
	{name: "ours-collect", door: harness.DoorCollect},
	{name: "ours-otlp", door: harness.DoorOTLP},
	{name: "stock-otlp", stock: true, door: harness.DoorOTLP},
	{name: "ours-otlp-sdk", door: harness.DoorOTLP, shape: harness.ShapeSDK},
	{name: "stock-otlp-sdk", stock: true, door: harness.DoorOTLP, shape: harness.ShapeSDK},
	{name: "ours-otlp-sdk-json", door: harness.DoorOTLP, shape: harness.ShapeSDK, json: true},
	{name: "stock-otlp-sdk-json", stock: true, door: harness.DoorOTLP, shape: harness.ShapeSDK, json: true},
	{name: "stock-otlp-sdk-transform", stock: true, door: harness.DoorOTLP, shape: harness.ShapeSDK, transform: true},
}

// namedRoute is the route of throughputRoutes with that name; "<name>+<consumer>"
// adds a second consumer of the logs (e.g. ours-collect+modeldatastats),
// "<name>:<format>" sets the exporter's format (e.g. ours-collect:parquet)
// and "<name>-pq" puts the sending queue on disk (e.g. ours-collect-pq+modeldatastats).
func namedRoute(t *testing.T, name string) throughputRoute {
	base, format, _ := strings.Cut(name, ":")
	base, second, _ := strings.Cut(base, "+")
	base, persistent := strings.CutSuffix(base, "-pq")
	for _, r := range throughputRoutes {
		if r.name == base && (!persistent || !r.stock) {
			r.name, r.second, r.format, r.persistent = name, second, format, persistent
			return r
		}
	}
	t.Fatalf("no throughput route %q", name)
	return throughputRoute{}
}

// stockPeer is the stock route a route of ours is compared with.
func stockPeer(ours string) []string {
	switch ours {
	case "ours-collect", "ours-otlp":
		return []string{"stock-otlp"}
	case "ours-otlp-sdk":
		return []string{"stock-otlp-sdk", "stock-otlp-sdk-transform"}
	}
	return []string{strings.Replace(ours, "ours-", "stock-", 1)}
}

// TestHarnessThroughput runs the built otelcol-modeldata into Azurite through
// both doors, with records in contract form and SDK-shaped, and the same rows
// through the stock otlp -> batch -> file route, at 10 and 50 features per
// row. CI runs it small (ours only, when the stock binary is not built);
// `make bench-e2e` runs it full and prints the table.
func TestHarnessThroughput(t *testing.T) {
	testutil.CollectorBinary(t)
	var results []throughputResult
	featureSets := []int{10, 50}
	if !harnessFull() {
		featureSets = featureSets[:1] // CI: the smoke run at 10 features keeps the code honest
	}
	for _, features := range featureSets {
		t.Run(fmt.Sprintf("f%d", features), func(t *testing.T) {
			for _, route := range throughputRoutes {
				t.Run(route.name, func(t *testing.T) {
					r := runThroughput(t, route.name, features, throughputRows(features), 0)
					results = append(results, r)
				})
			}
			rate := steadyRate(features)
			for _, route := range throughputRoutes[:3] {
				if route.name == "ours-otlp" {
					continue
				}
				t.Run(route.name+"-steady", func(t *testing.T) {
					r := runThroughput(t, route.name, features, int(rate)*steadySeconds(), rate)
					r.Route += fmt.Sprintf(" @ %.0f rows/s", rate)
					results = append(results, r)
				})
			}
		})
	}
	t.Log("| route | features | rows | wall s | rows/s | collector CPU s | CPU s / 1M rows | rows per CPU-s | VmHWM MiB | max RSS MiB | storage CPU s | latency p50 / p99 ms (n) | verifier |")
	for _, r := range results {
		t.Logf("| %s | %d | %d | %.1f | %.0f | %.2f | %.1f | %.0f | %.0f | %.0f | %.1f | %.0f / %.0f (%d) | %s |", r.Route, r.Features, r.Rows, r.WallSeconds,
			r.RowsPerSecond, r.CPUSeconds, r.CPUPerMillion, r.RowsPerCPUSec, r.HWMMiB, r.MaxRSSMiB, r.StorageCPU, r.LatencyP50, r.LatencyP99, r.LatencySamples, r.Verify)
	}
	// Ratios ours / stock at the same features, shape, encoding and pacing.
	for _, o := range results {
		if strings.HasPrefix(o.Route, "stock") {
			continue
		}
		name, pace, _ := strings.Cut(o.Route, " @ ")
		if pace != "" {
			pace = " @ " + pace
		}
		for _, peer := range stockPeer(name) {
			for _, s := range results {
				if s.Features == o.Features && s.Route == peer+pace {
					t.Logf("ratio %s / %s at %d features: rows per CPU-s %.2fx, VmHWM %.2fx, max RSS %.2fx", o.Route, s.Route, o.Features,
						o.RowsPerCPUSec/s.RowsPerCPUSec, o.HWMMiB/s.HWMMiB, o.MaxRSSMiB/s.MaxRSSMiB)
				}
			}
		}
	}
	if out := os.Getenv("MODELDATA_HARNESS_OUT"); out != "" {
		data, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// runThroughput measures one route: as fast as possible (rate 0) or paced at rate rows/s.
func runThroughput(t *testing.T, name string, features, rows int, rate float64) throughputResult {
	route := namedRoute(t, name)
	ours := !route.stock
	otlpAddr, collectAddr := harnessAddr(t), harnessAddr(t)
	pprofAddr, metricsPort := harnessAddr(t), testutil.FreePort(t)
	var (
		bin     string
		pid     int
		verify  func(*harness.Manifest) (*harness.Report, error)
		probe   *harness.ProbeConfig
		azPID   int
		outFile string
	)
	if ours {
		bin = testutil.CollectorBinary(t)
		az := testutil.StartAzurite(t)
		azPID = harness.FindPIDByArg("--blobPort", strconv.Itoa(az.Port()))
		cfg := harness.CollectorConfig{CollectAddr: collectAddr, OTLPAddr: otlpAddr, PprofAddr: pprofAddr,
			ConnectionString: az.ConnectionString(), MetricsPort: metricsPort, FeatureFlattener: route.shape == harness.ShapeSDK,
			SecondConsumer: route.second, Format: route.format}
		if route.persistent {
			cfg.QueueDir = filepath.Join(t.TempDir(), "queue")
		}
		col := testutil.StartCollector(t, cfg.YAML(), collectAddr, otlpAddr, pprofAddr)
		verify = azuriteVerifier(t, az)
		if route.format == "parquet" {
			// Parquet files stay open up to parquet.max_age: a clean
			// shutdown commits them (after the CPU figures are read).
			verifyAll := verify
			verify = func(m *harness.Manifest) (*harness.Report, error) {
				col.Stop()
				return verifyAll(m)
			}
		}
		c, err := harness.ContainerClient(az.ConnectionString(), "modeldata")
		if err != nil {
			t.Fatal(err)
		}
		if route.format == "" || route.format == "csv" { // the probe watches a CSV blob grow
			probe = &harness.ProbeConfig{CollectURL: "http://" + collectAddr, Size: harness.BlobSize(c),
				Interval: 250 * time.Millisecond}
		}
	} else {
		bin = os.Getenv(stockEnv)
		if bin == "" {
			t.Skipf("%s is not set: the stock route runs in `make bench-e2e`", stockEnv)
		}
		outFile = filepath.Join(t.TempDir(), "stock.json")
		testutil.StartBinary(t, bin, harness.StockConfig(otlpAddr, outFile, pprofAddr, metricsPort, route.transform), otlpAddr, pprofAddr)
		verify = func(m *harness.Manifest) (*harness.Report, error) { return harness.VerifyOTLPJSONFiles(m, outFile) }
	}
	pids := harness.ChildPIDs(os.Getpid(), bin)
	if len(pids) != 1 {
		t.Fatalf("collector pid: found %v", pids)
	}
	pid = pids[0]
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	sentBy := "" // the exporter whose sent rows end the run (a second consumer may be an exporter too)
	if ours {
		sentBy = "modeldatablob"
	}
	targets := map[harness.Door]string{harness.DoorCollect: "http://" + collectAddr, harness.DoorOTLP: "http://" + otlpAddr}
	load := func(run string, requests int, rate float64) *harness.Manifest {
		m, err := harness.Load(context.Background(), harness.LoadConfig{
			Rows:    harness.Rows{Run: run, Features: features, RowsPerRequest: 100, Shape: route.shape},
			Targets: targets, Doors: []harness.Door{route.door}, OTLPJSON: route.json, Requests: requests, Rate: rate, Concurrency: 8,
			MaxDuration: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.NotAcked) > 0 {
			t.Fatalf("%d requests not acknowledged: %v", len(m.NotAcked), m.Stats.Status)
		}
		return m
	}
	waitSent := func(n float64) {
		t.Helper()
		var sent float64
		if !testutil.Poll(5*time.Minute, func() bool {
			s, err := harness.SentRowsBy(context.Background(), metricsURL, sentBy)
			sent = s
			return err == nil && s >= n
		}) {
			t.Fatalf("exporter sent %.0f rows, want %.0f", sent, n)
		}
	}
	// Warm-up: connections, files, first allocations.
	warm := load(harness.NewRunID(), 20, 0)
	waitSent(float64(warm.ExpectedRows()))
	time.Sleep(500 * time.Millisecond) // idle time, so the warm-up's garbage collection falls before the CPU snapshot

	before, err := harness.ReadProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	azBefore, _ := harness.ReadProc(azPID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg           sync.WaitGroup
		maxRSS       int64
		maxAnon      int64
		latencies    []time.Duration
		probeAcked   int
		probeTimeout int
	)
	wg.Add(1)
	go func() { // RSS sampler
		defer wg.Done()
		for ctx.Err() == nil {
			if s, err := harness.ReadProc(pid); err == nil {
				maxRSS, maxAnon = max(maxRSS, s.RSSBytes), max(maxAnon, s.AnonBytes)
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	run := harness.NewRunID()
	if probe != nil {
		probe.Run, probe.Model, probe.Version = run, "load_model", "1"
		wg.Add(1)
		go func() {
			defer wg.Done()
			latencies, probeTimeout, probeAcked = harness.Probe(ctx, *probe)
		}()
	}
	if dir := os.Getenv("MODELDATA_HARNESS_PPROF"); dir != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			harnessSaveProfile(t, "http://"+pprofAddr+"/debug/pprof/profile?seconds=5", filepath.Join(dir, fmt.Sprintf("%s-f%d-rate%.0f.pprof", route.name, features, rate)))
		}()
	}
	t0 := time.Now()
	m := load(run, (rows+99)/100, rate)
	loadTime := time.Since(t0)
	cancel() // stop probing: its rows count below
	wg.Wait()
	waitSent(float64(warm.ExpectedRows() + m.ExpectedRows() + int64(probeAcked)))
	wall := time.Since(t0)
	after, err := harness.ReadProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	azAfter, _ := harness.ReadProc(azPID)
	if dir := os.Getenv("MODELDATA_HARNESS_PPROF"); dir != "" {
		// What the collector allocated since it started, warm-up included.
		harnessSaveProfile(t, "http://"+pprofAddr+"/debug/pprof/allocs", filepath.Join(dir, fmt.Sprintf("%s-f%d-rate%.0f-allocs.pprof", route.name, features, rate)))
	}
	rep, err := verify(m)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("verifier: %s", rep)
	}
	cpu := after.CPUSeconds - before.CPUSeconds
	n := m.ExpectedRows()
	r := throughputResult{Route: route.name, Features: features, Rows: n, WallSeconds: wall.Seconds(),
		RowsPerSecond: float64(n) / wall.Seconds(), IngestPerSecond: float64(n) / loadTime.Seconds(),
		CPUSeconds: cpu, CPUPerMillion: cpu / float64(n) * 1e6, RowsPerCPUSec: float64(n) / cpu,
		HWMMiB: float64(after.HWMBytes) / (1 << 20), MaxRSSMiB: float64(maxRSS) / (1 << 20),
		MaxAnonMiB:     float64(maxAnon) / (1 << 20),
		LatencySamples: len(latencies), Verify: fmt.Sprintf("%d/%d found, %d missing, %d dup, %d malformed", rep.Found, rep.Expected, rep.Missing, rep.Duplicated, rep.Malformed)}
	if azPID != 0 {
		r.StorageCPU = azAfter.CPUSeconds - azBefore.CPUSeconds
	}
	if len(latencies) > 0 {
		r.LatencyP50 = float64(harness.Percentile(latencies, 0.5)) / 1e6
		r.LatencyP99 = float64(harness.Percentile(latencies, 0.99)) / 1e6
	}
	if probeTimeout > 0 {
		t.Logf("%d latency probes timed out or were refused", probeTimeout)
	}
	t.Logf("%+v", r)
	return r
}

func harnessSaveProfile(t *testing.T, url, path string) {
	time.Sleep(time.Second) // the profile skips the load's first second (connections, first allocations)
	resp, err := http.Get(url)
	if err != nil {
		t.Logf("pprof: %v", err)
		return
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Logf("pprof: %v", err)
	}
}
