package e2e

import (
	"bytes"
	"context"
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

	"sigs.k8s.io/yaml"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/harness"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// maxBodySize is confighttp's default max_request_body_size, the largest
// body a client can send the collector's shipped configs.
const maxBodySize = 20 << 20

// deploySettings are the memory settings of a manifest in deploy/kubernetes:
// the collector's GOMEMLIMIT and container memory limit, and its config's
// memory_limiter and modeldatablob sending_queue sections with the
// MEMORY_LIMITER_* variables they read.
type deploySettings struct {
	goMemLimit     string
	env            map[string]string
	containerLimit int64
	memoryLimiter  any
	sendingQueue   map[string]any
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
				Processors map[string]any            `json:"processors"`
				Exporters  map[string]map[string]any `json:"exporters"`
			}
			if err := yaml.Unmarshal([]byte(obj.Data["config.yaml"]), &cfg); err != nil {
				t.Fatal(err)
			}
			s.memoryLimiter = cfg.Processors["memory_limiter"]
			s.sendingQueue, _ = cfg.Exporters["modeldatablob"]["sending_queue"].(map[string]any)
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
	if s.goMemLimit == "" || s.containerLimit == 0 || s.memoryLimiter == nil || s.sendingQueue == nil {
		t.Fatalf("%s: GOMEMLIMIT %q, memory limit %d, memory_limiter %v, sending_queue %v", manifest, s.goMemLimit, s.containerLimit, s.memoryLimiter, s.sendingQueue)
	}
	return s
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
// (memory_limiter, featureflattener, the persistent sending queue) and
// GOMEMLIMIT, writing to a local folder; it returns the collector's pid.
func memoryCollector(t *testing.T, ds deploySettings) (collect, v2, metrics string, pid int) {
	t.Helper()
	collect, v2, health := harnessAddr(t), harnessAddr(t), harnessAddr(t)
	port := testutil.FreePort(t)
	dir := t.TempDir()
	queue := map[string]any{}
	for k, v := range ds.sendingQueue {
		queue[k] = v
	}
	queue["storage"] = "file_storage"
	cfg := map[string]any{
		"extensions": map[string]any{
			"health_check": map[string]any{"endpoint": health},
			"file_storage": map[string]any{"directory": filepath.Join(dir, "queue"), "create_directory": true},
		},
		"receivers": map[string]any{"modeldata": map[string]any{"endpoint": collect,
			"azureml_v2": map[string]any{"endpoint": v2, "model_name": "v2model"}}},
		"processors": map[string]any{"memory_limiter": ds.memoryLimiter, "featureflattener": map[string]any{}},
		"exporters": map[string]any{"modeldatablob": map[string]any{
			"backend": "local", "local": map[string]any{"directory": filepath.Join(dir, "data")},
			"subscription_id": harness.Subscription, "resource_group": harness.ResourceGroup,
			"workspace": harness.Workspace, "webservice": harness.Webservice, "sending_queue": queue}},
		"service": map[string]any{
			"extensions": []string{"health_check", "file_storage"},
			"pipelines": map[string]any{"logs": map[string]any{"receivers": []string{"modeldata"},
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
	testutil.StartCollector(t, conf, collect, v2, health)
	bin := testutil.CollectorBinary(t)
	pids := harness.ChildPIDs(os.Getpid(), bin)
	if len(pids) == 0 {
		t.Fatal("collector process not found")
	}
	return "http://" + collect, "http://" + v2, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), pids[len(pids)-1]
}

func telemetryBlock(port int) string {
	return fmt.Sprintf("service:\n  telemetry:\n    logs:\n      level: warn\n    metrics:\n      level: basic\n      readers:\n"+
		"      - pull:\n          exporter:\n            prometheus:\n              host: 127.0.0.1\n              port: %d\n", port)
}

// adversarialBody is one max-size body of the memory test.
type adversarialBody struct {
	name        string
	v2          bool
	contentType string
	body        []byte
	want        int // status
	rows        int // rows written when accepted
}

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
	// About the largest request the defaults accept: 3,900 rows of 50
	// features is 198,903 values (cells, rows, the root and its two members)
	// of max_values_per_request's 200,000, strings padding it to the size limit.
	const rows, features = 3900, 50
	cell := `"` + strings.Repeat("s", (maxBodySize/rows-3)/features-3) + `"`
	row := "[" + strings.TrimSuffix(strings.Repeat(cell+",", features), ",") + "]"
	fullJSON, fullRows := fill(`{"model_name":"full","data":[`, row, ",", `]}`, maxBodySize, rows)
	oneCell, _ := fill(`{"model_name":"onecell","data":[["`, "x", "", `"]]}`, maxBodySize, maxBodySize)
	return []adversarialBody{
		{name: "JSON of tiny rows [0,0,0],...", contentType: "application/json", body: tinyJSON, want: 413},
		{name: "CSV of tiny rows 0,0,0", contentType: "text/csv", body: tinyCSV, want: 413},
		{name: "v2 records {\"a\":0},...", v2: true, contentType: "application/json", body: tinyV2, want: 413},
		{name: "3,900 rows x 50 string features (accepted)", contentType: "application/json", body: fullJSON, want: 200, rows: fullRows},
		{name: "one 20 MiB cell (accepted)", contentType: "application/json", body: oneCell, want: 200, rows: 1},
	}
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

func target(collect, v2 string, b adversarialBody) string {
	if b.v2 {
		return v2 + "/modeldata/log"
	}
	if b.contentType == "text/csv" {
		return collect + "/v1/collect?model_name=tinycsv"
	}
	return collect + "/v1/collect"
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

func waitSent(t *testing.T, metrics string, rows int) {
	t.Helper()
	if !testutil.Poll(2*time.Minute, func() bool {
		n, err := harness.SentRows(context.Background(), metrics)
		return err == nil && n >= float64(rows)
	}) {
		t.Fatalf("the collector did not write %d rows", rows)
	}
}

// TestHarnessAdversarialMemory sends max-size hostile bodies to the built
// collector under the DaemonSet's memory settings and measures its resident
// set from /proc: one body at a time (each on a fresh collector, growth of
// the peak over the resident set before it) must grow it by at most 3× the
// body, and three at once must stay under the container's memory limit,
// with the collector still serving afterwards.
func TestHarnessAdversarialMemory(t *testing.T) {
	ds := loadDeploySettings(t, "daemonset.yaml")
	client := &http.Client{Timeout: 2 * time.Minute}
	bodies := adversarialBodies()
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			collect, v2, metrics, pid := memoryCollector(t, ds)
			before, err := harness.ReadProc(pid)
			if err != nil {
				t.Fatal(err)
			}
			resetPeak(t, pid)
			sampler := samplePeak(pid)
			code, msg, err := sendBody(client, target(collect, v2, b), b)
			if err != nil {
				t.Fatal(err)
			}
			if code != b.want {
				t.Fatalf("status %d, want %d: %s", code, b.want, msg)
			}
			if b.rows > 0 {
				waitSent(t, metrics, b.rows)
			}
			anon, file, hwm := sampler.peaks(t)
			growth, anonGrowth := hwm-before.RSSBytes, anon-before.AnonBytes
			t.Logf("MEMORY %s: body %.1f MiB, status %d; resident set before %.0f MiB (anon %.0f), peak %.0f MiB (anon %.0f, file %.0f); "+
				"growth %.0f MiB = %.2fx the body (anon %.0f MiB = %.2fx)",
				b.name, mib(len(b.body)), code, mib(before.RSSBytes), mib(before.AnonBytes), mib(hwm), mib(anon), mib(file),
				mib(growth), float64(growth)/float64(len(b.body)), mib(anonGrowth), float64(anonGrowth)/float64(len(b.body)))
			if b.rows == 0 && growth > 3*int64(len(b.body)) {
				t.Errorf("refusing the body grew the peak resident set %.0f MiB, over 3x the %.0f MiB body", mib(growth), mib(len(b.body)))
			}
		})
	}
	for _, name := range []string{bodies[0].name, bodies[3].name} {
		var b adversarialBody
		for _, c := range bodies {
			if c.name == name {
				b = c
			}
		}
		t.Run("3 at once: "+b.name, func(t *testing.T) {
			collect, v2, metrics, pid := memoryCollector(t, ds)
			sampler := samplePeak(pid)
			var wg sync.WaitGroup
			codes := make([]int, 3)
			for i := range codes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[i], _, _ = sendBody(client, target(collect, v2, b), b)
				}()
			}
			wg.Wait()
			for _, c := range codes {
				if c != b.want {
					t.Fatalf("statuses %v, want %d", codes, b.want)
				}
			}
			if b.rows > 0 {
				waitSent(t, metrics, 3*b.rows)
			}
			// Still serving: a small request is accepted, right away or after
			// the memory_limiter's 429 + Retry-After while the heap drains.
			small := adversarialBody{contentType: "application/json", body: []byte(`{"model_name":"after","data":[[1]]}`)}
			var answers []int
			testutil.Poll(30*time.Second, func() bool {
				code, _, err := sendBody(client, target(collect, v2, small), small)
				answers = append(answers, code)
				return err == nil && code == http.StatusOK
			})
			if answers[len(answers)-1] != http.StatusOK {
				t.Errorf("a request after: answers %v", answers)
			}
			anon, file, hwm := sampler.peaks(t)
			t.Logf("MEMORY 3 at once, %s (GOMEMLIMIT=%s): statuses %v, then %v; peak resident set %.0f MiB (anon %.0f, file-backed %.0f) for a container limit of %.0f MiB",
				b.name, ds.goMemLimit, codes, answers, mib(hwm), mib(anon), mib(file), mib(ds.containerLimit))
			if anon >= ds.containerLimit {
				t.Errorf("peak anonymous resident set %.0f MiB, over the container limit %.0f MiB", mib(anon), mib(ds.containerLimit))
			}
		})
	}
}

func mib[T int | int64](n T) float64 { return float64(n) / (1 << 20) }
