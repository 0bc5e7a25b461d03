package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"sigs.k8s.io/yaml"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/contract"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// maxBodySize is confighttp's default max_request_body_size, the largest
// body a client can send the collector's shipped configs.
const maxBodySize = 20 << 20

// deploySettings are the memory settings of a manifest in deploy/kubernetes:
// the collector's GOMEMLIMIT and container memory limit, and its config's
// memory_limiter and modeldatablob sending_queue sections with the
// MEMORY_LIMITER_* variables they read, and the request_budget extension
// with the middlewares naming it: the otlp receiver's, and the modeldata
// receiver's with its own max_bytes_in_flight.
type deploySettings struct {
	goMemLimit     string
	env            map[string]string
	containerLimit int64
	memoryLimiter  any
	sendingQueue   map[string]any
	requestBudget  any            // nil: the receivers without the middleware
	otlpMiddleware map[string]any // by protocol: http, grpc
	// modeldataBudget are the modeldata receiver's middlewares and
	// max_bytes_in_flight, and azureml_v2's middlewares.
	modeldataBudget, v2Budget map[string]any
}

func loadDeploySettings(t *testing.T, manifest string) deploySettings {
	t.Helper()
	raw := testutil.ReadFile(t, filepath.Join(testutil.RepoRoot(t), "deploy", "kubernetes", manifest))
	var s deploySettings
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var obj struct {
			Kind string            `json:"kind"`
			Data map[string]string `json:"data"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Env       []struct{ Name, Value string } `json:"env"`
							Resources struct {
								Limits map[string]string `json:"limits"`
							} `json:"resources"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "ConfigMap":
			var cfg struct {
				Extensions map[string]any            `json:"extensions"`
				Receivers  map[string]any            `json:"receivers"`
				Processors map[string]any            `json:"processors"`
				Exporters  map[string]map[string]any `json:"exporters"`
			}
			if err := yaml.Unmarshal([]byte(obj.Data["config.yaml"]), &cfg); err != nil {
				t.Fatal(err)
			}
			s.memoryLimiter = cfg.Processors["memory_limiter"]
			s.sendingQueue, _ = cfg.Exporters["modeldatablob"]["sending_queue"].(map[string]any)
			s.requestBudget = cfg.Extensions["request_budget"]
			if otlp, ok := cfg.Receivers["otlp"].(map[string]any); ok {
				protocols, _ := otlp["protocols"].(map[string]any)
				s.otlpMiddleware = map[string]any{}
				for _, p := range []string{"http", "grpc"} {
					if server, _ := protocols[p].(map[string]any); server["middlewares"] != nil {
						s.otlpMiddleware[p] = server["middlewares"]
					}
				}
			}
			if md, ok := cfg.Receivers["modeldata"].(map[string]any); ok {
				s.modeldataBudget, s.v2Budget = pick(md, "middlewares", "max_bytes_in_flight"), map[string]any{}
				if v2, ok := md["azureml_v2"].(map[string]any); ok {
					s.v2Budget = pick(v2, "middlewares")
				}
			}
		case "DaemonSet", "Deployment":
			c := obj.Spec.Template.Spec.Containers[0]
			s.env = map[string]string{}
			for _, e := range c.Env {
				if e.Name == "GOMEMLIMIT" || strings.HasPrefix(e.Name, "MEMORY_LIMITER_") {
					s.env[e.Name] = e.Value
				}
			}
			s.goMemLimit = s.env["GOMEMLIMIT"]
			s.containerLimit = parseQuantity(t, c.Resources.Limits["memory"])
		}
	}
	if s.goMemLimit == "" || s.containerLimit == 0 || s.memoryLimiter == nil || s.sendingQueue == nil || s.requestBudget == nil || s.otlpMiddleware["http"] == nil ||
		s.modeldataBudget["middlewares"] == nil || s.v2Budget["middlewares"] == nil {
		t.Fatalf("%s: GOMEMLIMIT %q, memory limit %d, memory_limiter %v, sending_queue %v, request_budget %v, otlp http middlewares %v, modeldata receiver %v, azureml_v2 %v",
			manifest, s.goMemLimit, s.containerLimit, s.memoryLimiter, s.sendingQueue, s.requestBudget, s.otlpMiddleware, s.modeldataBudget, s.v2Budget)
	}
	return s
}

