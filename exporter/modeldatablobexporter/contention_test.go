package modeldatablobexporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-modeldata/otelcol-modeldata/internal/testutil"
)

// countingProxy forwards to Azurite and counts the storage requests the
// exporters make, so a run reports requests per landed append.
type countingProxy struct {
	target                              *url.URL
	requests, appends, refused, created atomic.Int64
}

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp := forwardTo(w, r, p.target)
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	p.requests.Add(1)
	if r.Method == http.MethodPut && r.URL.Query().Get("comp") == "appendblock" {
		p.appends.Add(1)
		switch resp.StatusCode {
		case http.StatusPreconditionFailed:
			p.refused.Add(1)
		case http.StatusCreated:
			p.created.Add(1)
		}
	}
	writeResponse(w, resp, resp.Body)
}

func startCountingProxy(t testing.TB, az *testutil.Azurite) (*countingProxy, string) {
	t.Helper()
	target, _ := url.Parse(az.Endpoint())
	p := &countingProxy{target: target}
	return p, startProxy(t, p) + "/" + az.AccountName()
}

// forwardTo sends r on to target; on a transport error it answers 502 and
// returns nil.
func forwardTo(w http.ResponseWriter, r *http.Request, target *url.URL) *http.Response {
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.RequestURI = target.Scheme, target.Host, ""
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return nil
	}
	return resp
}

// writeResponse answers with resp's status and headers, and body.
func writeResponse(w http.ResponseWriter, resp *http.Response, body io.Reader) {
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, body)
}

