package appinsightsexporter

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/otelcol-modeldata/otelcol-modeldata/exporter/appinsightsexporter/internal/metadata"
	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

const testIKey = "11111111-2222-3333-4444-555555555555"

// gotEnvelope is an envelope as the test server decodes it.
type gotEnvelope struct {
	Ver        int               `json:"ver"`
	Name       string            `json:"name"`
	Time       string            `json:"time"`
	SampleRate float64           `json:"sampleRate"`
	IKey       string            `json:"iKey"`
	Tags       map[string]string `json:"tags"`
	Data       struct {
		BaseType string         `json:"baseType"`
		BaseData map[string]any `json:"baseData"`
	} `json:"data"`
}

// answer is what the fake ingestion service replies to one request.
type answer struct {
	status int
	header map[string]string
	body   string
}

// fakeIngestion is a local track endpoint: it checks the headers, gunzips
// the body, decodes each line, and answers from a script (200 when the
// script has run out).
type fakeIngestion struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	script []answer
	reqs   [][]gotEnvelope
	times  []time.Time
	paths  []string
}

func newFakeIngestion(t *testing.T, script ...answer) *fakeIngestion {
	f := &fakeIngestion{t: t, script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIngestion) handle(w http.ResponseWriter, r *http.Request) {
	lines, err := testutil.TrackLines(r)
	if err != nil {
		f.t.Errorf("read body: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-json-stream" || r.Method != http.MethodPost {
		f.t.Errorf("request %s with content type %q", r.Method, ct)
	}
	var envs []gotEnvelope
	for _, line := range lines {
		var e gotEnvelope
		if err := json.Unmarshal(line, &e); err != nil {
			f.t.Errorf("line %q: %v", line, err)
		}
		envs = append(envs, e)
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, envs)
	f.times = append(f.times, time.Now())
	f.paths = append(f.paths, r.URL.Path+"|"+r.Header.Get("Content-Encoding"))
	a := answer{status: http.StatusOK}
	if len(f.script) > 0 {
		a, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	if a.body == "" && a.status == http.StatusOK {
		b, _ := json.Marshal(trackResponse{ItemsReceived: len(envs), ItemsAccepted: len(envs), Errors: []itemError{}})
		a.body = string(b)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeIngestion) requests() [][]gotEnvelope {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]gotEnvelope(nil), f.reqs...)
}

// testConfig points at the fake service, without queue (a consume call
// returns after the last retry) and with fast retries.
func testConfig(endpoint string) *Config {
	cfg := createDefaultConfig()
	cfg.ConnectionString = "InstrumentationKey=" + testIKey + ";IngestionEndpoint=https://unused.example.com/"
	cfg.Endpoint = endpoint
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 20 * time.Second
	return cfg
}

// startedExporter is the exporter core, started, for push-level tests.
func startedExporter(t *testing.T, cfg *Config) *aiExporter {
	t.Helper()
	e, err := newExporter(cfg, exportertest.NewNopSettings(metadata.Type))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.shutdown(context.Background()) })
	return e
}