// pick is the keys of m that are set.
func pick(m map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

// parseQuantity reads a Kubernetes memory quantity in Mi or Gi.
func parseQuantity(t *testing.T, q string) int64 {
	for suffix, unit := range map[string]int64{"Mi": 1 << 20, "Gi": 1 << 30} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err == nil {
				return v * unit
			}
		}
	}
	t.Fatalf("memory quantity %q", q)
	return 0
}

// memoryCollector starts the collector with the DaemonSet's pipeline
// (memory_limiter, featureflattener, the persistent sending queue, the
// request_budget on the otlp protocols and modeldata routes ds names it in,
// unless ds has none: then the modeldata receiver has its own default
// max_bytes_in_flight) and GOMEMLIMIT, writing to a local folder, in a memory cgroup with the
// DaemonSet's container limit when the machine allows one (the reason it
// does not is logged); it returns the collector's addresses, pid and cgroup.
// With storageDown the exporter writes to a blob service that is not there,
// so every row stays queued and is retried.
func memoryCollector(t *testing.T, ds deploySettings, storageDown bool) (c memoryTarget) {
	t.Helper()
	collect, v2, otlp, otlpGRPC, health := harnessAddr(t), harnessAddr(t), harnessAddr(t), harnessAddr(t), harnessAddr(t)
	port := testutil.FreePort(t)
	dir := t.TempDir()
	queue := map[string]any{}
	for k, v := range ds.sendingQueue {
		queue[k] = v
	}
	queue["storage"] = "file_storage"
	exporter := map[string]any{
		"backend": "local", "local": map[string]any{"directory": filepath.Join(dir, "data")},
		"subscription_id": harness.Subscription, "resource_group": harness.ResourceGroup,
		"workspace": harness.Workspace, "webservice": harness.Webservice, "sending_queue": queue}
	if storageDown {
		exporter["backend"] = "azblob"
		exporter["azblob"] = map[string]any{"connection_string": fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://%s/%s;",
			testutil.AzuriteAccount, testutil.AzuriteKey, harnessAddr(t), testutil.AzuriteAccount)}
	}
	extensions := map[string]any{
		"health_check": map[string]any{"endpoint": health},
		"file_storage": map[string]any{"directory": filepath.Join(dir, "queue"), "create_directory": true},
	}
	protocols := map[string]any{"http": map[string]any{"endpoint": otlp}, "grpc": map[string]any{"endpoint": otlpGRPC}}
	modeldata := map[string]any{"endpoint": collect}
	v2cfg := map[string]any{"endpoint": v2, "model_name": "v2model", "model_version": "1"}
	if ds.requestBudget != nil {
		extensions["request_budget"] = ds.requestBudget
		for p, m := range ds.otlpMiddleware {
			protocols[p].(map[string]any)["middlewares"] = m
		}
		maps.Copy(modeldata, ds.modeldataBudget)
		maps.Copy(v2cfg, ds.v2Budget)
	}
	modeldata["azureml_v2"] = v2cfg
	cfg := map[string]any{
		"extensions": extensions,
		"receivers": map[string]any{
			"modeldata": modeldata,
			"otlp":      map[string]any{"protocols": protocols},
		},
		"processors": map[string]any{"memory_limiter": ds.memoryLimiter, "featureflattener": map[string]any{}},
		"exporters":  map[string]any{"modeldatablob": exporter},
		"service": map[string]any{
			"extensions": slices.Sorted(maps.Keys(extensions)),
			"pipelines": map[string]any{"logs": map[string]any{"receivers": []string{"modeldata", "otlp"},
				"processors": []string{"memory_limiter", "featureflattener"}, "exporters": []string{"modeldatablob"}}},
		},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The service's telemetry: level basic, for otelcol_exporter_sent_log_records.
	conf := strings.Replace(string(b), "service:\n", "service:\n"+strings.TrimPrefix(telemetryBlock(port), "service:\n"), 1)
	for k, v := range ds.env {
		t.Setenv(k, v)
	}
	start := func() { testutil.StartCollector(t, conf, collect, v2, otlp, otlpGRPC, health) }
	cg, why := newMemoryCgroup(t, ds.containerLimit)
	if cg != nil {
		if err := cg.startIn(start); err != nil {
			cg, why = nil, err.Error()
		}
	}
	if cg == nil {
		t.Logf("MEMORY no memory cgroup (%s): the resident set is the only account", why)
		start()
	}
	bin := testutil.CollectorBinary(t)
	pids := harness.ChildPIDs(os.Getpid(), bin)
	if len(pids) == 0 {
		t.Fatal("collector process not found")
	}
	return memoryTarget{collect: "http://" + collect, v2: "http://" + v2, otlp: "http://" + otlp, otlpGRPC: otlpGRPC,
		metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", port), data: filepath.Join(dir, "data"), pid: pids[len(pids)-1], cgroup: cg}
}

// memoryTarget is a collector started by memoryCollector.
type memoryTarget struct {
	collect, v2, otlp, metrics string
	otlpGRPC                   string // host:port
	data                       string // the local backend's folder
	pid                        int
	cgroup                     *memoryCgroup // nil without one
}

// cgroupReport is the cgroup's account of a run; it fails the test when
// the kernel killed the collector for memory.
func (c memoryTarget) cgroupReport(t *testing.T) string {
	t.Helper()
	if c.cgroup == nil {
		return "no cgroup"
	}
	u, err := c.cgroup.usage()
	if err != nil {
		t.Fatalf("reading the cgroup: %v", err)
	}
	if u.oomKills > 0 {
		t.Errorf("the kernel killed the collector for memory (%d out-of-memory kills in its cgroup)", u.oomKills)
	}
	return fmt.Sprintf("cgroup (v2 %v): peak %.0f MiB charged, limit hit %d times (page cache reclaimed), %d out-of-memory kills", c.cgroup.v2, mib(u.peak), u.hits, u.oomKills)
}

func telemetryBlock(port int) string {
	return fmt.Sprintf("service:\n  telemetry:\n    logs:\n      level: warn\n    metrics:\n      level: basic\n      readers:\n"+
		"      - pull:\n          exporter:\n            prometheus:\n              host: 127.0.0.1\n              port: %d\n", port)
}

// adversarialBody is one max-size body of the memory test.
type adversarialBody struct {
	name        string
	route       string // path on the collect API, or v2Route / otlpRoute
	contentType string
	body        []byte
	want        int // status
	rows        int // rows written when accepted
}

const (
	collectRoute = "/v1/collect"
	v2Route      = "v2"
	otlpRoute    = "otlp"
)

// fill repeats unit after head until the body is about size bytes (at
// most max times), then closes it with tail; it returns the body and the repeats.
func fill(head, unit, sep, tail string, size, max int) ([]byte, int) {
	n := min(max, (size-len(head)-len(tail))/(len(unit)+len(sep)))
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(head)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(unit)
	}
	b.WriteString(tail)
	return b.Bytes(), n
}