// startProxy serves h on a free loopback port until the test ends and
// returns its base URL.
func startProxy(t testing.TB, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// contentionRun is one run: writers exporters (as collectors on as many
// nodes) push rows of one model at a shared total rate; with kafka, as many
// agents produce the pushes to Kafka keyed by blob and the writers consume
// them in one consumer group (the three-tier layout of docs/aks.md).
type contentionRun struct {
	writers, rows, rowsPerPush int
	rate                       float64 // rows/s over all writers; 0: as fast as they go
	perWriterFiles, kafka      bool
}

type contentionResult struct {
	rowsPerSec, requestsPerAppend, refusedPerAppend, cpuPer100k float64
	p50, p99                                                    time.Duration
	landed, distinct, files                                     int
	racesLost, pushRetries                                      int64
}

// landings gathers what the pushes of a run did.
type landings struct {
	mu        sync.Mutex
	latencies []time.Duration
	failed    atomic.Value
	retries   atomic.Int64
}

func (l *landings) add(d time.Duration) {
	l.mu.Lock()
	l.latencies = append(l.latencies, d)
	l.mu.Unlock()
}

// deliver pushes ld to e, retrying as the exporterhelper would: what the
// push gave back.
func (l *landings) deliver(e *blobExporter, ld plog.Logs) bool {
	for attempt := 0; ; attempt++ {
		err := e.push(context.Background(), ld)
		if err == nil {
			return true
		}
		var partial consumererror.Logs
		if attempt == 20 || !errors.As(err, &partial) {
			l.failed.Store(err)
			return false
		}
		l.retries.Add(1)
		ld = partial.Data()
	}
}

// pushLogs is push p of a run: rowsPerPush rows of the hot model.
func (r contentionRun) pushLogs(p int) plog.Logs {
	rows := make([]testRow, r.rowsPerPush)
	for i := range rows {
		rows[i] = testRow{model: "hot", version: "1", ts: day, requestID: fmt.Sprintf("p%06d-r%03d", p, i),
			features: [][2]any{{"age", 40 + i%30}, {"city", "Redmond"}, {"score", 0.5}}}
	}
	return makeLogs(rows...)
}

// due is when push p is sent: at p*rowsPerPush/rate (at once when rate is 0).
func (r contentionRun) due(start time.Time, p int) time.Time {
	if r.rate == 0 {
		return start
	}
	return start.Add(time.Duration(float64(p*r.rowsPerPush) / r.rate * float64(time.Second)))
}

func (r contentionRun) run(t *testing.T, az *testutil.Azurite, containerName string) contentionResult {
	t.Helper()
	proxy, endpoint := startCountingProxy(t, az)
	var exporters []*blobExporter
	var tels []func(string) int64
	for w := 0; w < r.writers; w++ {
		cfg := createDefaultConfig()
		cfg.Backend, cfg.AzBlob.Auth, cfg.Container = BackendAzBlob, AuthAccountKey, containerName
		cfg.AzBlob.Endpoint = endpoint
		cfg.AzBlob.AccountName, cfg.AzBlob.AccountKey = az.AccountName(), configopaque.String(az.AccountKey())
		if r.perWriterFiles {
			cfg.FileName, cfg.WriterID = "data-{writer}.csv", fmt.Sprintf("node%02d", w)
		}
		e, tt := newTestExporterTel(t, cfg)
		exporters = append(exporters, e)
		tels = append(tels, func(name string) int64 { return counter(t, tt, name) })
	}
	pushes := r.rows / r.rowsPerPush
	l := &landings{}
	var wg sync.WaitGroup
	var kafka *kafkaLayout
	if r.kafka {
		kafka = startKafkaLayout(t, exporters, l)
	}
	cpu0 := processCPU()
	start := time.Now()
	for w, e := range exporters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if kafka != nil {
				kafka.agent(t, w, r, start)
				return
			}
			for p := w; p < pushes; p += r.writers {
				time.Sleep(time.Until(r.due(start, p)))
				t0 := time.Now()
				if !l.deliver(e, r.pushLogs(p)) {
					return
				}
				l.add(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	if kafka != nil {
		kafka.waitLanded(t, pushes)
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	if err, _ := l.failed.Load().(error); err != nil {
		t.Fatalf("push: %v", err)
	}

	res := contentionResult{rowsPerSec: float64(r.rows) / elapsed.Seconds(), cpuPer100k: cpu.Seconds() * 1e5 / float64(r.rows)}
	slices.Sort(l.latencies)
	res.p50, res.p99 = l.latencies[len(l.latencies)/2], l.latencies[len(l.latencies)*99/100]
	res.pushRetries = l.retries.Load()
	for _, tel := range tels {
		res.racesLost += tel("otelcol_modeldatablob_append_races_lost")
	}
	// Landed appends of rows: created appends minus one header per file.
	blobs := readBlobs(t, az, containerName)
	res.files = len(blobs)
	landedAppends := float64(proxy.created.Load() - int64(len(blobs)))
	res.requestsPerAppend = float64(proxy.requests.Load()) / landedAppends
	res.refusedPerAppend = float64(proxy.refused.Load()) / landedAppends
	seen := map[string]int{}
	for name, data := range blobs {
		records := parseCSV(t, data)
		for _, rec := range records[1:] {
			if rec[len(rec)-1] == records[0][len(records[0])-1] {
				t.Errorf("%s: header written twice", name)
				continue
			}
			seen[rec[len(rec)-1]]++
			res.landed++
		}
	}
	res.distinct = len(seen)
	if res.landed != r.rows || res.distinct != r.rows {
		t.Errorf("%d rows sent, %d landed, %d distinct", r.rows, res.landed, res.distinct)
	}
	if res.racesLost != proxy.refused.Load() {
		t.Errorf("append_races_lost %d, storage refused %d appends", res.racesLost, proxy.refused.Load())
	}
	return res
}

// processCPU is the user+system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestAzuriteContention has eight exporters append to one blob at once:
// every row lands once under one header, each lost race (HTTP 412) is counted
// in append_races_lost; with per-writer files, or behind Kafka with one
// writer per blob, no race happens at all.
func TestAzuriteContention(t *testing.T) {
	az := testutil.StartAzurite(t)
	shared := contentionRun{writers: 8, rows: 2000, rowsPerPush: 25}.run(t, az, "shared")
	if shared.files != 1 {
		t.Errorf("shared blob: %d files", shared.files)
	}
	own := contentionRun{writers: 8, rows: 2000, rowsPerPush: 25, perWriterFiles: true}.run(t, az, "own")
	if own.files != 8 || own.racesLost != 0 {
		t.Errorf("per-writer files: %d files, %d races lost; want 8 and 0", own.files, own.racesLost)
	}
	kafka := contentionRun{writers: 8, rows: 2000, rowsPerPush: 25, kafka: true}.run(t, az, "kafka")
	if kafka.files != 1 || kafka.racesLost != 0 {
		t.Errorf("Kafka layout: %d files, %d races lost; want 1 and 0", kafka.files, kafka.racesLost)
	}
}

// TestScaleFigures prints the rows of the scale table in docs/benchmarks.md
// (`make bench-scale`): 1, 4, 8, 16 writers in this process, 10,000 rows/s in
// total, against Azurite: on one shared blob, each on its own file, and
// behind Kafka (kfake) with one writer per blob.
func TestScaleFigures(t *testing.T) {
	if os.Getenv("MODELDATA_BENCH_SCALE") == "" {
		t.Skip("MODELDATA_BENCH_SCALE not set: run `make bench-scale`")
	}
	az := testutil.StartAzurite(t)
	rows := 50_000
	fmt.Println("| layout | writers | rows/s | storage requests per landed append | 412s per landed append | pushes retried | CPU s per 100k rows | landing p50 / p99 | rows landed / distinct |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for i, layout := range []string{"shared blob", "per-writer files", "Kafka, one writer per blob"} {
		for _, n := range []int{1, 4, 8, 16} {
			run := contentionRun{writers: n, rows: rows, rowsPerPush: 100, rate: 10_000,
				perWriterFiles: layout == "per-writer files", kafka: strings.HasPrefix(layout, "Kafka")}
			r := run.run(t, az, fmt.Sprintf("scale-%d-%d", i, n))
			fmt.Printf("| %s | %d | %.0f | %.2f | %.2f | %d | %.2f | %s / %s | %d / %d |\n", layout, n, r.rowsPerSec,
				r.requestsPerAppend, r.refusedPerAppend, r.pushRetries, r.cpuPer100k, r.p50.Round(time.Millisecond),
				r.p99.Round(time.Millisecond), r.landed, r.distinct)
		}
	}
}