func adversarialBodies() []adversarialBody {
	tinyJSON, _ := fill(`{"model_name":"tiny","data":[`, `[0,0,0]`, ",", `]}`, maxBodySize, maxBodySize)
	tinyCSV, _ := fill("a,b,c\n", "0,0,0", "\n", "\n", maxBodySize, maxBodySize)
	tinyV2, _ := fill(`[`, `{"a":0}`, ",", `]`, maxBodySize, maxBodySize)
	oneCell, _ := fill(`{"model_name":"onecell","model_version":"1","data":[["`, "x", "", `"]]}`, maxBodySize, maxBodySize)
	return append([]adversarialBody{
		{name: "JSON of tiny rows [0,0,0],...", route: collectRoute, contentType: "application/json", body: tinyJSON, want: 413},
		{name: "CSV of tiny rows 0,0,0", route: collectRoute, contentType: "text/csv", body: tinyCSV, want: 413},
		{name: "v2 records {\"a\":0},...", route: v2Route, contentType: "application/json", body: tinyV2, want: 413},
		{name: "one 20 MiB cell (accepted; the flattener drops values over 64 KiB)", route: collectRoute, contentType: "application/json", body: oneCell, want: 200, rows: 1},
		// Refused by the request_budget extension for its records' decoded
		// size (413, too_many_records), before the otlp receiver decodes it.
		{name: "OTLP/HTTP protobuf of tiny records (a timestamp each)", route: otlpRoute, contentType: "application/x-protobuf", body: otlpTinyBody(), want: 413},
	}, fullBodies()...)
}

// The largest requests the defaults accept on each route: 3,900 rows of 50
// string features are about 199,000 values of max_values_per_request's
// 200,000, the strings padding the body to max_request_body_size.
const fullRows, fullFeatures = 3900, 50

// fullCell is a cell string that makes rows × features cells of per bytes
// each (quotes and separator included) fill about the size limit.
func fullCell(per int) string { return strings.Repeat("s", maxBodySize/(fullRows*fullFeatures)-per) }

func fullBodies() []adversarialBody {
	names := make([]string, fullFeatures)
	for k := range names {
		names[k] = fmt.Sprintf("f%02d", k)
	}
	quoted := `"` + fullCell(4) + `"`
	jsonRow := "[" + strings.TrimSuffix(strings.Repeat(quoted+",", fullFeatures), ",") + "]"
	collectJSON, n := fill(`{"model_name":"full","model_version":"1","data":[`, jsonRow, ",", `]}`, maxBodySize, fullRows)

	csvRow := strings.TrimSuffix(strings.Repeat(fullCell(2)+",", fullFeatures), ",")
	collectCSV, _ := fill(strings.Join(names, ",")+"\n", csvRow, "\n", "\n", maxBodySize, fullRows)

	var rec strings.Builder
	v2Cell := `"` + fullCell(10) + `"`
	for k, name := range names {
		if k > 0 {
			rec.WriteByte(',')
		}
		rec.WriteString(`"` + name + `":` + v2Cell)
	}
	v2Records, _ := fill("[", "{"+rec.String()+"}", ",", "]", maxBodySize, fullRows)

	// The batch route: 39 collect requests of 100 rows, one per line.
	line := `{"model_name":"full","model_version":"1","data":[` + strings.TrimSuffix(strings.Repeat(jsonRow+",", 100), ",") + "]}"
	batch, _ := fill("", line, "\n", "\n", maxBodySize, fullRows/100)

	return []adversarialBody{
		{name: "collect JSON, 3,900 rows x 50 string features (accepted)", route: collectRoute, contentType: "application/json", body: collectJSON, want: 200, rows: n},
		{name: "collect CSV, 3,900 rows x 50 (accepted)", route: collectRoute + "?model_name=full&model_version=1", contentType: "text/csv", body: collectCSV, want: 200, rows: fullRows},
		{name: "batch, 39 lines of 100 rows x 50 (accepted)", route: collectRoute + "/batch", contentType: "application/x-ndjson", body: batch, want: 200, rows: fullRows},
		{name: "v2 records, 3,900 x 50 (accepted)", route: v2Route, contentType: "application/json", body: v2Records, want: 200, rows: fullRows},
		{name: "OTLP/HTTP protobuf, 3,900 records x 50 (accepted)", route: otlpRoute, contentType: "application/x-protobuf", body: otlpFullBody(names, nil), want: 200, rows: fullRows},
	}
}

// otlpTinyBody is an OTLP/HTTP protobuf body of about the size limit of
// records holding only a timestamp (17 bytes each as pdata writes them, 173
// bytes each once decoded).
func otlpTinyBody() []byte {
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	n := (maxBodySize - 64) / 17
	records.EnsureCapacity(n)
	for i := 0; i < n; i++ {
		records.AppendEmpty().SetTimestamp(pcommon.Timestamp(1700000000000000000 + i))
	}
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(logs)
	if err != nil || len(b) > maxBodySize {
		panic(fmt.Sprintf("%d bytes: %v", len(b), err))
	}
	return b
}

// otlpFullBody is 3,900 contract-form records of 50 string features as an
// OTLP/HTTP protobuf body of about the size limit; correlationID, when not
// nil, gives each row its correlation id.
func otlpFullBody(names []string, correlationID func(row int) string) []byte {
	return otlpFullBodyRows(names, fullRows, fullCell(26), correlationID) // 26: protobuf's key, value, tags, lengths and feature_names per cell
}

// otlpFullBodyRows is rows contract-form records whose features names all
// hold cell, as an OTLP/HTTP protobuf body.
func otlpFullBodyRows(names []string, rows int, cell string, correlationID func(row int) string) []byte {
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	now := time.Now()
	for i := 0; i < rows; i++ {
		lr := records.AppendEmpty()
		row := contract.Row{ModelName: "full", ModelVersion: "1", FeatureNames: names, Timestamp: now}
		if correlationID != nil {
			row.CorrelationID = correlationID(i)
		}
		contract.WriteRow(lr, row)
		body := contract.Features(lr)
		for _, name := range names {
			body.PutStr(name, cell)
		}
	}
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(logs)
	if err != nil {
		panic(err)
	}
	return b
}

func sendBody(client *http.Client, url string, b adversarialBody) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b.body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", b.contentType)
	req.Header.Set("ce-type", "azureml.inference.model_inputs")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(msg), nil
}

func (c memoryTarget) url(b adversarialBody) string {
	switch {
	case b.route == v2Route:
		return c.v2 + "/modeldata/log"
	case b.route == otlpRoute:
		return c.otlp + "/v1/logs"
	case b.contentType == "text/csv" && !strings.Contains(b.route, "?"):
		return c.collect + b.route + "?model_name=tinycsv"
	}
	return c.collect + b.route
}

// resetPeak makes the process's VmHWM start again from its current resident set.
func resetPeak(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak resident set: %v", err)
	}
}

// peakSampler reads a process's resident set every 10 ms until stopped.
// Besides the whole (VmHWM), it keeps the peak of the anonymous part: the
// Go heap and stacks, what a container's out-of-memory kill is about;
// file-backed pages (the binary, the file_storage queue's memory map) are
// clean and reclaimed by the kernel before it kills.
type peakSampler struct {
	pid        int
	stop, done chan struct{}
	anon, file int64
}

func samplePeak(pid int) *peakSampler {
	p := &peakSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := harness.ReadProc(pid); err == nil {
				p.anon, p.file = max(p.anon, st.AnonBytes), max(p.file, st.FileBytes)
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// peaks stops the sampler and returns the process's peak anonymous and
// file-backed resident set, and VmHWM.
func (p *peakSampler) peaks(t *testing.T) (anon, file, hwm int64) {
	t.Helper()
	close(p.stop)
	<-p.done
	st, err := harness.ReadProc(p.pid)
	if err != nil {
		t.Fatal(err)
	}
	return max(p.anon, st.AnonBytes), max(p.file, st.FileBytes), st.HWMBytes
}

// sampled stops the sampler and returns the peaks it saw, for a process
// that may be gone.
func (p *peakSampler) sampled() (anon, file int64) {
	close(p.stop)
	<-p.done
	return p.anon, p.file
}

func waitSent(t *testing.T, metrics string, rows int) {
	t.Helper()
	if !testutil.Poll(2*time.Minute, func() bool {
		n, err := harness.SentRows(context.Background(), metrics)
		return err == nil && n >= float64(rows)
	}) {
		t.Fatalf("the collector did not write %d rows", rows)
	}
}

// TestHarnessAdversarialMemory sends max-size bodies to the built collector
// under the DaemonSet's memory settings, in a memory cgroup with its
// container limit when the machine allows one, and measures its resident
// set from /proc. One body at a time, on every route (each on a fresh
// collector; growth of the peak over the resident set before it): a body,
// refused or accepted, must grow it by at most 3x the body on the modeldata
// receiver's routes; the otlp receiver's is measured.
// Three max-size bodies at once, and sixteen (many writers), must not get
// the collector killed (no out-of-memory kill in the cgroup, anonymous
// memory under the limit) and leave it serving.
func TestHarnessAdversarialMemory(t *testing.T) {
	ds := loadDeploySettings(t, "daemonset.yaml")
	client := &http.Client{Timeout: 2 * time.Minute}
	bodies := adversarialBodies()
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			c := memoryCollector(t, ds, false)
			before, err := harness.ReadProc(c.pid)
			if err != nil {
				t.Fatal(err)
			}
			resetPeak(t, c.pid)
			sampler := samplePeak(c.pid)
			code, msg, err := sendBody(client, c.url(b), b)
			if err != nil {
				t.Fatal(err)
			}
			if code != b.want {
				t.Fatalf("status %d, want %d: %s", code, b.want, msg)
			}
			if b.rows > 0 {
				waitSent(t, c.metrics, b.rows)
			}
			anon, file, hwm := sampler.peaks(t)
			after, err := harness.ReadProc(c.pid)
			if err != nil {
				t.Fatal(err)
			}
			growth, anonGrowth := hwm-before.RSSBytes, anon-before.AnonBytes
			t.Logf("MEMORY %s: body %.1f MiB, status %d; resident set before %.0f MiB (anon %.0f), peak %.0f MiB (anon %.0f, file %.0f); "+
				"growth %.0f MiB = %.2fx the body (anon %.0f MiB = %.2fx); collector CPU %.2f s; %s",
				b.name, mib(len(b.body)), code, mib(before.RSSBytes), mib(before.AnonBytes), mib(hwm), mib(anon), mib(file),
				mib(growth), float64(growth)/float64(len(b.body)), mib(anonGrowth), float64(anonGrowth)/float64(len(b.body)),
				after.CPUSeconds-before.CPUSeconds, c.cgroupReport(t))
			// The OTLP/HTTP body is read and decoded whole by the upstream
			// otlp receiver before the pipeline cuts it: measured only.
			if b.route != otlpRoute && growth > 3*int64(len(b.body)) {
				t.Errorf("the body (status %d) grew the peak resident set %.0f MiB, over 3x the %.0f MiB body", code, mib(growth), mib(len(b.body)))
			}
		})
	}
	full := fullBodies()[0]
	for _, tt := range []struct {
		name string
		b    adversarialBody
		n    int
	}{
		{"3 at once: " + bodies[0].name, bodies[0], 3},
		{"3 at once: " + full.name, full, 3},
		// More than max_bytes_in_flight holds: those over it get 503.
		{"16 at once: " + full.name, full, 16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := memoryCollector(t, ds, false)
			sampler := samplePeak(c.pid)
			var wg sync.WaitGroup
			codes := make([]int, tt.n)
			for i := range codes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[i], _, _ = sendBody(client, c.url(tt.b), tt.b)
				}()
			}
			wg.Wait()
			accepted := 0
			for _, code := range codes {
				switch {
				case code == tt.b.want:
					accepted++
				case code == http.StatusServiceUnavailable && tt.n > 3:
				default:
					t.Fatalf("statuses %v, want %d (or 503 when more than max_bytes_in_flight come at once)", codes, tt.b.want)
				}
			}
			if accepted == 0 {
				t.Fatalf("statuses %v: none accepted", codes)
			}
			if tt.b.rows > 0 {
				waitSent(t, c.metrics, accepted*tt.b.rows)
			}
			// Still serving: a small request is accepted, right away or after
			// the memory_limiter's 503 + Retry-After while the heap drains.
			small := adversarialBody{route: collectRoute, contentType: "application/json", body: []byte(`{"model_name":"after","data":[[1]]}`)}
			var answers []int
			testutil.Poll(30*time.Second, func() bool {
				code, _, err := sendBody(client, c.url(small), small)
				answers = append(answers, code)
				return err == nil && code == http.StatusOK
			})
			if answers[len(answers)-1] != http.StatusOK {
				t.Errorf("a request after: answers %v", answers)
			}
			anon, file, hwm := sampler.peaks(t)
			t.Logf("MEMORY %d at once, %s (GOMEMLIMIT=%s): statuses %v, then %d answers until a 200; peak resident set %.0f MiB (anon %.0f, file-backed %.0f) for a container limit of %.0f MiB; %s",
				tt.n, tt.b.name, ds.goMemLimit, codes, len(answers), mib(hwm), mib(anon), mib(file), mib(ds.containerLimit), c.cgroupReport(t))
			if anon >= ds.containerLimit {
				t.Errorf("peak anonymous resident set %.0f MiB, over the container limit %.0f MiB", mib(anon), mib(ds.containerLimit))
			}
		})
	}
	// Storage down: what is accepted stays queued and the queue consumers
	// keep their batches in memory between retries, out of the
	// memory_limiter's reach. Max-size bodies one after another must not get
	// the collector killed; it keeps answering (200, or 503 + Retry-After).
	t.Run("storage down: 20 max-size bodies one after another", func(t *testing.T) {
		c := memoryCollector(t, ds, true)
		sampler := samplePeak(c.pid)
		var codes []int
		for i := 0; i < 20; i++ {
			code, msg, err := sendBody(client, c.url(full), full)
			if err != nil {
				t.Fatalf("body %d: %v (statuses so far %v)", i+1, err, codes)
			}
			if code != http.StatusOK && code != http.StatusServiceUnavailable {
				t.Fatalf("body %d: status %d: %s", i+1, code, msg)
			}
			codes = append(codes, code)
		}
		anon, file, hwm := sampler.peaks(t)
		t.Logf("MEMORY storage down, %d max-size bodies one after another (queue %v): statuses %v; peak resident set %.0f MiB (anon %.0f, file-backed %.0f) for a container limit of %.0f MiB; %s",
			len(codes), ds.sendingQueue, codes, mib(hwm), mib(anon), mib(file), mib(ds.containerLimit), c.cgroupReport(t))
		if anon >= ds.containerLimit {
			t.Errorf("peak anonymous resident set %.0f MiB, over the container limit %.0f MiB", mib(anon), mib(ds.containerLimit))
		}
	})
}

func mib[T int | int64](n T) float64 { return float64(n) / (1 << 20) }
